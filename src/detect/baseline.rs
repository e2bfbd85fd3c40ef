//! The model-free baselines every result is shown beside, computed on the host:
//!
//! - the mean image: an image's score is its error against the mean training image, with the
//!   same metric (in f64), and its map the per-pixel error against it;
//! - the per-pixel Gaussian: each pixel's mean μ and standard deviation σ over the training
//!   images; a pixel's anomaly is |x − μ| / σ (averaged over channels), an image's score the
//!   aggregate of that map.
//!
//! Maps are smoothed as the model's are, and scored as the model's are (`ScoreConfig`).

use super::metrics;
use super::score::{pixel_map, smooth, Aggregate, ScoreConfig};
use crate::data::{Dataset, TestSet};
use crate::model::{loss::sample_error, Metric};

/// The mean of the training images, element by element.
pub fn mean_image(train: &Dataset) -> Vec<f64> {
    let mut mean = vec![0f64; train.sample_len()];
    for i in 0..train.len() {
        for (m, v) in mean.iter_mut().zip(train.sample(i)) {
            *m += *v as f64 / train.len() as f64;
        }
    }
    mean
}

/// Image AUROC of the mean-image baseline on `test`, scored by the plain error.
pub fn mean_image_auroc(train: &Dataset, test: &TestSet, metric: Metric) -> Option<f64> {
    let mean = mean_image(train);
    let shape = test.data.shape.map(|v| v as usize);
    let scores: Vec<f32> = (0..test.data.len())
        .map(|i| {
            let x: Vec<f64> = test.data.sample(i).iter().map(|&v| v as f64).collect();
            sample_error(metric, shape, &x, &mean) as f32
        })
        .collect();
    metrics::auroc(&scores, &test.anomalous)
}

/// How well a baseline separates a test set: image AUROC, and pixel AUROC and AUPRO where the
/// test set has masks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Separation {
    pub image_auroc: Option<f64>,
    pub pixel_auroc: Option<f64>,
    pub aupro: Option<f64>,
}

/// The image AUROC of `scores`, and pixel AUROC and AUPRO of `maps`, on `test`.
pub fn separation(test: &TestSet, scores: &[f32], maps: &[Vec<f32>]) -> Separation {
    let (w, h) = (test.data.shape[2] as usize, test.data.shape[1] as usize);
    let mut s = Separation {
        image_auroc: metrics::auroc(scores, &test.anomalous),
        ..Default::default()
    };
    if let Some(masks) = &test.masks {
        let all: Vec<f32> = maps.iter().flatten().copied().collect();
        let gt: Vec<bool> = masks.iter().flatten().copied().collect();
        s.pixel_auroc = metrics::auroc(&all, &gt);
        s.aupro = metrics::aupro(maps, masks, w, h, 0.3);
    }
    s
}

/// The mean-image baseline with maps, scored by `score` (the plain error for `mean`).
pub fn mean_image_separation(
    train: &Dataset,
    test: &TestSet,
    metric: Metric,
    score: &ScoreConfig,
) -> Separation {
    let mean = mean_image(train);
    let mean32: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
    let shape = test.data.shape;
    let (w, h) = (shape[2] as usize, shape[1] as usize);
    let mut scores = Vec::with_capacity(test.data.len());
    let mut maps = Vec::with_capacity(test.data.len());
    for i in 0..test.data.len() {
        let x = test.data.sample(i);
        let map = smooth(&pixel_map(metric, shape, x, &mean32), w, h, score.sigma);
        let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let error = sample_error(metric, shape.map(|v| v as usize), &xd, &mean) as f32;
        scores.push(score.score(error, &map));
        maps.push(map);
    }
    separation(test, &scores, &maps)
}

/// The per-pixel Gaussian baseline, scored by `score` (for `mean`, the map's mean).
pub fn gaussian_separation(train: &Dataset, test: &TestSet, score: &ScoreConfig) -> Separation {
    let mean = mean_image(train);
    let mut var = vec![0f64; train.sample_len()];
    for i in 0..train.len() {
        for ((v, m), x) in var.iter_mut().zip(&mean).zip(train.sample(i)) {
            *v += (*x as f64 - m).powi(2) / train.len() as f64;
        }
    }
    // A floor on σ: pixels that never vary in training would divide by zero.
    let floor = 1e-3;
    let sd: Vec<f64> = var.iter().map(|v| v.sqrt().max(floor)).collect();
    let [c, h, w] = test.data.shape.map(|v| v as usize);
    let mut scores = Vec::with_capacity(test.data.len());
    let mut maps = Vec::with_capacity(test.data.len());
    for i in 0..test.data.len() {
        let x = test.data.sample(i);
        let mut z = vec![0f32; h * w];
        for ch in 0..c {
            for (q, zq) in z.iter_mut().enumerate() {
                let k = ch * h * w + q;
                *zq += ((x[k] as f64 - mean[k]).abs() / sd[k] / c as f64) as f32;
            }
        }
        let map = smooth(&z, w, h, score.sigma);
        let mean_z = (z.iter().map(|&v| v as f64).sum::<f64>() / z.len() as f64) as f32;
        let s = match score.aggregate {
            Aggregate::Mean => mean_z,
            _ => score.score(mean_z, &map),
        };
        scores.push(s);
        maps.push(map);
    }
    separation(test, &scores, &maps)
}
