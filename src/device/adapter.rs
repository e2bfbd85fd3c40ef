//! Finding the adapter: the wgpu instance (honouring `WGPU_BACKEND`), every adapter it sees, the
//! preferred one, and the limits and features lamp asks of it.
//!
//! Adapter choice: a name (the `--adapter` option or `WGPU_ADAPTER_NAME`) picks the first adapter
//! whose name contains it; otherwise a discrete GPU, then an integrated one, then anything else
//! (a CPU adapter such as lavapipe). `WGPU_BACKEND` (e.g. `vulkan`, `metal`, `dx12`) restricts
//! the backends searched.

use crate::error::{Error, Result};

/// How to get a software adapter where no GPU is present.
pub const NO_ADAPTER_HINT: &str = "no GPU or software adapter found; on Debian/Ubuntu install \
     lavapipe with `apt-get install mesa-vulkan-drivers libvulkan1`, or select another by name \
     (`adapter` or WGPU_ADAPTER_NAME) or backend (WGPU_BACKEND)";

/// Why no adapter was found: `WGPU_BACKEND` where it is set (an unknown name, or a backend with
/// no adapter here, hides the ones there are), else how to get a software one.
pub fn no_adapter_hint() -> String {
    match std::env::var("WGPU_BACKEND") {
        Ok(v) => format!(
            "no adapter on the backends WGPU_BACKEND={v:?} names (lamp uses vulkan, metal and \
             dx12; names it does not know select nothing): unset WGPU_BACKEND to search them \
             all; where none is found then either, {NO_ADAPTER_HINT}"
        ),
        Err(_) => NO_ADAPTER_HINT.to_string(),
    }
}

pub(super) fn instance() -> wgpu::Instance {
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
pub(super) fn wanted_limits(adapter: &wgpu::Limits) -> wgpu::Limits {
    wgpu::Limits {
        max_storage_buffer_binding_size: adapter.max_storage_buffer_binding_size,
        max_buffer_size: adapter.max_buffer_size,
        max_storage_buffers_per_shader_stage: adapter.max_storage_buffers_per_shader_stage.min(8),
        max_compute_workgroups_per_dimension: adapter.max_compute_workgroups_per_dimension,
        ..wgpu::Limits::downlevel_defaults()
    }
}

/// The adapter `name` (or `WGPU_ADAPTER_NAME`) selects, case-insensitively, or the preferred one.
pub(super) fn choose(name: Option<&str>) -> Result<wgpu::Adapter> {
    let inst = instance();
    let adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
    if adapters.is_empty() {
        return Err(Error::NoAdapter(no_adapter_hint()));
    }
    let env_name = std::env::var("WGPU_ADAPTER_NAME").ok();
    let wanted = name.map(str::to_owned).or(env_name);
    match &wanted {
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
                })
        }
        None => {
            let mut v = adapters;
            v.sort_by_key(|a| {
                let i = a.get_info();
                (rank(i.device_type), i.backend != wgpu::Backend::Vulkan)
            });
            v.into_iter()
                .next()
                .ok_or_else(|| Error::NoAdapter(NO_ADAPTER_HINT.into()))
        }
    }
}

/// The features lamp uses where the adapter has them: timestamps (for `lamp bench`), a pipeline
/// cache (device::pipeline_cache), and subgroups where they are wide enough for
/// gemm_subgroup.wgsl (kernels::gemm::GemmCore).
pub(super) fn wanted_features(adapter: &wgpu::Adapter) -> wgpu::Features {
    let info = adapter.get_info();
    let mut wanted = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::PIPELINE_CACHE;
    if info.subgroup_min_size >= 8 {
        wanted |= wgpu::Features::SUBGROUP;
    }
    adapter.features() & wanted
}
