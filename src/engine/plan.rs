//! A step plan: every dispatch of a training or scoring step for one batch size, built once.
//! The data path of a training step reads top to bottom: gather the batch, each layer's forward,
//! the fused loss, each layer's backward in reverse order, then the optimizer (its dispatch is
//! the engine's, shared by every plan).

use super::layout::ActLayout;
use crate::device::Device;
use crate::error::Result;
use crate::kernels::{layer, Dispatch, GemmCore, LossSpec, SplitK};
use crate::model::{Arch, LossConfig, ParamTable};

/// The dispatches for one batch size.
pub(crate) struct Plan {
    pub gather: Vec<Dispatch>,
    pub forward: Vec<Dispatch>,
    /// The loss with its gradient (training).
    pub loss: Vec<Dispatch>,
    /// The loss without gradient (scoring: plain errors and the loss only).
    pub score_loss: Vec<Dispatch>,
    pub backward: Vec<Dispatch>,
}

/// What a plan is built from.
pub(crate) struct PlanInputs<'a> {
    pub dev: &'a Device,
    pub arch: &'a Arch,
    pub table: &'a ParamTable,
    pub layout: &'a ActLayout,
    pub loss: LossConfig,
    pub max_batch: usize,
}

impl Plan {
    pub fn build(p: &PlanInputs, batch: usize, gather: Vec<Dispatch>) -> Result<Plan> {
        let dev = p.dev;
        let b = batch as u32;
        let layers = p.arch.layers();
        let n = layers.len();
        // Split-K where the device's policy says (GPUs: long reductions with few outputs).
        let (split, core) = (SplitK::for_device(dev), GemmCore::best(dev));
        let partials = p.layout.partials as u32;
        let mut forward = Vec::new();
        for (li, l) in layers.iter().enumerate() {
            let o = p.layout.layer(p.table, &layers, li);
            forward.extend(
                layer::forward(l, b, &o)
                    .with_split_k(partials, split, core)
                    .dispatches(dev, &format!("{} forward", l.name))?,
            );
        }
        // Training compares the reconstruction with the targets; scoring with the inputs.
        let spec = |grad: bool| LossSpec {
            loss: p.loss,
            batch: b,
            stats_batch: p.max_batch as u32,
            shape: p.arch.input_shape(),
            x_off: if grad { p.layout.target } else { p.layout.x } as u32,
            y_off: p.layout.h[n - 1] as u32,
            dz_off: p.layout.dz[n - 1] as u32,
            scratch_off: p.layout.scratch as u32,
            grad,
            output_act: layers[n - 1].act,
        };
        let loss = spec(true).dispatches(dev)?;
        let score_loss = spec(false).dispatches(dev)?;
        let mut backward = Vec::new();
        for li in (0..n).rev() {
            let l = &layers[li];
            let o = p.layout.layer(p.table, &layers, li);
            backward.extend(
                layer::weight_grad(l, b, &o)
                    .with_split_k(partials, split, core)
                    .dispatches(dev, &format!("{} weight grad", l.name))?,
            );
            backward.extend(
                layer::bias_grad(l, b, &o)
                    .with_split(partials, split)
                    .dispatches(dev, &format!("{} bias grad", l.name))?,
            );
            if li > 0 {
                let below = layers[li - 1].act;
                let dz_below = p.layout.dz[li - 1] as u32;
                let spec = layer::input_grad(l, b, &o, dz_below, below);
                backward.extend(
                    spec.with_split_k(partials, split, core)
                        .dispatches(dev, &format!("{} input grad", l.name))?,
                );
            }
        }
        Ok(Plan {
            gather,
            forward,
            loss,
            score_loss,
            backward,
        })
    }

    /// Dispatches of one training step, the optimizer's included.
    pub fn step_dispatches(&self) -> usize {
        self.gather.len() + self.forward.len() + self.loss.len() + self.backward.len() + 1
    }
}
