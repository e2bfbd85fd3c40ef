//! The evaluation's charts of scores: the ROC curve and the histogram of normal and anomalous
//! images' scores with the threshold.

use super::chart::Chart;
use super::plot;
use crate::detect::metrics;
use crate::detect::score::ScoreConfig;

pub fn roc_chart(scores: &[f32], labels: &[bool], auroc: Option<f64>) -> Chart {
    let title = format!(
        "ROC (AUROC {})",
        auroc.map_or("n/a".into(), |a| format!("{a:.4}"))
    );
    let mut c = Chart::new(
        640,
        440,
        &title,
        "false-positive rate",
        "true-positive rate",
        (0.0, 1.0),
        (0.0, 1.0),
    );
    c.polyline(&[0.0, 1.0], &[0.0, 1.0], plot::GREY);
    if let Some((fpr, tpr, _)) = metrics::roc(scores, labels) {
        c.polyline(&fpr, &tpr, plot::BLUE);
    }
    c.legend(&[("model", plot::BLUE), ("chance", plot::GREY)]);
    c
}

pub fn histogram(scores: &[f32], labels: &[bool], threshold: f32, score: &ScoreConfig) -> Chart {
    let lo = scores.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let hi =
        (scores.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64).max(threshold as f64);
    let bins = 40;
    let width = ((hi - lo) / bins as f64).max(1e-12);
    let count = |want: bool| {
        let mut v = vec![0usize; bins];
        for (&s, &l) in scores.iter().zip(labels) {
            if l == want {
                v[(((s as f64 - lo) / width) as usize).min(bins - 1)] += 1;
            }
        }
        let total = v.iter().sum::<usize>().max(1) as f64;
        v.into_iter()
            .map(|c| c as f64 / total)
            .collect::<Vec<f64>>()
    };
    let (n, a) = (count(false), count(true));
    let top = n.iter().chain(&a).copied().fold(0.0, f64::max).max(1e-9) * 1.1;
    let mut c = Chart::new(
        640,
        440,
        "score distribution",
        &format!("score ({})", score.aggregate.describe()),
        "fraction",
        // A bin's width of room each side, so the first and last bars clear the axes.
        (lo - width, hi + width),
        (0.0, top),
    );
    // The threshold first: the bars are drawn over it, so a bar at the threshold stays whole
    // and the line shows above it.
    c.vline(threshold as f64, plot::RED, "threshold");
    for k in 0..bins {
        let x0 = lo + k as f64 * width;
        let mid = x0 + width / 2.0;
        c.bar(x0, mid, n[k], plot::BLUE);
        c.bar(mid, x0 + width, a[k], plot::ORANGE);
    }
    c.legend(&[
        ("normal", plot::BLUE),
        ("anomalous", plot::ORANGE),
        ("threshold", plot::RED),
    ]);
    c
}
