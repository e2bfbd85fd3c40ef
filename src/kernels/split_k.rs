//! Split-K: how a launch with few outputs and a long reduction is cut into parts that run side
//! by side (gemm.wgsl for GEMMs, bias_grad.wgsl for bias gradients), chosen from the device.

use crate::device::Device;

/// On CPUs, split-K applies to weight gradients of few columns (at most 64: kernels/gemm.rs,
/// `lane_geometry`), about 64 parts run several to a workgroup, as many as the scratch (512 KiB)
/// holds (conv-ae's last layer: 1,536 outputs × 64 parts); and to other weight gradients with at
/// most this many outputs...
pub const SPLIT_K_MAX_OUTPUTS: u32 = 1024;
/// ...cut into at most this many parts.
pub const SPLIT_K_PARTS: u32 = 16;
pub const SPLIT_K_SCRATCH: usize = 1 << 17;
/// On GPUs the scratch is larger (4 MiB): wide gradients are split too.
pub const SPLIT_K_SCRATCH_GPU: usize = 1 << 20;
/// On GPUs each part keeps at least this many terms of the reduction per output.
pub const SPLIT_K_MIN_TERMS: u32 = 256;

/// How weight gradients are split along their reduction (split-K), chosen from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitK {
    /// CPUs (lavapipe): only the weight gradients with few columns (the 1- and 3-channel
    /// layers: one tile that would leave most lanes and a core idle), parts side by side in each
    /// workgroup, and other gradients of at most `SPLIT_K_MAX_OUTPUTS` outputs, into batch/2
    /// parts, at most `SPLIT_K_PARTS`. Two cores are kept busy by every other launch already.
    FewOutputs,
    /// GPUs: weight gradients have few outputs and long reductions (conv-ae 128's last layer:
    /// 1,536 outputs, 262,144 terms each), and so do the linear layers (fmnist-ae's enc3: 2,048
    /// outputs at batch 64, 3,136 terms), so whole they run on a handful of workgroups of a
    /// hundred-odd cores (measured on an H200: 14.7 ms and 1 ms, a third of the step). Split into
    /// enough parts for about `target` workgroups (each part at least `SPLIT_K_MIN_TERMS` terms
    /// long, within `SPLIT_K_SCRATCH_GPU`).
    Occupancy { target: u32 },
}

impl SplitK {
    /// `FewOutputs` on CPU adapters, `Occupancy` elsewhere; `LAMP_SPLIT_K=few|occupancy`
    /// overrides (to compare, and to test the GPU policy on lavapipe).
    pub fn for_device(dev: &Device) -> SplitK {
        let gpu = SplitK::Occupancy { target: 1024 };
        match std::env::var("LAMP_SPLIT_K").as_deref() {
            Ok("few") => SplitK::FewOutputs,
            Ok("occupancy") => gpu,
            _ if dev.info.device_type == wgpu::DeviceType::Cpu => SplitK::FewOutputs,
            _ => gpu,
        }
    }
    /// Floats of activation-arena scratch that the partial sums may take.
    pub fn scratch(self) -> usize {
        match self {
            SplitK::FewOutputs => SPLIT_K_SCRATCH,
            SplitK::Occupancy { .. } => SPLIT_K_SCRATCH_GPU,
        }
    }
}
