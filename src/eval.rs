//! `lamp eval`: scores a labelled test set and writes metrics.json, roc.png, hist.png, heat-map
//! panels and report.md tying them together. Every file is written atomically.

use crate::data::TestSet;
use crate::engine::Engine;
use crate::error::Result;
use crate::fsutil::{ensure_dir, write_atomic};
use crate::kernels::LossConfig;
use crate::metrics;
use crate::plot::{self, Chart};
use crate::score::{self, Calibration};
use image::RgbImage;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Gaussian smoothing of pixel maps for pixel metrics and pictures (DESIGN §1).
pub const MAP_SIGMA: f32 = 4.0;

pub struct EvalInput<'a> {
    pub test: &'a TestSet,
    pub calibration: &'a Calibration,
    pub loss: LossConfig,
    pub model_label: String,
    pub data_label: String,
    /// Panels of the most anomalous-looking images, plus this many sampled ones.
    pub panels: usize,
}

/// Runs the evaluation and writes its files into `out`; returns metrics.json's value.
pub fn evaluate(e: &mut Engine, inp: &EvalInput, out: &Path) -> Result<serde_json::Value> {
    ensure_dir(out)?;
    let t = inp.test;
    let shape = t.data.shape;
    let (w, h) = (shape[2] as usize, shape[1] as usize);
    let (scores, recon) = score::score_with_recon(e, &t.data.samples)?;
    let labels = &t.anomalous;
    let cal = inp.calibration;
    let n = scores.len();
    let p = t.data.sample_len();

    let image_auroc = metrics::auroc(&scores, labels);
    let f1 = metrics::f1_max(&scores, labels);
    let (prec, rec, f1_cal) = metrics::precision_recall(&scores, labels, next_up(cal.threshold));
    let mut per_type = BTreeMap::new();
    let normal: Vec<usize> = (0..n).filter(|&i| !labels[i]).collect();
    let mut type_names: Vec<&String> = t.types.iter().collect();
    type_names.sort();
    type_names.dedup();
    for ty in type_names {
        let anom: Vec<usize> = (0..n).filter(|&i| labels[i] && &t.types[i] == ty).collect();
        if anom.is_empty() {
            continue;
        }
        let idx: Vec<usize> = normal.iter().chain(&anom).copied().collect();
        let s: Vec<f32> = idx.iter().map(|&i| scores[i]).collect();
        let l: Vec<bool> = idx.iter().map(|&i| labels[i]).collect();
        per_type.insert(
            ty.clone(),
            json!({ "count": anom.len(), "auroc": metrics::auroc(&s, &l) }),
        );
    }

    // Pixel maps (smoothed) for pixel metrics and pictures.
    let maps: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            let m = score::pixel_map(
                inp.loss.metric,
                shape,
                &t.data.samples[i * p..][..p],
                &recon[i * p..][..p],
            );
            score::smooth(&m, w, h, MAP_SIGMA)
        })
        .collect();
    let (mut pixel_auroc, mut aupro) = (None, None);
    if let Some(masks) = &t.masks {
        let all: Vec<f32> = maps.iter().flatten().copied().collect();
        let gt: Vec<bool> = masks.iter().flatten().copied().collect();
        pixel_auroc = metrics::auroc(&all, &gt);
        aupro = metrics::aupro(&maps, masks, w, h, 0.3);
    }

    let predicted = scores.iter().filter(|&&s| cal.is_anomalous(s)).count();
    let m = json!({
        "model": inp.model_label,
        "data": inp.data_label,
        "loss": inp.loss,
        "counts": { "images": n, "normal": normal.len(), "anomalous": n - normal.len(), "predicted_anomalous": predicted },
        "image_auroc": image_auroc,
        "pixel_auroc": pixel_auroc,
        "aupro_0.3": aupro,
        "f1_max": f1.map(|(f, _)| f),
        "f1_max_threshold": f1.map(|(_, t)| t),
        "calibrated": {
            "threshold": cal.threshold,
            "method": cal.method,
            "contamination": cal.contamination,
            "precision": prec, "recall": rec, "f1": f1_cal,
        },
        "per_type": per_type,
        "score_stats": {
            "normal_mean": metrics::mean_std(&normal.iter().map(|&i| scores[i]).collect::<Vec<_>>()).0,
            "anomalous_mean": metrics::mean_std(&(0..n).filter(|&i| labels[i]).map(|i| scores[i]).collect::<Vec<_>>()).0,
        },
    });
    write_atomic(
        &out.join("metrics.json"),
        serde_json::to_string_pretty(&m)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let mut csv = String::from("name,type,anomalous,score,normalised,verdict\n");
    for i in 0..n {
        csv += &format!(
            "{},{},{},{},{:.4},{}\n",
            t.data.names[i],
            t.types[i],
            labels[i] as u8,
            scores[i],
            cal.normalise(scores[i]),
            if cal.is_anomalous(scores[i]) {
                "anomalous"
            } else {
                "normal"
            }
        );
    }
    write_atomic(&out.join("scores.csv"), csv.as_bytes())?;

    write_atomic(
        &out.join("roc.png"),
        &score::png_bytes(&roc_chart(&scores, labels, image_auroc))?,
    )?;
    write_atomic(
        &out.join("hist.png"),
        &score::png_bytes(&histogram(&scores, labels, cal.threshold))?,
    )?;

    // Panels: the highest-scored images, then an evenly spaced sample of the rest.
    let panels_dir = out.join("panels");
    ensure_dir(&panels_dir)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let worst: Vec<usize> = order.iter().take(inp.panels).copied().collect();
    let step = (n / inp.panels.max(1)).max(1);
    let mut sample: Vec<usize> = Vec::new();
    for i in (0..n).step_by(step).chain(0..n) {
        if sample.len() == inp.panels.min(n - worst.len()) {
            break;
        }
        if !worst.contains(&i) && !sample.contains(&i) {
            sample.push(i);
        }
    }
    let vmax = cal.pixel_max.max(cal.pixel_threshold * 2.0).max(1e-6);
    let mut panel_files = Vec::new();
    for (kind, list) in [("worst", &worst), ("sample", &sample)] {
        for (rank, &i) in list.iter().enumerate() {
            let img = panel(
                &t.data.samples[i * p..][..p],
                shape,
                t.masks.as_ref().map(|m| m[i].as_slice()),
                &maps[i],
                vmax,
                cal.pixel_threshold,
            );
            let name = format!("{kind}_{rank:02}_{}.png", safe_name(&t.types[i]));
            write_atomic(&panels_dir.join(&name), &score::png_bytes(&img)?)?;
            panel_files.push((name, i));
        }
    }

    let mut md = format!(
        "# lamp evaluation\n\nModel: `{}`  \nData: `{}`  \nLoss: {}\n\n",
        inp.model_label, inp.data_label, inp.loss
    );
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.4}"));
    md += "| metric | value |\n|---|---|\n";
    md += &format!("| image AUROC | {} |\n", f(image_auroc));
    md += &format!("| pixel AUROC | {} |\n", f(pixel_auroc));
    md += &format!("| AUPRO (FPR ≤ 0.3) | {} |\n", f(aupro));
    md += &format!(
        "| F1-max (threshold {}) | {} |\n",
        f1.map_or("n/a".into(), |(_, t)| format!("{t:.5}")),
        f(f1.map(|(v, _)| v))
    );
    md += &format!(
        "| calibrated threshold {:.5} ({:?}, contamination {}) | precision {:.3}, recall {:.3}, F1 {:.3} |\n",
        cal.threshold, cal.method, cal.contamination, prec, rec, f1_cal
    );
    md += &format!(
        "| images (normal / anomalous / flagged) | {} / {} / {} |\n\n",
        normal.len(),
        n - normal.len(),
        predicted
    );
    md += "## Per type (each type's images against all normal ones)\n\n| type | images | AUROC |\n|---|---|---|\n";
    for (ty, v) in m["per_type"].as_object().into_iter().flatten() {
        md += &format!(
            "| {ty} | {} | {} |\n",
            v["count"],
            v["auroc"]
                .as_f64()
                .map_or("n/a".into(), |x| format!("{x:.4}"))
        );
    }
    md += "\n## ROC and score distributions\n\n![ROC](roc.png) ![histogram](hist.png)\n\n";
    md += "## Heat maps\n\nEach panel: image | ground truth (when the data has masks) | heat map | predicted region \
           (pixel map above the calibrated pixel threshold). Maps are the per-pixel error, Gaussian-smoothed (σ = 4 px).\n\n";
    for (name, i) in &panel_files {
        md += &format!(
            "- `{}` ({}, score {:.5}): ![](panels/{name})\n",
            t.data.names[*i], t.types[*i], scores[*i]
        );
    }
    md += "\nAll scores: `scores.csv`; all metrics: `metrics.json`.\n";
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    Ok(m)
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

/// image | ground truth | heat map | predicted region, each scaled to ~160 px, labelled.
pub fn panel(
    x: &[f32],
    shape: [u32; 3],
    gt: Option<&[bool]>,
    map: &[f32],
    vmax: f32,
    pixel_threshold: f32,
) -> RgbImage {
    let [_, h, w] = shape;
    let scale = (160 / h.max(w)).max(1);
    let (pw, ph) = (w * scale, h * scale);
    let mut tiles: Vec<(&str, RgbImage)> = vec![("image", score::to_rgb(x, shape, scale))];
    if let Some(gt) = gt {
        let g: Vec<f32> = gt.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
        tiles.push(("ground truth", score::to_rgb(&g, [1, h, w], scale)));
    }
    // One scale for normal-looking images (the calibration's), widened for images whose errors
    // exceed it so their structure stays visible; the colour bar says which.
    let vmax = vmax.max(map.iter().copied().fold(0.0, f32::max));
    let heat = score::heat(map, w, h, vmax, scale);
    let mut hm = RgbImage::from_pixel(pw + 56, ph, plot::WHITE);
    image::imageops::overlay(&mut hm, &heat, 0, 0);
    plot::colorbar(
        &mut hm,
        pw as i32 + 4,
        0,
        ph as i32,
        "0",
        &format!("{vmax:.3}"),
    );
    tiles.push(("heat map", hm));
    let mask: Vec<bool> = map.iter().map(|&v| v > pixel_threshold).collect();
    let mut pred = score::to_rgb(x, shape, scale);
    score::outline(&mut pred, &mask, w, h, scale, plot::RED);
    tiles.push(("predicted", pred));
    let gap = 8;
    let width: u32 = tiles.iter().map(|(_, t)| t.width() + gap).sum::<u32>() + gap;
    let mut out = RgbImage::from_pixel(width, ph + 28, plot::WHITE);
    let mut x0 = gap;
    for (label, t) in &tiles {
        image::imageops::overlay(&mut out, t, x0 as i64, 22);
        plot::text(&mut out, x0 as i32, 6, label, 1, plot::BLACK);
        x0 += t.width() + gap;
    }
    out
}
