//! Where a training run's files go: the model with its loss curve beside it, the snapshots of
//! an interrupted run, and the command that resumes one.

use lamp::detect::fit::HeldOut;
use lamp::detect::{Checkpoint, EpochReport};
use lamp::error::Result;
use lamp::fsutil::write_atomic;
use lamp::render::loss_curve;
use std::path::{Path, PathBuf};

/// The checkpoint and, beside it, MODEL.loss.csv and MODEL.loss.png.
pub fn save_model(ck: &Checkpoint, reports: &[EpochReport], out: &Path) -> Result<()> {
    ck.save(out)?;
    let windows = ck.meta::<lamp::detect::Patches>("patch").is_some();
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
