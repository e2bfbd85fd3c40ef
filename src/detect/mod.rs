//! Anomaly detection with a trained model: training to a calibrated checkpoint (`train`, `fit`,
//! `calibrate`, `checkpoint`), scoring images and drawing their anomaly maps (`score`; `align`
//! for parts that shift, `edges` for a patch model's image edges), and
//! measuring how well scores separate good from bad (`eval`, `metrics`, `baseline`).
//!
//! `Detector` and `fit` are the library's front door:
//!
//! ```no_run
//! # fn main() -> lamp::Result<()> {
//! let mut detector = lamp::Detector::load(std::path::Path::new("model.safetensors"))?;
//! let verdict = detector.score_file(std::path::Path::new("part.png"))?;
//! println!("{} {}", verdict.score, verdict.anomalous);
//! # Ok(())
//! # }
//! ```

pub mod align;
pub mod baseline;
pub mod calibrate;
pub mod checkpoint;
pub mod edges;
pub mod eval;
pub mod fit;
pub mod metrics;
pub mod score;
pub mod snapshots;
pub mod train;

pub use calibrate::{Calibration, ThresholdMethod};
pub use checkpoint::{Checkpoint, Patches};
pub use fit::{fit_on, FitOptions, HeldOut, MIN_CALIBRATION_IMAGES};
pub use score::{Aggregate, ScoreConfig};
pub use train::{EpochReport, Progress, TrainConfig, STOP_SIGNAL};

use crate::data::{self, Dataset};
use crate::device::Device;
use crate::engine::{fitting_batch, Engine};
use crate::error::{Error, Result};
use crate::model::{Arch, LossConfig};
use align::Alignment;
use std::path::Path;
use std::sync::Arc;

/// Batch size a detector scores in, unless told otherwise.
pub const SCORE_BATCH: usize = 64;

/// A trained, calibrated model on a device, ready to score images.
pub struct Detector {
    checkpoint: Checkpoint,
    loss: LossConfig,
    calibration: Calibration,
    score: ScoreConfig,
    /// Trained on patches: the side of the images it scores (window by window).
    patches: Option<checkpoint::Patches>,
    /// `recalibrate` sets a normal map, or a patch model's edge profile (`use_normal_map`).
    normal_wanted: bool,
    engine: Engine,
}

/// One image's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// The image's score as the checkpoint's `ScoreConfig` makes it: the plain reconstruction
    /// error with the training metric (`mean`), or the maximum or top-k mean of its smoothed map;
    /// higher is more anomalous.
    pub score: f32,
    /// The score mapped to [0, 1] with the threshold at 0.5.
    pub normalised: f32,
    /// Score above the calibrated threshold.
    pub anomalous: bool,
    /// The smoothed pixel anomaly map [H × W] at the model's size, when asked for (above the
    /// model's normal map, or counted against its edge profile, where it has one).
    pub map: Option<Vec<f32>>,
    /// For a model that aligns images: the shift (dx, dy), in pixels at the model's input size,
    /// that moved the image onto the reference (the part sat that far from where the
    /// reference has it).
    pub shift: Option<align::Shift>,
}

/// A threshold a detector can take: finite and not negative.
pub fn check_threshold(threshold: f32) -> Result<()> {
    if !(threshold.is_finite() && threshold >= 0.0) {
        return Err(Error::setting(
            "threshold",
            format!("must be a finite number ≥ 0 (errors are never negative), got {threshold}"),
        ));
    }
    Ok(())
}

impl Detector {
    /// Loads a checkpoint written by training, on the preferred device.
    pub fn load(path: &Path) -> Result<Detector> {
        Detector::open(Device::shared(None)?, path, SCORE_BATCH)
    }

    /// Loads a checkpoint on `device`, scoring in batches of up to `batch` images.
    pub fn open(device: Arc<Device>, path: &Path, batch: usize) -> Result<Detector> {
        let ck = Checkpoint::load(path, None)?;
        Detector::from_checkpoint(device, ck, path, batch)
    }

    /// A detector of a checkpoint in memory (`path` names it in errors).
    pub fn from_checkpoint(
        device: Arc<Device>,
        checkpoint: Checkpoint,
        path: &Path,
        batch: usize,
    ) -> Result<Detector> {
        let (loss, calibration) = checkpoint.trained(path)?;
        let batch = fitting_batch(&device, &checkpoint.arch, loss, batch.max(1)).max(1);
        let engine = Engine::new(
            device,
            checkpoint.arch.clone(),
            loss,
            batch,
            &checkpoint.params,
        )?;
        let score = checkpoint.meta("score").unwrap_or_default();
        let patches = checkpoint.meta("patch");
        Ok(Detector {
            normal_wanted: checkpoint.normal_map.is_some() || checkpoint.edge_profile.is_some(),
            checkpoint,
            loss,
            calibration,
            score,
            patches,
            engine,
        })
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }
    /// What decides this detector's scores and verdicts (weights, score settings, calibration,
    /// the threshold in effect), as 8 hex digits: the CRC-32 of its checkpoint as `save` would
    /// write it. `lamp score` puts it in every row, so `lamp merge` can tell parts scored by
    /// another model, or with another `--threshold`, from parts of one job.
    pub fn fingerprint(&mut self) -> Result<String> {
        // Without Adam's moments (twice the weights, and no part of a score): out for the
        // moment, back after.
        let optimizer = self.checkpoint.optimizer.take();
        let bytes = self.checkpoint.to_bytes();
        self.checkpoint.optimizer = optimizer;
        Ok(format!("{:08x}", crc32fast::hash(&bytes?)))
    }
    /// How images are scored (the checkpoint's, or the plain error for one that does not say).
    pub fn score_config(&self) -> &ScoreConfig {
        &self.score
    }
    /// Replaces the calibrated threshold (for this detector only; `save` keeps it).
    pub fn set_threshold(&mut self, threshold: f32) -> Result<()> {
        check_threshold(threshold)?;
        self.calibration.threshold = threshold;
        self.checkpoint.metadata.insert(
            "calibration".into(),
            checkpoint::to_json(&self.calibration)?,
        );
        Ok(())
    }
    /// Scores images by `aggregate` (with `top_k`) from now on, the maps' smoothing unchanged;
    /// the threshold belongs to the old score, so `recalibrate` next. The checkpoint is updated.
    pub fn set_score(&mut self, aggregate: Aggregate, top_k: f64) -> Result<()> {
        let score = ScoreConfig {
            aggregate,
            top_k,
            ..self.score
        };
        score.check()?;
        self.checkpoint
            .metadata
            .insert("score".into(), checkpoint::to_json(&score)?);
        self.score = score;
        Ok(())
    }
    /// Whether `recalibrate` sets the normal map (a patch model's edge profile) from its images
    /// (`true`) or leaves the model without one (`false`); by default, as the model has one or
    /// not.
    pub fn use_normal_map(&mut self, on: bool) {
        self.normal_wanted = on;
    }
    /// Calibrates the threshold anew on normal samples `x` (model input layout), by `method`
    /// with `contamination` or `k`, as training does on its held-out images, and the normal map
    /// or edge profile of a model that has one (with two images or more); `source` says where
    /// the images came
    /// from. The checkpoint is updated (write it with `save`).
    pub fn recalibrate(
        &mut self,
        x: &[f32],
        method: ThresholdMethod,
        contamination: f64,
        k: f64,
        source: &str,
    ) -> Result<()> {
        // The maps as they are (aligned, where the model aligns): a model with a normal map or
        // an edge profile gets one of these images instead.
        let side = self.image_size();
        let al = Alignment::of(self.checkpoint.reference.as_deref(), self.score.align);
        let (errors, maps, _) =
            align::errors_and_maps(&mut self.engine, x, side, self.score.sigma, al)?;
        let ck = &self.checkpoint;
        let kept = ck.kept_normal();
        let normal = calibrate::NormalFrom::for_model(self.normal_wanted, side, ck.arch.size, kept);
        let rule = (method, contamination, k);
        let (cal, normal) =
            calibrate::calibrate_on(&errors, maps, &self.score, normal, rule, source)?;
        self.checkpoint.set_normal(normal);
        self.checkpoint
            .metadata
            .insert("calibration".into(), checkpoint::to_json(&cal)?);
        self.calibration = cal;
        Ok(())
    }

    /// What the user of this model should be wary of (see `fit::warnings`).
    pub fn warnings(&self) -> Vec<String> {
        fit::warnings(&self.checkpoint)
    }
    pub fn arch(&self) -> &Arch {
        &self.checkpoint.arch
    }
    /// The side images are scored at: the model's input size, or the size of the images a
    /// model trained on patches was trained on.
    pub fn image_size(&self) -> u32 {
        self.patches.map_or(self.arch().size, |p| p.image)
    }
    /// The shape [C, H, W] images are scored at.
    pub fn image_shape(&self) -> [u32; 3] {
        let s = self.image_size();
        [self.arch().channels, s, s]
    }
    pub fn loss(&self) -> LossConfig {
        self.loss
    }
    pub fn device(&self) -> &Arc<Device> {
        &self.engine.device
    }

    /// Writes the checkpoint (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.checkpoint.save(path)
    }

    /// Scores an image (converted to the model's channels and `image_size`), with its anomaly
    /// map.
    pub fn score(&mut self, image: &image::DynamicImage) -> Result<Score> {
        let x = data::images::convert(image, self.arch().channels, self.image_size());
        self.score_samples(&x, true).map(|mut v| v.remove(0))
    }

    /// Scores an image file, with its anomaly map.
    pub fn score_file(&mut self, path: &Path) -> Result<Score> {
        let x = data::load_image(path, self.arch().channels, self.image_size())?;
        self.score_samples(&x, true).map(|mut v| v.remove(0))
    }

    /// Scores images already converted ([n, C, S, S] in [0, 1] with S = `image_size`), in
    /// batches; `maps` adds each one's anomaly map (S × S).
    pub fn score_samples(&mut self, x: &[f32], maps: bool) -> Result<Vec<Score>> {
        let cfg = self.score;
        let (scores, maps, shifts) = if maps || cfg.needs_maps() || self.patches.is_some() {
            let (errors, m, shifts) = self.errors_maps_shifts(x)?;
            let s = errors
                .iter()
                .zip(&m)
                .map(|(&e, m)| cfg.score(e, m))
                .collect();
            (
                s,
                m.into_iter().map(|m| maps.then_some(m)).collect(),
                shifts,
            )
        } else {
            let (s, shifts) = match Alignment::of(self.checkpoint.reference.as_deref(), cfg.align) {
                Some(al) => {
                    let c = self.checkpoint.arch.channels as usize;
                    let (moved, shifts) = al.align_all(x, c)?;
                    (self.engine.score(&moved)?, shifts)
                }
                None => (self.engine.score(x)?, Vec::new()),
            };
            let n = s.len();
            (s, vec![None; n], shifts)
        };
        let cal = &self.calibration;
        Ok(scores
            .into_iter()
            .zip(maps)
            .enumerate()
            .map(|(i, (s, map))| Score {
                score: s,
                normalised: cal.normalise(s),
                anomalous: cal.is_anomalous(s),
                map,
                shift: shifts.get(i).copied(),
            })
            .collect())
    }

    /// Plain errors and smoothed anomaly maps of images converted as `score_samples` takes them,
    /// the maps above the model's normal map or counted against its edge profile, where it has
    /// one. A model that aligns images
    /// (`align`) scores them aligned and moves each map back onto its image's own pixels.
    pub fn errors_and_maps(&mut self, x: &[f32]) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
        self.errors_maps_shifts(x).map(|(e, m, _)| (e, m))
    }

    /// As `errors_and_maps`, with each image's shift where the model aligns images (else none).
    fn errors_maps_shifts(&mut self, x: &[f32]) -> Result<align::ErrorsMapsShifts> {
        let side = self.image_size();
        let al = Alignment::of(self.checkpoint.reference.as_deref(), self.score.align);
        let (errors, mut maps, shifts) =
            align::errors_and_maps(&mut self.engine, x, side, self.score.sigma, al)?;
        calibrate::count_against(&mut maps, self.checkpoint.kept_normal(), side)?;
        // (A map's values, and so the image's score, are the same after the move.)
        for (m, &d) in maps.iter_mut().zip(&shifts) {
            *m = align::map_back(m, side as usize, d);
        }
        Ok((errors, maps, shifts))
    }

    /// The engine behind the detector (for batch work of your own).
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }
}

/// Trains a model on normal images `data` (each of `options.arch`'s input shape) on the
/// preferred device, calibrates its threshold, and returns it ready to score.
pub fn fit(data: &Dataset, options: FitOptions) -> Result<Detector> {
    let device = Device::shared(None)?;
    let (ck, _) = fit_on(device.clone(), data, &options, None, None, |_| {})?;
    Detector::from_checkpoint(device, ck, Path::new("(trained in memory)"), SCORE_BATCH)
}
