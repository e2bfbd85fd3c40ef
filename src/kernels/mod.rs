//! The kernels: one Rust file per shader family, named after its `.wgsl` in `shaders/`, each with
//! a `*Spec` that mirrors the shader's override constants field by field and builds its launches.
//!
//! | shader (shaders/)                                   | launcher        | computes |
//! |-----------------------------------------------------|-----------------|----------|
//! | prelude.wgsl                                         | `prelude`       | bindings, `struct Step`, generated codes and slots |
//! | gemm.wgsl (+ gemm_plain.wgsl / gemm_subgroup.wgsl)  | `gemm`          | conv, conv-T and linear layers, forward and backward |
//! | bias_grad.wgsl                                       | `bias_grad`     | bias gradients; split-K's sum of parts |
//! | loss.wgsl                                            | `loss`          | amplified loss, plain errors, dL/dz of the output |
//! | optimizer.wgsl                                       | `optimizer`     | Adam or SGD step over the whole arena |
//! | gather.wgsl                                          | `gather`        | a batch from the device-resident data set |
//! | pack.wgsl                                            | `pack`          | weights packed for the GEMM's vec4 path |
//!
//! `gemm_core` picks how the GEMM's invocations get their operands (plain, subgroup, tiled);
//! `layer` maps each layer of the model onto these launches, forward and backward side by side;
//! `split_k` decides where a launch is split into parts (GPUs: long reductions with few outputs).

pub mod bias_grad;
pub mod gather;
pub mod gemm;
pub mod gemm_core;
pub mod layer;
pub mod loss;
pub mod optimizer;
pub mod pack;
pub mod prelude;
pub mod split_k;

pub use bias_grad::BiasGradSpec;
pub use gather::{GatherSpec, View};
pub use gemm::{GemmCore, GemmSpec};
pub use layer::LayerOffsets;
pub use loss::LossSpec;
pub use optimizer::OptimizerSpec;
pub use pack::{Layout, PackSpec, Packed, Packing};
pub use prelude::{stats_len, GemmMode, Stat, StepUniform, STATS_HEADER};
pub use split_k::SplitK;

use crate::device::ShaderSource;
use std::sync::Arc;

/// Every shader lamp compiles (tests validate each).
pub fn all_shaders() -> [&'static ShaderSource; 9] {
    [
        &gemm::GEMM_PLAIN,
        &gemm::GEMM_SUBGROUP,
        &gemm::GEMM_SUBGROUP_WIDE,
        &gemm::GEMM_TILED,
        &bias_grad::BIAS_GRAD,
        &loss::LOSS,
        &optimizer::OPTIMIZER,
        &gather::GATHER,
        &pack::PACK,
    ]
}

/// One dispatch: a pipeline, its group-1 bind group (if any) and the workgroup counts.
#[derive(Clone)]
pub struct Dispatch {
    pub label: String,
    pub pipeline: Arc<wgpu::ComputePipeline>,
    /// Bind group 1, for the kernels that have one (optimizer state, a data chunk).
    pub group1: Option<wgpu::BindGroup>,
    pub groups: [u32; 3],
    /// Useful floating-point operations of the launch (0 where not counted).
    pub flops: f64,
}

/// Workgroup counts for `tiles` tiles along x, folded into z past the per-dimension limit.
pub fn fold(tiles: u32, y: u32) -> [u32; 3] {
    const MAX: u32 = 65535;
    if tiles <= MAX {
        [tiles.max(1), y.max(1), 1]
    } else {
        let z = tiles.div_ceil(MAX);
        [tiles.div_ceil(z), y.max(1), z]
    }
}

/// Workgroup count for a 256-wide grid-stride kernel over `n` elements.
pub(crate) fn strided_groups(n: u64) -> [u32; 3] {
    [(n.div_ceil(256)).clamp(1, 65535) as u32, 1, 1]
}
