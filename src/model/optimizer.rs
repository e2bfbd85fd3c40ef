//! The optimizers' hyper-parameters (PyTorch's names and semantics). The step itself runs on the
//! device over the whole parameter arena (shaders/optimizer.wgsl); `reference.rs` has it in
//! closed form.

use super::Choice;
use serde::{Deserialize, Serialize};

/// Adam (β1 0.9, β2 0.999, ε 1e−8 by default, bias-corrected; weight decay as an L2 penalty).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// SGD with momentum (dampening 0, not Nesterov).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-2,
            momentum: 0.9,
            weight_decay: 0.0,
        }
    }
}

/// The optimizer of a run with all its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Adam(AdamConfig),
    Sgd(SgdConfig),
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::Adam(AdamConfig::default())
    }
}

impl Optimizer {
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Adam(a) => a.lr,
            Optimizer::Sgd(s) => s.lr,
        }
    }
    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Optimizer::Adam(a) => a.lr = lr,
            Optimizer::Sgd(s) => s.lr = lr,
        }
    }
    pub fn kind(&self) -> OptimizerKind {
        match self {
            Optimizer::Adam(_) => OptimizerKind::Adam,
            Optimizer::Sgd(_) => OptimizerKind::Sgd,
        }
    }
}

/// Which optimizer a run uses (stored in a checkpoint's training settings; the other
/// hyper-parameters are the defaults above).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[default]
    Adam,
    Sgd,
}

impl OptimizerKind {
    /// The optimizer with its default hyper-parameters and this learning rate.
    pub fn with_lr(self, lr: f64) -> Optimizer {
        match self {
            OptimizerKind::Adam => Optimizer::Adam(AdamConfig {
                lr,
                ..Default::default()
            }),
            OptimizerKind::Sgd => Optimizer::Sgd(SgdConfig {
                lr,
                ..Default::default()
            }),
        }
    }
    /// The usual learning rate: 1e−3 for Adam, 1e−2 for SGD.
    pub fn default_lr(self) -> f64 {
        match self {
            OptimizerKind::Adam => AdamConfig::default().lr,
            OptimizerKind::Sgd => SgdConfig::default().lr,
        }
    }
    pub fn is_adam(&self) -> bool {
        *self == OptimizerKind::Adam
    }
}

impl Choice for OptimizerKind {
    const ALL: &'static [Self] = &[OptimizerKind::Adam, OptimizerKind::Sgd];
    fn name(self) -> &'static str {
        match self {
            OptimizerKind::Adam => "adam",
            OptimizerKind::Sgd => "sgd",
        }
    }
}

/// How the learning rate changes over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The same rate at every step (what checkpoints without a schedule were trained with).
    #[default]
    Constant,
    /// Cosine decay from the rate to a hundredth of it over the run's steps.
    Cosine,
}

impl Schedule {
    /// The learning rate of step `step` (0-based) of `total`.
    pub fn lr_at(self, lr: f64, step: u64, total: u64) -> f64 {
        match self {
            Schedule::Constant => lr,
            Schedule::Cosine => {
                let floor = lr / 100.0;
                let p = (step as f64 / total.max(1) as f64).min(1.0);
                floor + (lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }
    pub fn is_constant(&self) -> bool {
        *self == Schedule::Constant
    }
}

impl Choice for Schedule {
    const ALL: &'static [Self] = &[Schedule::Constant, Schedule::Cosine];
    fn name(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Cosine => "cosine",
        }
    }
}
