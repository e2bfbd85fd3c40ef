//! The one place that creates the wgpu instance, adapter, device and queue, and the few helpers
//! every launcher needs (buffers, readback, error scopes).
//!
//! Adapter choice: `--adapter SUBSTRING` (or `WGPU_ADAPTER_NAME`) picks by name; otherwise a
//! discrete GPU, then an integrated one, then anything else (a CPU adapter such as lavapipe).
//! `WGPU_BACKEND` (e.g. `vulkan`, `metal`, `dx12`) restricts the backends searched.

use crate::error::{Error, Result};
use std::sync::mpsc;

/// How to get a software adapter where no GPU is present.
pub const NO_ADAPTER_HINT: &str = "no GPU or software adapter found; on Debian/Ubuntu install \
     lavapipe with `apt-get install mesa-vulkan-drivers libvulkan1`, or select another with \
     --adapter/WGPU_ADAPTER_NAME/WGPU_BACKEND";

/// Device, queue and what we know of the adapter behind them.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// Smallest and largest subgroup the adapter may use.
    pub subgroup_sizes: (u32, u32),
    /// The first error wgpu reported outside an error scope (validation, out of memory, device
    /// lost); `wait` turns it into an error, so none is ignored.
    uncaptured: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    // Validation layers are slow and noisy; wgpu's own validation stays on.
    desc.flags = wgpu::InstanceFlags::empty();
    wgpu::Instance::new(desc)
}

/// Every adapter this process can see (respecting `WGPU_BACKEND`).
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    let inst = instance();
    let adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
    adapters.iter().map(|a| a.get_info()).collect()
}

fn rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// The limits lamp asks for: the adapter's own maxima for buffer sizes, so large data sets fit
/// in fewer bindings, and defaults for the rest.
fn wanted_limits(adapter: &wgpu::Limits) -> wgpu::Limits {
    wgpu::Limits {
        max_storage_buffer_binding_size: adapter.max_storage_buffer_binding_size,
        max_buffer_size: adapter.max_buffer_size,
        max_storage_buffers_per_shader_stage: adapter.max_storage_buffers_per_shader_stage.min(8),
        max_compute_workgroups_per_dimension: adapter.max_compute_workgroups_per_dimension,
        ..wgpu::Limits::downlevel_defaults()
    }
}

impl Gpu {
    /// Creates the device on the preferred adapter. `name` (or `WGPU_ADAPTER_NAME`) selects the
    /// first adapter whose name contains it, case-insensitively.
    pub fn new(name: Option<&str>) -> Result<Gpu> {
        let inst = instance();
        let adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
        if adapters.is_empty() {
            return Err(Error::NoAdapter(NO_ADAPTER_HINT.into()));
        }
        let env_name = std::env::var("WGPU_ADAPTER_NAME").ok();
        let wanted = name.map(str::to_owned).or(env_name);
        let adapter = match &wanted {
            Some(w) => {
                let w_low = w.to_lowercase();
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&w_low))
                    .ok_or_else(|| {
                        Error::NoAdapter(format!(
                            "no adapter name contains {w:?}; available: {}",
                            names.join(", ")
                        ))
                    })?
            }
            None => {
                let mut v = adapters;
                v.sort_by_key(|a| {
                    let i = a.get_info();
                    (rank(i.device_type), i.backend != wgpu::Backend::Vulkan)
                });
                v.into_iter()
                    .next()
                    .ok_or_else(|| Error::NoAdapter(NO_ADAPTER_HINT.into()))?
            }
        };
        let info = adapter.get_info();
        let adapter_limits = adapter.limits();
        let required_limits = wanted_limits(&adapter_limits);
        // Subgroups only where they are wide enough for gemm_subgroup.wgsl (kernels::GemmCore).
        let mut wanted = wgpu::Features::TIMESTAMP_QUERY;
        if info.subgroup_min_size >= 8 {
            wanted |= wgpu::Features::SUBGROUP;
        }
        let features = adapter.features() & wanted;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("lamp"),
            required_features: features,
            required_limits: required_limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Device(format!("{} ({:?}): {e}", info.name, info.backend)))?;
        let uncaptured = std::sync::Arc::new(std::sync::Mutex::new(None));
        let slot = uncaptured.clone();
        device.on_uncaptured_error(std::sync::Arc::new(move |e| {
            if let Ok(mut s) = slot.lock() {
                s.get_or_insert_with(|| e.to_string());
            }
        }));
        Ok(Gpu {
            uncaptured,
            device,
            queue,
            limits: required_limits,
            features,
            subgroup_sizes: (info.subgroup_min_size, info.subgroup_max_size),
            info,
        })
    }

    /// A human label of the adapter: name, backend and type.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// A storage buffer of `len` f32 (at least one element so a binding is never empty).
    pub fn storage(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (len.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    pub fn uniform(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Reads `len` f32 from `buf` starting at element `offset`, waiting for the queue.
    pub fn read_f32(&self, buf: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(buf, (offset * 4) as u64, (len * 4) as u64)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    pub fn read_bytes(&self, buf: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        if size == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buf, offset, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Device("readback callback never ran".into()))?
            .map_err(|e| Error::Device(format!("readback failed: {e}")))?;
        let out = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::Device(format!("readback failed: {e}")))?
            .to_vec();
        staging.unmap();
        Ok(out)
    }

    /// Blocks until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("device lost or timed out: {e}")))?;
        self.check()
    }

    /// An error wgpu reported outside any error scope since the device was made, if any.
    pub fn check(&self) -> Result<()> {
        match self.uncaptured.lock().ok().and_then(|s| s.clone()) {
            None => Ok(()),
            Some(e) if e.contains("out of memory") || e.contains("OutOfMemory") => {
                Err(Error::OutOfMemory(e))
            }
            Some(e) => Err(Error::Device(e)),
        }
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns what they caught into
    /// an error, so nothing wgpu reports is ignored.
    pub fn checked<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(val.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = o {
            return Err(Error::OutOfMemory(format!("{what}: {e}")));
        }
        if let Some(e) = v {
            return Err(Error::Device(format!("{what}: {e}")));
        }
        Ok(out)
    }
}
