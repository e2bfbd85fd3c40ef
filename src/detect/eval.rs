//! Evaluation on a labelled test set: image AUROC, F1-max, precision and recall at the calibrated
//! threshold, AUROC per anomaly type, and pixel AUROC and AUPRO where the data has masks. The
//! numbers only; `render::eval_report` writes them out with charts and panels.

use super::calibrate::Calibration;
use super::metrics::{self, population_mean_std};
use super::score::{aggregate, Aggregate};
use super::Detector;
use crate::data::TestSet;
use crate::error::{Error, Result};
use crate::model::{Choice, LossConfig};
use serde_json::json;
use std::collections::BTreeMap;

/// What an evaluation measured, with every image's score and smoothed pixel map.
pub struct Evaluation {
    /// Each image's score (as the model aggregates) and smoothed map.
    pub scores: Vec<f32>,
    pub maps: Vec<Vec<f32>>,
    pub image_auroc: Option<f64>,
    /// The image AUROC of every way of scoring (mean, max, top-k of the map).
    pub by_aggregate: Vec<(Aggregate, Option<f64>)>,
    /// Whether the test set has ground-truth masks (pixel metrics need them).
    pub has_masks: bool,
    /// Over every pixel of every image, where the test set has masks.
    pub pixel_auroc: Option<f64>,
    /// Per-region overlap up to a false-positive rate of 0.3, where the test set has masks.
    pub aupro: Option<f64>,
    /// The best F1 over thresholds and that threshold.
    pub f1_max: Option<(f64, f32)>,
    /// Precision, recall and F1 with the calibrated threshold.
    pub calibrated: (f64, f64, f64),
    /// Per anomaly type, its images against all normal ones.
    pub per_type: BTreeMap<String, TypeMetrics>,
    pub normal: usize,
    pub anomalous: usize,
    /// Images over the calibrated threshold.
    pub predicted: usize,
}

/// One anomaly type's images against all normal ones.
#[derive(Clone, Debug)]
pub struct TypeMetrics {
    pub count: usize,
    pub auroc: Option<f64>,
    /// Over those images' pixels, where the test set has masks.
    pub pixel_auroc: Option<f64>,
}

/// Scores `test` with `det` and measures how well the scores and maps separate its anomalies.
pub fn evaluate(det: &mut Detector, test: &TestSet) -> Result<Evaluation> {
    evaluate_with_progress(det, test, |_, _| {})
}

/// Images scored between two calls of `evaluate_with_progress`'s `progress`.
pub const PROGRESS_CHUNK: usize = 256;

/// As `evaluate`, calling `progress(scored, total)` after every `PROGRESS_CHUNK` images.
pub fn evaluate_with_progress(
    det: &mut Detector,
    test: &TestSet,
    mut progress: impl FnMut(usize, usize),
) -> Result<Evaluation> {
    let (w, h) = (test.data.shape[2] as usize, test.data.shape[1] as usize);
    let (mut errors, mut maps) = (Vec::new(), Vec::new());
    let per_image = test.data.sample_len().max(1);
    for chunk in test.data.samples.chunks(PROGRESS_CHUNK * per_image) {
        let (e, m) = det.errors_and_maps(chunk)?;
        errors.extend(e);
        maps.extend(m);
        progress(errors.len(), test.data.len());
    }
    // A non-finite error (broken weights, a poisoned image) has no place on a ROC curve.
    if let Some(i) = errors.iter().position(|e| !e.is_finite()) {
        let name = test.data.names.get(i).map_or("?", String::as_str);
        return Err(Error::invalid(format!(
            "{name}: its reconstruction error is not finite ({}); the model or the image holds \
             non-finite values",
            errors[i]
        )));
    }
    let (cfg, cal) = (*det.score_config(), det.calibration().clone());
    let labels = &test.anomalous;
    let by_aggregate = Aggregate::ALL
        .iter()
        .map(|&agg| {
            let s: Vec<f32> = errors
                .iter()
                .zip(&maps)
                .map(|(&e, m)| aggregate(agg, cfg.top_k, e, m))
                .collect();
            (agg, metrics::auroc(&s, labels))
        })
        .collect();
    let scores: Vec<f32> = errors
        .iter()
        .zip(&maps)
        .map(|(&e, m)| cfg.score(e, m))
        .collect();
    let n = scores.len();
    let normal: Vec<usize> = (0..n).filter(|&i| !labels[i]).collect();
    let mut per_type = BTreeMap::new();
    let mut type_names: Vec<&String> = test.types.iter().collect();
    type_names.sort();
    type_names.dedup();
    for ty in type_names {
        let anom: Vec<usize> = (0..n)
            .filter(|&i| labels[i] && &test.types[i] == ty)
            .collect();
        if anom.is_empty() {
            continue;
        }
        let idx: Vec<usize> = normal.iter().chain(&anom).copied().collect();
        let s: Vec<f32> = idx.iter().map(|&i| scores[i]).collect();
        let l: Vec<bool> = idx.iter().map(|&i| labels[i]).collect();
        let pixel_auroc = test.masks.as_ref().and_then(|masks| {
            let px: Vec<f32> = idx.iter().flat_map(|&i| maps[i].iter().copied()).collect();
            let gt: Vec<bool> = idx.iter().flat_map(|&i| masks[i].iter().copied()).collect();
            metrics::auroc(&px, &gt)
        });
        let t = TypeMetrics {
            count: anom.len(),
            auroc: metrics::auroc(&s, &l),
            pixel_auroc,
        };
        per_type.insert(ty.clone(), t);
    }
    let (mut pixel_auroc, mut aupro) = (None, None);
    if let Some(masks) = &test.masks {
        let all: Vec<f32> = maps.iter().flatten().copied().collect();
        let gt: Vec<bool> = masks.iter().flatten().copied().collect();
        pixel_auroc = metrics::auroc(&all, &gt);
        aupro = metrics::aupro(&maps, masks, w, h, 0.3);
    }
    Ok(Evaluation {
        image_auroc: metrics::auroc(&scores, labels),
        by_aggregate,
        has_masks: test.masks.is_some(),
        f1_max: metrics::f1_max(&scores, labels),
        calibrated: metrics::precision_recall(&scores, labels, next_up(cal.threshold)),
        predicted: scores.iter().filter(|&&s| cal.is_anomalous(s)).count(),
        normal: normal.len(),
        anomalous: n - normal.len(),
        per_type,
        pixel_auroc,
        aupro,
        scores,
        maps,
    })
}

impl Evaluation {
    /// metrics.json: the numbers, the calibration and what was evaluated.
    pub fn to_json(
        &self,
        model_label: &str,
        data_label: &str,
        loss: LossConfig,
        labels: &[bool],
        cal: &Calibration,
    ) -> serde_json::Value {
        let mean_of = |want: bool| {
            let v: Vec<f32> = (0..self.scores.len())
                .filter(|&i| labels[i] == want)
                .map(|i| self.scores[i])
                .collect();
            population_mean_std(&v).0
        };
        let per_type: BTreeMap<&String, serde_json::Value> = self
            .per_type
            .iter()
            .map(|(ty, t)| {
                let v = json!({ "count": t.count, "auroc": t.auroc, "pixel_auroc": t.pixel_auroc });
                (ty, v)
            })
            .collect();
        let (prec, rec, f1_cal) = self.calibrated;
        let [tp, fp, tn, fn_] = metrics::confusion(&self.scores, labels, cal.threshold);
        json!({
            "lamp_version": env!("CARGO_PKG_VERSION"),
            "model": model_label,
            "data": data_label,
            "loss": loss,
            "counts": {
                "images": self.scores.len(),
                "normal": self.normal,
                "anomalous": self.anomalous,
                "predicted_anomalous": self.predicted,
            },
            "image_auroc": self.image_auroc,
            "image_ap": metrics::average_precision(&self.scores, labels),
            "tpr_at_fpr": {
                "fpr_1pct": metrics::tpr_at_fpr(&self.scores, labels, 0.01),
                "fpr_5pct": metrics::tpr_at_fpr(&self.scores, labels, 0.05),
            },
            "image_auroc_by_score": self
                .by_aggregate
                .iter()
                .map(|(a, v)| (a.name(), *v))
                .collect::<BTreeMap<_, _>>(),
            "masks": self.has_masks,
            "pixel_auroc": self.pixel_auroc,
            "aupro_fpr30": self.aupro,
            "f1_max": self.f1_max.map(|(f, _)| f),
            "f1_max_threshold": self.f1_max.map(|(_, t)| t),
            "calibrated": {
                "threshold": cal.threshold,
                "method": cal.method,
                "contamination": cal.contamination,
                // Precision is undefined when nothing is flagged, recall when there is nothing
                // to find, F1 when both: null, not 0.
                "precision": (tp + fp > 0).then_some(prec),
                "recall": (tp + fn_ > 0).then_some(rec),
                "f1": (2 * tp + fp + fn_ > 0).then_some(f1_cal),
                "true_positives": tp, "false_positives": fp,
                "true_negatives": tn, "false_negatives": fn_,
            },
            "per_type": per_type,
            "score_stats": {
                "normal_mean": mean_of(false),
                "anomalous_mean": mean_of(true),
            },
        })
    }
}

/// Smallest f32 above `t`: "score > threshold" expressed as "score >= next_up(threshold)".
fn next_up(t: f32) -> f32 {
    if t.is_finite() {
        f32::from_bits(if t >= 0.0 {
            t.to_bits() + 1
        } else {
            t.to_bits() - 1
        })
    } else {
        t
    }
}
