//! The model-free baseline every result is shown beside: an image's score is its error against
//! the mean training image, with the same metric (in f64 on the host).

use super::metrics;
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

/// Image AUROC of the baseline on `test`.
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
