//! `lamp train`: train on normal images, calibrate, and write the checkpoint with its loss curve.

use super::args::{choice, ArchArgs, LossArgs, ScoreChoice};
use super::run_files::{partial_path, resume_command, save_model, sibling, write_loss_curve};
use clap::Args;
use lamp::data::ImageShape;
use lamp::data::{self, Source};
use lamp::detect::fit::{self, HeldOut};
use lamp::detect::{self, Calibration, Checkpoint, EpochReport, FitOptions};
use lamp::detect::{ThresholdMethod, TrainConfig};
use lamp::device::Device;
use lamp::error::{Error, Result};
use lamp::fsutil::lock_exclusive;
use lamp::model::{Arch, Choice, Schedule};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct TrainArgs {
    /// Training images: a folder of normal images (where it holds none itself, those of its
    /// subfolders), an MVTec AD category (its train/good), or fashion-mnist:C (class C of
    /// Fashion-MNIST).
    data: String,
    /// Checkpoint to write (safetensors).
    #[arg(help_heading = "Output and runs", short, long)]
    out: PathBuf,
    #[command(flatten)]
    arch: ArchArgs,
    #[command(flatten)]
    loss: LossArgs,
    /// Epochs [default: 10, raised for small sets to --min-steps optimizer steps]; given, exactly
    /// this many (unless --min-steps is given too).
    #[arg(help_heading = "Optimisation", long, value_parser = super::args::whole::<u32>)]
    epochs: Option<u32>,
    /// At least this many optimizer steps: a small set gets more epochs [default: 500 without
    /// --epochs, else 0].
    #[arg(help_heading = "Optimisation", long, value_parser = super::args::whole::<u32>)]
    min_steps: Option<u32>,
    /// Images per step [default: the largest up to 64 that the device and the training set hold].
    #[arg(help_heading = "Optimisation", long, value_parser = super::args::whole::<usize>)]
    batch: Option<usize>,
    /// Learning rate (the start of the schedule).
    #[arg(help_heading = "Optimisation", long, default_value_t = TrainConfig::default().lr, allow_negative_numbers = true)]
    lr: f64,
    /// The learning rate over the run: cosine (decays to a hundredth) or constant.
    #[arg(help_heading = "Optimisation", long, value_parser = choice::<Schedule>(), default_value = "cosine")]
    schedule: Schedule,
    /// Seed of the initial weights, the held-out split and the order of the samples.
    #[arg(help_heading = "Optimisation", long, value_parser = super::args::whole::<u64>, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Folder of the Fashion-MNIST IDX files.
    #[arg(help_heading = "Data", long)]
    idx_dir: Option<PathBuf>,
    /// Read the loss back every N steps for progress (0: only at epoch ends).
    #[arg(help_heading = "Output and runs", long, value_parser = super::args::whole::<usize>, default_value_t = FitOptions::default().log_every)]
    log_every: usize,
    /// Print nothing but warnings and errors (no progress, no summary).
    #[arg(help_heading = "Output and runs", long)]
    quiet: bool,
    /// Fraction of the normal images held out to calibrate the threshold (0: use the training
    /// images) [default: 0.1, or up to 0.15 where that holds out the 20 images a threshold
    /// needs].
    #[arg(help_heading = "Data", long)]
    val_split: Option<f64>,
    /// How the threshold is set: quantile (1 − contamination) or sigma (mean + k·σ).
    #[arg(help_heading = "Calibration and scoring", long, value_parser = choice::<ThresholdMethod>(), default_value = "quantile")]
    threshold: ThresholdMethod,
    /// Expected fraction of anomalies among normal-looking images (quantile method).
    #[arg(help_heading = "Calibration and scoring", long, default_value_t = FitOptions::default().contamination)]
    contamination: f64,
    /// k of the sigma method (threshold: mean + k standard deviations; 0 or more).
    #[arg(help_heading = "Calibration and scoring", long, default_value_t = FitOptions::default().sigma_k)]
    sigma_k: f64,
    /// An image's score: its mean error, the maximum of its smoothed anomaly map, or the mean of
    /// the map's top --top-k pixels. auto: topk for conv-ae (defects on photographs are local),
    /// mean for fmnist-ae.
    #[arg(help_heading = "Calibration and scoring", long, value_parser = choice::<ScoreChoice>(), default_value = "auto")]
    score_agg: ScoreChoice,
    /// The fraction of pixels --score-agg topk averages.
    #[arg(help_heading = "Calibration and scoring", long, default_value_t = FitOptions::default().top_k)]
    top_k: f64,
    /// Score maps as they are, without subtracting the normal map (the mean map of the held-out
    /// normal images, which the default subtracts for whole images so that places every image
    /// reconstructs badly, such as edges and highlights, do not mask a defect elsewhere; with
    /// --patch, without the edge profile, which counts maps near the edges in the inside's
    /// spread).
    #[arg(help_heading = "Calibration and scoring", long)]
    no_normal_map: bool,
    /// Align each image to the training images' reference (their mean, aligned) by the shift of
    /// up to PX pixels each way, at the model's input size, that matches it best, before training
    /// and scoring: for parts that sit a few pixels apart from photo to photo. 0: off. Whole
    /// images only (not with --patch).
    #[arg(help_heading = "Calibration and scoring", long, value_name = "PX", value_parser = super::args::whole::<u32>, default_value_t = 0, conflicts_with = "patch")]
    align: u32,
    /// Train on random PxP patches of the images at their own size (the median of their smaller
    /// sides, at most 1024), and score them by overlapping windows stitched into a map of that
    /// size: large images keep their detail.
    #[arg(help_heading = "Data", long, value_parser = super::args::whole::<u32>)]
    patch: Option<u32>,
    /// Flip and rotate each training sample by one of the 8 flips and 90° rotations (textures;
    /// not objects, which have an up).
    #[arg(help_heading = "Data", long)]
    augment: bool,
    /// Train to remove synthetic defects: half the samples get a rectangle of one random grey
    /// level pasted in, and the model learns to restore the clean image, so that real defects,
    /// flat ones too, reconstruct badly.
    #[arg(help_heading = "Data", long)]
    denoise: bool,
    /// Continue a stopped run from its snapshot beside --out (MODEL.partial.safetensors, written
    /// between epochs), or else train the model at --out further, up to --epochs.
    #[arg(help_heading = "Output and runs", long)]
    resume: bool,
    /// Write the snapshot beside --out after the first epoch, then at most once every this many
    /// seconds (0: every epoch); a run that stops (Ctrl-C, a NaN, divergence) writes its last
    /// whole epoch's.
    #[arg(help_heading = "Output and runs", long, value_name = "SECONDS", value_parser = super::args::whole::<u64>, default_value_t = FitOptions::default().snapshot_every.as_secs())]
    snapshot_every: u64,
    /// Skip unreadable images (with a warning and a count) instead of stopping.
    #[arg(help_heading = "Data", long)]
    skip_bad: bool,
    /// Keep the training set on the device up to this many MiB; a larger one streams from host
    /// memory batch by batch.
    #[arg(help_heading = "Data", long, value_parser = super::args::whole::<u64>, default_value_t = FitOptions::default().device_data_limit >> 20)]
    device_data_mb: u64,
    /// Read options from a TOML recipe (keys are the long option names: `epochs = 20`,
    /// `arch = "conv-ae"`, `augment = true`); options on the command line override the file's.
    #[arg(help_heading = "Output and runs", long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print this command line's full recipe (every option, defaults included) as TOML for
    /// --config, and stop.
    #[arg(help_heading = "Output and runs", long)]
    print_config: bool,
}

pub fn run(adapter: Option<&str>, a: TrainArgs) -> Result<()> {
    let recipe = super::recipe::RECIPE.get().cloned().unwrap_or_default();
    let mut opts = fit_options(&a, &recipe);
    // Option errors first, before any file is read.
    opts.check()?;
    if a.batch == Some(0) {
        return Err(Error::setting("batch", "must be at least 1"));
    }
    // A recipe that could not run is not written.
    if a.arch.arch.as_deref() == Some("fmnist-ae") {
        a.arch.arch(None)?;
    }
    if a.print_config {
        return out!("{recipe}");
    }
    super::args::check_writable(&a.out)?;
    // A recipe exported from a model names that model as its output: say so before the run
    // replaces it (repeating a recipe exactly rewrites the same bytes, which is its use).
    if super::recipe::OUT_FROM_RECIPE.get() == Some(&true) && a.out.exists() && !a.resume {
        lamp::sayln!(
            "lamp: warning: this run replaces {} when it finishes: the recipe names it as its \
             output (give --out to write elsewhere)",
            a.out.display()
        );
    }
    // One run per --out: a second would overwrite the first's snapshots in turn.
    let _lock = lock_exclusive(&a.out, "model")?;
    // Snapshots between epochs go beside --out, which keeps the last finished model until this
    // run finishes: a run that fails never leaves a worse model in its place.
    let partial = partial_path(&a.out);
    if partial.is_file() && !a.resume {
        return Err(Error::file(
            &partial,
            format!(
                "holds the last snapshot of a run of this --out that stopped before finishing \
                 (interrupted or failed): continue it by adding --resume to the options it was \
                 started with (`lamp inspect {} --recipe` shows them; other options such as \
                 --lr may change), or delete the file to start afresh",
                partial.display()
            ),
        ));
    }
    // A finished model at --out is replaced only at the end, but replaced: say so up front.
    if a.out.is_file() && !a.resume && !a.quiet {
        lamp::sayln!(
            "lamp: note: {} exists and will be replaced when this run finishes",
            a.out.display()
        );
    }
    let src = Source::parse(&a.data, a.idx_dir.as_deref())?;
    let training = src
        .training(a.skip_bad)
        .map_err(super::args::with_skip_bad_hint)?;
    // Where the images came from (their subfolders), and warnings (a folder named `NG`).
    if let data::Training::Files { notes, .. } = &training {
        for n in notes
            .iter()
            .filter(|n| !a.quiet || n.starts_with("warning:"))
        {
            lamp::sayln!("lamp: {n}");
        }
    }
    super::run_files::place_beside_images(&src, &training, &a.out, &mut opts.metadata)?;
    // The images' headers say which model fits them (--arch auto), the size and channels of a
    // conv-ae where not given, and the images' size (--patch).
    let auto = matches!(a.arch.arch.as_deref(), None | Some("auto"));
    let conv_from_images = a.arch.arch.as_deref() == Some("conv-ae")
        && (a.arch.size.is_none() || a.arch.channels.is_none());
    let shape = if auto || conv_from_images || a.patch.is_some() {
        training
            .shape(a.skip_bad)
            .map_err(super::args::with_skip_bad_hint)?
    } else {
        None
    };
    // Fashion-MNIST has no headers to read: its images are 1x28x28, which a conv-ae shaped by
    // --stages or --latent, or --arch conv-ae, takes its size from.
    let fashion = ImageShape {
        count: 1,
        channels: 1,
        min_side: 28,
        max_side: 28,
        median_side: 28,
        not_square: 0,
        first_not_square: None,
        grey: 1,
    };
    let for_model = match (&src, a.patch) {
        (Source::FashionMnist { .. }, None) => shape.as_ref().or(Some(&fashion)),
        _ => shape.as_ref(),
    };
    let (arch, side) = a.arch.model_and_size(a.patch, for_model)?;
    opts.arch = arch.clone();
    opts.aggregate = a.score_agg.resolve(&arch);
    // The recipe names the initial weights and an explicit conv-ae's shape, where the images or
    // the size chose it: repeating it makes this model, whatever a later lamp would choose (a
    // resumed run's recipe, too, is the one of the run it continues).
    if let Some(r) = opts.metadata.get_mut("recipe") {
        *r = super::recipe::with_init(r, a.arch.init.resolve(&arch));
        if a.arch.arch.as_deref() == Some("conv-ae") {
            let stages: Vec<String> = arch.stages.iter().map(u32::to_string).collect();
            *r = super::recipe::with_value(r, "size", &arch.size.to_string());
            *r = super::recipe::with_value(r, "channels", &arch.channels.to_string());
            *r = super::recipe::with_value(
                r,
                "stages",
                &super::recipe::toml_value(&stages.join(",")),
            );
            *r = super::recipe::with_value(r, "latent", &arch.latent.to_string());
        }
    }
    if let Some((s, first)) = shape
        .as_ref()
        .and_then(|s| Some((s, s.first_not_square.as_ref()?)))
    {
        let which = super::not_square(s.not_square, s.count, first);
        lamp::sayln!(
            "lamp: warning: {which} stretched to {side}x{side} for training (and when scored); \
             crop images square to keep their proportions"
        );
    }
    // With --skip-bad an unreadable image never ends the load, so the hint only meets errors
    // it can help with (as for the headers above).
    let (data, skipped) = training
        .load(arch.channels, side, a.skip_bad)
        .map_err(super::args::with_skip_bad_hint)?;
    if (auto || conv_from_images) && !a.quiet {
        say_model(&a, &arch, shape, data.len(), side);
    }
    // Grey files among colour ones are trained on as RGB (grey on all three planes): `score`
    // warns about grey images only where the model has seen none.
    if arch.channels == 3 {
        let greys = (0..data.len())
            .filter(|&i| data::images::colourless(data.sample(i)))
            .count();
        opts.metadata
            .insert(super::run_files::GREY_IMAGES.into(), greys.to_string());
    }
    for e in &skipped {
        lamp::sayln!("lamp: warning: skipped {e}");
    }
    if !skipped.is_empty() {
        let n = super::count(skipped.len() as u64, "unreadable image");
        lamp::sayln!("lamp: skipped {n}");
    }
    let device = Device::shared(adapter)?;
    let enough = lamp::detect::MIN_CALIBRATION_IMAGES;
    if a.val_split.is_none() {
        opts.val_split = data::default_split(data.len(), opts.val_split, enough);
    }
    let held = data::held_out_count(data.len(), opts.val_split);
    // Before any word on the run: a finished model may have nothing left to train.
    let resume = match a.resume {
        true => {
            let now = opts.resolved(&device, data.len() - held).train.epochs as u64;
            match resumed(&a, &partial, now)? {
                Some(ck) => Some(ck),
                None => return Ok(()),
            }
        }
        false => None,
    };
    // A batch that cannot run, said before the run is announced.
    let run = opts.resolved(&device, data.len() - held).train;
    run.check(data.len() - held)?;
    lamp::engine::check_batch(&device, &arch, opts.loss, run.batch, run.denoise)?;
    warn_about_held_out(&a, opts.val_split, data.len(), held);
    if !a.quiet {
        let n = data.len() - held;
        lamp::sayln!(
            "lamp: training {} on {} ({}, {} held out) with {} on {}: {} of batch {} ({}), \
             lr {} ({}){}; an image's score: the {}{}",
            arch.name,
            a.data,
            super::count(data.len() as u64, "image"),
            // The count, not the fraction: of a few images, 10% may be none.
            held,
            opts.loss,
            device.describe(),
            super::count(run.epochs, "epoch"),
            run.batch,
            super::count(
                (run.epochs as usize * n.div_ceil(run.batch.max(1))) as u64,
                "step"
            ),
            run.lr,
            run.schedule.name(),
            match run.init.filter(|_| !a.resume) {
                Some(init) => format!(", initial weights {}", init.name()),
                None => String::new(),
            },
            opts.score(side).describe_aggregate(),
            match opts.align {
                0 => String::new(),
                r => format!(", images aligned by up to {r} px"),
            }
        );
        if let Some(asked) = a.epochs.filter(|&e| run.epochs > e) {
            lamp::sayln!(
                "lamp: --min-steps {} raises --epochs {asked} to {} (--min-steps 0 trains \
                 exactly {})",
                opts.min_steps,
                run.epochs,
                super::count(asked, "epoch")
            );
        }
    }
    // With --patch the model trains on windows of larger images.
    let windows = data.shape[1] > arch.size;
    let (ck, reports) = detect::fit_on(
        device,
        &data,
        &opts,
        resume.as_ref(),
        Some(&partial),
        super::progress::progress_printer(a.quiet, windows),
    )
    .inspect_err(|e| {
        if let Error::Interrupted { epochs_done, .. } = e {
            if partial.is_file() && *epochs_done > 0 {
                // The curve so far, beside the snapshot: how far the run got, and how well.
                let curve = Checkpoint::load(&partial, None).and_then(|ck| {
                    let history: Vec<EpochReport> = ck.meta("history").unwrap_or_default();
                    write_loss_curve(&ck, &history, &partial, windows)
                });
                let curve = match curve {
                    Ok(()) => format!(
                        " (its loss curve: {})",
                        sibling(&partial, "loss.png").display()
                    ),
                    Err(_) => String::new(),
                };
                lamp::sayln!(
                    "lamp: the snapshot after epoch {epochs_done} is in {}{curve}; continue \
                     with: {}",
                    partial.display(),
                    resume_command(&partial)
                );
            } else {
                let kept = match a.out.is_file() {
                    true => format!(" ({} is as it was)", a.out.display()),
                    false => String::new(),
                };
                lamp::sayln!(
                    "lamp: stopped before this run's first epoch ended: nothing was saved{kept}"
                );
            }
        }
    })?;
    save_model(&ck, &reports, &a.out)?;
    for p in [
        partial.clone(),
        sibling(&partial, "loss.csv"),
        sibling(&partial, "loss.png"),
    ] {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::file(&p, format!("cannot remove: {e}")))
            }
            _ => {}
        }
    }
    if !a.quiet {
        let cal: Option<Calibration> = ck.meta("calibration");
        if let Some(c) = cal {
            lamp::sayln!(
                "lamp: threshold {:.6} ({}, from {}); wrote {}",
                c.threshold,
                c.method.name(),
                c.images(),
                a.out.display()
            );
        }
        if let Some(h) = ck.meta::<HeldOut>("held_out") {
            // With --patch each epoch's figure covers 4 windows of each image; this one, the
            // whole images (windows stitched), as the images are scored.
            let whole = match ck.meta::<lamp::detect::Patches>("patch") {
                Some(_) => " on whole images",
                None => "",
            };
            lamp::sayln!(
                "lamp: {} error{whole} {:.6}, the mean image's {:.6} ({})",
                h.source(),
                h.model_error,
                h.mean_image_error,
                h.share()
            );
        }
    }
    for w in fit::warnings(&ck) {
        lamp::sayln!("lamp: warning: {}", super::warning_text(w));
    }
    Ok(())
}
/// The options of the fit as the command line gives them; the model (and its way of scoring)
/// is set once the images are read.
fn fit_options(a: &TrainArgs, recipe: &str) -> FitOptions {
    let defaults = FitOptions::default();
    FitOptions {
        arch: defaults.arch.clone(),
        loss: a.loss.config(),
        train: TrainConfig {
            epochs: a.epochs.unwrap_or(defaults.train.epochs),
            batch: a.batch.unwrap_or(0),
            lr: a.lr,
            seed: a.seed,
            schedule: a.schedule,
            augment: a.augment,
            denoise: a.denoise,
            init: a.arch.init.fixed(),
            ..Default::default()
        },
        min_steps: match (a.min_steps, a.epochs) {
            (Some(m), _) => m,
            (None, Some(_)) => 0,
            (None, None) => defaults.min_steps,
        },
        val_split: a.val_split.unwrap_or(defaults.val_split),
        threshold: a.threshold,
        contamination: a.contamination,
        sigma_k: a.sigma_k,
        log_every: a.log_every,
        device_data_limit: a.device_data_mb << 20,
        // Set with the model below (auto); this model's own until then, for the checks.
        aggregate: a.score_agg.resolve(&defaults.arch),
        top_k: a.top_k,
        normal_map: !a.no_normal_map,
        align: a.align,
        snapshot_every: std::time::Duration::from_secs(a.snapshot_every),
        // In every snapshot too: an interrupted run's says what it was trained on and how.
        metadata: [("data", a.data.clone()), ("recipe", recipe.to_string())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

/// Says which model was chosen for the images (`loaded` of them, of `shape`; None for
/// Fashion-MNIST), at what size they are read, and which options chose it.
fn say_model(a: &TrainArgs, arch: &Arch, shape: Option<ImageShape>, loaded: usize, side: u32) {
    // Counted after loading: a file whose header reads but whose pixels do not is skipped.
    let loaded = shape.map(|s| ImageShape { count: loaded, ..s });
    let from = loaded
        .as_ref()
        .map_or("Fashion-MNIST (1x28x28)".into(), |s| s.describe());
    let patches = match (a.patch, &loaded) {
        (Some(p), _) => format!(", {p}x{p} patches of {side}x{side} images"),
        // Images well over the model's size (the largest auto makes): said, with the way to
        // keep their detail.
        (None, Some(s)) if 4 * s.median_side > 5 * side => format!(
            ", shrunk to {side}x{side} (--patch P trains on PxP windows of the images at \
             their own size instead)"
        ),
        // A model larger than the images: they are enlarged to it.
        (None, Some(s)) if 5 * s.median_side < 4 * side => format!(
            ", enlarged to {side}x{side} from about {0}x{0} (a model of the images' own size \
             sees the same detail for less work)",
            s.median_side
        ),
        // Any other resize (a --size asked for, a size rounded to the stages): said plainly.
        (None, Some(s)) if s.median_side != side => format!(
            ", resized to {side}x{side} from about {0}x{0}",
            s.median_side
        ),
        _ => String::new(),
    };
    let asked: String = [("size", a.arch.size), ("channels", a.arch.channels)]
        .iter()
        .filter_map(|(k, v)| Some(format!(", --{k} {}", (*v)?)))
        .collect();
    let chosen = a.arch.arch.as_deref().unwrap_or("auto");
    lamp::sayln!(
        "lamp: model {} for {from}{patches} (--arch {chosen}{asked})",
        arch.describe()
    );
}

/// Warns, before training, about a threshold that will come from the training images or from
/// few held out (`held` of `n` images at `val_split`), and about most of a set held out by hand.
fn warn_about_held_out(a: &TrainArgs, val_split: f64, n: usize, held: usize) {
    let enough = lamp::detect::MIN_CALIBRATION_IMAGES;
    if held == 0 && !a.resume {
        lamp::sayln!(
            "lamp: warning: no images are held out{}: the threshold will be set on the training \
             images, whose errors run lower than new normal images' (expect false alarms); \
             recalibrate the trained model on other normal images with `lamp calibrate`",
            if a.val_split == Some(0.0) {
                " (--val-split 0)"
            } else {
                ""
            }
        );
    }
    if (1..enough).contains(&held) {
        // Said now, not only after a training that may take an hour.
        let more = match data::enough_split(n, enough) {
            Some(f) => format!(
                "hold out more (--val-split {f:.2} holds out {}), or ",
                data::held_out_count(n, f)
            ),
            None => String::new(),
        };
        lamp::sayln!(
            "lamp: warning: the threshold will come from only {} (fewer than {enough} make it \
             unreliable): {more}recalibrate the trained model on other normal images with \
             `lamp calibrate`",
            super::count(held as u64, "held-out image"),
        );
    }
    // Most of a small set held out by hand leaves the model next to nothing to learn from.
    if a.val_split.is_some() && held > 0 && 2 * held > n {
        lamp::sayln!(
            "lamp: warning: --val-split {} holds out {held} of the {} images: the model trains \
             on {}; hold out fewer, and recalibrate on more normal images with `lamp calibrate`",
            val_split,
            n,
            super::count((n - held) as u64, "image")
        );
    }
}

/// The checkpoint `--resume` continues from (to train for `now` epochs in all): the interrupted
/// run's snapshot at `partial`, else the model at --out (to train it further); None where that
/// model is already trained for `now` epochs (said): rewriting it would only replace its
/// threshold (a `lamp calibrate` since, say) with the held-out images' again.
fn resumed(a: &TrainArgs, partial: &Path, now: u64) -> Result<Option<Checkpoint>> {
    let from = if partial.is_file() { partial } else { &a.out };
    if !from.is_file() {
        return Err(Error::file(
            &a.out,
            "nothing to resume: no checkpoint there yet",
        ));
    }
    let ck = Checkpoint::load(from, None)?;
    let done = ck
        .meta::<Vec<EpochReport>>("history")
        .map_or(0, |h| h.len() as u64);
    if from == a.out && done >= now {
        lamp::sayln!(
            "lamp: {} is already trained for {}: nothing to do (a larger --epochs trains it \
             further)",
            a.out.display(),
            super::count(done, "epoch")
        );
        return Ok(None);
    }
    if !a.quiet {
        let done: String = ck.metadata.get("epochs_done").cloned().unwrap_or_default();
        lamp::sayln!("lamp: resuming {} after epoch {done}", from.display());
    }
    // Continuing an interrupted run with another length also changes its learning-rate
    // schedule: say so (training a finished model further is a choice, not a slip).
    let started: Option<serde_json::Value> = ck.meta("train");
    let planned = started.as_ref().and_then(|t| t["epochs"].as_u64());
    if let Some(planned) = planned.filter(|&p| p != now && from == partial) {
        lamp::sayln!(
            "lamp: warning: {} was started as a run of {planned} epochs; this one goes to \
             {now} (its learning-rate schedule follows the new length). Give --epochs \
             {planned} to finish the run as started",
            from.display()
        );
    }
    Ok(Some(ck))
}

/// Largest image side patch mode keeps (larger images are shrunk to it).
pub(crate) const MAX_PATCH_IMAGE: u32 = 1024;
