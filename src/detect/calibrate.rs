//! The decision threshold, calibrated on normal images and stored in the checkpoint (metadata
//! key `calibration`). An image is anomalous when its score > threshold (PyOD's convention); its
//! normalised score maps the threshold to 0.5 (anomalib's convention; `Calibration::normalise`).

use super::edges::EdgeProfile;
use super::metrics::{population_mean_std, quantile};
use super::score::{above_normal, above_normal_leave_one_out, ScoreConfig};
use crate::error::{Error, Result};
use crate::model::Choice;
use serde::{Deserialize, Serialize};

/// How the threshold was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdMethod {
    /// The (1 − contamination) quantile of the calibration scores.
    Quantile,
    /// mean + k·σ of the calibration scores.
    Sigma,
}

/// Stored in the checkpoint (metadata key `calibration`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub method: ThresholdMethod,
    pub contamination: f64,
    pub k: f64,
    pub threshold: f32,
    pub min: f32,
    pub max: f32,
    pub mean: f64,
    pub std: f64,
    /// Threshold of pixel maps (the outlined region): the same rule over each calibration
    /// image's highest map value, so that a normal image shows an outline about as seldom as it
    /// is called anomalous.
    pub pixel_threshold: f32,
    /// Largest pixel value seen in calibration (scales heat maps).
    pub pixel_max: f32,
    pub count: usize,
    /// "held-out" or "training" (when no images were held out), or "recalibrated on …".
    pub source: String,
}

impl Calibration {
    /// The images the threshold came from, counted: "20 held-out images", "1 training image",
    /// "5 images of good/, by lamp calibrate".
    pub fn images(&self) -> String {
        match self.source.as_str() {
            "held-out" | "training" => {
                crate::error::count(self.count as u64, &format!("{} image", self.source))
            }
            other => {
                let n = crate::error::count(self.count as u64, "image");
                match other.strip_prefix("recalibrated on ") {
                    Some(inputs) => format!("{n} of {inputs}, by lamp calibrate"),
                    None => format!("{n} ({other})"),
                }
            }
        }
    }

    /// A calibration read from a file is checked before it is trusted: finite values, a
    /// threshold and pixel scale that errors (never negative) can be compared with.
    pub fn check_values(&self) -> std::result::Result<(), String> {
        let values = [
            ("threshold", self.threshold as f64),
            ("pixel_threshold", self.pixel_threshold as f64),
            ("pixel_max", self.pixel_max as f64),
            ("mean", self.mean),
            ("std", self.std),
            ("min", self.min as f64),
            ("max", self.max as f64),
        ];
        for (name, v) in values {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "{name} is {v}; errors are finite and never negative"
                ));
            }
        }
        Ok(())
    }
}

impl Choice for ThresholdMethod {
    const ALL: &'static [Self] = &[ThresholdMethod::Quantile, ThresholdMethod::Sigma];
    fn name(self) -> &'static str {
        match self {
            ThresholdMethod::Quantile => "quantile",
            ThresholdMethod::Sigma => "sigma",
        }
    }
}

impl Calibration {
    /// Checks a calibration's options before anything is trained.
    pub fn check(method: ThresholdMethod, contamination: f64, k: f64) -> Result<()> {
        if !(0.0..1.0).contains(&contamination) {
            return Err(Error::setting(
                "contamination",
                format!("must be in [0, 1), got {contamination}"),
            ));
        }
        // Below the normal images' mean, a threshold flags most of them, and below 0 every
        // image (a model with one could not be loaded again).
        if method == ThresholdMethod::Sigma && !(k.is_finite() && k >= 0.0) {
            return Err(Error::setting(
                "sigma_k",
                format!("must be a finite number of 0 or more, got {k}"),
            ));
        }
        Ok(())
    }

    /// The calibration of normal images' `scores` and `peaks` (each image's highest map value).
    pub fn fit(
        scores: &[f32],
        peaks: &[f32],
        method: ThresholdMethod,
        contamination: f64,
        k: f64,
        source: &str,
    ) -> Result<Calibration> {
        if scores.is_empty() {
            return Err(Error::invalid("no images to calibrate the threshold on"));
        }
        Self::check(method, contamination, k)?;
        let (mean, std) = population_mean_std(scores);
        let rule = |v: &[f32]| match method {
            ThresholdMethod::Quantile => quantile(v, 1.0 - contamination),
            ThresholdMethod::Sigma => {
                let (m, s) = population_mean_std(v);
                (m + k * s) as f32
            }
        };
        let min = scores.iter().copied().fold(f32::INFINITY, f32::min);
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let cal = Calibration {
            method,
            contamination,
            k,
            threshold: rule(scores),
            min,
            max,
            mean,
            std,
            pixel_threshold: rule(peaks),
            pixel_max: peaks.iter().copied().fold(0.0, f32::max),
            count: scores.len(),
            source: source.into(),
        };
        // Nothing is written that the loader would refuse.
        cal.check_values()
            .map_err(|e| Error::invalid(format!("the calibration came out unusable: {e}")))?;
        Ok(cal)
    }

    /// The score on [0, 1] with the threshold t at 0.5: 0.5·s/t up to it (0 for a perfect
    /// reconstruction), 1 − 0.5·e^(−(s − t)/t) above it (2t ↦ 0.82, 3t ↦ 0.93). Monotone in the
    /// score and relative to the threshold alone, so it neither saturates where scores still
    /// differ (a linear map over the calibration's narrow min–max span put most images at 0 or
    /// 1) nor depends on how spread the held-out scores happened to be.
    pub fn normalise(&self, raw: f32) -> f32 {
        let t = self.threshold.max(f32::MIN_POSITIVE);
        if raw <= t {
            (0.5 * raw / t).clamp(0.0, 0.5)
        } else {
            (1.0 - 0.5 * (-(raw - t) / t).exp()).clamp(0.5, 1.0)
        }
    }

    pub fn is_anomalous(&self, raw: f32) -> bool {
        raw > self.threshold
    }
}

/// Where calibration takes what maps are counted against (`calibrate_on`).
pub enum NormalFrom<'a> {
    /// Nowhere: maps count as they are.
    Off,
    /// A normal map of the images' maps (whole images); with one image, the model's, `kept`.
    Maps { kept: Option<&'a [f32]> },
    /// An edge profile of the images' maps, `side` px a side, by distances up to `reach` (a
    /// model trained on patches: edges.rs); with one image, the model's, `kept`.
    Edges {
        side: u32,
        reach: u32,
        kept: Option<&'a EdgeProfile>,
    },
}

impl<'a> NormalFrom<'a> {
    /// For a model of `window` px inputs scoring images of `side` px (`on`: with one at all),
    /// keeping its own where it has one: an edge profile for a model trained on patches, whose
    /// windows' maps do not line up from image to image (images of 3 windows a side or more), a
    /// normal map for whole images.
    pub fn for_model(
        on: bool,
        side: u32,
        window: u32,
        kept: (Option<&'a [f32]>, Option<&'a EdgeProfile>),
    ) -> NormalFrom<'a> {
        match (on, side > window) {
            (false, _) => NormalFrom::Off,
            (true, false) => NormalFrom::Maps { kept: kept.0 },
            // The inside's spread, which every class is counted in, is measured where no window
            // touches an edge: less than a window of it would be a few pixels of noise.
            (true, true) if side < 3 * window => NormalFrom::Off,
            (true, true) => NormalFrom::Edges {
                side,
                reach: window,
                kept: kept.1,
            },
        }
    }
}

/// What calibration set for maps to be counted against.
#[derive(Clone, Debug, PartialEq)]
pub enum Normal {
    Map(Vec<f32>),
    Edges(EdgeProfile),
}

/// Counts `side` px maps against what a model keeps for them (`kept`: its normal map, or its
/// edge profile; a model has one at most): what scoring does to every map, and calibration from
/// a single image.
pub fn count_against(
    maps: &mut [Vec<f32>],
    kept: (Option<&[f32]>, Option<&EdgeProfile>),
    side: u32,
) -> Result<()> {
    if let Some(normal) = kept.0 {
        for m in maps.iter_mut() {
            above_normal(m, normal);
        }
    }
    match kept.1 {
        Some(profile) => profile.count(maps, side),
        None => Ok(()),
    }
}

/// Calibrates the threshold by `rule` (method, contamination, k) on normal images' plain
/// `errors` and smoothed `maps`, scored by `score`. With a normal map or an edge profile
/// (`normal`, and two images or more), it is made from the maps first, returned, and each image
/// is scored by its map counted against the *others'* (score::above_normal_leave_one_out,
/// EdgeProfile::leave_one_out), as new images will be scored against it; with one image,
/// against the model's own (`kept`, returned again), so that the threshold is set on maps as
/// they will be scored.
pub fn calibrate_on(
    errors: &[f32],
    mut maps: Vec<Vec<f32>>,
    score: &ScoreConfig,
    normal: NormalFrom,
    (method, contamination, k): (ThresholdMethod, f64, f64),
    source: &str,
) -> Result<(Calibration, Option<Normal>)> {
    let two = maps.len() >= 2;
    let normal = match normal {
        NormalFrom::Off => None,
        NormalFrom::Maps { .. } if two => Some(Normal::Map(above_normal_leave_one_out(&mut maps))),
        NormalFrom::Maps { kept } => {
            count_against(&mut maps, (kept, None), 0)?;
            kept.map(|old| Normal::Map(old.to_vec()))
        }
        NormalFrom::Edges { side, reach, .. } if two => {
            EdgeProfile::leave_one_out(&mut maps, side, reach).map(Normal::Edges)
        }
        NormalFrom::Edges { side, kept, .. } => {
            count_against(&mut maps, (None, kept), side)?;
            kept.cloned().map(Normal::Edges)
        }
    };
    let values = match &normal {
        Some(Normal::Map(m)) => m.as_slice(),
        Some(Normal::Edges(p)) => p.mean.as_slice(),
        None => &[],
    };
    if values
        .iter()
        .chain(maps.iter().flatten())
        .any(|v| !v.is_finite())
    {
        return Err(Error::invalid(
            "the calibration images' anomaly maps are not finite: the model's weights are \
             broken (by a learning rate too high?); train it again (a lower `lr`)",
        ));
    }
    let scores: Vec<f32> = errors
        .iter()
        .zip(&maps)
        .map(|(&err, m)| score.score(err, m))
        .collect();
    // The pixel threshold by the same rule over each image's highest pixel, not over all
    // pixels: at the 99th percentile of all of them, most normal images had a region outlined
    // (28 of 30 on the object benchmark's cup), and an outline said nothing.
    let peaks: Vec<f32> = maps
        .iter()
        .map(|m| m.iter().copied().fold(0.0, f32::max))
        .collect();
    let cal = Calibration::fit(&scores, &peaks, method, contamination, k, source)?;
    Ok((cal, normal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::score::Aggregate;

    #[test]
    fn calibration_maps_threshold_to_half_and_flags_above() {
        let s: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let c = Calibration::fit(&s, &s, ThresholdMethod::Quantile, 0.01, 3.0, "held-out").unwrap();
        assert!((c.threshold - 0.9801).abs() < 1e-4, "{}", c.threshold);
        assert_eq!(c.normalise(c.threshold), 0.5);
        let t = c.threshold;
        assert_eq!(c.normalise(0.0), 0.0);
        assert!((c.normalise(t / 2.0) - 0.25).abs() < 1e-6);
        assert!((c.normalise(2.0 * t) - (1.0 - 0.5 * (-1.0f32).exp())).abs() < 1e-6);
        // Monotone, and still telling scores apart far above the threshold.
        let v: Vec<f32> = [0.1, 0.5, 0.9, 1.0, 1.5, 3.0, 5.0]
            .iter()
            .map(|&x| c.normalise(x * t))
            .collect();
        assert!(v.windows(2).all(|w| w[0] < w[1]), "{v:?}");
        assert!(c.is_anomalous(0.99) && !c.is_anomalous(0.5));
        let k = Calibration::fit(&s, &s, ThresholdMethod::Sigma, 0.01, 2.0, "held-out").unwrap();
        let (m, sd) = population_mean_std(&s);
        assert!((k.threshold as f64 - (m + 2.0 * sd)).abs() < 1e-5);
        let e = Calibration::fit(&s, &s, ThresholdMethod::Quantile, 1.5, 3.0, "x").unwrap_err();
        assert!(e.to_string().contains("`contamination`"), "{e}");
    }

    #[test]
    fn calibration_sets_maps_as_they_will_be_scored() {
        let score = ScoreConfig {
            aggregate: Aggregate::Max,
            ..Default::default()
        };
        let rule = (ThresholdMethod::Quantile, 0.0, 3.0);
        let maps = vec![vec![1.0, 4.0], vec![3.0, 0.0], vec![2.0, 2.0]];
        let cal = |maps: Vec<Vec<f32>>, normal, kept: Option<&[f32]>| {
            let errors = vec![0.5; maps.len()];
            let from = match normal {
                true => NormalFrom::Maps { kept },
                false => NormalFrom::Off,
            };
            let (c, n) = calibrate_on(&errors, maps, &score, from, rule, "test").unwrap();
            let map = n.map(|n| match n {
                Normal::Map(m) => m,
                Normal::Edges(_) => panic!("an edge profile of whole images"),
            });
            (c, map)
        };
        // Off: the maps as they are (the largest of all is the threshold at contamination 0).
        let (c, m) = cal(maps.clone(), false, Some(&[9.0, 9.0]));
        assert_eq!((c.threshold, m), (4.0, None));
        // On: leave-one-out maps (0, 3), (1.5, 0), (0, 0); the new normal map is returned.
        let (c, m) = cal(maps.clone(), true, None);
        assert_eq!((c.threshold, m), (3.0, Some(vec![2.0, 2.0])));
        // One image: above the model's own normal map, which stays.
        let (c, m) = cal(vec![vec![1.0, 4.0]], true, Some(&[0.5, 1.0]));
        assert_eq!((c.threshold, m), (3.0, Some(vec![0.5, 1.0])));
        // One image and no normal map to keep: none.
        let (_, m) = cal(vec![vec![1.0, 4.0]], true, None);
        assert_eq!(m, None);
        // The pixel threshold: the rule over each image's highest pixel (4, 3, 2: median 3), not
        // over all pixels (median 2).
        let half = (ThresholdMethod::Quantile, 0.5, 3.0);
        let (c, _) = calibrate_on(&[0.5; 3], maps, &score, NormalFrom::Off, half, "test").unwrap();
        assert_eq!((c.pixel_threshold, c.pixel_max), (3.0, 4.0));
    }

    #[test]
    fn a_patch_model_calibrates_an_edge_profile() {
        let score = ScoreConfig {
            aggregate: Aggregate::Max,
            ..Default::default()
        };
        let rule = (ThresholdMethod::Quantile, 0.0, 3.0);
        // 6×6 maps, high on the edges: against the others' profile, nothing stands out.
        let map = |k: f32| -> Vec<f32> {
            (0..36)
                .map(|q| {
                    let (y, x) = (q / 6, q % 6);
                    let edge = y.min(x).min(5 - y).min(5 - x) == 0;
                    (if edge { 4.0 } else { 1.0 }) + k * ((q * 5) % 7) as f32 * 0.01
                })
                .collect()
        };
        let from = NormalFrom::for_model(true, 6, 2, (None, None));
        // (Images under 3 windows a side have too little inside to measure: none.)
        assert!(matches!(
            NormalFrom::for_model(true, 5, 2, (None, None)),
            NormalFrom::Off
        ));
        let maps = vec![map(1.0), map(2.0), map(3.0)];
        let (c, n) = calibrate_on(&[0.5; 3], maps, &score, from, rule, "test").unwrap();
        let Some(Normal::Edges(p)) = n else {
            panic!("{n:?}")
        };
        assert_eq!(p.reach, 2);
        assert!(c.threshold < 0.5, "{}", c.threshold);
        // One image: counted against the model's own profile, which stays.
        let from = NormalFrom::for_model(true, 6, 2, (None, Some(&p)));
        let (c, n) = calibrate_on(&[0.5], vec![map(9.0)], &score, from, rule, "test").unwrap();
        assert_eq!(n, Some(Normal::Edges(p)));
        assert!(
            c.threshold < 3.0,
            "the edges' 4 are counted: {}",
            c.threshold
        );
        // Off, or whole images: no profile.
        assert!(matches!(
            NormalFrom::for_model(false, 6, 2, (None, None)),
            NormalFrom::Off
        ));
        assert!(matches!(
            NormalFrom::for_model(true, 6, 6, (None, None)),
            NormalFrom::Maps { .. }
        ));
    }
}
