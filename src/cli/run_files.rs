//! Where a training run's files go: the model with its loss curve beside it (never where its
//! images are read), the snapshots of an interrupted run, and the command that resumes one.

use lamp::data::{Source, Training};
use lamp::detect::fit::HeldOut;
use lamp::detect::{Checkpoint, EpochReport};
use lamp::error::Result;
use lamp::fsutil::write_atomic;
use lamp::render::loss_curve;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Checkpoint metadata of a colour model: how many of its training images were grey (`score`
/// warns about grey images only where there were none).
pub(crate) const GREY_IMAGES: &str = "grey_images";

/// Checkpoint metadata: the folders (resolved) of the training images, as a JSON list; `lamp
/// calibrate` refuses (or warns about) thresholds set on images there.
pub(crate) const TRAINING_FOLDERS: &str = "training_folders";

/// Checkpoint metadata: the folders (resolved) of the images the threshold was set on, as a JSON
/// list; `eval` warns when it is given some of them.
pub(crate) const CALIBRATION_FOLDERS: &str = "calibration_folders";

/// Refuses `out` where the training images are read (its loss curve would be read as one of
/// them the next time), and records in `metadata` where they are, wherever lamp runs later
/// (`lamp calibrate` and `eval` warn about thresholds set on images there).
pub fn place_beside_images(
    src: &Source,
    training: &Training,
    out: &Path,
    metadata: &mut BTreeMap<String, String>,
) -> Result<()> {
    // The folders the training images lie in: the folder named, or where it holds none, its
    // subfolders that do.
    let files = match training {
        Training::Files { files, .. } => files.as_slice(),
        Training::FashionMnist { .. } => &[],
    };
    let folders = lamp::fsutil::folders_of(files.iter().map(PathBuf::as_path));
    let curve = "the loss curve (a PNG) written beside the model";
    match src {
        // Training reads a folder's own images, not its subfolders', where it has some.
        Source::Folder(dir) => {
            let own = files.iter().all(|f| f.parent() == Some(dir.as_path()));
            super::args::check_not_inside(out, "--out", &[dir], own, curve)?
        }
        // Anywhere in a category: `lamp score CATEGORY` walks all of it.
        Source::Mvtec(root) => super::args::check_not_inside(out, "--out", &[root], false, curve)?,
        Source::FashionMnist { .. } => {}
    }
    if let Some(dir) = src.training_folder().and_then(|d| d.canonicalize().ok()) {
        metadata.insert("data_dir".into(), dir.to_string_lossy().into_owned());
        // The threshold comes from images of those folders (held out, or trained on).
        let folders = serde_json::to_string(&folders).unwrap_or_default();
        metadata.insert(TRAINING_FOLDERS.into(), folders.clone());
        metadata.insert(CALIBRATION_FOLDERS.into(), folders);
    }
    Ok(())
}

/// The checkpoint and, beside it, MODEL.loss.csv and MODEL.loss.png.
pub fn save_model(ck: &Checkpoint, reports: &[EpochReport], out: &Path) -> Result<()> {
    ck.save(out)?;
    // (A patch as large as the images is the whole image: no windows.)
    let windows = ck
        .meta::<lamp::detect::Patches>("patch")
        .is_some_and(|p| p.image > ck.arch.size);
    write_loss_curve(ck, reports, out, windows)
}

/// MODEL.loss.csv and MODEL.loss.png beside `out`, from the epochs of `reports`; `windows`: the
/// model trained on windows of larger images (`--patch`).
pub fn write_loss_curve(
    ck: &Checkpoint,
    reports: &[EpochReport],
    out: &Path,
    windows: bool,
) -> Result<()> {
    // Whole images only: with patches the per-epoch figure is of windows, the baseline of images.
    let mean_image = ck
        .meta::<HeldOut>("held_out")
        .filter(|_| !windows)
        .map(|h| (h.mean_image_error, h.on_training));
    let (csv, png) = loss_curve::loss_curve(reports, mean_image, windows)?;
    write_atomic(&sibling(out, "loss.csv"), &csv)?;
    write_atomic(&sibling(out, "loss.png"), &png)
}

/// Where a run's snapshots between epochs go: `model.safetensors` → `model.partial.safetensors`.
pub fn partial_path(out: &Path) -> PathBuf {
    sibling(out, "partial.safetensors")
}

/// The `--out` a snapshot belongs to (`model.partial.safetensors` → `model.safetensors`).
pub fn out_of_partial(p: &Path) -> PathBuf {
    match p.file_name().and_then(|n| n.to_str()) {
        Some(n) if n.ends_with(".partial.safetensors") => {
            p.with_file_name(n.replace(".partial.safetensors", ".safetensors"))
        }
        _ => p.to_path_buf(),
    }
}

/// `model.safetensors` → `model.<suffix>`.
pub fn sibling(p: &Path, suffix: &str) -> PathBuf {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    p.with_file_name(format!("{stem}.{suffix}"))
}

/// This process's own command line with `--resume` added: what continues an interrupted run
/// with the same options. Arguments are quoted for a POSIX shell where they need it.
pub fn resume_command(snapshot: &Path) -> String {
    let quote = |a: std::ffi::OsString| {
        let a = a.to_string_lossy().into_owned();
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c));
        if plain {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    };
    let args: Vec<String> = std::env::args_os().map(quote).collect();
    // A recipe read from a pipe (`--config <(...)`) is gone: name the one the snapshot keeps.
    if args
        .iter()
        .any(|a| a.starts_with("/dev/fd/") || a.starts_with("/proc/self/fd/"))
    {
        let exe = args.first().cloned().unwrap_or_else(|| "lamp".into());
        let snapshot = quote(snapshot.as_os_str().to_owned());
        return format!("{exe} train --config <({exe} inspect {snapshot} --recipe) --resume");
    }
    let mut args = args;
    if !args.iter().any(|a| a == "--resume") {
        args.push("--resume".into());
    }
    args.join(" ")
}
