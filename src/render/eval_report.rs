//! The files of `lamp eval`: metrics.json, scores.csv, roc.png, hist.png, heat-map panels (the
//! mistakes at the threshold, the highest-scored images, a sample), and report.md and report.html tying them together
//! (the HTML one self-contained: charts inline, panels embedded). The report is written whole
//! into a hidden folder and then moved into place.

use super::html::{self, Cell, Page};
use super::picture::{map_vmax, panel, png_bytes, Caption};
use super::score_charts::{histogram, roc_chart};
use crate::data::TestSet;
use crate::detect::eval::Evaluation;
use crate::detect::score::ScoreConfig;
use crate::detect::{metrics, Calibration};
use crate::error::{Error, Result};
use crate::fsutil::{ensure_dir, lock_exclusive, move_into, places_in, write_atomic};
use crate::model::{Choice, LossConfig};
use std::path::Path;

/// What the report says was evaluated.
pub struct Labels<'a> {
    pub model: &'a str,
    pub data: &'a str,
    pub loss: LossConfig,
    /// How the model was trained (the checkpoint's `train` metadata), where it says.
    pub recipe: Option<serde_json::Value>,
    /// How the model scores: aggregate, top-k fraction, the maps' smoothing σ in pixels.
    pub score: ScoreConfig,
    /// What maps are counted against, in words (Checkpoint::counted_against).
    pub counted: Option<&'static str>,
    /// Warnings about the model itself (training that stayed on the mean-image plateau, a
    /// threshold from few images), shown at the top of the reports.
    pub checks: Vec<String>,
}

/// How images are scored, in words.
pub fn describe_score(c: &ScoreConfig, counted: Option<&str>) -> String {
    let above = counted
        .map(|w| format!(", counted {w}"))
        .unwrap_or_default();
    let aligned = match c.align {
        0 => String::new(),
        r => format!("; images aligned to the training images' reference by up to {r} px"),
    };
    format!(
        "{}; maps smoothed with σ = {} px{above}{aligned}",
        c.describe_aggregate(),
        c.sigma
    )
}

/// The training recipe's main settings in one line, where the checkpoint has them.
fn describe_recipe(recipe: &serde_json::Value) -> Option<String> {
    let parts: Vec<String> = [
        ("epochs", "epochs"),
        ("batch", "batch"),
        ("lr", "learning rate"),
        ("schedule", "schedule"),
        ("init", "initial weights"),
    ]
    .iter()
    .filter_map(|(k, name)| {
        let v = &recipe[*k];
        (!v.is_null()).then(|| format!("{name} {}", v.to_string().trim_matches('"')))
    })
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Writes the report of `ev` on `t` into `out`, with up to `panels` panels of each kind
/// (`panel_picks`); returns metrics.json's value.
pub fn write(
    out: &Path,
    ev: &Evaluation,
    t: &TestSet,
    cal: &Calibration,
    labels: &Labels,
    panels: usize,
) -> Result<serde_json::Value> {
    ensure_dir(out)?;
    // Written whole into a hidden folder, then moved into place: a full disk or a killed run
    // leaves the report that was there, not half of a new one mixed with it.
    let _lock = lock_exclusive(&out.join("report"), "report folder")?;
    let stage = out.join(".report.partial");
    let _ = std::fs::remove_dir_all(&stage); // a killed run's
    let as_it_was = |e: Error| match e {
        Error::File { path, msg } => Error::file(
            &path,
            format!("{msg} (the report in {} is left as it was)", out.display()),
        ),
        e => e,
    };
    let written = write_files(&stage, ev, t, cal, labels, panels).map_err(as_it_was);
    let placed = written.and_then(|m| Ok((m, places_in(&stage, out).map_err(as_it_was)?)));
    let moved = placed.and_then(|(m, files)| {
        move_into(&stage, out, &files).map_err(|e| {
            Error::invalid(format!(
                "{e} (the report in {} is partly replaced: run lamp eval again)",
                out.display()
            ))
        })?;
        // Panels of the report before whose names the new one does not use.
        remove_old_panels(&out.join("panels"), &files)?;
        Ok(m)
    });
    let _ = std::fs::remove_dir_all(&stage);
    moved
}

fn write_files(
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
        &png_bytes(&roc_chart(scores, &t.anomalous, ev.image_auroc).png()?)?,
    )?;
    write_atomic(
        &out.join("hist.png"),
        &png_bytes(&histogram(scores, &t.anomalous, cal.threshold, &labels.score).png()?)?,
    )?;
    write_panels_and_md(out, ev, t, cal, labels, panels)?;
    Ok(m)
}

/// The kinds of panels, in `panel_picks`' order.
const PANEL_KINDS: [&str; 4] = ["false_alarm", "missed", "worst", "sample"];

/// Which images get panels, up to `panels` of each kind, each image once (the first kind that
/// takes it): the mistakes at the calibrated threshold (`verdicts`), what a quality engineer
/// looks at first — normal images called anomalous, highest score first, and anomalies called
/// normal, lowest first — then the highest-scored of the others, then an evenly spaced sample.
pub fn panel_picks(
    scores: &[f32],
    anomalous: &[bool],
    verdicts: &[bool],
    panels: usize,
) -> [Vec<usize>; 4] {
    let n = scores.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut taken = vec![false; n];
    let mut pick = |candidates: &mut dyn Iterator<Item = usize>| -> Vec<usize> {
        let mut chosen = Vec::new();
        for i in candidates {
            if chosen.len() == panels {
                break;
            }
            // Marked as taken at once: a candidate list may name an image twice.
            if !std::mem::replace(&mut taken[i], true) {
                chosen.push(i);
            }
        }
        chosen
    };
    let false_alarms = pick(
        &mut order
            .iter()
            .copied()
            .filter(|&i| !anomalous[i] && verdicts[i]),
    );
    let missed = pick(
        &mut order
            .iter()
            .rev()
            .copied()
            .filter(|&i| anomalous[i] && !verdicts[i]),
    );
    let worst = pick(&mut order.iter().copied());
    let step = (n / panels.max(1)).max(1);
    let sample = pick(&mut (0..n).step_by(step).chain(0..n));
    [false_alarms, missed, worst, sample]
}

/// Removes the panels a report written before left in `panels_dir` that are not among `kept`
/// (the new report's files, relative to the report folder), keeping any other file.
fn remove_old_panels(panels_dir: &Path, kept: &[std::path::PathBuf]) -> Result<()> {
    let unreadable = |e: std::io::Error| Error::file(panels_dir, format!("cannot read: {e}"));
    let entries = match std::fs::read_dir(panels_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r.map_err(unreadable)?,
    };
    for e in entries {
        let p = e.map_err(unreadable)?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let ours = name.is_some_and(|n| {
            n.ends_with(".png") && PANEL_KINDS.iter().any(|k| n.starts_with(&format!("{k}_")))
        });
        let new = p
            .file_name()
            .is_some_and(|n| kept.iter().any(|k| k == &Path::new("panels").join(n)));
        if ours && !new {
            let _ = std::fs::remove_file(&p);
        }
    }
    Ok(())
}

fn write_panels_and_md(
    out: &Path,
    ev: &Evaluation,
    t: &TestSet,
    cal: &Calibration,
    labels: &Labels,
    panels: usize,
) -> Result<()> {
    let (scores, shape) = (&ev.scores, t.data.shape);
    let panels_dir = out.join("panels");
    ensure_dir(&panels_dir)?;
    let verdicts: Vec<bool> = scores.iter().map(|&s| cal.is_anomalous(s)).collect();
    let picks = panel_picks(scores, &t.anomalous, &verdicts, panels);
    // One colour scale for every panel of the report.
    let vmax = map_vmax(cal);
    let mut panel_files = Vec::new();
    for (kind, list) in PANEL_KINDS.iter().zip(&picks) {
        for (rank, &i) in list.iter().enumerate() {
            let caption = Caption {
                name: &t.data.names[i],
                kind: &t.types[i],
                score: scores[i],
                normalised: cal.normalise(scores[i]),
                anomalous: cal.is_anomalous(scores[i]),
            };
            let img = panel(
                t.data.sample(i),
                shape,
                t.masks.as_ref().map(|m| m[i].as_slice()),
                &ev.maps[i],
                vmax,
                cal.pixel_threshold,
                &caption,
            );
            let name = format!("{kind}_{rank:02}_{}.png", safe_name(&t.types[i]));
            let png = png_bytes(&img)?;
            write_atomic(&panels_dir.join(&name), &png)?;
            panel_files.push((name, i, png));
        }
    }
    let report = Report {
        ev,
        t,
        cal,
        labels,
        vmax,
    };
    write_atomic(
        &out.join("report.md"),
        report.markdown(&panel_files).as_bytes(),
    )?;
    let charts = [
        roc_chart(scores, &t.anomalous, ev.image_auroc).svg()?,
        histogram(scores, &t.anomalous, cal.threshold, &labels.score).svg()?,
    ];
    write_atomic(
        &out.join("report.html"),
        report.html(&charts, &panel_files).as_bytes(),
    )
}

/// What both reports (Markdown and HTML) say, row by row.
struct Report<'a> {
    ev: &'a Evaluation,
    t: &'a TestSet,
    cal: &'a Calibration,
    labels: &'a Labels<'a>,
    vmax: f32,
}

/// A panel written: its file name, the image's index and the PNG bytes.
type PanelFile = (String, usize, Vec<u8>);

fn num(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |x| format!("{x:.4}"))
}

impl Report<'_> {
    /// (metric, value) rows of the summary table.
    fn summary(&self) -> Vec<(String, String)> {
        let (ev, cal) = (self.ev, self.cal);
        let (prec, rec, f1_cal) = ev.calibrated;
        let mut rows = vec![("image AUROC".to_string(), num(ev.image_auroc))];
        // The same figures as metrics.json's.
        let (scores, anomalous) = (&ev.scores, &self.t.anomalous);
        let ap = crate::detect::metrics::average_precision(scores, anomalous);
        rows.push(("image average precision".into(), num(ap)));
        for fpr in [0.01, 0.05] {
            let tpr = crate::detect::metrics::tpr_at_fpr(scores, anomalous, fpr);
            rows.push((
                format!("recall at a {:.0}% false-alarm rate", 100.0 * fpr),
                num(tpr),
            ));
        }
        if ev.has_masks {
            rows.push(("pixel AUROC".into(), num(ev.pixel_auroc)));
            rows.push(("AUPRO (FPR ≤ 0.3)".into(), num(ev.aupro)));
        } else {
            rows.push((
                "pixel AUROC, AUPRO".into(),
                "n/a: the test data has no ground-truth masks (ground_truth/)".into(),
            ));
        }
        for (agg, v) in &ev.by_aggregate {
            rows.push((format!("image AUROC, score = {}", agg.describe()), num(*v)));
        }
        rows.push((
            format!(
                "F1-max (threshold {})",
                ev.f1_max.map_or("n/a".into(), |(_, t)| format!("{t:.5}"))
            ),
            num(ev.f1_max.map(|(v, _)| v)),
        ));
        let at_threshold = if ev.predicted == 0 {
            format!("nothing flagged: precision undefined, recall {rec:.3}")
        } else {
            format!("precision {prec:.3}, recall {rec:.3}, F1 {f1_cal:.3}")
        };
        rows.push((
            format!(
                "calibrated threshold {:.5} ({}, contamination {}; from {})",
                cal.threshold,
                cal.method.name(),
                cal.contamination,
                cal.images()
            ),
            at_threshold,
        ));
        rows.push((
            "images (normal / anomalous / flagged)".into(),
            format!("{} / {} / {}", ev.normal, ev.anomalous, ev.predicted),
        ));
        rows
    }

    /// (type, images, AUROC, pixel AUROC) rows.
    fn per_type(&self) -> Vec<[String; 4]> {
        self.ev
            .per_type
            .iter()
            .map(|(ty, m)| {
                [
                    ty.clone(),
                    m.count.to_string(),
                    num(m.auroc),
                    num(m.pixel_auroc),
                ]
            })
            .collect()
    }

    fn panels_text(&self) -> String {
        // The panels show a few of each kind; say how many mistakes there are in all.
        let [_, false_alarms, _, missed] =
            metrics::confusion(&self.ev.scores, &self.t.anomalous, self.cal.threshold);
        format!(
            "Panels: `false_alarm_*` normal images above the threshold (highest first) and \
             `missed_*` anomalies below it (lowest first), the mistakes at the calibrated \
             threshold ({} and {} in all; every image's verdict is in `scores.csv`); \
             `worst_*` the highest-scored of the other images; `sample_*` others, \
             evenly spaced. Each image appears once. Each \
             panel: image | ground truth (when the data has masks) | heat map | predicted \
             region (pixel map above the pixel threshold {:.5}, set by the threshold's rule on \
             the calibration images' highest pixels, so that a normal image seldom shows one), \
             under the image's score and verdict. Maps are the per-pixel error, \
             Gaussian-smoothed (σ = {} px){}. Every heat map uses one colour scale: 0 (near \
             black) through blue, green and yellow to {:.4} (dark red), the largest smoothed pixel value of the calibration \
             images (at least twice the pixel threshold); larger values are drawn dark red.",
            crate::error::count(false_alarms as u64, "false alarm"),
            match missed {
                1 => "1 missed anomaly".to_string(),
                n => format!("{n} missed anomalies"),
            },
            self.cal.pixel_threshold,
            self.labels.score.sigma,
            self.labels
                .counted
                .map(|w| format!(", counted {w}; 0 where below"))
                .unwrap_or_default(),
            self.vmax
        )
    }

    fn markdown(&self, panels: &[PanelFile]) -> String {
        let l = self.labels;
        let mut md = format!(
            "# lamp evaluation\n\nModel: `{}`  \nData: `{}`  \nLoss: {}  \nScore: {}  \n",
            l.model,
            l.data,
            l.loss,
            describe_score(&l.score, l.counted)
        );
        if let Some(r) = l.recipe.as_ref().and_then(describe_recipe) {
            md += &format!("Training: {r}  \n");
        }
        md += "\n";
        for c in &l.checks {
            md += &format!("> **Warning:** {c}\n\n");
        }
        md += "| metric | value |\n|---|---|\n";
        for (k, v) in self.summary() {
            md += &format!("| {k} | {v} |\n");
        }
        md += "\n## Per type (each type's images against all normal ones)\n\n| type | images | AUROC | pixel AUROC |\n|---|---|---|---|\n";
        for r in self.per_type() {
            md += &format!("| {} |\n", r.join(" | "));
        }
        md += "\n## ROC and score distributions\n\n![ROC](roc.png) ![histogram](hist.png)\n\n";
        if !panels.is_empty() {
            md += &format!("## Heat maps\n\n{}\n\n", self.panels_text());
        }
        for (name, i, _) in panels {
            md += &format!(
                "- `{}` ({}, score {:.5}): ![](panels/{name})\n",
                self.t.data.names[*i], self.t.types[*i], self.ev.scores[*i]
            );
        }
        md += "\nAll scores: `scores.csv`; all metrics: `metrics.json`; this report as a web \
               page: `report.html`.\n";
        md
    }

    fn html(&self, charts: &[String], panels: &[PanelFile]) -> String {
        let l = self.labels;
        let mut page = Page::new("lamp evaluation");
        let mut about = vec![
            vec![Cell::Text("model".into()), Cell::Text(l.model.into())],
            vec![Cell::Text("data".into()), Cell::Text(l.data.into())],
            vec![Cell::Text("loss".into()), Cell::Text(l.loss.to_string())],
            vec![
                Cell::Text("score".into()),
                Cell::Text(describe_score(&l.score, l.counted)),
            ],
        ];
        if let Some(r) = l.recipe.as_ref().and_then(describe_recipe) {
            about.push(vec![Cell::Text("training".into()), Cell::Text(r)]);
        }
        page.table(&[], &about);
        for c in &l.checks {
            page.raw(&format!(
                "<p class=\"warn\"><b>Warning:</b> {}</p>",
                html::escape(c)
            ));
        }
        page.begin_row();
        page.h2("Metrics");
        let rows: Vec<Vec<Cell>> = self
            .summary()
            .into_iter()
            .map(|(k, v)| vec![Cell::Text(k), Cell::Number(v)])
            .collect();
        page.table(&["metric", "value"], &rows);
        page.next_in_row();
        page.h2("Per type (each type's images against all normal ones)");
        let rows: Vec<Vec<Cell>> = self
            .per_type()
            .into_iter()
            .map(|[a, b, c, d]| {
                vec![
                    Cell::Text(a),
                    Cell::Number(b),
                    Cell::Number(c),
                    Cell::Number(d),
                ]
            })
            .collect();
        page.table(&["type", "images", "AUROC", "pixel AUROC"], &rows);
        page.end_group();
        page.h2("ROC and score distributions");
        page.charts(charts);
        // (--panels 0: no section)
        if !panels.is_empty() {
            page.h2("Heat maps");
            page.p(&self.panels_text().replace('`', ""));
            page.begin_pictures();
            // The panel's own header names the image and gives its score and verdict.
            for (name, i, png) in panels {
                let caption = format!("<code>panels/{}</code>", html::escape(name));
                page.figure(png, &self.t.data.names[*i], &caption);
            }
            page.end_pictures();
        }
        page.raw(
            "<p class=\"note\">All scores: <code>scores.csv</code>; all metrics: \
             <code>metrics.json</code>. Written by lamp.</p>",
        );
        page.finish()
    }
}

fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_show_the_mistakes_first_and_each_image_once() {
        // Scores 0.9, 0.8, ... 0.0; anomalies at 0, 2, 8, 9; called anomalous above 0.45.
        let scores: Vec<f32> = (0..10).map(|i| 0.9 - 0.1 * i as f32).collect();
        let anomalous: Vec<bool> = (0..10).map(|i| [0, 2, 8, 9].contains(&i)).collect();
        let verdicts: Vec<bool> = scores.iter().map(|&s| s > 0.45).collect();
        let [false_alarms, missed, worst, sample] = panel_picks(&scores, &anomalous, &verdicts, 2);
        assert_eq!(
            false_alarms,
            vec![1, 3],
            "normal and called anomalous, highest first"
        );
        assert_eq!(
            missed,
            vec![9, 8],
            "anomalous and called normal, lowest first"
        );
        assert_eq!(worst, vec![0, 2], "the highest-scored of the rest");
        assert_eq!(
            sample,
            vec![5, 4],
            "evenly spaced (every 5th), then the first free"
        );
        // No mistakes: the highest-scored, then the sample, as before.
        let right: Vec<bool> = anomalous.clone();
        let [f, m, w, s] = panel_picks(&scores, &anomalous, &right, 3);
        assert!(f.is_empty() && m.is_empty());
        assert_eq!((w, s), (vec![0, 1, 2], vec![3, 6, 9]));
        // Every 2nd finds 3 free images; the 4th comes from the walk in order, which passes 4
        // again: never one image twice (it did: [4, 6, 8, 4]).
        let [_, _, w, s] = panel_picks(&scores, &anomalous, &right, 4);
        assert_eq!((w, s), (vec![0, 1, 2, 3], vec![4, 6, 8, 5]));
    }
}
