//! A step plan: every dispatch of a training or scoring step for one batch size, built once.
//! The data path of a training step reads top to bottom: gather the batch, each layer's forward,
//! the fused loss, each layer's backward in reverse order, then the optimizer (its dispatch is
//! the engine's, shared by every plan). The training half (loss with gradient, backward) is
//! built the first time a step needs it: scoring never compiles it, which halves the start-up of
//! `lamp score` (pipelines are most of it on lavapipe; BENCHMARKS.md).

use super::layout::ActLayout;
use crate::device::Device;
use crate::error::Result;
use crate::kernels::{layer, Dispatch, GemmCore, LossSpec, SplitK};
use crate::model::{Arch, LossConfig, ParamTable};

/// The dispatches for one batch size.
pub(crate) struct Plan {
    pub gather: Vec<Dispatch>,
    pub forward: Vec<Dispatch>,
    /// The loss without gradient (scoring: plain errors and the loss only).
    pub score_loss: Vec<Dispatch>,
    /// The loss with its gradient and the backward pass, once a training step asked for them.
    pub training: Option<Backprop>,
}

/// The training half of a plan.
pub(crate) struct Backprop {
    /// The loss with its gradient.
    pub loss: Vec<Dispatch>,
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
    /// The weights packed for the vec4 GEMMs, before each forward pass (where any are).
    pub pack: Option<&'a Dispatch>,
}

impl Plan {
    /// The scoring half: gather, forward and the loss without gradient.
    pub fn build(p: &PlanInputs, batch: usize, gather: Vec<Dispatch>) -> Result<Plan> {
        let dev = p.dev;
        let b = batch as u32;
        let layers = p.arch.layers();
        // Split-K where the device's policy says (GPUs: long reductions with few outputs).
        let (split, core) = (SplitK::for_device(dev), GemmCore::best(dev));
        let partials = p.layout.partials as u32;
        // The optimizer changed the weights since the last pass: pack them first.
        let mut forward: Vec<Dispatch> = p.pack.into_iter().cloned().collect();
        let indices: Vec<usize> = (0..layers.len()).collect();
        for d in in_parallel(&indices, |&li| {
            let l = &layers[li];
            let o = p.layout.layer(p.table, &layers, li);
            layer::forward(l, b, &o)
                .with_split_k(partials, split, core)
                .dispatches(dev, &format!("{} forward", l.name))
        })? {
            forward.extend(d);
        }
        Ok(Plan {
            gather,
            forward,
            score_loss: loss_spec(p, b, false).dispatches(dev)?,
            training: None,
        })
    }

    /// The training half: the loss with its gradient and each layer's backward, last layer
    /// first.
    pub fn backprop(p: &PlanInputs, batch: usize) -> Result<Backprop> {
        let dev = p.dev;
        let b = batch as u32;
        let layers = p.arch.layers();
        let n = layers.len();
        let (split, core) = (SplitK::for_device(dev), GemmCore::best(dev));
        let partials = p.layout.partials as u32;
        let mut backward = Vec::new();
        let last_first: Vec<usize> = (0..n).rev().collect();
        for d in in_parallel(&last_first, |&li| {
            let l = &layers[li];
            let o = p.layout.layer(p.table, &layers, li);
            let mut d = layer::weight_grad(l, b, &o)
                .with_split_k(partials, split, core)
                .dispatches(dev, &format!("{} weight grad", l.name))?;
            d.extend(
                layer::bias_grad(l, b, &o)
                    .with_split(partials, split)
                    .dispatches(dev, &format!("{} bias grad", l.name))?,
            );
            if li > 0 {
                let below = layers[li - 1].act;
                let dz_below = p.layout.dz[li - 1] as u32;
                let spec = layer::input_grad(l, b, &o, dz_below, below);
                d.extend(
                    spec.with_split_k(partials, split, core)
                        .dispatches(dev, &format!("{} input grad", l.name))?,
                );
            }
            Ok(d)
        })? {
            backward.extend(d);
        }
        Ok(Backprop {
            loss: loss_spec(p, b, true).dispatches(dev)?,
            backward,
        })
    }

    /// Dispatches of one training step, the optimizer's included (the training half built).
    pub fn step_dispatches(&self) -> usize {
        let t = self.training.as_ref();
        self.gather.len()
            + self.forward.len()
            + t.map_or(0, |t| t.loss.len() + t.backward.len())
            + 1
    }
}

/// The fused loss of a batch of `b`: training compares the reconstruction with the targets (and
/// writes the gradient), scoring with the inputs.
fn loss_spec(p: &PlanInputs, b: u32, grad: bool) -> LossSpec {
    let layers = p.arch.layers();
    let n = layers.len();
    LossSpec {
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
    }
}

/// `f` of each item, in order, computed on up to `available_parallelism` threads (at most 4).
/// Building a plan is mostly compiling pipelines, which a CPU device (lavapipe) does on the
/// calling thread, so the layers' launches are compiled side by side (BENCHMARKS.md). The
/// registry's map of pipelines is locked only around lookups and inserts (its shader modules,
/// created once each, one at a time; two threads may both compile a pipeline that two layers
/// share, which costs time, not correctness); wgpu's error scopes are per thread.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(items.len().max(1));
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    let mut out: Vec<Option<Result<R>>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    // Thread t takes items t, t + threads, ...: neighbours (similar sizes) spread.
                    (t..items.len())
                        .step_by(threads)
                        .map(|i| (i, f(&items[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for w in workers {
            // A panic in a worker is a bug: let it surface as one.
            for (i, r) in w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                out[i] = Some(r);
            }
        }
    });
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| unreachable!("every item was computed")))
        .collect()
}
