//! The whole training job behind `lamp train` and `lamp demo`: hold out normal images, set up an
//! engine (`engine_for`, which the experiment runner uses too), train, calibrate the threshold on
//! the held-out images, and assemble the checkpoint.

use super::align::{self, Alignment};
use super::baseline::mean_image;
use super::calibrate::{calibrate_on, Calibration, NormalFrom, ThresholdMethod};
use super::checkpoint::{to_json, Checkpoint, OptimizerState, Patches};
use super::score::{window_stride, Aggregate, ScoreConfig};
use super::snapshots::Snapshots;
use super::train::{self, EpochReport, Progress, TrainConfig, AUTO_BATCH};
use crate::data::{self, Dataset};
use crate::device::Device;
use crate::engine::{fitting_batch_with, Engine};
use crate::error::{Error, Result};
use crate::kernels::View;
use crate::model::{loss::sample_error, Arch, Choice, Init, LossConfig};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Everything a training run is told. `Default` is the command line's defaults: fmnist-ae, MSE
/// without amplification, Adam at lr 1e-3 on a cosine schedule for 10 epochs and at least 500
/// steps, the largest batch up to 64 that fits, 10% held out, the 99th percentile of held-out
/// scores as threshold, images scored by their plain error.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub arch: Arch,
    pub loss: LossConfig,
    /// The run; `batch` 0 is chosen (`AUTO_BATCH` at most), `epochs` raised to `min_steps`.
    pub train: TrainConfig,
    /// At least this many optimizer steps: a small set gets more epochs (0: exactly `epochs`).
    pub min_steps: u32,
    /// Fraction of the normal images held out to calibrate the threshold (0: calibrate on the
    /// training images themselves).
    pub val_split: f64,
    pub threshold: ThresholdMethod,
    pub contamination: f64,
    pub sigma_k: f64,
    pub log_every: usize,
    /// Largest training set (bytes) kept on the device; larger ones stream from host memory.
    pub device_data_limit: u64,
    /// How an image's score is made from its error and map (the maps' smoothing follows the
    /// model's size).
    pub aggregate: Aggregate,
    pub top_k: f64,
    /// Count maps above the normal map of the calibration images (whole images), or against
    /// their edge profile (patches, whose windows need not line up: edges.rs).
    pub normal_map: bool,
    /// Align the images to the training images' reference by shifts of up to this many pixels
    /// each way (align.rs; whole images only); 0: not aligned.
    pub align: u32,
    /// Snapshots between epochs (with a checkpoint path): after the first epoch, then at most one
    /// per this interval (zero: after every epoch). A run stopped by a signal, a NaN or
    /// divergence still writes its last whole epoch; only a killed process loses more than the
    /// epoch in flight: at most this much training and that epoch.
    pub snapshot_every: Duration,
    /// Extra checkpoint metadata (the command line's data and recipe), written into every
    /// snapshot as well as the final model, so that an interrupted run's snapshot says what it
    /// was trained on and how to continue it.
    pub metadata: std::collections::BTreeMap<String, String>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            arch: Arch::fmnist_ae(),
            loss: LossConfig::default(),
            train: TrainConfig::default(),
            min_steps: 500,
            val_split: 0.1,
            threshold: ThresholdMethod::Quantile,
            contamination: 0.01,
            sigma_k: 3.0,
            log_every: 20,
            device_data_limit: 2048 << 20,
            aggregate: Aggregate::Mean,
            top_k: ScoreConfig::default().top_k,
            normal_map: true,
            align: 0,
            snapshot_every: Duration::from_secs(60),
            metadata: Default::default(),
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
        self.score(self.arch.size).check()?;
        Calibration::check(self.threshold, self.contamination, self.sigma_k)
    }

    /// How the trained model scores images of `side` pixels.
    pub fn score(&self, side: u32) -> ScoreConfig {
        ScoreConfig {
            aggregate: self.aggregate,
            top_k: self.top_k,
            sigma: ScoreConfig::sigma_for(side),
            align: self.align,
        }
    }

    /// These options with the batch and the number of epochs settled for `n` training images on
    /// `device`: the largest batch up to `AUTO_BATCH` that both hold, and enough epochs for
    /// `min_steps` steps, and the model's initial weights where none were asked for.
    pub fn resolved(&self, device: &Device, n: usize) -> FitOptions {
        let mut o = self.clone();
        if o.train.batch == 0 {
            let want = AUTO_BATCH.min(n);
            let fits = fitting_batch_with(device, &o.arch, o.loss, want, o.train.denoise);
            o.train.batch = fits.max(1);
        }
        o.train.init = Some(o.train.init.unwrap_or(Init::default_for(&o.arch)));
        let steps = n.div_ceil(o.train.batch.max(1)) as u32;
        o.train.epochs = o.train.epochs.max(self.min_steps.div_ceil(steps.max(1)));
        o
    }
}

/// How the trained model reconstructs normal images it has not seen, against the model-free
/// baseline (each image's error against the mean training image), stored in the checkpoint
/// (metadata key `held_out`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    pub images: usize,
    /// Measured on the training images: none were held out (a set too small for the split).
    #[serde(default)]
    pub on_training: bool,
    /// Mean plain error of the model.
    pub model_error: f64,
    /// Mean error of the mean training image.
    pub mean_image_error: f64,
}

impl HeldOut {
    /// A model whose error is above this fraction of the mean image's has learnt little more
    /// than the mean: it sits on the mean-image plateau.
    pub const PLATEAU: f64 = 0.8;

    /// Which normal images the check ran on: "held-out" or "training".
    pub fn source(&self) -> &'static str {
        if self.on_training {
            "training"
        } else {
            "held-out"
        }
    }

    /// Those images, for a sentence: "held-out normal images" or "its training images".
    pub fn images(&self) -> &'static str {
        if self.on_training {
            "its training images"
        } else {
            "held-out normal images"
        }
    }

    pub fn ratio(&self) -> f64 {
        self.model_error / self.mean_image_error.max(f64::MIN_POSITIVE)
    }
    /// The model's error as a share of the mean image's, for people: "8%", or "no share" where
    /// the mean image makes no error (identical images) and a percentage would mean nothing.
    pub fn share(&self) -> String {
        match self.mean_image_error > 0.0 {
            true => format!("{:.0}%", 100.0 * self.ratio()),
            false => "the images are all alike: no share".into(),
        }
    }
    /// Also true where the ratio is not a number (a model that made no finite error).
    pub fn on_plateau(&self) -> bool {
        let r = self.ratio();
        r.is_nan() || r > Self::PLATEAU
    }
}

/// What a trained checkpoint should make its user wary of: a threshold from too few images, a
/// model no better than the mean image. Empty for a sound run.
pub fn warnings(ck: &Checkpoint) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(c) = ck.meta::<Calibration>("calibration") {
        if c.count < MIN_CALIBRATION_IMAGES {
            // Holding out more helps where the set has enough images to hold out that many
            // and keep half to train on.
            let held = if c.source == "held-out" { c.count } else { 0 };
            let images = ck.meta::<usize>("train_images").map(|n| n + held);
            let can_hold_out = images
                .is_none_or(|n| crate::data::enough_split(n, MIN_CALIBRATION_IMAGES).is_some());
            let what = match c.source.as_str() {
                "held-out" | "training" if can_hold_out => {
                    "hold out more (`val_split`), or recalibrate on more normal images with \
                     `lamp calibrate`"
                }
                "held-out" | "training" => {
                    "recalibrate on more normal images with `lamp calibrate` (too few images \
                     to hold out more)"
                }
                _ => "recalibrate on more normal images",
            };
            w.push(format!(
                "the threshold comes from only {} (fewer than {MIN_CALIBRATION_IMAGES} make it \
                 unreliable): {what}",
                c.images()
            ));
        }
    }
    // (Where the images are all alike, the mean image is perfect and no model can beat it.)
    let held_out = ck.meta::<HeldOut>("held_out");
    if let Some(h) = held_out.filter(|h| h.mean_image_error > 0.0) {
        if h.ratio() > DIVERGED_HELD_OUT {
            // Worse than a constant image: the step blew the model out of range (a learning
            // rate far too high saturates the output within the first epoch, with no NaN).
            w.push(format!(
                "the model reconstructs {} far worse than their mean image \
                 does (error {:.5} against {:.5}, {}): training diverged, saturated or barely \
                 started. If the loss did not fall from epoch to epoch, lower the learning rate \
                 (`lr`); else train longer (`min_steps`)",
                h.images(),
                h.model_error,
                h.mean_image_error,
                h.share()
            ));
        } else if h.on_plateau() {
            // Patches only where there is an image to cut them from (not fmnist-ae's 28 px).
            let patched = ck.meta::<Patches>("patch").is_some();
            let patches = match ck.arch.name.as_str() {
                "conv-ae" if !patched => ", or train on patches (`patch`)",
                _ => "",
            };
            w.push(format!(
                "the model reconstructs {} no better than their mean image \
                 does (error {:.5} against {:.5}, {}): it has learnt little beyond the mean, \
                 and will score anomalies much as the mean image would. Train longer \
                 (`min_steps`) or try another learning rate (`lr`){patches}",
                h.images(),
                h.model_error,
                h.mean_image_error,
                h.share()
            ));
        }
    }
    w
}

/// A held-out error above this multiple of the mean image's says training diverged.
pub const DIVERGED_HELD_OUT: f64 = 1.5;

/// Fewer calibration images than this get a warning.
pub const MIN_CALIBRATION_IMAGES: usize = 20;

/// The checkpoint of the engine's current state: parameters, Adam's state, settings, history.
fn snapshot(
    e: &Engine,
    o: &FitOptions,
    reports: &[EpochReport],
    train_images: usize,
) -> Result<Checkpoint> {
    let (m, v) = e.read_moments()?;
    let mut ck = Checkpoint::new(o.arch.clone(), Some(o.loss), e.read_params()?);
    // A resumed run must align as this one did (the reference comes again from the same split).
    if o.align > 0 {
        ck.metadata.insert("align".into(), o.align.to_string());
    }
    ck.optimizer = Some(OptimizerState {
        t: e.t,
        exp_avg: m,
        exp_avg_sq: v,
    });
    ck.metadata.extend(o.metadata.clone());
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

/// The initial weights the run of `ck` started from (PyTorch's for checkpoints from before the
/// choice), which a resumed or further-trained run keeps; `asked`, where given, must be those.
fn started_from(ck: &Checkpoint, asked: Option<Init>) -> Result<Init> {
    let had = ck.started_init();
    match asked {
        Some(a) if a != had => Err(Error::setting(
            "init",
            format!(
                "{}: the model's weights started from {} ones and go on from where they are \
                 (leave --init out)",
                a.name(),
                had.name()
            ),
        )),
        _ => Ok(had),
    }
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
    let aligned: u32 = ck
        .metadata
        .get("align")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    same("alignment (`align`)", aligned == o.align)?;
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
    let [c, h, w] = data.shape;
    if c != o.arch.channels || h != w || h < o.arch.size {
        return Err(Error::invalid(format!(
            "the training images are {c}x{h}x{w}; {} takes {}x{2}x{2} (or larger square images, \
             to train on patches)",
            o.arch.name, o.arch.channels, o.arch.size
        )));
    }
    let (arch, batch) = (o.arch.clone(), o.train.batch);
    let mut e = Engine::new_with(device, arch, o.loss, batch, params, o.train.denoise)?;
    e.set_steps_per_submit(crate::engine::steps_per_submit_from_env()?);
    if let Some(opt) = state {
        e.write_moments(&opt.exp_avg, &opt.exp_avg_sq);
        e.t = opt.t;
    }
    e.set_dataset(data.samples.clone(), data.len(), h, o.device_data_limit)?;
    Ok(e)
}

/// Trains (from scratch, or continuing `resume`) and calibrates; returns the final checkpoint
/// (not yet saved) and the epoch reports. With `checkpoint`, the state after an epoch is written
/// there atomically (the first epoch's, then at most one per `snapshot_every`), and when training
/// ends, stopped or not, the last whole epoch's: an interrupted run resumes from where it
/// stopped, a killed one loses at most `snapshot_every` and the epoch in flight.
///
/// Images larger than the model's input train it on patches: each epoch draws one window of the
/// model's size per image (metadata `patch` then records the images' size, and scoring stitches
/// windows).
pub fn fit_on(
    device: Arc<Device>,
    data: &Dataset,
    options: &FitOptions,
    resume: Option<&Checkpoint>,
    checkpoint: Option<&Path>,
    progress: impl FnMut(Progress),
) -> Result<(Checkpoint, Vec<EpochReport>)> {
    options.check()?;
    let (tr, val) = data::split(data, options.val_split, options.train.seed)?;
    let mut o = options.resolved(&device, tr.len());
    if let Some(ck) = resume {
        o.train.init = Some(started_from(ck, options.train.init)?);
    }
    let o = &o;
    o.train.check(tr.len())?;
    let history = match resume {
        Some(ck) => resumable(ck, o)?,
        None => Vec::new(),
    };
    let params = match resume {
        Some(ck) => ck.params.clone(),
        None => o
            .arch
            .init_with(o.train.init.unwrap_or(Init::Pytorch), o.train.seed),
    };
    let state = resume.and_then(|c| c.optimizer.as_ref());
    // Parts aligned onto the training images' reference (`align`): trained on, and scored, there.
    let aligned = align::training_sets(&tr, val.as_ref(), o.align, o.arch.size)?;
    let (tr_fit, val_fit) = match &aligned {
        Some(a) => (&a.train, a.held_out.as_ref()),
        None => (&tr, val.as_ref()),
    };
    let alignment = Alignment::of(aligned.as_ref().map(|a| &a.reference[..]), o.align);
    let mut e = engine_for(device, o, &params, state, tr_fit)?;
    let n_train = tr.len();
    let side = data.shape[1];
    // The held-out error per epoch: whole images, or fixed windows of them.
    let held_out: Option<Vec<f32>> =
        val_fit.map(|v| held_out_windows(v, o.arch.size, o.train.seed));
    let mut snapshots = checkpoint.map(|path| Snapshots::new(path, o.snapshot_every));
    let trained = train::train(
        &mut e,
        &o.train,
        history,
        o.log_every,
        held_out.as_deref(),
        progress,
        |e, reports| match snapshots.as_mut() {
            Some(s) => s.after_epoch(reports.len() as u32, snapshot(e, o, reports, n_train)?),
            None => Ok(()),
        },
    );
    // Stopped or finished, the last whole epoch goes to disk before anything else can fail
    // (calibration, the final save): a resumed run continues from it.
    let reports = match snapshots.as_mut() {
        Some(s) => s.finish(trained)?,
        None => trained?,
    };
    let (cal_set, cal_fit, source) = match (&val, val_fit) {
        (Some(v), Some(f)) => (v, f, "held-out"),
        _ => (&tr, tr_fit, "training"),
    };
    let score = o.score(side);
    let (errors, maps, _) =
        align::errors_and_maps(&mut e, &cal_set.samples, side, score.sigma, alignment)?;
    let normal = NormalFrom::for_model(o.normal_map, side, o.arch.size, (None, None));
    let rule = (o.threshold, o.contamination, o.sigma_k);
    let (cal, normal) = calibrate_on(&errors, maps, &score, normal, rule, source)?;
    let mut ck = snapshot(&e, o, &reports, n_train)?;
    ck.set_normal(normal);
    ck.reference = alignment.map(|a| a.reference.to_vec());
    ck.metadata.insert("calibration".into(), to_json(&cal)?);
    ck.metadata.insert("score".into(), to_json(&score)?);
    if side > o.arch.size {
        let patch = Patches {
            image: side,
            stride: window_stride(o.arch.size),
        };
        ck.metadata.insert("patch".into(), to_json(&patch)?);
    }
    let mut held_out = held_out_check(tr_fit, cal_fit, &errors, o.loss);
    held_out.on_training = source == "training";
    ck.metadata.insert("held_out".into(), to_json(&held_out)?);
    Ok((ck, reports))
}

/// Four windows of the model's input size from each of the held-out images, at positions drawn
/// from the seed (the images themselves where they are of that size).
fn held_out_windows(val: &Dataset, size: u32, seed: u64) -> Vec<f32> {
    let [c, side, _] = val.shape;
    if side == size {
        return val.samples.clone();
    }
    let mut rng = SplitMix64::new(seed ^ 0x4E1D_0075);
    let span = (side - size) as u64 + 1;
    let mut out = Vec::with_capacity(4 * val.len() * (c * size * size) as usize);
    for i in 0..val.len() {
        for _ in 0..4 {
            let v = View {
                y0: rng.below(span) as u32,
                x0: rng.below(span) as u32,
                ..View::whole(0)
            };
            v.extract(val.sample(i), c, side, size, &mut out);
        }
    }
    out
}

/// The model's errors on `images` against those of the mean image of `train`.
fn held_out_check(train: &Dataset, images: &Dataset, errors: &[f32], loss: LossConfig) -> HeldOut {
    let mean = mean_image(train);
    let shape = images.shape.map(|v| v as usize);
    let base: f64 = (0..images.len())
        .map(|i| {
            let x: Vec<f64> = images.sample(i).iter().map(|&v| v as f64).collect();
            sample_error(loss.metric, shape, &x, &mean)
        })
        .sum();
    HeldOut {
        images: images.len(),
        on_training: false,
        model_error: train::mean(errors) as f64,
        mean_image_error: base / images.len().max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_run_keeps_the_initial_weights_it_started_from() {
        let arch = Arch::for_images(1, 64).unwrap();
        let mut ck = Checkpoint::new(arch.clone(), None, arch.init(0));
        // From before the choice: PyTorch's, whatever auto now means for this model.
        ck.metadata.insert(
            "train".into(),
            r#"{"epochs":3,"batch":4,"lr":0.001,"seed":0}"#.into(),
        );
        assert_eq!(started_from(&ck, None).unwrap(), Init::Pytorch);
        assert_eq!(
            started_from(&ck, Some(Init::Pytorch)).unwrap(),
            Init::Pytorch
        );
        let t = TrainConfig {
            init: Some(Init::He),
            ..Default::default()
        };
        ck.metadata.insert("train".into(), to_json(&t).unwrap());
        assert_eq!(started_from(&ck, None).unwrap(), Init::He);
        let e = started_from(&ck, Some(Init::Pytorch))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("started from he") && e.contains("leave --init out"),
            "{e}"
        );
    }

    /// A threshold from few images: holding out more is advised only where the set could.
    #[test]
    fn a_small_set_is_not_told_to_hold_out_more() {
        let arch = Arch::fmnist_ae();
        let mut ck = Checkpoint::new(arch.clone(), None, arch.init(0));
        let cal = Calibration {
            method: ThresholdMethod::Quantile,
            contamination: 0.05,
            k: 3.0,
            threshold: 0.1,
            min: 0.0,
            max: 0.2,
            mean: 0.05,
            std: 0.01,
            pixel_threshold: 0.3,
            pixel_max: 0.5,
            count: 4,
            source: "held-out".into(),
        };
        ck.metadata
            .insert("calibration".into(), to_json(&cal).unwrap());
        for (trained, advised) in [(36, true), (6, false)] {
            ck.metadata
                .insert("train_images".into(), trained.to_string());
            let w = warnings(&ck).join(" ");
            assert!(w.contains("only 4 held-out images"), "{w}");
            assert_eq!(w.contains("hold out more ("), advised, "{trained}: {w}");
        }
    }
}
