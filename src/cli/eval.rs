//! `lamp eval` (metrics and pictures on labelled test data) and `lamp demo` (train and evaluate
//! on the Fashion-MNIST subset built into lamp).

use super::progress::progress_printer;
use super::run_files::save_model;
use clap::Args;
use lamp::data::{self, demo, Source, TestSet};
use lamp::detect::{
    self, eval, Aggregate, Checkpoint, Detector, FitOptions, ThresholdMethod, TrainConfig,
};
use lamp::device::Device;
use lamp::error::{Error, Result};
use lamp::model::{Arch, Choice, LossConfig, Schedule};
use lamp::render::eval_report::{self, Labels};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
pub struct EvalArgs {
    /// Checkpoint written by `lamp train`.
    model: PathBuf,
    /// An MVTec AD category folder, or fashion-mnist:C.
    data: String,
    /// Report folder.
    #[arg(short, long)]
    out: PathBuf,
    /// Folder of the Fashion-MNIST IDX files (for fashion-mnist:C data).
    #[arg(long)]
    idx_dir: Option<PathBuf>,
    /// Heat-map panels of the highest-scored images (and up to as many false alarms, missed
    /// anomalies and sampled images).
    #[arg(long, value_parser = super::args::whole::<usize>, default_value_t = 8)]
    panels: usize,
    /// Images scored per launch (fewer where the device cannot hold them).
    #[arg(long, value_parser = super::args::whole::<usize>, default_value_t = 256)]
    batch: usize,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Where to put the model and the report.
    #[arg(short, long, default_value = "lamp-demo")]
    out: PathBuf,
    /// Training epochs over the demo's images.
    #[arg(long, value_parser = super::args::whole::<u32>, default_value_t = 8)]
    epochs: u32,
}

pub fn eval(adapter: Option<&str>, a: EvalArgs) -> Result<()> {
    if a.batch == 0 {
        return Err(Error::setting("batch", "must be at least 1"));
    }
    if a.out.is_file() {
        return Err(Error::file(
            &a.out,
            "is a file: --out names the folder the report is written to",
        ));
    }
    let ck = Checkpoint::load(&a.model, None)?;
    ck.trained(&a.model)?;
    let src = Source::parse(&a.data, a.idx_dir.as_deref())?;
    if let Source::Mvtec(root) = &src {
        let what = "the report's pictures";
        super::args::check_not_inside(&a.out, "--out", &[root], false, what)?;
    }
    let test = data::load_test(&src, ck.arch.channels, ck.image_size())?;
    // Test images the threshold was set on make its precision and recall look better.
    let calibrated_on: Vec<String> = ck
        .metadata
        .get(super::run_files::CALIBRATION_FOLDERS)
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    let (n_seen, seen) =
        lamp::fsutil::lying_in(test.data.names.iter().map(Path::new), &calibrated_on);
    let device = Device::shared(adapter)?;
    let batch = a.batch.clamp(1, test.data.len().max(1));
    let det = Detector::from_checkpoint(device, ck, &a.model, batch)?;
    let calibration_images = det.calibration().count as u64;
    // The report's warnings about the model, on the terminal too.
    for c in model_checks(det.checkpoint()) {
        lamp::sayln!("lamp: warning: {c}");
    }
    // Said after the figures on the terminal, and at the top of the report with the checks.
    // The normal map (or a patch model's edge profile) comes from the same images as the
    // threshold, and every map subtracts it: then AUROC depends on them too.
    let normal = det.checkpoint().counted_against().is_some();
    let what = match det.checkpoint().edge_profile {
        Some(_) => "edge profile",
        None => "normal map",
    };
    let overlap = (n_seen > 0).then(|| {
        format!(
            "{n_seen} of these test images lie in {}, where the model's threshold was set: the \
             precision, recall and F1 at the calibrated threshold are optimistic {}; \
             recalibrate on other normal images",
            seen.join(", "),
            match normal {
                true => format!(
                    "and so may be the AUROC and F1-max (the {what} that every map is measured \
                     against came from those images too)"
                ),
                false => "(AUROC and F1-max do not depend on it)".into(),
            }
        )
    });
    // Test images that are not square, or far from the model's size, as `score` says of them.
    let patched = det
        .checkpoint()
        .meta::<lamp::detect::Patches>("patch")
        .is_some();
    let shapes = test_image_checks(&test, det.image_size(), patched);
    for w in &shapes {
        lamp::sayln!("lamp: warning: {w}");
    }
    let extra: Vec<String> = shapes.into_iter().chain(overlap.clone()).collect();
    let model = a.model.display().to_string();
    let (m, better) = evaluate(det, &test, &model, &a.data, &a.out, a.panels, extra)?;
    let pixel = if test.masks.is_some() {
        fmt_opt(&m["pixel_auroc"])
    } else if matches!(src, Source::Mvtec(_)) {
        "n/a (pixel metrics need ground_truth/ masks)".into()
    } else {
        "n/a (no masks in this data set)".into()
    };
    let cal = &m["calibrated"];
    let n = |k: &str| cal[k].as_u64().unwrap_or(0);
    let (tp, fp, fn_, tn) = (
        n("true_positives"),
        n("false_positives"),
        n("false_negatives"),
        n("true_negatives"),
    );
    // F1-max beside what flagging every image scores, which is high where most are anomalous.
    let anomalies = tp + fn_;
    let all_flagged = 2.0 * anomalies as f64 / (2 * anomalies + fp + tn).max(1) as f64;
    outln!(
        "image AUROC {}  pixel AUROC {pixel}  F1-max {} (flagging every image: {all_flagged:.4})  \
         -> {}",
        if m["image_auroc"].is_null() {
            "n/a (needs normal and anomalous test images)".into()
        } else {
            fmt_opt(&m["image_auroc"])
        },
        fmt_opt(&m["f1_max"]),
        a.out.join("report.html").display()
    )?;
    outln!(
        "at the calibrated threshold {:.6}: precision {}  recall {}  ({tp} of {} anomalies \
         flagged, {} among {} normal images)",
        cal["threshold"].as_f64().unwrap_or(f64::NAN),
        fmt_opt(&cal["precision"]),
        fmt_opt(&cal["recall"]),
        tp + fn_,
        super::count(fp, "false alarm"),
        fp + tn
    )?;
    // A quantile of a few normal images' scores is about their highest: a threshold that
    // misses most anomalies which the scores separate. Say how to lower it, by the rule in use.
    let recall = cal["recall"].as_f64().unwrap_or(1.0);
    if recall < 0.5 && fp + tn > 0 {
        let contamination = cal["contamination"].as_f64().unwrap_or(0.0);
        let (rule, lower) = if cal["method"] == "sigma" {
            (
                "at mean + k·σ of".to_string(),
                "--sigma-k 2 (or --threshold quantile --contamination 0.05)".to_string(),
            )
        } else {
            (
                format!(
                    "so that about {:.1}% of normal images are flagged, from",
                    100.0 * contamination
                ),
                format!("--contamination {:.2}", (2.0 * contamination).max(0.05)),
            )
        };
        lamp::sayln!(
            "lamp: note: the threshold flags {tp} of {} anomalies: it was set {rule} the scores \
             of {} (with few images, about their highest). Trading false alarms for recall, \
             without training: lamp calibrate {} NORMAL_IMAGES {lower} --out NEW_MODEL",
            tp + fn_,
            super::count(calibration_images, "normal image"),
            a.model.display()
        );
    }
    if let Some(w) = overlap {
        lamp::sayln!("lamp: warning: {w}");
    }
    if let Some(n) = better {
        lamp::sayln!("lamp: note: {n}");
    }
    Ok(())
}

/// Another way of scoring that separates the test images clearly better than the model's
/// `current` one, and how to use it (local defects often rank better by the map's worst region
/// than by the mean error).
fn better_score(
    by: &[(Aggregate, Option<f64>)],
    current: Aggregate,
    model: &str,
) -> Option<String> {
    let now = by.iter().find(|(g, _)| *g == current)?.1?;
    let (g, b) = by
        .iter()
        .filter_map(|&(g, v)| Some((g, v?)))
        .max_by(|x, y| x.1.total_cmp(&y.1))?;
    (b >= now + 0.02).then(|| {
        format!(
            "on these images the score `{}` separates better than the model's `{}` (image AUROC \
             {b:.4} against {now:.4}); to score by it without training: lamp calibrate {model} \
             NORMAL_IMAGES --score-agg {} --out NEW_MODEL, with normal images other than these \
             test images (the choice was made on them: confirm it on others)",
            g.name(),
            current.name(),
            g.name()
        )
    })
}

/// Evaluates `det` on `test` and writes the report into `out`; returns metrics.json's value and
/// the note on a better score (`better_score`), which the report carries too.
fn evaluate(
    mut det: Detector,
    test: &TestSet,
    model: &str,
    data: &str,
    out: &Path,
    panels: usize,
    extra: Vec<String>,
) -> Result<(serde_json::Value, Option<String>)> {
    // On a terminal, how far a long evaluation has got (scoring is most of its time).
    let tty = std::io::stderr().is_terminal() && test.data.len() > eval::PROGRESS_CHUNK;
    let ev = eval::evaluate_with_progress(&mut det, test, |done, total| {
        if tty {
            lamp::say!("\r  scored {done}/{total} images");
            if done == total {
                lamp::sayln!();
            }
        }
    })?;
    let (loss, cal) = (det.loss(), det.calibration().clone());
    let recipe = det.checkpoint().meta::<serde_json::Value>("train");
    let better = better_score(&ev.by_aggregate, det.score_config().aggregate, model);
    let labels = Labels {
        model,
        data,
        loss,
        recipe,
        score: *det.score_config(),
        counted: det.checkpoint().counted_against(),
        checks: model_checks(det.checkpoint())
            .into_iter()
            .chain(extra)
            .chain(better.clone())
            .collect(),
    };
    let m = eval_report::write(out, &ev, test, &cal, &labels, panels)?;
    Ok((m, better))
}

fn fmt_opt(v: &serde_json::Value) -> String {
    v.as_f64().map_or("n/a".into(), |x| format!("{x:.4}"))
}

pub fn demo(adapter: Option<&str>, a: DemoArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let data_dir = a.out.join("data");
    lamp::fsutil::ensure_dir(&data_dir)?;
    demo::write_files(&data_dir)?;
    let src = Source::parse("fashion-mnist:1", Some(&data_dir))?;
    let arch = Arch::fmnist_ae();
    let train = data::load_training(&src, 1, 28)?;
    let device: Arc<Device> = Device::shared(adapter)?;
    lamp::sayln!(
        "lamp demo: Fashion-MNIST class 1 (Trouser) is normal; training {} on {} images on {}",
        arch.name,
        train.len(),
        device.describe()
    );
    let opts = FitOptions {
        arch,
        loss: LossConfig::lamp(),
        train: TrainConfig {
            epochs: a.epochs,
            batch: 32,
            lr: 2e-3,
            seed: 0,
            schedule: Schedule::Constant,
            ..Default::default()
        },
        val_split: 0.1,
        threshold: ThresholdMethod::Quantile,
        contamination: 0.05,
        sigma_k: 3.0,
        log_every: 0,
        device_data_limit: 1 << 30,
        min_steps: 0,
        ..Default::default()
    };
    let (mut ck, reports) = detect::fit_on(
        device.clone(),
        &train,
        &opts,
        None,
        None,
        progress_printer(false, false),
    )?;
    ck.metadata.insert(
        "data".into(),
        "lamp demo (fashion-mnist-mini, class 1)".into(),
    );
    let model = a.out.join("model.safetensors");
    save_model(&ck, &reports, &model)?;
    let test = data::load_test(&src, 1, 28)?;
    let det = Detector::from_checkpoint(device, ck, &model, 200)?;
    let report_dir = a.out.join("report");
    let data_label = format!(
        "{} test images: 100 trousers (normal), 100 other garments",
        test.data.len()
    );
    let label = model.display().to_string();
    let (m, _) = evaluate(det, &test, &label, &data_label, &report_dir, 6, Vec::new())?;
    outln!(
        "lamp demo: image AUROC {} (F1-max {}) in {:.0} s. Report: {}",
        if m["image_auroc"].is_null() {
            "n/a (needs normal and anomalous test images)".into()
        } else {
            fmt_opt(&m["image_auroc"])
        },
        fmt_opt(&m["f1_max"]),
        t0.elapsed().as_secs_f64(),
        report_dir.join("report.html").display()
    )?;
    Ok(())
}

/// What the test images' headers say against the model: images stretched to its square, and
/// sizes far from its own (resized, their scores mean little), as `lamp score` warns.
fn test_image_checks(test: &TestSet, size: u32, patched: bool) -> Vec<String> {
    let paths: Vec<std::path::PathBuf> = test.data.names.iter().map(Into::into).collect();
    // (Fashion-MNIST's images are no files: nothing to say.)
    let Ok(s) = data::images::inspect(&paths, true) else {
        return Vec::new();
    };
    let mut checks = Vec::new();
    if let Some(first) = &s.first_not_square {
        let which = super::not_square(s.not_square, s.count, first);
        checks.push(format!(
            "{which} stretched to the model's {size}x{size} to be scored (maps included); crop \
             test images square to keep their proportions"
        ));
    }
    let far = |side| super::far_from_model(side, size, patched);
    if far(s.min_side) || far(s.max_side) {
        checks.push(format!(
            "test images of {} to {} px a side are resized to the model's {size}x{size}: the \
             scores of those half its size or less, or twice or more, mean little",
            s.min_side, s.max_side
        ));
    }
    checks
}

/// What training and calibration said about the model (`fit::warnings`, as `train` and
/// `calibrate` say it), for the report's reader: a model on the mean-image plateau or worse, a
/// threshold from few images.
fn model_checks(ck: &Checkpoint) -> Vec<String> {
    lamp::detect::fit::warnings(ck)
        .into_iter()
        .map(super::warning_text)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another score is pointed out (in the report too) where it separates 0.02 better.
    #[test]
    fn a_clearly_better_score_is_named() {
        let by = [
            (Aggregate::Mean, Some(0.80)),
            (Aggregate::Max, Some(0.85)),
            (Aggregate::Topk, Some(0.81)),
        ];
        let note = better_score(&by, Aggregate::Mean, "m.safetensors").unwrap_or_default();
        assert!(
            note.contains("`max`") && note.contains("lamp calibrate m.safetensors"),
            "{note}"
        );
        assert_eq!(better_score(&by, Aggregate::Max, "m"), None);
        assert!(better_score(&by, Aggregate::Topk, "m").is_some());
        let none = [(Aggregate::Mean, None), (Aggregate::Max, Some(0.9))];
        assert_eq!(better_score(&none, Aggregate::Mean, "m"), None);
    }

    /// A model far worse than the mean image is said to have diverged (eval called it one that
    /// learnt little, as of a model on the plateau); one on the plateau, that; a good one, nothing.
    #[test]
    fn model_checks_tell_a_diverged_model_from_one_on_the_plateau() {
        for (model_error, said) in [
            (0.0315, Some("diverged")),
            (0.009, Some("learnt little")),
            (0.004, None),
        ] {
            let mut ck = Checkpoint::new(Arch::fmnist_ae(), None, Vec::new());
            let h = serde_json::json!({"images": 40, "model_error": model_error, "mean_image_error": 0.01});
            ck.metadata.insert("held_out".into(), h.to_string());
            let checks = model_checks(&ck);
            match said {
                Some(words) => {
                    assert!(checks.len() == 1 && checks[0].contains(words), "{checks:?}")
                }
                None => assert!(checks.is_empty(), "{checks:?}"),
            }
        }
    }
}
