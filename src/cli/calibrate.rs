//! `lamp calibrate`: a trained model's threshold set anew from normal images, without training.

use super::args::choice;
use clap::Args;
use lamp::data::{self, inputs::expand_inputs, Source};
use lamp::detect::{Aggregate, Checkpoint, Detector, ScoreConfig, ThresholdMethod, SCORE_BATCH};
use lamp::device::Device;
use lamp::error::{Error, Result};
use lamp::model::Choice;
use std::path::PathBuf;

#[derive(Args)]
pub struct CalibrateArgs {
    /// Checkpoint written by `lamp train`.
    model: PathBuf,
    /// Normal images: files, folders of images (with their subfolders), or glob patterns (*, ?,
    /// [...], ** in any part of the path).
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Where to write the recalibrated checkpoint [default: over MODEL].
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// How the threshold is set [default: as the model was calibrated].
    #[arg(long, value_parser = choice::<ThresholdMethod>())]
    threshold: Option<ThresholdMethod>,
    /// Expected fraction of anomalies among the images (quantile method) [default: the model's].
    #[arg(long)]
    contamination: Option<f64>,
    /// k of the sigma method (threshold: mean + k standard deviations; 0 or more) [default: the
    /// model's].
    #[arg(long)]
    sigma_k: Option<f64>,
    /// Score images from now on by their mean error, the maximum of the smoothed anomaly map,
    /// or the mean of the map's top --top-k pixels (eval reports all three), and set the
    /// threshold for that score [default: as the model scores]. The training recipe
    /// (`lamp inspect --recipe`) keeps the one it was trained with.
    #[arg(long, value_parser = choice::<Aggregate>())]
    score_agg: Option<Aggregate>,
    /// The fraction of pixels --score-agg topk averages [default: the model's].
    #[arg(long)]
    top_k: Option<f64>,
    /// on: set the normal map (the images' mean anomaly map, which maps and scores then count
    /// only what lies above) from these images too; off: score maps as they are [default: on
    /// where the model has one]. For a model trained on patches, the edge profile instead.
    #[arg(long, value_parser = ["on", "off"])]
    normal_map: Option<String>,
    /// Skip images that cannot be read (with a warning and a count) instead of stopping.
    #[arg(long)]
    skip_bad: bool,
}

pub fn run(adapter: Option<&str>, a: CalibrateArgs) -> Result<()> {
    let ck = Checkpoint::load_to_recalibrate(&a.model)?;
    let (_, old) = ck.trained(&a.model)?;
    let method = a.threshold.unwrap_or(old.method);
    let contamination = a.contamination.unwrap_or(old.contamination);
    let k = a.sigma_k.unwrap_or(old.k);
    // The values given first; then the model's own, which a lamp before these checks may have
    // written out of range: said as the model's.
    use lamp::detect::Calibration;
    Calibration::check(
        method,
        a.contamination.unwrap_or(0.01),
        a.sigma_k.unwrap_or(3.0),
    )?;
    Calibration::check(method, contamination, k).map_err(|e| {
        Error::file(
            &a.model,
            format!("its calibration: {e}; give a value of your own"),
        )
    })?;
    // The score's settings, checked before any image is read.
    let was: ScoreConfig = ck.meta("score").unwrap_or_default();
    let aggregate = a.score_agg.unwrap_or(was.aggregate);
    if a.top_k.is_some() && aggregate != Aggregate::Topk {
        return Err(Error::setting(
            "top_k",
            match a.score_agg {
                Some(g) => format!("applies to --score-agg topk only, not to {}", g.name()),
                None => format!(
                    "applies to --score-agg topk only; this model scores by the {}",
                    was.describe_aggregate()
                ),
            },
        ));
    }
    let now = ScoreConfig {
        aggregate,
        top_k: a.top_k.unwrap_or(was.top_k),
        ..was
    };
    now.check()?;
    let paths = expand_inputs(&a.inputs, a.skip_bad)?;
    if let Some(out) = &a.out {
        super::args::check_not_an_input(out, "--out", &paths)?;
    }
    refuse_defects(&paths)?;
    let learnt = in_training_folder(&ck, &paths);
    if let Some((n, dirs)) = &learnt {
        let what = format!(
            "{n} of these {} {} in {}, the folder{} the model was trained on: a model scores \
             images it has learnt lower than new ones, so the threshold would come out too low",
            lamp::error::count(paths.len() as u64, "image"),
            if *n == 1 { "is" } else { "are" },
            dirs.join(", "),
            if dirs.len() == 1 { "" } else { "s" },
        );
        if a.out.is_none() {
            // Nothing lost: the model's own threshold stays unless the user asks for a copy.
            return Err(Error::file(
                &a.model,
                format!(
                    "{what}; calibrate on normal images it has not seen (or write the result \
                     elsewhere with --out)"
                ),
            ));
        }
        lamp::sayln!("lamp: warning: {what}; calibrate on normal images it has not seen");
    }
    let arch = ck.arch.clone();
    let (images, skipped) =
        data::load_images_skipping(&paths, arch.channels, ck.image_size(), a.skip_bad)
            .map_err(super::args::with_skip_bad_hint)?;
    for e in &skipped {
        lamp::sayln!("lamp: warning: skipped {e}");
    }
    if !skipped.is_empty() {
        let n = super::count(skipped.len() as u64, "unreadable image");
        lamp::sayln!("lamp: skipped {n}");
    }
    let mut ck = ck;
    let folders = lamp::fsutil::folders_of(paths.iter().map(PathBuf::as_path));
    ck.metadata.insert(
        super::run_files::CALIBRATION_FOLDERS.into(),
        serde_json::to_string(&folders).unwrap_or_default(),
    );
    let device = Device::shared(adapter)?;
    let had_normal = ck.counted_against().is_some();
    let mut det = Detector::from_checkpoint(device, ck, &a.model, SCORE_BATCH)?;
    if let Some(on) = &a.normal_map {
        det.use_normal_map(on == "on");
    }
    let changed = (now.aggregate, now.top_k) != (was.aggregate, was.top_k);
    if changed {
        det.set_score(now.aggregate, now.top_k)?;
    }
    // A shell's expansion can name thousands of files: the first few, and how many.
    let named = match a.inputs.len() {
        n if n > 4 => format!("{} … ({n} inputs)", a.inputs[..3].join(" ")),
        _ => a.inputs.join(" "),
    };
    let source = format!("recalibrated on {named}");
    det.recalibrate(&images.samples, method, contamination, k, &source)?;
    let out = a.out.as_ref().unwrap_or(&a.model);
    det.save(out)?;
    let c = det.calibration();
    // The normal map changes the maps, and with them max/topk scores and pixel metrics: say so.
    let what = match det.checkpoint().edge_profile {
        Some(_) => "edge profile",
        None => "normal map",
    };
    let normal = match (had_normal, det.checkpoint().counted_against().is_some()) {
        (_, true) if c.count >= 2 => format!(
            "; {what} set anew from these images (maps change with it, and so do `max` and \
             `topk` scores)"
        ),
        (true, false) => "; maps scored as they are from now on".to_string(),
        (false, false) if a.normal_map.as_deref() == Some("on") => {
            "; no normal map set: it takes two images or more (a patch model's edge profile, \
             images of 3 windows a side or more too)"
                .to_string()
        }
        _ => String::new(),
    };
    let score = if changed {
        format!(
            " for the score {} (was {}, {:.6})",
            now.describe_aggregate(),
            was.describe_aggregate(),
            old.threshold
        )
    } else {
        format!(" (was {:.6})", old.threshold)
    };
    lamp::sayln!(
        "lamp: threshold {:.6}{score}, pixel threshold {:.6} (was {:.6}); {} from {}{normal}; \
         wrote {}",
        c.threshold,
        c.pixel_threshold,
        old.pixel_threshold,
        c.method.name(),
        super::count(c.count as u64, "image"),
        out.display()
    );
    for w in det.warnings() {
        lamp::sayln!("lamp: warning: {}", super::warning_text(w));
    }
    Ok(())
}

/// Refuses images that the MVTec AD layout labels as defects (`test/<defect>/`): a threshold
/// set from them lets defects pass (a folder named whole, `parts` or `parts/test`, holds them).
fn refuse_defects(paths: &[PathBuf]) -> Result<()> {
    let defects = data::inputs::defect_folders(paths);
    let Some((first, _)) = defects.first() else {
        return Ok(());
    };
    let n: usize = defects.iter().map(|(_, n)| n).sum();
    let folders: Vec<String> = defects
        .iter()
        .take(4)
        .map(|(d, _)| lamp::fsutil::path_text(d))
        .collect();
    let more = if defects.len() > 4 { ", …" } else { "" };
    let good = first.with_file_name("good");
    Err(Error::file(
        first,
        format!(
            "{n} of these {} {} in folders of defects ({}{more}): a threshold is set from \
             normal images only; calibrate on normal images instead, e.g. {} (ones the model \
             has not been trained on)",
            lamp::error::count(paths.len() as u64, "image"),
            if n == 1 { "lies" } else { "lie" },
            folders.join(", "),
            lamp::fsutil::path_text(&good)
        ),
    ))
}

/// How many of `paths` lie in a folder the model was trained on, and the folders they lie in:
/// those its checkpoint recorded (`training_folders`; before, `data_dir`), or for older
/// checkpoints its `data` where that is an absolute path. Training reads a folder's images, not
/// its subfolders' (unless it holds none: then `training_folders` names the subfolders).
fn in_training_folder(ck: &Checkpoint, paths: &[PathBuf]) -> Option<(usize, Vec<String>)> {
    let recorded: Option<Vec<String>> = ck
        .metadata
        .get(super::run_files::TRAINING_FOLDERS)
        .and_then(|j| serde_json::from_str(j).ok());
    if let Some(folders) = recorded {
        let (n, which) = lamp::fsutil::lying_in(paths.iter().map(PathBuf::as_path), &folders);
        return (n > 0).then_some((n, which));
    }
    let dir = match ck.metadata.get("data_dir") {
        Some(d) => d.clone(),
        None => {
            let dir = Source::parse(ck.metadata.get("data")?, None)
                .ok()?
                .training_folder()?;
            let dir = dir.is_absolute().then_some(dir)?.canonicalize().ok()?;
            dir.to_string_lossy().into_owned()
        }
    };
    let (n, _) = lamp::fsutil::lying_in(
        paths.iter().map(PathBuf::as_path),
        std::slice::from_ref(&dir),
    );
    (n > 0).then_some((n, vec![dir]))
}
