//! The training core, shared by `fit` (train, demo) and the experiment runner: an engine set up
//! for a run, and the epoch loop. The loop shuffles the data set from the seed each epoch,
//! submits one command buffer per step without waiting, reads the loss statistics
//! asynchronously every few steps for progress and at each epoch's end, and stops on a
//! non-finite loss or gradient.

use super::checkpoint::OptimizerState;
use crate::data::Dataset;
use crate::device::Device;
use crate::engine::{Engine, Stats};
use crate::error::{Error, Result};
use crate::model::{Arch, LossConfig, OptimizerKind};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// Training settings, stored in the checkpoint's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: u32,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    /// Adam (the default, not written to checkpoints) or SGD with momentum 0.9.
    #[serde(default, skip_serializing_if = "OptimizerKind::is_adam")]
    pub optimizer: OptimizerKind,
}

impl Default for TrainConfig {
    /// 10 epochs of batch 64 with Adam at lr 1e-3, seed 0.
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch: 64,
            lr: 1e-3,
            seed: 0,
            optimizer: OptimizerKind::Adam,
        }
    }
}

impl TrainConfig {
    /// Checks the settings for a training set of `n` images (`usize::MAX`: before it is read).
    pub fn check(&self, n: usize) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::setting("epochs", "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(Error::setting("batch", "must be at least 1"));
        }
        if self.batch > n {
            return Err(Error::setting(
                "batch",
                format!(
                    "{} is larger than the training set ({n} images); use `batch` {n} or less",
                    self.batch
                ),
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::setting(
                "lr",
                format!("must be a positive number, got {}", self.lr),
            ));
        }
        Ok(())
    }
}

/// An engine ready to train `arch` with `loss` under `cfg`: `params` (and the optimizer's
/// `state` when resuming) uploaded, and `data` on the device when it takes at most
/// `device_data_limit` bytes, streamed from host memory otherwise.
#[allow(clippy::too_many_arguments)]
pub fn engine_for(
    device: Arc<Device>,
    arch: &Arch,
    loss: LossConfig,
    cfg: &TrainConfig,
    params: &[f32],
    state: Option<&OptimizerState>,
    data: &Dataset,
    device_data_limit: u64,
) -> Result<Engine> {
    let mut e = Engine::new(device, arch.clone(), loss, cfg.batch, params)?;
    if let Some(opt) = state {
        e.write_moments(&opt.exp_avg, &opt.exp_avg_sq);
        e.t = opt.t;
    }
    e.set_dataset(data.samples.clone(), data.len(), device_data_limit)?;
    Ok(e)
}

/// What happened in one epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: u32,
    pub mean_loss: f32,
    pub clamps: u64,
    /// Timings: left out of checkpoints (zero there), so that the same seed, data and device
    /// give identical checkpoint bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub images_per_s: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Progress events for whoever displays them.
pub enum Progress<'a> {
    Step {
        epoch: u32,
        step: usize,
        steps: usize,
        loss: f32,
        images_per_s: f64,
    },
    Epoch(&'a EpochReport),
}

/// The shuffled order of epoch `epoch` (0-based): a fresh SplitMix64 stream per (seed, epoch), so
/// a resumed run sees the same order.
pub fn epoch_order(seed: u64, epoch: u32, n: usize) -> Vec<u32> {
    let mut rng =
        SplitMix64::new(seed ^ (0xA076_1D64_78BD_642F_u64.wrapping_mul(epoch as u64 + 1)));
    let mut order: Vec<u32> = (0..n as u32).collect();
    rng.shuffle(&mut order);
    order
}

/// Trains on the engine's data set (`n` samples), epochs `first..cfg.epochs`,
/// after the epochs of `history`. `on_epoch` runs after each epoch with every report so far (to
/// write a checkpoint); training stops at its first error.
pub fn train(
    engine: &mut Engine,
    n: usize,
    cfg: &TrainConfig,
    history: Vec<EpochReport>,
    log_every: usize,
    mut progress: impl FnMut(Progress),
    mut on_epoch: impl FnMut(&Engine, &[EpochReport]) -> Result<()>,
) -> Result<Vec<EpochReport>> {
    cfg.check(n)?;
    engine.optimizer = cfg.optimizer.with_lr(cfg.lr);
    let steps = n.div_ceil(cfg.batch);
    let first_epoch = history.len() as u32;
    let mut reports = history;
    for epoch in first_epoch..cfg.epochs {
        let start = Instant::now();
        engine.reset_stats();
        engine.set_order(&epoch_order(cfg.seed, epoch, n))?;
        for s in 0..steps {
            let off = s * cfg.batch;
            engine.train_step(off, cfg.batch.min(n - off))?;
            if log_every > 0 && (s + 1) % log_every == 0 {
                engine.request_stats();
            }
            if let Some(st) = engine.poll_stats()? {
                check_finite(&st, epoch, s)?;
                let done = ((s + 1) * cfg.batch).min(n);
                progress(Progress::Step {
                    epoch,
                    step: s + 1,
                    steps,
                    loss: st.mean_loss,
                    images_per_s: done as f64 / start.elapsed().as_secs_f64(),
                });
            }
        }
        let st = engine.wait_stats()?;
        check_finite(&st, epoch, steps)?;
        let seconds = start.elapsed().as_secs_f64();
        let r = EpochReport {
            epoch: epoch + 1,
            mean_loss: st.mean_loss,
            clamps: st.clamps_total,
            seconds,
            images_per_s: n as f64 / seconds,
        };
        progress(Progress::Epoch(&r));
        reports.push(r);
        on_epoch(engine, &reports)?;
    }
    Ok(reports)
}

fn check_finite(st: &Stats, epoch: u32, step: usize) -> Result<()> {
    if st.nonfinite || !st.mean_loss.is_finite() {
        return Err(Error::NonFinite(format!(
            "the loss or a gradient became non-finite in epoch {} by step {step}; \
             lower the learning rate (`lr`) or check the input data",
            epoch + 1
        )));
    }
    Ok(())
}
