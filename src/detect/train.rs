//! The epoch loop, the training core shared by `fit` (train, demo) and the experiment runner
//! (each sets its engine up with `fit::engine_for`). It shuffles the data set from the seed each
//! epoch, submits its steps without waiting (several to a command buffer, up to the engine's
//! `steps_per_submit`, a group ending where progress is logged), reads the loss statistics
//! asynchronously every few steps for progress and at each epoch's end, and stops on a
//! non-finite loss or gradient.

use crate::engine::{Engine, Stats, TrainStep};
use crate::error::{Error, Result};
use crate::kernels::View;
use crate::model::{Init, OptimizerKind, Schedule};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Instant;

/// Training settings, stored in the checkpoint's metadata (with `batch` and `epochs` as they
/// were resolved for the run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: u32,
    /// Images per step; 0: the largest up to `AUTO_BATCH` that the device and the training set
    /// allow.
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    /// Adam (the default, not written to checkpoints) or SGD with momentum 0.9.
    #[serde(default, skip_serializing_if = "OptimizerKind::is_adam")]
    pub optimizer: OptimizerKind,
    /// The learning rate over the run (constant when a checkpoint does not say).
    #[serde(default, skip_serializing_if = "Schedule::is_constant")]
    pub schedule: Schedule,
    /// Each sample flipped and rotated by one of the 8 flips and 90° rotations, drawn from the
    /// seed (for textures; objects have an up and a down).
    #[serde(default, skip_serializing_if = "is_false")]
    pub augment: bool,
    /// Train to remove synthetic defects: half the samples get a rectangle of one random grey
    /// level pasted into the input, while the loss compares the reconstruction with the clean
    /// sample. The model learns to restore what is not normal, so real defects reconstruct
    /// badly, including flat ones a plain autoencoder would copy.
    #[serde(default, skip_serializing_if = "is_false")]
    pub denoise: bool,
    /// How the initial weights were drawn from `seed`; None: the model's default
    /// (`Init::default_for`), settled before training, so a checkpoint says which. Checkpoints
    /// from before the choice have none: theirs was PyTorch's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<Init>,
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// The largest batch chosen when none is given.
pub const AUTO_BATCH: usize = 64;

impl Default for TrainConfig {
    /// 10 epochs (at least; see `FitOptions::min_steps`) of the automatic batch with Adam at
    /// lr 1e-3 decaying on a cosine, seed 0.
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch: 0,
            lr: 1e-3,
            seed: 0,
            optimizer: OptimizerKind::Adam,
            schedule: Schedule::Cosine,
            augment: false,
            denoise: false,
            init: None,
        }
    }
}

impl TrainConfig {
    /// Checks the settings for a training set of `n` images (`usize::MAX`: before it is read).
    pub fn check(&self, n: usize) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::setting("epochs", "must be at least 1"));
        }
        if n == 0 {
            return Err(Error::invalid(
                "the training set is empty: no images to train on (check the class or folder)",
            ));
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
    /// The mean plain error of the held-out normal images after the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out_error: Option<f32>,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Progress events for whoever displays them; `epochs` is the run's total.
pub enum Progress<'a> {
    Step {
        epoch: u32,
        epochs: u32,
        step: usize,
        steps: usize,
        loss: f32,
        images_per_s: f64,
    },
    Epoch {
        report: &'a EpochReport,
        epochs: u32,
    },
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

/// The samples of epoch `epoch` (0-based): the images in `epoch_order`, each as a window of
/// `out` pixels at a position drawn from the seed (the whole image where `side` = `out`), with a
/// flip or rotation drawn too when `cfg.augment`, and a synthetic defect in half of them when
/// `cfg.denoise`. Whole images without either are the plain order, as before views existed.
pub fn epoch_views(cfg: &TrainConfig, epoch: u32, n: usize, side: u32, out: u32) -> Vec<View> {
    let (seed, augment) = (cfg.seed, cfg.augment);
    let order = epoch_order(seed, epoch, n);
    let mut defects =
        SplitMix64::new(seed ^ 0x00DE_FEC7 ^ (epoch as u64).wrapping_mul(0x2545_F491));
    let mut rng =
        SplitMix64::new(seed ^ 0xD1B5_4A32_D192_ED03 ^ (epoch as u64).wrapping_mul(0x9E37_79B9));
    let span = (side - out.min(side)) as u64 + 1;
    order
        .into_iter()
        .map(|image| {
            let mut v = View::whole(image);
            if span > 1 {
                v.y0 = rng.below(span) as u32;
                v.x0 = rng.below(span) as u32;
            }
            if augment {
                v.op = rng.below(8) as u32;
            }
            if cfg.denoise && defects.next_f64() < 0.5 {
                v = with_synthetic_defect(v, out, &mut defects);
            }
            v
        })
        .collect()
}

/// `v` with a rectangle of the window, 1 to `out`/2 pixels high and wide (from lines to
/// blotches), set to a grey level uniform in [0, 1].
fn with_synthetic_defect(v: View, out: u32, rng: &mut SplitMix64) -> View {
    let max = (out / 2).max(1) as u64;
    let (h, w) = (1 + rng.below(max) as u32, 1 + rng.below(max) as u32);
    let y0 = rng.below((out - h + 1) as u64) as u32;
    let x0 = rng.below((out - w + 1) as u64) as u32;
    v.with_defect((y0, y0 + h), (x0, x0 + w), rng.next_f64() as f32)
}

/// Set (to the signal's number) from a signal handler to stop training before the next group of
/// steps is submitted (steps already submitted finish): `train` then returns
/// `Error::Interrupted` (`fit_on` then writes the last whole epoch's snapshot).
pub static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// An epoch whose mean loss is this many times the run's best has diverged (a learning rate far
/// too high: 0.03 → 1.12 in a few epochs, weights at 1e5, and no NaN to stop it).
pub const DIVERGED_RATIO: f32 = 10.0;

/// ...and is above this fraction of the first epoch's: a rise from 1e-6 to 1e-5 on a model
/// that has all but converged is noise, not divergence.
pub const DIVERGED_FLOOR: f32 = 0.1;

/// Trains on the engine's data set, epochs `first..cfg.epochs`, after the epochs of `history`,
/// with the learning rate of `cfg.schedule` at each step. After each epoch the `held_out`
/// samples (if any) are scored, and `on_epoch` runs with every report so far (to write a
/// checkpoint); training stops at its first error.
pub fn train(
    engine: &mut Engine,
    cfg: &TrainConfig,
    history: Vec<EpochReport>,
    log_every: usize,
    held_out: Option<&[f32]>,
    mut progress: impl FnMut(Progress),
    mut on_epoch: impl FnMut(&Engine, &[EpochReport]) -> Result<()>,
) -> Result<Vec<EpochReport>> {
    let n = engine
        .data_len()
        .ok_or_else(|| Error::invalid("no training set on the engine"))?;
    let side = engine.data_side().unwrap_or(engine.arch.size);
    cfg.check(n)?;
    if cfg.batch == 0 {
        return Err(Error::invalid(
            "the batch size must be resolved before training",
        ));
    }
    engine.optimizer = cfg.optimizer.with_lr(cfg.lr);
    let steps = n.div_ceil(cfg.batch);
    let total_steps = steps as u64 * cfg.epochs as u64;
    let first_epoch = history.len() as u32;
    let mut reports = history;
    for epoch in first_epoch..cfg.epochs {
        let start = Instant::now();
        engine.reset_stats();
        let out = engine.arch.size;
        engine.set_epoch(&epoch_views(cfg, epoch, n, side, out))?;
        let mut s = 0;
        while s < steps {
            let signal = STOP_SIGNAL.load(Ordering::Relaxed);
            if signal != 0 {
                return Err(Error::Interrupted {
                    signal,
                    epochs_done: epoch,
                    unsaved: None,
                });
            }
            // A group of steps in one submit, ending where the log asks for statistics.
            let mut end = (s + engine.steps_per_submit()).min(steps);
            // (None where no log is kept: log_every 0.)
            if let Some(k) = s.checked_div(log_every) {
                end = end.min((k + 1) * log_every);
            }
            let t0 = engine.t as u64;
            let group: Vec<TrainStep> = (s..end)
                .map(|i| {
                    let offset = i * cfg.batch;
                    TrainStep {
                        offset,
                        batch: cfg.batch.min(n - offset),
                        lr: cfg.schedule.lr_at(cfg.lr, t0 + (i - s) as u64, total_steps),
                    }
                })
                .collect();
            engine.train_steps(&group)?;
            s = end;
            if log_every > 0 && s % log_every == 0 {
                engine.request_stats();
            }
            if let Some(st) = engine.poll_stats()? {
                check_finite(&st, epoch, s)?;
                let done = (s * cfg.batch).min(n);
                progress(Progress::Step {
                    epoch,
                    epochs: cfg.epochs,
                    step: s,
                    steps,
                    loss: st.mean_loss,
                    images_per_s: done as f64 / start.elapsed().as_secs_f64(),
                });
            }
        }
        let st = engine.wait_stats()?;
        check_finite(&st, epoch, steps)?;
        let seconds = start.elapsed().as_secs_f64();
        // After the epoch's statistics are read: scoring runs the loss kernel too.
        let held_out_error = match held_out {
            Some(x) => Some(mean(&engine.score(x)?)),
            None => None,
        };
        let r = EpochReport {
            epoch: epoch + 1,
            mean_loss: st.mean_loss,
            clamps: st.clamps_total,
            seconds,
            images_per_s: n as f64 / seconds,
            held_out_error,
        };
        progress(Progress::Epoch {
            report: &r,
            epochs: cfg.epochs,
        });
        // Before the snapshot: a diverged epoch never replaces the last good one.
        if r.held_out_error.is_some_and(|e| !e.is_finite()) {
            return Err(Error::NonFinite(format!(
                "the held-out error became non-finite after epoch {}: the last steps left the \
                 weights non-finite; lower the learning rate (`lr`)",
                r.epoch
            )));
        }
        check_diverged(&reports, &r)?;
        reports.push(r);
        on_epoch(engine, &reports)?;
    }
    Ok(reports)
}

/// The mean of `v`, summed in f64.
pub fn mean(v: &[f32]) -> f32 {
    (v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64) as f32
}

fn check_diverged(before: &[EpochReport], r: &EpochReport) -> Result<()> {
    let Some(best) = before
        .iter()
        .min_by(|a, b| a.mean_loss.total_cmp(&b.mean_loss))
    else {
        return Ok(());
    };
    let first = before[0].mean_loss;
    let risen =
        r.mean_loss > DIVERGED_RATIO * best.mean_loss && r.mean_loss > DIVERGED_FLOOR * first;
    if best.mean_loss > 0.0 && risen {
        return Err(Error::NonFinite(format!(
            "training diverged: epoch {}'s mean loss {:.6} is {:.0} times the best so far ({:.6}, \
             epoch {}); lower the learning rate (`lr`)",
            r.epoch,
            r.mean_loss,
            r.mean_loss / best.mean_loss,
            best.mean_loss,
            best.epoch
        )));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: u32, mean_loss: f32) -> EpochReport {
        EpochReport {
            epoch,
            mean_loss,
            clamps: 0,
            seconds: 0.0,
            images_per_s: 0.0,
            held_out_error: None,
        }
    }

    #[test]
    fn divergence_is_a_rise_far_above_the_best_and_back_towards_the_start() {
        let run = [epoch(1, 0.03), epoch(2, 0.004), epoch(3, 0.001)];
        // A learning rate far too high: back above the first epoch's loss.
        assert!(check_diverged(&run, &epoch(4, 1.12)).is_err());
        assert!(check_diverged(&run, &epoch(4, 0.011)).is_err());
        // Within 10 times the best, or far below where the run started: not divergence.
        assert!(check_diverged(&run, &epoch(4, 0.009)).is_ok());
        let converged = [epoch(1, 0.03), epoch(359, 1e-6)];
        assert!(check_diverged(&converged, &epoch(368, 1.4e-5)).is_ok());
    }
}
