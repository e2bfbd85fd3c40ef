//! The whole training job behind `lamp train` and `lamp demo`: hold out normal images, train,
//! calibrate the threshold on the held-out images, and assemble the checkpoint and loss curve.

use crate::checkpoint::{to_json, Checkpoint, OptimizerState};
use crate::data::Dataset;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::eval::MAP_SIGMA;
use crate::gpu::Gpu;
use crate::kernels::{Kernels, LossConfig};
use crate::model::{Arch, SplitMix64};
use crate::plot::{self, Chart};
use crate::score::{self, Calibration, ThresholdMethod};
use crate::train::{self, EpochReport, Progress, TrainConfig};
use std::path::Path;
use std::sync::Arc;

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

/// Splits `d` into (train, held-out) by a seeded shuffle.
pub fn split(d: &Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Option<Dataset>)> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(Error::invalid(format!(
            "--val-split must be in [0, 1), got {fraction}"
        )));
    }
    let n = d.len();
    let held = ((n as f64 * fraction).round() as usize).min(n.saturating_sub(1));
    if held == 0 {
        return Ok((d.clone(), None));
    }
    let mut order: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed ^ 0x5EED_5EED).shuffle(&mut order);
    let (val, tr) = order.split_at(held);
    let mut tr = tr.to_vec();
    let mut val = val.to_vec();
    tr.sort_unstable();
    val.sort_unstable();
    let take = |idx: &[usize]| Dataset {
        samples: idx
            .iter()
            .flat_map(|&i| d.sample(i).iter().copied())
            .collect(),
        shape: d.shape,
        names: idx.iter().map(|&i| d.names[i].clone()).collect(),
        labels: d
            .labels
            .as_ref()
            .map(|l| idx.iter().map(|&i| l[i]).collect()),
    };
    Ok((take(&tr), Some(take(&val))))
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
    if ck.optimizer.is_none() {
        return Err(Error::invalid(
            "cannot resume: the checkpoint has no optimizer state",
        ));
    }
    let history: Vec<EpochReport> = ck.meta("history").unwrap_or_default();
    if history.len() as u32 > o.train.epochs {
        return Err(Error::invalid(format!(
            "cannot resume: the checkpoint has {} epochs done, more than --epochs {}",
            history.len(),
            o.train.epochs
        )));
    }
    Ok(history)
}

/// Trains (from scratch, or continuing `resume`) and calibrates; returns the final checkpoint
/// (not yet saved) and the epoch reports. With `checkpoint`, the state after every epoch is
/// written there atomically, so a killed run loses at most one epoch.
pub fn fit(
    gpu: Arc<Gpu>,
    kernels: Arc<Kernels>,
    data: &Dataset,
    o: &FitOptions,
    resume: Option<&Checkpoint>,
    checkpoint: Option<&Path>,
    progress: impl FnMut(Progress),
) -> Result<(Checkpoint, Vec<EpochReport>)> {
    let (tr, val) = split(data, o.val_split, o.train.seed)?;
    o.train.check(tr.len())?;
    let history = match resume {
        Some(ck) => resumable(ck, o)?,
        None => Vec::new(),
    };
    let params = match resume {
        Some(ck) => ck.params.clone(),
        None => o.arch.init(o.train.seed),
    };
    let mut e = Engine::new(gpu, kernels, o.arch.clone(), o.loss, o.train.batch, &params)?;
    if let Some(opt) = resume.and_then(|c| c.optimizer.as_ref()) {
        e.write_moments(&opt.exp_avg, &opt.exp_avg_sq);
        e.t = opt.t;
    }
    let n_train = tr.len();
    e.set_dataset(tr.samples.clone(), n_train, o.device_data_limit)?;
    let reports = train::train(
        &mut e,
        tr.len(),
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
    let (scores, recon) = score::score_with_recon(&mut e, &cal_set.samples)?;
    let (w, h) = (o.arch.size as usize, o.arch.size as usize);
    let p = cal_set.sample_len();
    let mut pixels = Vec::with_capacity(cal_set.len() * w * h);
    for i in 0..cal_set.len() {
        let m = score::pixel_map(
            o.loss.metric,
            o.arch.input_shape(),
            &cal_set.samples[i * p..][..p],
            &recon[i * p..][..p],
        );
        pixels.extend(score::smooth(&m, w, h, MAP_SIGMA));
    }
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

/// loss.csv and loss.png for the epoch reports.
pub fn loss_curve(reports: &[EpochReport]) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut csv = String::from("epoch,loss,clamps,seconds,images_per_s\n");
    for r in reports {
        csv += &format!(
            "{},{},{},{:.3},{:.1}\n",
            r.epoch, r.mean_loss, r.clamps, r.seconds, r.images_per_s
        );
    }
    let xs: Vec<f64> = reports.iter().map(|r| r.epoch as f64).collect();
    let ys: Vec<f64> = reports.iter().map(|r| r.mean_loss as f64).collect();
    let ymax = ys.iter().copied().fold(0.0, f64::max) * 1.05;
    let xmax = xs.last().copied().unwrap_or(1.0).max(2.0);
    let mut c = Chart::new(
        560,
        400,
        "training loss",
        "epoch",
        "loss",
        (1.0, xmax),
        (0.0, ymax.max(1e-9)),
    );
    c.polyline(&xs, &ys, plot::BLUE);
    for (&x, &y) in xs.iter().zip(&ys) {
        let (px, py) = c.to_px(x, y);
        plot::rect(&mut c.img, px - 2, py - 2, px + 2, py + 2, plot::BLUE);
    }
    Ok((csv.into_bytes(), score::png_bytes(&c.img)?))
}
