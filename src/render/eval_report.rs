//! The files of `lamp eval`: metrics.json, scores.csv, roc.png, hist.png, heat-map panels of the
//! highest-scored and a sample of images, and report.md tying them together. Every file is
//! written atomically.

use super::picture::{map_vmax, panel, png_bytes};
use super::plot::{self, Chart};
use crate::data::TestSet;
use crate::detect::eval::Evaluation;
use crate::detect::{metrics, Calibration};
use crate::error::Result;
use crate::fsutil::{ensure_dir, write_atomic};
use crate::model::{Choice, LossConfig};
use image::RgbImage;
use std::path::Path;

/// What the report says was evaluated.
pub struct Labels<'a> {
    pub model: &'a str,
    pub data: &'a str,
    pub loss: LossConfig,
    /// How the model was trained (the checkpoint's `train` metadata), where it says.
    pub recipe: Option<serde_json::Value>,
    /// The maps' smoothing σ in pixels (the model's score settings).
    pub sigma: f32,
}

/// Writes the report of `ev` on `t` into `out`, with panels of the `panels` highest-scored
/// images and as many sampled ones; returns metrics.json's value.
pub fn write(
    out: &Path,
    ev: &Evaluation,
    t: &TestSet,
    cal: &Calibration,
    labels: &Labels,
    panels: usize,
) -> Result<serde_json::Value> {
    ensure_dir(out)?;
    let mut m = ev.to_json(labels.model, labels.data, labels.loss, &t.anomalous, cal);
    m["recipe"] = labels.recipe.clone().unwrap_or_default();
    write_atomic(
        &out.join("metrics.json"),
        serde_json::to_string_pretty(&m)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let scores = &ev.scores;
    let rows: Vec<Vec<String>> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let verdict = if cal.is_anomalous(s) {
                "anomalous"
            } else {
                "normal"
            };
            vec![
                t.data.names[i].clone(),
                t.types[i].clone(),
                (t.anomalous[i] as u8).to_string(),
                s.to_string(),
                format!("{:.4}", cal.normalise(s)),
                verdict.to_string(),
            ]
        })
        .collect();
    let header = [
        "name",
        "type",
        "anomalous",
        "score",
        "normalised",
        "verdict",
    ];
    write_atomic(&out.join("scores.csv"), &super::table::csv(&header, &rows)?)?;
    write_atomic(
        &out.join("roc.png"),
        &png_bytes(&roc_chart(scores, &t.anomalous, ev.image_auroc))?,
    )?;
    write_atomic(
        &out.join("hist.png"),
        &png_bytes(&histogram(scores, &t.anomalous, cal.threshold))?,
    )?;
    write_panels_and_md(out, ev, t, cal, labels, panels)?;
    Ok(m)
}

fn write_panels_and_md(
    out: &Path,
    ev: &Evaluation,
    t: &TestSet,
    cal: &Calibration,
    labels: &Labels,
    panels: usize,
) -> Result<()> {
    let (scores, n, shape) = (&ev.scores, ev.scores.len(), t.data.shape);
    let (prec, rec, f1_cal) = ev.calibrated;
    // Panels: the highest-scored images, then an evenly spaced sample of the rest.
    let panels_dir = out.join("panels");
    ensure_dir(&panels_dir)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let worst: Vec<usize> = order.iter().take(panels).copied().collect();
    let step = (n / panels.max(1)).max(1);
    let mut sample: Vec<usize> = Vec::new();
    for i in (0..n).step_by(step).chain(0..n) {
        if sample.len() == panels.min(n - worst.len()) {
            break;
        }
        if !worst.contains(&i) && !sample.contains(&i) {
            sample.push(i);
        }
    }
    let vmax = map_vmax(cal);
    let mut panel_files = Vec::new();
    for (kind, list) in [("worst", &worst), ("sample", &sample)] {
        for (rank, &i) in list.iter().enumerate() {
            let img = panel(
                t.data.sample(i),
                shape,
                t.masks.as_ref().map(|m| m[i].as_slice()),
                &ev.maps[i],
                vmax,
                cal.pixel_threshold,
            );
            let name = format!("{kind}_{rank:02}_{}.png", safe_name(&t.types[i]));
            write_atomic(&panels_dir.join(&name), &png_bytes(&img)?)?;
            panel_files.push((name, i));
        }
    }

    let mut md = format!(
        "# lamp evaluation\n\nModel: `{}`  \nData: `{}`  \nLoss: {}\n\n",
        labels.model, labels.data, labels.loss
    );
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.4}"));
    md += "| metric | value |\n|---|---|\n";
    md += &format!("| image AUROC | {} |\n", f(ev.image_auroc));
    let no_masks = "n/a: the test data has no ground-truth masks (ground_truth/)";
    if ev.has_masks {
        md += &format!("| pixel AUROC | {} |\n", f(ev.pixel_auroc));
        md += &format!("| AUPRO (FPR ≤ 0.3) | {} |\n", f(ev.aupro));
    } else {
        md += &format!("| pixel AUROC, AUPRO | {no_masks} |\n");
    }
    for (agg, v) in &ev.by_aggregate {
        md += &format!("| image AUROC, score = {} | {} |\n", agg.describe(), f(*v));
    }
    md += &format!(
        "| F1-max (threshold {}) | {} |\n",
        ev.f1_max.map_or("n/a".into(), |(_, t)| format!("{t:.5}")),
        f(ev.f1_max.map(|(v, _)| v))
    );
    md += &format!(
        "| calibrated threshold {:.5} ({}, contamination {}) | precision {:.3}, recall {:.3}, F1 {:.3} |\n",
        cal.threshold, cal.method.name(), cal.contamination, prec, rec, f1_cal
    );
    md += &format!(
        "| images (normal / anomalous / flagged) | {} / {} / {} |\n\n",
        ev.normal, ev.anomalous, ev.predicted
    );
    md += "## Per type (each type's images against all normal ones)\n\n| type | images | AUROC | pixel AUROC |\n|---|---|---|---|\n";
    for (ty, t) in &ev.per_type {
        md += &format!(
            "| {ty} | {} | {} | {} |\n",
            t.count,
            f(t.auroc),
            f(t.pixel_auroc)
        );
    }
    md += "\n## ROC and score distributions\n\n![ROC](roc.png) ![histogram](hist.png)\n\n";
    md += &format!(
        "## Heat maps\n\nEach panel: image | ground truth (when the data has masks) | heat map | \
         predicted region (pixel map above the calibrated pixel threshold). Maps are the \
         per-pixel error, Gaussian-smoothed (σ = {} px).\n\n",
        labels.sigma
    );
    for (name, i) in &panel_files {
        md += &format!(
            "- `{}` ({}, score {:.5}): ![](panels/{name})\n",
            t.data.names[*i], t.types[*i], ev.scores[*i]
        );
    }
    md += "\nAll scores: `scores.csv`; all metrics: `metrics.json`.\n";
    write_atomic(&out.join("report.md"), md.as_bytes())
}

fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

pub fn roc_chart(scores: &[f32], labels: &[bool], auroc: Option<f64>) -> RgbImage {
    let title = format!(
        "ROC (AUROC {})",
        auroc.map_or("n/a".into(), |a| format!("{a:.4}"))
    );
    let mut c = Chart::new(
        520,
        480,
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
    c.img
}

pub fn histogram(scores: &[f32], labels: &[bool], threshold: f32) -> RgbImage {
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
        420,
        "score distribution",
        "score (plain error)",
        "fraction",
        (lo, hi),
        (0.0, top),
    );
    for k in 0..bins {
        let x0 = lo + k as f64 * width;
        let mid = x0 + width / 2.0;
        c.bar(x0, mid, n[k], plot::BLUE);
        c.bar(mid, x0 + width, a[k], plot::ORANGE);
    }
    c.vline(threshold as f64, plot::RED, "threshold");
    c.legend(&[("normal", plot::BLUE), ("anomalous", plot::ORANGE)]);
    c.img
}
