//! Launches of optimizer.wgsl: one Adam or SGD-with-momentum step over the whole parameter
//! arena. The step's scalars travel in the step uniform (`prelude::StepUniform`).

use super::prelude::wgsl;
use super::{strided_groups, Dispatch};
use crate::device::{Constants, Device, Group1, ShaderSource};
use crate::error::Result;
use crate::model::OptimizerKind;

pub static OPTIMIZER: ShaderSource = ShaderSource {
    files: "shaders/optimizer.wgsl",
    text: || wgsl(&[include_str!("../../shaders/optimizer.wgsl")]),
    group1: Group1::Optimizer,
};

/// Mirror of optimizer.wgsl's overrides, and which entry point.
#[derive(Clone, Debug)]
pub struct OptimizerSpec {
    pub kind: OptimizerKind,
    /// Parameters in the arena.
    pub count: u32,
}

impl OptimizerSpec {
    pub fn constants(&self) -> Constants {
        vec![("COUNT", self.count as f64)]
    }
    fn entry(&self) -> &'static str {
        match self.kind {
            OptimizerKind::Adam => "main",
            OptimizerKind::Sgd => "sgd",
        }
    }
    /// The launch with its state's bind group (Adam's moments, or SGD's momentum buffer first).
    pub fn dispatch(&self, dev: &Device, state: wgpu::BindGroup) -> Result<Dispatch> {
        Ok(Dispatch {
            label: if self.kind.is_adam() { "adam" } else { "sgd" }.into(),
            pipeline: dev.pipeline(&OPTIMIZER, self.entry(), &self.constants())?,
            group1: Some(state),
            groups: strided_groups(u64::from(self.count).div_ceil(4)),
            flops: 0.0,
        })
    }
}
