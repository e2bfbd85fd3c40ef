//! The Rust↔WGSL contract in one place: the codes shaders read (GEMM modes here; metric,
//! amplification, granularity and activation codes in `model`), the stats slots, the step
//! uniform, and the prelude every shader is compiled with — shaders/prelude.wgsl (the arena bindings, `struct Step`) below a
//! block of constants generated here from the Rust enums and constants, so that each code and
//! slot is written once. tests/contract.rs checks the rest by machine: every launch sets exactly
//! the overrides its shader declares, and `struct Step` has `StepUniform`'s layout.

use crate::model::loss::CLAMP_MAX;
use crate::model::{ssim, ActCode, AdamConfig, Amp, Choice, Granularity, Metric, Optimizer};
use std::fmt::Write;

/// The three indexings of gemm.wgsl (override `MODE`, constants `MODE_*`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmMode {
    Conv = 0,
    ConvTranspose = 1,
    WeightGrad = 2,
}

impl GemmMode {
    pub const ALL: [GemmMode; 3] = [
        GemmMode::Conv,
        GemmMode::ConvTranspose,
        GemmMode::WeightGrad,
    ];
    pub fn name(self) -> &'static str {
        match self {
            GemmMode::Conv => "conv",
            GemmMode::ConvTranspose => "conv_t",
            GemmMode::WeightGrad => "weight_grad",
        }
    }
}

/// The slots of the stats buffer's header (loss.wgsl writes them, the optimizer raises the
/// non-finite flag, the host reads them).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// The last step's loss.
    Loss = 0,
    /// Running sum of the losses since the last reset.
    LossSum = 1,
    /// Running count of steps since the last reset.
    Steps = 2,
    /// Running count of clamped errors since the last reset.
    ClampSum = 3,
    /// Non-finite loss or gradient: any non-zero bits.
    NonFinite = 4,
    /// The last step's clamp count.
    Clamps = 5,
}

impl Stat {
    pub const ALL: [Stat; 6] = [
        Stat::Loss,
        Stat::LossSum,
        Stat::Steps,
        Stat::ClampSum,
        Stat::NonFinite,
        Stat::Clamps,
    ];
    pub fn index(self) -> usize {
        self as usize
    }
    fn wgsl_name(self) -> &'static str {
        match self {
            Stat::Loss => "STAT_LOSS",
            Stat::LossSum => "STAT_LOSS_SUM",
            Stat::Steps => "STAT_STEPS",
            Stat::ClampSum => "STAT_CLAMP_SUM",
            Stat::NonFinite => "STAT_NONFINITE",
            Stat::Clamps => "STAT_CLAMPS",
        }
    }
}

/// Length of the stats header; the per-sample sections start here.
pub const STATS_HEADER: usize = 8;

/// f32 elements of a stats buffer for batches of up to `max_batch` samples.
pub fn stats_len(max_batch: usize) -> usize {
    STATS_HEADER + 3 * max_batch
}

/// The step uniform shared by gather and the optimizer (mirrors `struct Step`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepUniform {
    pub batch_offset: u32,
    pub t: u32,
    pub step_size: f32,
    pub bc2_sqrt: f32,
    pub beta2: f32,
    pub one_minus_beta1: f32,
    pub one_minus_beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// SGD's momentum.
    pub momentum: f32,
    pub pad: [u32; 2],
}

impl StepUniform {
    /// The named fields and their byte offsets (what `struct Step` must match).
    pub const FIELDS: [(&'static str, usize); 10] = {
        use std::mem::offset_of;
        [
            ("batch_offset", offset_of!(StepUniform, batch_offset)),
            ("t", offset_of!(StepUniform, t)),
            ("step_size", offset_of!(StepUniform, step_size)),
            ("bc2_sqrt", offset_of!(StepUniform, bc2_sqrt)),
            ("beta2", offset_of!(StepUniform, beta2)),
            ("one_minus_beta1", offset_of!(StepUniform, one_minus_beta1)),
            ("one_minus_beta2", offset_of!(StepUniform, one_minus_beta2)),
            ("eps", offset_of!(StepUniform, eps)),
            ("weight_decay", offset_of!(StepUniform, weight_decay)),
            ("momentum", offset_of!(StepUniform, momentum)),
        ]
    };

    /// The uniform of optimizer step `t` (1-based) on the batch at `batch_offset` of the epoch's
    /// order. `step_size` is lr / (1 − β1^t) for Adam and lr for SGD.
    pub fn new(optimizer: &Optimizer, t: u32, batch_offset: u32) -> StepUniform {
        match optimizer {
            Optimizer::Adam(cfg) => Self::adam(cfg, t, batch_offset),
            Optimizer::Sgd(cfg) => StepUniform {
                batch_offset,
                t,
                step_size: cfg.lr as f32,
                momentum: cfg.momentum as f32,
                weight_decay: cfg.weight_decay as f32,
                ..Default::default()
            },
        }
    }

    /// Adam's bias corrections computed in f64, as PyTorch does in Python floats.
    fn adam(cfg: &AdamConfig, t: u32, batch_offset: u32) -> StepUniform {
        let bc1 = 1.0 - cfg.beta1.powi(t as i32);
        let bc2 = 1.0 - cfg.beta2.powi(t as i32);
        StepUniform {
            batch_offset,
            t,
            step_size: (cfg.lr / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            beta2: cfg.beta2 as f32,
            one_minus_beta1: (1.0 - cfg.beta1) as f32,
            one_minus_beta2: (1.0 - cfg.beta2) as f32,
            eps: cfg.eps as f32,
            weight_decay: cfg.weight_decay as f32,
            momentum: 0.0,
            pad: [0; 2],
        }
    }
}

/// shaders/prelude.wgsl.
pub const PRELUDE: &str = include_str!("../../shaders/prelude.wgsl");

/// The constants every shader may use, as WGSL.
pub fn constants() -> String {
    let mut s = String::from("// Generated from the Rust definitions (src/kernels/prelude.rs).\n");
    let mut code = |prefix: &str, name: &str, value: u32| {
        let _ = writeln!(s, "const {prefix}_{}: u32 = {value}u;", name.to_uppercase());
    };
    for &m in Metric::ALL {
        code("METRIC", m.name(), m as u32);
    }
    for &a in Amp::ALL {
        code("AMP", a.name(), a as u32);
    }
    for &g in Granularity::ALL {
        code("GRAN", g.name(), g as u32);
    }
    for a in ActCode::ALL {
        code("ACT", a.name(), a as u32);
    }
    for m in GemmMode::ALL {
        code("MODE", m.name(), m as u32);
    }
    for st in Stat::ALL {
        let _ = writeln!(s, "const {}: u32 = {}u;", st.wgsl_name(), st as u32);
    }
    let _ = writeln!(s, "const STATS_HEADER: u32 = {STATS_HEADER}u;");
    let float = |v: f64| format!("{:?}f", v as f32);
    let _ = writeln!(s, "const CLAMP_MAX: f32 = {};", float(CLAMP_MAX));
    let _ = writeln!(s, "const SSIM_WIN: u32 = {}u;", ssim::WINDOW);
    let _ = writeln!(s, "const SSIM_HALF: u32 = {}u;", ssim::HALF);
    let _ = writeln!(s, "const SSIM_SIGMA: f32 = {};", float(ssim::SIGMA));
    let _ = writeln!(s, "const SSIM_C1: f32 = {};", float(ssim::C1));
    let _ = writeln!(s, "const SSIM_C2: f32 = {};", float(ssim::C2));
    s
}

/// A shader's whole text: the generated constants, the prelude, then `files` in order.
pub fn wgsl(files: &[&str]) -> String {
    let mut s = constants();
    s.push_str(PRELUDE);
    for f in files {
        s.push_str(f);
    }
    s
}
