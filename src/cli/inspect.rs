//! `lamp inspect MODEL`: what a checkpoint holds, read back from its metadata and tensors — the
//! model and its layers, the loss, how it was trained and on what, how training went, the
//! held-out check, the calibration and how it scores — as text or `--json`.

use clap::Args;
use lamp::detect::fit::HeldOut;
use lamp::detect::{Calibration, Checkpoint, EpochReport, Patches, ScoreConfig, TrainConfig};
use lamp::error::Result;
use lamp::model::Choice;
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Args)]
pub struct InspectArgs {
    /// The checkpoint (a model from `lamp train`, a snapshot, or `lamp init`'s).
    model: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Only the training recipe, as TOML for `lamp train --config` (repeats the run; its
    /// `out` is left as a comment, so that the model is not replaced by mistake).
    #[arg(long, conflicts_with = "json")]
    recipe: bool,
}

pub fn run(a: InspectArgs) -> Result<()> {
    let ck = Checkpoint::load(&a.model, None)?;
    if a.recipe {
        return match ck.metadata.get("recipe") {
            // The weights the run started from (recipes from before the choice have none: their
            // models started from PyTorch's), so that the recipe repeats the run.
            Some(_) => out!("{}", recipe_of(&ck).unwrap_or_default()),
            None => Err(lamp::Error::file(
                &a.model,
                "no recipe in the metadata: only `lamp train` writes one (this model came from \
                 `lamp demo`, `lamp init`, another tool or an older lamp)",
            )),
        };
    }
    let v = describe(&ck, &a.model);
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
    } else {
        out!("{}", text(&ck, &v))
    }
}

/// Everything `inspect` reports, as JSON.
fn describe(ck: &Checkpoint, path: &std::path::Path) -> Value {
    let table = ck.arch.param_table();
    let layers: Vec<Value> = ck
        .arch
        .layers()
        .iter()
        .map(|l| {
            json!({
                "name": l.name, "kind": format!("{:?}", l.kind), "input": l.input,
                "output": l.output, "kernel": l.kernel, "stride": l.stride,
                "activation": format!("{:?}", l.act),
            })
        })
        .collect();
    let history: Option<Vec<EpochReport>> = ck.meta("history");
    let summary = history.as_ref().filter(|h| !h.is_empty()).map(|h| {
        let best = h
            .iter()
            .filter_map(|r| r.held_out_error.map(|e| (e, r)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, r)| r);
        json!({
            "epochs": h.len(),
            "first_loss": h[0].mean_loss,
            "last_loss": h[h.len() - 1].mean_loss,
            "last_held_out_error": h[h.len() - 1].held_out_error,
            "best_held_out_error": best.and_then(|r| r.held_out_error),
            "best_held_out_epoch": best.map(|r| r.epoch),
        })
    });
    let state = if ck.metadata.contains_key("calibration") {
        "finished"
    } else if ck.metadata.contains_key("epochs_done") {
        "snapshot of an unfinished run"
    } else {
        "untrained"
    };
    json!({
        "path": lamp::fsutil::path_text(path),
        "state": state,
        "format": ck.metadata.get("format"),
        "format_version": ck.metadata.get("version"),
        "written_by": ck.metadata.get("lamp_version"),
        "arch": ck.arch,
        "parameters": table.len(),
        "layers": layers,
        "loss": ck.loss,
        "train": ck.meta::<TrainConfig>("train"),
        "optimizer_steps": ck.optimizer.as_ref().map(|o| o.t),
        "data": ck.metadata.get("data"),
        "train_images": ck.meta::<usize>("train_images"),
        "epochs_done": ck.meta::<usize>("epochs_done"),
        "history": summary,
        "held_out": ck.meta::<HeldOut>("held_out"),
        "calibration": ck.meta::<Calibration>("calibration"),
        "score": ck.meta::<ScoreConfig>("score"),
        "normal_map": ck.normal_map.is_some(),
        "edge_profile": ck.edge_profile.is_some(),
        "patch": ck.meta::<Patches>("patch"),
        "image_size": ck.image_size(),
        "recipe": recipe_of(ck),
    })
}

fn text(ck: &Checkpoint, v: &Value) -> String {
    let s = |x: &Value| match x {
        Value::String(t) => t.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let mut o = format!("{}: lamp checkpoint, {}\n", s(&v["path"]), s(&v["state"]));
    if let Some(w) = v["written_by"].as_str() {
        o += &format!("  written by lamp {w}\n");
    }
    o += &format!(
        "  model: {}, {} parameters; scores {}x{} images\n",
        ck.arch.describe(),
        v["parameters"],
        v["image_size"],
        v["image_size"]
    );
    for l in ck.arch.layers() {
        o += &format!(
            "    {:5} {:?} {:?} -> {:?}, kernel {} stride {}, {:?}\n",
            l.name, l.kind, l.input, l.output, l.kernel, l.stride, l.act
        );
    }
    if let Some(l) = ck.loss {
        o += &format!(
            "  loss: {}, amplification {}, per {}\n",
            l.metric.name(),
            l.amp.name(),
            l.granularity.name()
        );
    }
    if let Some(t) = ck.meta::<TrainConfig>("train") {
        o += &format!(
            "  training: {} epochs of batch {}, learning rate {} ({}), {}, seed {} ({} initial weights){}{}\n",
            t.epochs,
            t.batch,
            t.lr,
            t.schedule.name(),
            t.optimizer.name(),
            t.seed,
            ck.started_init().name(),
            if t.augment {
                ", flips and rotations"
            } else {
                ""
            },
            if t.denoise { ", synthetic defects" } else { "" },
        );
    }
    o += &format!(
        "  data: {} ({} training images), {} optimizer steps\n",
        s(&v["data"]),
        s(&v["train_images"]),
        s(&v["optimizer_steps"])
    );
    let f6 = |x: &Value| x.as_f64().map_or("-".into(), |f| format!("{f:.6}"));
    let h = &v["history"];
    // With --patch the epochs' held-out figure covers 4 windows of each held-out image, the
    // check below the whole images (windows stitched): the two differ.
    let patched = ck.meta::<Patches>("patch").is_some();
    if !h.is_null() {
        o += &format!(
            "  history: {} epochs, loss {} -> {}; held-out error{} last {}, best {} (epoch {})\n",
            h["epochs"],
            f6(&h["first_loss"]),
            f6(&h["last_loss"]),
            if patched && !h["last_held_out_error"].is_null() {
                " (4 windows of each image)"
            } else {
                ""
            },
            f6(&h["last_held_out_error"]),
            f6(&h["best_held_out_error"]),
            s(&h["best_held_out_epoch"])
        );
    }
    if let Some(h) = ck.meta::<HeldOut>("held_out") {
        o += &format!(
            "  held-out check: error{} {:.6}, the mean image's {:.6} ({}) on {}\n",
            if patched { " on whole images" } else { "" },
            h.model_error,
            h.mean_image_error,
            h.share(),
            lamp::error::count(h.images as u64, &format!("{} image", h.source()))
        );
    }
    if let Some(c) = ck.meta::<Calibration>("calibration") {
        o += &format!(
            "  calibration: threshold {:.6} ({}, from {}), pixel threshold {:.6}\n",
            c.threshold,
            c.method.name(),
            c.images(),
            c.pixel_threshold
        );
    }
    if let Some(sc) = ck.meta::<ScoreConfig>("score") {
        // Worded as eval's report and calibrate word it.
        let above = ck
            .counted_against()
            .map(|w| format!(", counted {w}"))
            .unwrap_or_default();
        let aligned = match sc.align {
            0 => String::new(),
            r => format!("; images aligned to the training images' reference by up to {r} px"),
        };
        o += &format!(
            "  scoring: the {}; maps smoothed with sigma {} px{above}{aligned}\n",
            sc.describe_aggregate(),
            sc.sigma
        );
    }
    if let Some(p) = ck.meta::<Patches>("patch") {
        o += &format!(
            "  patches: images of {} px scored by windows every {} px\n",
            p.image, p.stride
        );
    }
    if let Some(r) = recipe_of(ck) {
        // The recipe as `lamp train --print-config` wrote it: save it to repeat the run.
        o += "  recipe (for lamp train --config):\n";
        for line in r.lines() {
            o += &format!("    {line}\n");
        }
    }
    o
}

/// A checkpoint's recipe as it repeats the run: the initial weights it started from named, its
/// output only in a comment (see recipe::without_out).
fn recipe_of(ck: &Checkpoint) -> Option<String> {
    let r = ck.metadata.get("recipe")?;
    let r = super::recipe::with_init(r, ck.started_init());
    Some(super::recipe::without_out(&r))
}
