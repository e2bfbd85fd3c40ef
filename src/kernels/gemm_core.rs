//! How gemm.wgsl's invocations get their values of A and B (the GEMM cores), and which one a
//! device runs: chosen from the adapter, overridden by `LAMP_GEMM`.

use super::prelude::wgsl;
use crate::device::{Device, Group1, ShaderSource};

/// gemm.wgsl with the entry for any device.
pub static GEMM_PLAIN: ShaderSource = ShaderSource {
    files:
        "shaders/gemm.wgsl + gemm_vec4.wgsl + shaders/gemm_plain.wgsl + shaders/gemm_narrow.wgsl",
    text: || {
        wgsl(&[
            include_str!("../../shaders/gemm.wgsl"),
            include_str!("../../shaders/gemm_vec4.wgsl"),
            include_str!("../../shaders/gemm_plain.wgsl"),
            include_str!("../../shaders/gemm_narrow.wgsl"),
        ])
    },
    group1: Group1::None,
};

/// gemm.wgsl with the subgroup entry (devices with subgroups of at least 8 lanes).
pub static GEMM_SUBGROUP: ShaderSource = ShaderSource {
    files:
        "shaders/gemm.wgsl + gemm_vec4.wgsl + shaders/gemm_subgroup.wgsl + shaders/gemm_narrow.wgsl",
    text: || {
        wgsl(&[
            include_str!("../../shaders/gemm.wgsl"),
            include_str!("../../shaders/gemm_vec4.wgsl"),
            include_str!("../../shaders/gemm_subgroup.wgsl"),
            include_str!("../../shaders/gemm_narrow.wgsl"),
        ])
    },
    group1: Group1::None,
};

/// gemm.wgsl with the subgroup entry and 32 rows per invocation (CPU devices, wide GEMMs).
pub static GEMM_SUBGROUP_WIDE: ShaderSource = ShaderSource {
    files:
        "shaders/gemm.wgsl + gemm_vec4.wgsl + shaders/gemm_subgroup.wgsl + shaders/gemm_wide.wgsl",
    text: || {
        wgsl(&[
            include_str!("../../shaders/gemm.wgsl"),
            include_str!("../../shaders/gemm_vec4.wgsl"),
            include_str!("../../shaders/gemm_subgroup.wgsl"),
            include_str!("../../shaders/gemm_wide.wgsl"),
        ])
    },
    group1: Group1::None,
};

/// gemm.wgsl with the workgroup-memory entry (GPUs).
pub static GEMM_TILED: ShaderSource = ShaderSource {
    files:
        "shaders/gemm.wgsl + gemm_vec4.wgsl + shaders/gemm_tiled.wgsl + shaders/gemm_narrow.wgsl",
    text: || {
        wgsl(&[
            include_str!("../../shaders/gemm.wgsl"),
            include_str!("../../shaders/gemm_vec4.wgsl"),
            include_str!("../../shaders/gemm_tiled.wgsl"),
            include_str!("../../shaders/gemm_narrow.wgsl"),
        ])
    },
    group1: Group1::None,
};

/// How gemm.wgsl's invocations get their values of A and B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmCore {
    /// Each invocation loads its own (any device).
    Plain,
    /// One load of A per subgroup lane and a broadcast; needs subgroups of at least 8 lanes.
    /// `max_size` is the device's largest subgroup: the tile keeps that many column lanes per
    /// row group, so that a subgroup never spans two row groups. `wide_rows`: the most rows per
    /// invocation, for weight gradients and wide forward convolutions: 32 on CPU devices (with
    /// gemm_wide.wgsl, for GEMMs of at least 512 columns, where more FMAs per load of B pay:
    /// BENCHMARKS.md), 16 elsewhere. lavapipe's best.
    Subgroup { max_size: u32, wide_rows: u32 },
    /// The workgroup stages tiles of A and B in workgroup memory, each value loaded once (the
    /// standard GPU shape; any device; chosen on GPUs without subgroups).
    Tiled,
}

/// The environment variable that picks a core by name (`GemmCore::NAMES`).
pub const GEMM_ENV: &str = "LAMP_GEMM";

impl GemmCore {
    /// The names `LAMP_GEMM` takes.
    pub const NAMES: [&'static str; 3] = ["plain", "subgroup", "tiled"];

    /// The core for this device: `LAMP_GEMM` (plain, subgroup or tiled) where set and the device
    /// can run it; otherwise the subgroup core wherever subgroups of at least 8 lanes exist (the
    /// one measured fastest: lavapipe, and the H200 of BENCHMARKS.md, where the tiled core has not
    /// run yet), the tiled core on GPUs without them (workgroup memory instead of a load per row),
    /// and plain on CPUs without them.
    pub fn best(dev: &Device) -> GemmCore {
        let subgroup = GemmCore::subgroup(dev);
        let asked = std::env::var(GEMM_ENV).ok();
        match asked.as_deref() {
            Some("plain") => return GemmCore::Plain,
            Some("tiled") => return GemmCore::Tiled,
            Some("subgroup") if subgroup.is_some() => return subgroup.unwrap_or(GemmCore::Plain),
            Some(other) => log::warn!(
                "{GEMM_ENV}={other:?}: not one of {:?} that this device runs; choosing",
                GemmCore::NAMES
            ),
            None => {}
        }
        let gpu = matches!(
            dev.info.device_type,
            wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu
        );
        match subgroup {
            Some(s) => s,
            None if gpu => GemmCore::Tiled,
            None => GemmCore::Plain,
        }
    }
    /// The subgroup core where the device has subgroups of at least 8 lanes.
    fn subgroup(dev: &Device) -> Option<GemmCore> {
        let (min, max) = dev.subgroup_sizes;
        let cpu = dev.info.device_type == wgpu::DeviceType::Cpu;
        (dev.features.contains(wgpu::Features::SUBGROUP) && min >= 8).then_some(
            GemmCore::Subgroup {
                max_size: max,
                wide_rows: if cpu { 32 } else { 16 },
            },
        )
    }
    pub(super) fn shader(self) -> &'static ShaderSource {
        match self {
            GemmCore::Plain => &GEMM_PLAIN,
            GemmCore::Subgroup { .. } => &GEMM_SUBGROUP,
            GemmCore::Tiled => &GEMM_TILED,
        }
    }
    /// Every core this device can run (tests check each): plain and tiled always, subgroup
    /// where supported, with both row limits.
    pub fn available(dev: &Device) -> Vec<GemmCore> {
        let mut v = vec![GemmCore::Plain];
        if let Some(GemmCore::Subgroup { max_size, .. }) = GemmCore::subgroup(dev) {
            for wide_rows in [16, 32] {
                v.push(GemmCore::Subgroup {
                    max_size,
                    wide_rows,
                });
            }
        }
        v.push(GemmCore::Tiled);
        v
    }
    /// The name and, for the subgroup core, its row limit: what `lamp info` prints.
    pub fn describe(self) -> String {
        match self {
            GemmCore::Subgroup { wide_rows, .. } => {
                format!("subgroup, up to {wide_rows} rows per invocation")
            }
            other => other.name().to_string(),
        }
    }
    /// The core's name, as `LAMP_GEMM` takes it.
    pub fn name(self) -> &'static str {
        match self {
            GemmCore::Plain => "plain",
            GemmCore::Subgroup { .. } => "subgroup",
            GemmCore::Tiled => "tiled",
        }
    }
}
