//! The `lamp` command line. Every error ends as one line naming the file or argument and the
//! problem, and a non-zero exit.

use clap::{Args, Parser, Subcommand};
use lamp::checkpoint::{to_json, Checkpoint};
use lamp::data::{self, Source};
use lamp::engine::Engine;
use lamp::error::{Error, Result};
use lamp::fit::{self, FitOptions};
use lamp::gpu::{self, Gpu};
use lamp::kernels::{Amp, Granularity, Kernels, LossConfig, Metric};
use lamp::model::Arch;
use lamp::score::{self, Calibration, ThresholdMethod};
use lamp::train::{EpochReport, Progress, TrainConfig};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "lamp",
    version,
    about = "Unsupervised visual anomaly detection with loss amplification (LAMP), on any GPU"
)]
struct Cli {
    /// Use the first adapter whose name contains this (see `lamp info`).
    #[arg(long, global = true, env = "WGPU_ADAPTER_NAME")]
    adapter: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List adapters, the one lamp picks, its limits and features.
    Info,
    /// Train an autoencoder on normal images and write a checkpoint.
    Train(TrainArgs),
    /// One forward and backward pass (or K Adam steps) on a batch, for checking against another
    /// framework.
    Grad(GradArgs),
    /// Write a freshly initialised model (PyTorch's default initialisation from a seed).
    Init(InitArgs),
    /// Score images with a trained model: raw score, normalised score, verdict; heat maps.
    Score(ScoreArgs),
    /// Evaluate a model on labelled test data (MVTec AD layout or fashion-mnist:C): metrics.json,
    /// roc.png, hist.png, heat-map panels and report.md.
    Eval(EvalArgs),
    /// Train and evaluate on the small Fashion-MNIST subset built into lamp, and say where the
    /// report is.
    Demo(DemoArgs),
    /// Measure this device: GEMM probe, every kernel, training steps, scoring.
    Bench(BenchArgs),
    /// Run the LAMP-versus-baseline table (one-class protocol), resumable: results.jsonl,
    /// results.md (paired by seed), results.png, results-difference.png.
    Experiment(ExperimentArgs),
    /// The plain and amplified loss surfaces around a trained model along two random
    /// filter-normalised directions: plain.png, amplified.png (one colour scale), landscape.json.
    Landscape(LandscapeArgs),
}

#[derive(Args)]
struct LandscapeArgs {
    /// Checkpoint written by `lamp train`.
    model: PathBuf,
    /// Training data (the batch is drawn from it): a folder, an MVTec category, fashion-mnist:C.
    data: String,
    #[arg(long)]
    out: PathBuf,
    /// Grid points per direction.
    #[arg(long, default_value_t = 15)]
    grid: usize,
    /// The grid spans [-radius, radius] along each (filter-normalised) direction.
    #[arg(long, default_value_t = 1.0)]
    radius: f64,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    idx_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ExperimentArgs {
    /// fashion-mnist, or mvtec (then DIR holds MVTec AD categories).
    dataset: String,
    /// MVTec AD root (for `mvtec`).
    dir: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// Fashion-MNIST classes ("0-9", "0,3") or MVTec categories ("bottle,screw"; default all).
    #[arg(long)]
    classes: Option<String>,
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "mae,mse,ssim"
    )]
    metrics: Vec<Metric>,
    #[arg(long, value_enum, value_delimiter = ',', default_value = "none,lamp")]
    amp: Vec<Amp>,
    #[arg(
        long = "amp-granularity",
        value_enum,
        value_delimiter = ',',
        default_value = "element"
    )]
    granularity: Vec<Granularity>,
    #[arg(long, default_value_t = 10)]
    epochs: u32,
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// adam, or sgd (momentum 0.9).
    #[arg(long, default_value = "adam")]
    optimizer: String,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Default: 1e-3 for Adam, 1e-2 for SGD.
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    idx_dir: Option<PathBuf>,
    #[command(flatten)]
    arch: ArchArgs,
}

#[derive(Args)]
struct BenchArgs {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Fewer repetitions and only the small model (a smoke test).
    #[arg(long)]
    quick: bool,
    /// Only fmnist-ae (skip the larger conv-ae kernels).
    #[arg(long)]
    fmnist_only: bool,
}

#[derive(Args)]
struct ScoreArgs {
    /// Checkpoint written by `lamp train`.
    model: PathBuf,
    /// Image files, folders of images, or patterns with * and ?.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// One JSON object per image (JSONL).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header.
    #[arg(long)]
    csv: bool,
    /// Write per image a heat-map overlay, the raw 16-bit anomaly map and the predicted region.
    #[arg(long)]
    maps: Option<PathBuf>,
    /// Exit with status 3 when any image is anomalous.
    #[arg(long)]
    fail_on_anomaly: bool,
    /// Skip images that cannot be read (with a warning) instead of stopping.
    #[arg(long)]
    skip_bad: bool,
    #[arg(long, default_value_t = 64)]
    batch: usize,
}

#[derive(Args)]
struct EvalArgs {
    /// Checkpoint written by `lamp train`.
    model: PathBuf,
    /// An MVTec AD category folder, or fashion-mnist:C.
    data: String,
    /// Report folder.
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    idx_dir: Option<PathBuf>,
    /// Heat-map panels of the highest-scored images (and as many sampled ones).
    #[arg(long, default_value_t = 8)]
    panels: usize,
    #[arg(long, default_value_t = 256)]
    batch: usize,
}

#[derive(Args)]
struct DemoArgs {
    /// Where to put the model and the report.
    #[arg(long, default_value = "lamp-demo")]
    out: PathBuf,
    #[arg(long, default_value_t = 8)]
    epochs: u32,
}

#[derive(Args)]
struct InitArgs {
    #[command(flatten)]
    arch: ArchArgs,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Clone)]
struct LossArgs {
    /// Error metric.
    #[arg(long, value_enum, default_value = "mse")]
    metric: Metric,
    /// Loss amplification: none (baseline) or lamp (-ln(1 - e)).
    #[arg(long, value_enum, default_value = "lamp")]
    amp: Amp,
    /// Where the amplification acts.
    #[arg(
        long = "amp-granularity",
        alias = "granularity",
        value_enum,
        default_value = "element"
    )]
    granularity: Granularity,
}

impl LossArgs {
    fn config(&self) -> LossConfig {
        LossConfig {
            metric: self.metric,
            amp: self.amp,
            granularity: self.granularity,
        }
    }
}

#[derive(Args)]
struct ArchArgs {
    /// Model: fmnist-ae (1x28x28, DESIGN §2) or conv-ae (--size, --channels, --stages, --latent).
    #[arg(long, default_value = "fmnist-ae")]
    arch: String,
    /// conv-ae input size (pixels, a multiple of 2^stages).
    #[arg(long, default_value_t = 128)]
    size: u32,
    /// conv-ae input channels: 1 (grayscale) or 3 (RGB).
    #[arg(long, default_value_t = 1)]
    channels: u32,
    /// conv-ae channels per encoder stage, comma-separated.
    #[arg(long, default_value = "32,64,128,128", value_delimiter = ',')]
    stages: Vec<u32>,
    /// conv-ae latent size.
    #[arg(long, default_value_t = 128)]
    latent: u32,
}

impl ArchArgs {
    fn arch(&self) -> Result<Arch> {
        match self.arch.as_str() {
            "fmnist-ae" => Ok(Arch::fmnist_ae()),
            "conv-ae" => Arch::conv_ae(self.channels, self.size, self.stages.clone(), self.latent),
            other => Arch::by_name(other),
        }
    }
}

#[derive(Args)]
struct TrainArgs {
    /// Training images: a folder of normal images, or fashion-mnist:C (class C of Fashion-MNIST).
    data: String,
    /// Checkpoint to write (safetensors).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    arch: ArchArgs,
    #[command(flatten)]
    loss: LossArgs,
    #[arg(long, default_value_t = 10)]
    epochs: u32,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    lr: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder of the Fashion-MNIST IDX files.
    #[arg(long)]
    idx_dir: Option<PathBuf>,
    /// Read the loss back every N steps for progress (0: only at epoch ends).
    #[arg(long, default_value_t = 20)]
    log_every: usize,
    /// Print nothing but errors.
    #[arg(long)]
    quiet: bool,
    /// Fraction of the normal images held out to calibrate the threshold (0: use the training
    /// images).
    #[arg(long, default_value_t = 0.1)]
    val_split: f64,
    /// How the threshold is set: quantile (1 − contamination) or sigma (mean + k·σ).
    #[arg(long, value_enum, default_value = "quantile")]
    threshold: ThresholdMethod,
    /// Expected fraction of anomalies among normal-looking images (quantile method).
    #[arg(long, default_value_t = 0.01)]
    contamination: f64,
    /// k of the sigma method.
    #[arg(long, default_value_t = 3.0)]
    sigma_k: f64,
    /// Continue from the checkpoint at --out (written after every epoch) up to --epochs.
    #[arg(long)]
    resume: bool,
    /// Skip unreadable images (with a warning and a count) instead of stopping.
    #[arg(long)]
    skip_bad: bool,
    /// Keep the training set on the device up to this many MiB; a larger one streams from host
    /// memory batch by batch.
    #[arg(long, default_value_t = 2048)]
    device_data_mb: u64,
}

#[derive(Args)]
struct GradArgs {
    /// Checkpoint, or a bare safetensors file of PyTorch-named tensors (with --arch).
    #[arg(long, conflicts_with = "init_seed")]
    model: Option<PathBuf>,
    /// Build the model from this seed instead of loading it.
    #[arg(long)]
    init_seed: Option<u64>,
    /// Architecture of --init-seed or of a bare --model file.
    #[arg(long)]
    arch: Option<String>,
    /// safetensors file with a tensor `x` [B, C, H, W] in [0, 1].
    #[arg(long)]
    input: PathBuf,
    #[command(flatten)]
    loss: LossArgs,
    /// Output safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Take K Adam steps on the batch instead, and write the parameters.
    #[arg(long, default_value_t = 0)]
    adam_steps: u32,
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    lr: f64,
}

fn main() {
    // Mesa's window-system code complains on stderr when this is unset; lamp never opens a window.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("lamp: error: {}", one_line(&e.to_string()));
        std::process::exit(1);
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(cli: Cli) -> Result<()> {
    let adapter = cli.adapter.as_deref();
    match cli.cmd {
        Cmd::Info => info(adapter),
        Cmd::Train(a) => train_cmd(adapter, a),
        Cmd::Grad(a) => grad_cmd(adapter, a),
        Cmd::Score(a) => score_cmd(adapter, a),
        Cmd::Eval(a) => eval_cmd(adapter, a),
        Cmd::Demo(a) => demo_cmd(adapter, a),
        Cmd::Experiment(a) => experiment_cmd(adapter, a),
        Cmd::Landscape(a) => {
            let ck = Checkpoint::load(&a.model, None)?;
            let loss = ck
                .loss
                .ok_or_else(|| Error::file(&a.model, "no loss settings in the metadata"))?;
            let src = Source::parse(&a.data, a.idx_dir.as_deref())?;
            let d = data::load_training(&src, ck.arch.channels, ck.arch.size)?;
            let (g, k) = open_device(adapter)?;
            let batch = Engine::fitting_batch(&g, &ck.arch, loss, a.batch.max(1)).max(1);
            let mut order: Vec<usize> = (0..d.len()).collect();
            lamp::model::SplitMix64::new(a.seed).shuffle(&mut order);
            let x: Vec<f32> = order
                .iter()
                .take(batch)
                .flat_map(|&i| d.sample(i).iter().copied())
                .collect();
            let s = lamp::landscape::run(g, k, &ck, &x, a.grid, a.radius, a.seed, &a.out)?;
            println!(
                "loss at the trained weights: plain {:.5}, amplified {:.5}; mean rise within r = {}: plain {:.5} ({:+.0}%), amplified {:.5} ({:+.0}%) -> {}",
                s.plain_at_center,
                s.amplified_at_center,
                s.sharpness_radius,
                s.plain_mean_rise,
                100.0 * s.plain_relative_rise,
                s.amplified_mean_rise,
                100.0 * s.amplified_relative_rise,
                a.out.display()
            );
            Ok(())
        }
        Cmd::Bench(a) => {
            let (g, k) = open_device(adapter)?;
            let r = lamp::bench::run(
                g,
                k,
                lamp::bench::Options {
                    quick: a.quick,
                    fmnist_only: a.fmnist_only,
                },
            )?;
            if a.json {
                println!("{}", to_json(&r)?);
            } else {
                print!("{}", lamp::bench::text(&r));
            }
            Ok(())
        }
        Cmd::Init(a) => {
            let arch = a.arch.arch()?;
            let p = arch.init(a.seed);
            let mut c = Checkpoint::new(arch, None, p);
            c.metadata.insert("init_seed".into(), a.seed.to_string());
            c.save(&a.out)
        }
    }
}

fn open_device(adapter: Option<&str>) -> Result<(Arc<Gpu>, Arc<Kernels>)> {
    let g = Gpu::new(adapter)?;
    let k = Kernels::new(&g)?;
    Ok((Arc::new(g), Arc::new(k)))
}

fn info(adapter: Option<&str>) -> Result<()> {
    let all = gpu::list_adapters();
    println!("adapters:");
    if all.is_empty() {
        println!("  (none) — {}", gpu::NO_ADAPTER_HINT);
    }
    for a in &all {
        println!(
            "  {} ({:?}, {:?}, driver {} {})",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        );
    }
    let g = Gpu::new(adapter)?;
    println!("chosen: {}", g.describe());
    let l = &g.limits;
    println!("limits:");
    println!(
        "  max_storage_buffer_binding_size: {} MiB",
        l.max_storage_buffer_binding_size >> 20
    );
    println!("  max_buffer_size: {} MiB", l.max_buffer_size >> 20);
    println!(
        "  max_storage_buffers_per_shader_stage: {}",
        l.max_storage_buffers_per_shader_stage
    );
    println!(
        "  max_compute_workgroups_per_dimension: {}",
        l.max_compute_workgroups_per_dimension
    );
    println!(
        "  max_compute_invocations_per_workgroup: {}",
        l.max_compute_invocations_per_workgroup
    );
    println!(
        "  max_compute_workgroup_storage_size: {}",
        l.max_compute_workgroup_storage_size
    );
    println!("features: {:?}", g.features);
    println!(
        "subgroup sizes: {}..{}; GEMM core: {:?}",
        g.subgroup_sizes.0,
        g.subgroup_sizes.1,
        lamp::kernels::GemmCore::best(&g)
    );
    Ok(())
}

fn train_cmd(adapter: Option<&str>, a: TrainArgs) -> Result<()> {
    let arch = a.arch.arch()?;
    let opts = FitOptions {
        arch: arch.clone(),
        loss: a.loss.config(),
        train: TrainConfig {
            epochs: a.epochs,
            batch: a.batch,
            lr: a.lr,
            seed: a.seed,
        },
        val_split: a.val_split,
        threshold: a.threshold,
        contamination: a.contamination,
        sigma_k: a.sigma_k,
        log_every: a.log_every,
        device_data_limit: a.device_data_mb << 20,
    };
    // Argument errors first, before any data is read.
    opts.train.check(usize::MAX)?;
    let src = Source::parse(&a.data, a.idx_dir.as_deref())?;
    let (data, skipped) = data::load_training_skipping(&src, arch.channels, arch.size, a.skip_bad)?;
    for e in &skipped {
        eprintln!("lamp: warning: skipped {e}");
    }
    if !skipped.is_empty() {
        eprintln!("lamp: skipped {} unreadable image(s)", skipped.len());
    }
    let (g, k) = open_device(adapter)?;
    if !a.quiet {
        eprintln!(
            "lamp: training {} on {} ({} images, {:.0}% held out) with {} on {}",
            arch.name,
            a.data,
            data.len(),
            a.val_split * 100.0,
            opts.loss,
            g.describe()
        );
    }
    let resume = if a.resume {
        if !a.out.is_file() {
            return Err(Error::file(
                &a.out,
                "nothing to resume: no checkpoint there yet",
            ));
        }
        let ck = Checkpoint::load(&a.out, None)?;
        if !a.quiet {
            let done: String = ck.metadata.get("epochs_done").cloned().unwrap_or_default();
            eprintln!("lamp: resuming {} after epoch {done}", a.out.display());
        }
        Some(ck)
    } else {
        None
    };
    let (mut ck, reports) = fit::fit(
        g,
        k,
        &data,
        &opts,
        resume.as_ref(),
        Some(&a.out),
        progress_printer(a.quiet, a.epochs),
    )?;
    ck.metadata.insert("data".into(), a.data.clone());
    save_model(&ck, &reports, &a.out)?;
    if !a.quiet {
        let cal: Option<Calibration> = ck.meta("calibration");
        if let Some(c) = cal {
            eprintln!(
                "lamp: threshold {:.6} ({:?}, from {} {} images); wrote {}",
                c.threshold,
                c.method,
                c.count,
                c.source,
                a.out.display()
            );
        }
    }
    Ok(())
}

/// Progress lines: in place on a terminal, one line per epoch otherwise.
fn progress_printer(quiet: bool, epochs: u32) -> impl FnMut(Progress) {
    let tty = std::io::stderr().is_terminal();
    let start = std::time::Instant::now();
    move |p| {
        if quiet {
            return;
        }
        match p {
            Progress::Step {
                epoch,
                step,
                steps,
                loss,
                images_per_s,
            } if tty => {
                let done = epoch as f64 + step as f64 / steps as f64;
                let eta = start.elapsed().as_secs_f64() / done * (epochs as f64 - done);
                eprint!(
                    "\r  epoch {}/{epochs} step {step}/{steps} loss {loss:.6} {images_per_s:.0} img/s ETA {eta:.0} s   ",
                    epoch + 1
                );
            }
            Progress::Step { .. } => {}
            Progress::Epoch(r) => {
                if tty {
                    eprint!("\r");
                }
                eprintln!(
                    "  epoch {}/{epochs} loss {:.6} clamps {} {:.1} s {:.0} img/s        ",
                    r.epoch, r.mean_loss, r.clamps, r.seconds, r.images_per_s
                );
            }
        }
    }
}

/// The checkpoint and, beside it, MODEL.loss.csv and MODEL.loss.png.
fn save_model(ck: &Checkpoint, reports: &[EpochReport], out: &Path) -> Result<()> {
    ck.save(out)?;
    let (csv, png) = fit::loss_curve(reports)?;
    lamp::fsutil::write_atomic(&sibling(out, "loss.csv"), &csv)?;
    lamp::fsutil::write_atomic(&sibling(out, "loss.png"), &png)
}

/// A trained model and its calibration, or a clear error.
fn load_trained(path: &Path) -> Result<(Checkpoint, LossConfig, Calibration)> {
    let ck = Checkpoint::load(path, None)?;
    let loss = ck.loss.ok_or_else(|| {
        Error::file(
            path,
            "no loss settings in the metadata (not written by lamp train)",
        )
    })?;
    let cal: Calibration = match ck.meta("calibration") {
        Some(c) => c,
        None => {
            // A checkpoint written between epochs: training stopped before it finished.
            let msg = match ck.metadata.get("epochs_done") {
                Some(done) => format!(
                    "training stopped after epoch {done} and was never calibrated; finish it with \
                     `lamp train ... --out {} --resume`",
                    path.display()
                ),
                None => {
                    "no calibrated threshold in the metadata (not written by lamp train)".into()
                }
            };
            return Err(Error::file(path, msg));
        }
    };
    Ok((ck, loss, cal))
}

/// Expands files, folders and simple * / ? patterns into image paths.
fn expand_inputs(inputs: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for s in inputs {
        let p = PathBuf::from(s);
        if p.is_dir() {
            out.extend(data::list_images(&p)?);
        } else if p.is_file() {
            out.push(p);
        } else if s.contains('*') || s.contains('?') {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let pat = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rd = std::fs::read_dir(dir)
                .map_err(|e| Error::file(dir, format!("cannot list: {e}")))?;
            let mut hits: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|q| {
                    q.is_file()
                        && q.file_name()
                            .is_some_and(|n| wildcard(&pat, &n.to_string_lossy()))
                })
                .collect();
            if hits.is_empty() {
                return Err(Error::file(&p, "pattern matches no file"));
            }
            hits.sort();
            out.extend(hits);
        } else {
            return Err(Error::file(&p, "no such file or directory"));
        }
    }
    Ok(out)
}

/// Shell-style matching of * and ?.
fn wildcard(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(st) = star {
            i = st + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

fn score_cmd(adapter: Option<&str>, a: ScoreArgs) -> Result<()> {
    let (ck, loss, cal) = load_trained(&a.model)?;
    let arch = ck.arch.clone();
    let paths = expand_inputs(&a.inputs)?;
    let mut images = Vec::new();
    let mut kept = Vec::new();
    let mut skipped = 0;
    for p in &paths {
        match data::load_image(p, arch.channels, arch.size) {
            Ok(v) => {
                images.extend(v);
                kept.push(p.clone());
            }
            Err(e) if a.skip_bad => {
                eprintln!("lamp: warning: skipped {e}");
                skipped += 1;
            }
            Err(e) => return Err(e),
        }
    }
    if kept.is_empty() {
        return Err(Error::invalid("no readable images to score"));
    }
    let (g, k) = open_device(adapter)?;
    let batch = Engine::fitting_batch(&g, &arch, loss, a.batch.clamp(1, kept.len())).max(1);
    let mut e = Engine::new(g, k, arch.clone(), loss, batch, &ck.params)?;
    let (scores, recon) = score::score_with_recon(&mut e, &images)?;
    let p = arch.input_len();
    if let Some(dir) = &a.maps {
        lamp::fsutil::ensure_dir(dir)?;
        let (w, h) = (arch.size, arch.size);
        let vmax = cal.pixel_max.max(cal.pixel_threshold * 2.0).max(1e-6);
        let mut used = std::collections::HashSet::new();
        for (i, path) in kept.iter().enumerate() {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            let mut name = stem.clone();
            let mut k = 1;
            while !used.insert(name.clone()) {
                k += 1;
                name = format!("{stem}-{k}");
            }
            let x = &images[i * p..][..p];
            let m = score::pixel_map(loss.metric, arch.input_shape(), x, &recon[i * p..][..p]);
            let m = score::smooth(&m, w as usize, h as usize, lamp::eval::MAP_SIGMA);
            let ov = score::overlay(x, arch.input_shape(), &m, vmax, cal.pixel_threshold);
            lamp::fsutil::write_atomic(
                &dir.join(format!("{name}_overlay.png")),
                &score::png_bytes(&ov)?,
            )?;
            lamp::fsutil::write_atomic(
                &dir.join(format!("{name}_map.png")),
                &score::png_bytes(&score::map_u16(&m, w, h))?,
            )?;
            let mask: Vec<bool> = m.iter().map(|&v| v > cal.pixel_threshold).collect();
            let mut region = score::to_rgb(x, arch.input_shape(), (256 / arch.size).max(1));
            score::outline(
                &mut region,
                &mask,
                w,
                h,
                (256 / arch.size).max(1),
                lamp::plot::RED,
            );
            lamp::fsutil::write_atomic(
                &dir.join(format!("{name}_region.png")),
                &score::png_bytes(&region)?,
            )?;
        }
    }
    let mut any = false;
    // The table's path column, measured once.
    let width = kept
        .iter()
        .map(|p| p.display().to_string().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = String::new();
    if a.csv {
        out += "path,score,normalised,verdict\n";
    } else if !a.json {
        out += &format!(
            "{:width$}  {:>12}  {:>10}  verdict\n",
            "path", "score", "normalised"
        );
    }
    for (i, path) in kept.iter().enumerate() {
        let (s, n, bad) = (
            scores[i],
            cal.normalise(scores[i]),
            cal.is_anomalous(scores[i]),
        );
        any |= bad;
        let verdict = if bad { "anomalous" } else { "normal" };
        let shown = path.display().to_string();
        if a.json {
            out += &serde_json::json!({ "path": shown, "score": s, "normalised": n, "anomalous": bad, "verdict": verdict })
                .to_string();
            out += "\n";
        } else if a.csv {
            let quoted = if shown.contains([',', '"']) {
                format!("\"{}\"", shown.replace('"', "\"\""))
            } else {
                shown
            };
            out += &format!("{quoted},{s},{n:.6},{verdict}\n");
        } else {
            out += &format!("{shown:width$}  {s:>12.6}  {n:>10.4}  {verdict}\n");
        }
    }
    print!("{out}");
    if skipped > 0 {
        eprintln!("lamp: skipped {skipped} unreadable image(s)");
    }
    if any && a.fail_on_anomaly {
        std::process::exit(3);
    }
    Ok(())
}

fn eval_cmd(adapter: Option<&str>, a: EvalArgs) -> Result<()> {
    let (ck, loss, cal) = load_trained(&a.model)?;
    let src = Source::parse(&a.data, a.idx_dir.as_deref())?;
    let test = data::load_test(&src, ck.arch.channels, ck.arch.size)?;
    let (g, k) = open_device(adapter)?;
    let batch =
        Engine::fitting_batch(&g, &ck.arch, loss, a.batch.clamp(1, test.data.len().max(1))).max(1);
    let mut e = Engine::new(g, k, ck.arch.clone(), loss, batch, &ck.params)?;
    let inp = lamp::eval::EvalInput {
        test: &test,
        calibration: &cal,
        loss,
        model_label: a.model.display().to_string(),
        data_label: a.data.clone(),
        panels: a.panels,
    };
    let m = lamp::eval::evaluate(&mut e, &inp, &a.out)?;
    println!(
        "image AUROC {}  pixel AUROC {}  F1-max {}  -> {}",
        fmt_opt(&m["image_auroc"]),
        fmt_opt(&m["pixel_auroc"]),
        fmt_opt(&m["f1_max"]),
        a.out.join("report.md").display()
    );
    Ok(())
}

fn experiment_cmd(adapter: Option<&str>, a: ExperimentArgs) -> Result<()> {
    use lamp::experiment::{self, Plan};
    if a.optimizer != "adam" && a.optimizer != "sgd" {
        return Err(Error::invalid(format!(
            "--optimizer must be adam or sgd, got {:?}",
            a.optimizer
        )));
    }
    let lr =
        a.lr.unwrap_or(if a.optimizer == "sgd" { 1e-2 } else { 1e-3 });
    // The command that reproduces (and resumes) this table, printed at its top.
    let command = std::iter::once("lamp".to_string())
        .chain(
            std::env::args()
                .skip(1)
                .map(|s| if s.contains(' ') { format!("'{s}'") } else { s }),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let (arch, classes, loader): (Arch, Vec<String>, experiment::Loader) =
        match a.dataset.as_str() {
            "fashion-mnist" => {
                let dir = a
                    .idx_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(data::FASHION_MNIST_DIR));
                let classes = experiment::parse_classes(a.classes.as_deref().unwrap_or("0-9"))?;
                if let Some(c) = classes
                    .iter()
                    .find(|c| c.parse::<u8>().map_or(true, |v| v > 9))
                {
                    return Err(Error::invalid(format!(
                        "fashion-mnist classes are 0..9, got {c:?}"
                    )));
                }
                (
                    Arch::fmnist_ae(),
                    classes,
                    Box::new(experiment::fashion_loader(dir)),
                )
            }
            "mvtec" => {
                let root = a.dir.clone().ok_or_else(|| {
                    Error::invalid("lamp experiment mvtec needs the MVTec AD folder")
                })?;
                let arch = a.arch.arch()?;
                let classes = match &a.classes {
                    Some(c) => c.split(',').map(|s| s.trim().to_string()).collect(),
                    None => {
                        let rd = std::fs::read_dir(&root)
                            .map_err(|e| Error::file(&root, format!("cannot list: {e}")))?;
                        let mut v: Vec<String> = rd
                            .filter_map(|e| e.ok())
                            .filter(|e| e.path().join("train").join("good").is_dir())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect();
                        v.sort();
                        if v.is_empty() {
                            return Err(Error::file(
                                &root,
                                "no MVTec AD categories (folders with train/good)",
                            ));
                        }
                        v
                    }
                };
                let (ch, size) = (arch.channels, arch.size);
                (
                    arch,
                    classes,
                    Box::new(experiment::mvtec_loader(root, ch, size)),
                )
            }
            other => {
                return Err(Error::invalid(format!(
                    "unknown data set {other:?} (fashion-mnist or mvtec)"
                )))
            }
        };
    let plan = Plan {
        dataset: a.dataset.clone(),
        classes,
        metrics: a.metrics.clone(),
        amps: a.amp.clone(),
        granularities: a.granularity.clone(),
        seeds: a.seeds.clone(),
        epochs: a.epochs,
        batch: a.batch,
        lr,
        optimizer: a.optimizer.clone(),
        command,
    };
    TrainConfig {
        epochs: a.epochs,
        batch: a.batch,
        lr,
        seed: 0,
    }
    .check(usize::MAX)?;
    let (g, k) = open_device(adapter)?;
    experiment::run(g, k, &plan, &*loader, &arch, &a.out)?;
    println!("lamp experiment: {}", a.out.join("results.md").display());
    Ok(())
}

fn fmt_opt(v: &serde_json::Value) -> String {
    v.as_f64().map_or("n/a".into(), |x| format!("{x:.4}"))
}

/// The demo data set, built into the binary (assets/fashion-mnist-mini, MIT, Zalando SE).
const DEMO_FILES: [(&str, &[u8]); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        include_bytes!("../assets/fashion-mnist-mini/train-images-idx3-ubyte.gz"),
    ),
    (
        "train-labels-idx1-ubyte.gz",
        include_bytes!("../assets/fashion-mnist-mini/train-labels-idx1-ubyte.gz"),
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        include_bytes!("../assets/fashion-mnist-mini/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        include_bytes!("../assets/fashion-mnist-mini/t10k-labels-idx1-ubyte.gz"),
    ),
];

fn demo_cmd(adapter: Option<&str>, a: DemoArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let data_dir = a.out.join("data");
    lamp::fsutil::ensure_dir(&data_dir)?;
    for (name, bytes) in DEMO_FILES {
        lamp::fsutil::write_atomic(&data_dir.join(name), bytes)?;
    }
    let spec = "fashion-mnist:1";
    let src = Source::parse(spec, Some(&data_dir))?;
    let arch = Arch::fmnist_ae();
    let train = data::load_training(&src, 1, 28)?;
    let (g, k) = open_device(adapter)?;
    eprintln!(
        "lamp demo: Fashion-MNIST class 1 (Trouser) is normal; training {} on {} images on {}",
        arch.name,
        train.len(),
        g.describe()
    );
    let loss = LossConfig {
        metric: Metric::Mse,
        amp: Amp::Lamp,
        granularity: Granularity::Element,
    };
    let opts = FitOptions {
        arch: arch.clone(),
        loss,
        train: TrainConfig {
            epochs: a.epochs,
            batch: 32,
            lr: 2e-3,
            seed: 0,
        },
        val_split: 0.1,
        threshold: ThresholdMethod::Quantile,
        contamination: 0.05,
        sigma_k: 3.0,
        log_every: 0,
        device_data_limit: 1 << 30,
    };
    let (mut ck, reports) = fit::fit(
        g.clone(),
        k.clone(),
        &train,
        &opts,
        None,
        None,
        progress_printer(false, a.epochs),
    )?;
    ck.metadata.insert(
        "data".into(),
        "lamp demo (fashion-mnist-mini, class 1)".into(),
    );
    let model = a.out.join("model.safetensors");
    save_model(&ck, &reports, &model)?;
    let test = data::load_test(&src, 1, 28)?;
    let cal: Calibration = ck
        .meta("calibration")
        .ok_or_else(|| Error::invalid("calibration missing"))?;
    let mut e = Engine::new(g, k, arch, loss, 200, &ck.params)?;
    let report_dir = a.out.join("report");
    let inp = lamp::eval::EvalInput {
        test: &test,
        calibration: &cal,
        loss,
        model_label: model.display().to_string(),
        data_label: format!(
            "{} test images: 100 trousers (normal), 100 other garments",
            test.data.len()
        ),
        panels: 6,
    };
    let m = lamp::eval::evaluate(&mut e, &inp, &report_dir)?;
    println!(
        "lamp demo: image AUROC {} (F1-max {}) in {:.0} s. Report: {}",
        fmt_opt(&m["image_auroc"]),
        fmt_opt(&m["f1_max"]),
        t0.elapsed().as_secs_f64(),
        report_dir.join("report.md").display()
    );
    Ok(())
}

/// `model.safetensors` → `model.<suffix>`.
fn sibling(p: &Path, suffix: &str) -> PathBuf {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    p.with_file_name(format!("{stem}.{suffix}"))
}

/// Reads `x` [B, C, H, W] (F32, values in [0, 1]) from a safetensors file.
fn read_batch(path: &Path) -> Result<(Vec<f32>, [usize; 4])> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::file(path, format!("not a valid safetensors file ({e})")))?;
    let t = st
        .tensor("x")
        .map_err(|_| Error::file(path, "no tensor named x"))?;
    let shape: [usize; 4] = t.shape().try_into().map_err(|_| {
        Error::file(
            path,
            format!("x has shape {:?}, expected [B, C, H, W]", t.shape()),
        )
    })?;
    let x: Vec<f32> = match t.dtype() {
        safetensors::Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        safetensors::Dtype::F64 => t
            .data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        d => return Err(Error::file(path, format!("x is {d:?}, expected F32"))),
    };
    if let Some(v) = x.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::file(path, format!("x holds {v}, outside [0, 1]")));
    }
    Ok((x, shape))
}

fn grad_cmd(adapter: Option<&str>, a: GradArgs) -> Result<()> {
    let hint = a.arch.as_deref().map(Arch::by_name).transpose()?;
    let (arch, params) = match (&a.model, a.init_seed) {
        (Some(p), _) => {
            let c = Checkpoint::load(p, hint.as_ref())?;
            (c.arch, c.params)
        }
        (None, Some(seed)) => {
            let arch = hint.unwrap_or_else(Arch::fmnist_ae);
            let p = arch.init(seed);
            (arch, p)
        }
        (None, None) => return Err(Error::invalid("give --model CKPT or --init-seed S")),
    };
    let (x, shape) = read_batch(&a.input)?;
    let want = arch.input_shape().map(|v| v as usize);
    if shape[1..] != want {
        return Err(Error::file(
            &a.input,
            format!(
                "x has samples of {:?}, the model takes {want:?}",
                &shape[1..]
            ),
        ));
    }
    let batch = shape[0];
    if batch == 0 {
        return Err(Error::file(&a.input, "x holds no samples"));
    }
    if !(a.lr > 0.0 && a.lr.is_finite()) {
        return Err(Error::invalid(format!(
            "--lr must be a positive number, got {}",
            a.lr
        )));
    }
    let loss = a.loss.config();
    let (g, k) = open_device(adapter)?;
    let mut e = Engine::new(g, k, arch.clone(), loss, batch, &params)?;
    e.adam.lr = a.lr;
    e.upload_batch(&x, batch)?;
    let table = arch.param_table();
    let mut out: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
    if a.adam_steps > 0 {
        let mut losses = Vec::new();
        for _ in 0..a.adam_steps {
            e.grad_step(batch, true)?;
            losses.push(e.wait_stats()?.loss);
        }
        let p = e.read_params()?;
        for t in &table.entries {
            out.insert(
                t.name.clone(),
                (t.shape.clone(), p[t.offset..t.offset + t.len()].to_vec()),
            );
        }
        out.insert("loss".into(), (vec![losses.len()], losses));
    } else {
        e.grad_step(batch, false)?;
        let st = e.wait_stats()?;
        out.insert("loss".into(), (vec![], vec![st.loss]));
        out.insert("errors".into(), (vec![batch], e.errors(batch)?));
        out.insert("recon".into(), (shape.to_vec(), e.recon(batch)?));
        let gr = e.read_grads()?;
        for t in &table.entries {
            out.insert(
                format!("grad.{}", t.name),
                (t.shape.clone(), gr[t.offset..t.offset + t.len()].to_vec()),
            );
        }
    }
    let mut meta = BTreeMap::new();
    meta.insert("loss".to_string(), to_json(&loss)?);
    meta.insert("arch".to_string(), to_json(&arch)?);
    let views: BTreeMap<String, (Vec<usize>, &[f32])> = out
        .iter()
        .map(|(k, (s, v))| (k.clone(), (s.clone(), v.as_slice())))
        .collect();
    lamp::fsutil::write_atomic(&a.out, &lamp::checkpoint::write_safetensors(&meta, &views))
}
