//! The whole training job behind `lamp train` and `lamp demo`: hold out normal images, set up an
//! engine (`engine_for`, which the experiment runner uses too), train, calibrate the threshold on
//! the held-out images, and assemble the checkpoint.

use super::calibrate::{Calibration, ThresholdMethod};
use super::checkpoint::{to_json, Checkpoint, OptimizerState};
use super::score::score_with_maps;
use super::train::{self, EpochReport, Progress, TrainConfig};
use crate::data::{self, Dataset};
use crate::device::Device;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Arch, LossConfig};
use std::path::Path;
use std::sync::Arc;

/// Everything a training run is told. `Default` is the command line's defaults: fmnist-ae, MSE
/// with LAMP per element, 10 epochs of batch 64 with Adam at lr 1e-3, 10% held out, the 99th
/// percentile of held-out scores as threshold.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub arch: Arch,
    pub loss: LossConfig,
    pub train: TrainConfig,
    /// Fraction of the normal images held out to calibrate the threshold (0: calibrate on the
    /// training images themselves).
    pub val_split: f64,
    pub threshold: ThresholdMethod,
    pub contamination: f64,
    pub sigma_k: f64,
    pub log_every: usize,
    /// Largest training set (bytes) kept on the device; larger ones stream from host memory.
    pub device_data_limit: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            arch: Arch::fmnist_ae(),
            loss: LossConfig::default(),
            train: TrainConfig::default(),
            val_split: 0.1,
            threshold: ThresholdMethod::Quantile,
            contamination: 0.01,
            sigma_k: 3.0,
            log_every: 20,
            device_data_limit: 2048 << 20,
        }
    }
}

impl FitOptions {
    /// Checks every option that does not depend on the data.
    pub fn check(&self) -> Result<()> {
        self.arch.check()?;
        self.train.check(usize::MAX)?;
        if !(0.0..1.0).contains(&self.val_split) {
            return Err(Error::setting(
                "val_split",
                format!("must be in [0, 1), got {}", self.val_split),
            ));
        }
        Calibration::check(self.threshold, self.contamination, self.sigma_k)
    }
}

/// The checkpoint of the engine's current state: parameters, Adam's state, settings, history.
fn snapshot(
    e: &Engine,
    o: &FitOptions,
    reports: &[EpochReport],
    train_images: usize,
) -> Result<Checkpoint> {
    let (m, v) = e.read_moments()?;
    let mut ck = Checkpoint::new(o.arch.clone(), Some(o.loss), e.read_params()?);
    ck.optimizer = Some(OptimizerState {
        t: e.t,
        exp_avg: m,
        exp_avg_sq: v,
    });
    ck.metadata.insert("train".into(), to_json(&o.train)?);
    ck.metadata
        .insert("epochs_done".into(), reports.len().to_string());
    let untimed: Vec<EpochReport> = reports
        .iter()
        .map(|r| EpochReport {
            seconds: 0.0,
            images_per_s: 0.0,
            ..r.clone()
        })
        .collect();
    ck.metadata.insert("history".into(), to_json(&untimed)?);
    ck.metadata
        .insert("train_images".into(), train_images.to_string());
    Ok(ck)
}

/// Checks that `ck` can continue the run `o` describes, and returns its epoch history.
fn resumable(ck: &Checkpoint, o: &FitOptions) -> Result<Vec<EpochReport>> {
    let same = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "cannot resume: the checkpoint was trained with another {what}"
            )))
        }
    };
    same("architecture", ck.arch == o.arch)?;
    same("loss", ck.loss == Some(o.loss))?;
    let t: Option<TrainConfig> = ck.meta("train");
    let t =
        t.ok_or_else(|| Error::invalid("cannot resume: no training settings in the checkpoint"))?;
    // The batch size and seed fix the data order; the learning rate may change (fine-tuning),
    // though the result then differs from an uninterrupted run.
    same(
        "batch size or seed",
        t.batch == o.train.batch && t.seed == o.train.seed,
    )?;
    // The optimizer's state means something else to another optimizer.
    same("optimizer", t.optimizer == o.train.optimizer)?;
    if ck.optimizer.is_none() {
        return Err(Error::invalid(
            "cannot resume: the checkpoint has no optimizer state",
        ));
    }
    let history: Vec<EpochReport> = ck.meta("history").unwrap_or_default();
    if history.len() as u32 > o.train.epochs {
        return Err(Error::invalid(format!(
            "cannot resume: the checkpoint has {} epochs done, more than `epochs` {}",
            history.len(),
            o.train.epochs
        )));
    }
    Ok(history)
}

/// An engine ready to train `o.arch` with `o.loss` under `o.train`: `params` (and the
/// optimizer's `state` when resuming) uploaded, and `data` on the device when it takes at most
/// `o.device_data_limit` bytes, streamed from host memory otherwise.
pub fn engine_for(
    device: Arc<Device>,
    o: &FitOptions,
    params: &[f32],
    state: Option<&OptimizerState>,
    data: &Dataset,
) -> Result<Engine> {
    if data.shape != o.arch.input_shape() {
        return Err(Error::invalid(format!(
            "the training images are {:?} (C, H, W); {} takes {:?}",
            data.shape,
            o.arch.name,
            o.arch.input_shape()
        )));
    }
    let mut e = Engine::new(device, o.arch.clone(), o.loss, o.train.batch, params)?;
    if let Some(opt) = state {
        e.write_moments(&opt.exp_avg, &opt.exp_avg_sq);
        e.t = opt.t;
    }
    e.set_dataset(data.samples.clone(), data.len(), o.device_data_limit)?;
    Ok(e)
}

/// Trains (from scratch, or continuing `resume`) and calibrates; returns the final checkpoint
/// (not yet saved) and the epoch reports. With `checkpoint`, the state after every epoch is
/// written there atomically, so a killed run loses at most one epoch.
pub fn fit_on(
    device: Arc<Device>,
    data: &Dataset,
    o: &FitOptions,
    resume: Option<&Checkpoint>,
    checkpoint: Option<&Path>,
    progress: impl FnMut(Progress),
) -> Result<(Checkpoint, Vec<EpochReport>)> {
    o.check()?;
    let (tr, val) = data::split(data, o.val_split, o.train.seed)?;
    o.train.check(tr.len())?;
    let history = match resume {
        Some(ck) => resumable(ck, o)?,
        None => Vec::new(),
    };
    let params = match resume {
        Some(ck) => ck.params.clone(),
        None => o.arch.init(o.train.seed),
    };
    let state = resume.and_then(|c| c.optimizer.as_ref());
    let mut e = engine_for(device, o, &params, state, &tr)?;
    let n_train = tr.len();
    let reports = train::train(
        &mut e,
        &o.train,
        history,
        o.log_every,
        progress,
        |e, reports| match checkpoint {
            Some(path) => snapshot(e, o, reports, n_train)?.save(path),
            None => Ok(()),
        },
    )?;
    let (cal_set, source) = match &val {
        Some(v) => (v, "held-out"),
        None => (&tr, "training"),
    };
    let (scores, maps) = score_with_maps(&mut e, &cal_set.samples)?;
    let pixels: Vec<f32> = maps.into_iter().flatten().collect();
    let cal = Calibration::fit(
        &scores,
        &pixels,
        o.threshold,
        o.contamination,
        o.sigma_k,
        source,
    )?;
    let mut ck = snapshot(&e, o, &reports, n_train)?;
    ck.metadata.insert("calibration".into(), to_json(&cal)?);
    Ok((ck, reports))
}
