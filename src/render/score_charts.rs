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
    // (No curve where the images are all of one kind: nor a legend entry for one.)
    match metrics::roc(scores, labels) {
        Some((fpr, tpr, _)) => {
            c.polyline(&fpr, &tpr, plot::BLUE);
            c.legend(&[("model", plot::BLUE), ("chance", plot::GREY)]);
        }
        None => c.legend(&[("chance", plot::GREY)]),
    }
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
    // The kinds of image there are (an evaluation may hold only one).
    let kinds = [
        ("normal", plot::BLUE, false),
        ("anomalous", plot::ORANGE, true),
    ];
    let mut legend: Vec<(&str, image::Rgb<u8>)> = kinds
        .iter()
        .filter(|(_, _, kind)| labels.contains(kind))
        .map(|&(name, colour, _)| (name, colour))
        .collect();
    legend.push(("threshold", plot::RED));
    c.legend(&legend);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Legends name what is drawn: no "model" without a curve, no kind of image that is absent.
    #[test]
    fn legends_name_only_what_is_drawn() {
        let names = |c: &Chart| c.legend.iter().map(|l| l.0.clone()).collect::<Vec<_>>();
        let (scores, score) = ([0.1, 0.4, 0.2], ScoreConfig::default());
        let one_kind = [false; 3];
        assert_eq!(names(&roc_chart(&scores, &one_kind, None)), ["chance"]);
        let hist = histogram(&scores, &one_kind, 0.3, &score);
        assert_eq!(names(&hist), ["normal", "threshold"]);
        let both = [false, true, false];
        assert_eq!(
            names(&roc_chart(&scores, &both, Some(1.0))),
            ["model", "chance"]
        );
        let hist = histogram(&scores, &[true; 3], 0.3, &score);
        assert_eq!(names(&hist), ["anomalous", "threshold"]);
        assert_eq!(names(&histogram(&scores, &both, 0.3, &score)).len(), 3);
    }
}
