//! The GPU: one `Device` handle that owns the wgpu device and queue, what we know of the adapter
//! behind them (limits, features, subgroup sizes), and the shader registry with every compiled
//! kernel, so that code passes one handle instead of a (device, kernels) pair.
//!
//! `adapter` finds the adapter, `memory` holds buffers, readback and error scopes, `registry`
//! builds layouts, modules and pipelines, `pipeline_cache` keeps the driver's compiled
//! pipelines on disk.

pub mod adapter;
pub mod memory;
pub mod pipeline_cache;
pub mod registry;

pub use adapter::{list_adapters, no_adapter_hint, NO_ADAPTER_HINT};
pub use registry::{validate, Constants, Group1, ShaderSource};

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Device, queue, what we know of the adapter behind them, and the compiled kernels.
pub struct Device {
    /// The driver's compiled pipelines, kept on disk between runs where the backend can. First,
    /// so that it is saved (on drop) while the device below still lives.
    pub pipeline_cache: Option<pipeline_cache::DiskCache>,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// Smallest and largest subgroup the adapter may use.
    pub subgroup_sizes: (u32, u32),
    pub registry: registry::Registry,
    /// The first error wgpu reported outside an error scope (validation, out of memory, device
    /// lost); `wait` turns it into an error, so none is ignored.
    uncaptured: Arc<Mutex<Option<String>>>,
}

impl Device {
    /// Creates the device on the preferred adapter. `name` (or `WGPU_ADAPTER_NAME`) selects the
    /// first adapter whose name contains it, case-insensitively.
    pub fn new(name: Option<&str>) -> Result<Device> {
        let adapter = adapter::choose(name)?;
        let info = adapter.get_info();
        let required_limits = adapter::wanted_limits(&adapter.limits());
        let features = adapter::wanted_features(&adapter);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("lamp"),
            required_features: features,
            required_limits: required_limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Device(format!("{} ({:?}): {e}", info.name, info.backend)))?;
        let uncaptured = Arc::new(Mutex::new(None));
        let slot = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e| {
            if let Ok(mut s) = slot.lock() {
                s.get_or_insert_with(|| e.to_string());
            }
        }));
        let registry = registry::Registry::new(&device);
        let pipeline_cache = pipeline_cache::DiskCache::open(&device, &info, features);
        Ok(Device {
            pipeline_cache,
            uncaptured,
            registry,
            device,
            queue,
            limits: required_limits,
            features,
            subgroup_sizes: (info.subgroup_min_size, info.subgroup_max_size),
            info,
        })
    }

    /// The device `name` selects (as `new`), shared: while one handle is alive, every call with
    /// the same name returns it, so that its compiled kernels are reused (`fit` then
    /// `Detector::load`, say). A device that has reported an error is not handed out again.
    pub fn shared(name: Option<&str>) -> Result<Arc<Device>> {
        type Cache = Mutex<Vec<(Option<String>, Weak<Device>)>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
        let mut cache = cache
            .lock()
            .map_err(|_| Error::Device("device cache".into()))?;
        cache.retain(|(_, d)| d.strong_count() > 0);
        let key = name.map(str::to_owned);
        let alive = cache
            .iter()
            .filter(|(k, _)| *k == key)
            .find_map(|(_, d)| d.upgrade())
            .filter(|d| d.check().is_ok());
        if let Some(d) = alive {
            return Ok(d);
        }
        let d = Arc::new(Device::new(name)?);
        cache.push((key, Arc::downgrade(&d)));
        Ok(d)
    }

    /// A human label of the adapter: name, backend and type.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }
}
