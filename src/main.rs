//! The `lamp` command line. Every error ends as one line naming the file or argument and the
//! problem, and a non-zero exit.

use clap::{Args, Parser, Subcommand};
use lamp::checkpoint::{Checkpoint, OptimizerState};
use lamp::data::{self, Source};
use lamp::engine::Engine;
use lamp::error::{Error, Result};
use lamp::gpu::{self, Gpu};
use lamp::kernels::{Amp, Granularity, Kernels, LossConfig, Metric};
use lamp::model::Arch;
use lamp::train::{self, Progress, TrainConfig};
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
    Ok(())
}

fn train_cmd(adapter: Option<&str>, a: TrainArgs) -> Result<()> {
    let arch = a.arch.arch()?;
    let loss = a.loss.config();
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
    };
    // Argument errors first, before any data is read.
    cfg.check(usize::MAX)?;
    let src = Source::parse(&a.data, a.idx_dir.as_deref())?;
    let data = data::load_training(&src, arch.channels, arch.size)?;
    cfg.check(data.len())?;
    let (g, k) = open_device(adapter)?;
    let quiet = a.quiet;
    if !quiet {
        eprintln!(
            "lamp: training {} on {} ({} images) with {loss} on {}",
            arch.name,
            a.data,
            data.len(),
            g.describe()
        );
    }
    let params = arch.init(a.seed);
    let mut e = Engine::new(g, k, arch.clone(), loss, cfg.batch, &params)?;
    e.upload_dataset(&data.samples, data.len())?;
    let tty = std::io::stderr().is_terminal();
    let reports = train::train(&mut e, data.len(), &cfg, 0, a.log_every, |p| {
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
                eprint!(
                    "\r  epoch {}/{} step {step}/{steps} loss {loss:.6} {images_per_s:.0} img/s   ",
                    epoch + 1,
                    cfg.epochs
                );
            }
            Progress::Step { .. } => {}
            Progress::Epoch(r) => {
                if tty {
                    eprint!("\r");
                }
                eprintln!(
                    "  epoch {}/{} loss {:.6} clamps {} {:.1} s {:.0} img/s        ",
                    r.epoch, cfg.epochs, r.mean_loss, r.clamps, r.seconds, r.images_per_s
                );
            }
        }
    })?;
    let (m, v) = e.read_moments()?;
    let mut ck = Checkpoint::new(arch, Some(loss), e.read_params()?);
    ck.optimizer = Some(OptimizerState {
        t: e.t,
        exp_avg: m,
        exp_avg_sq: v,
    });
    ck.metadata.insert("train".into(), to_json(&cfg)?);
    ck.metadata
        .insert("epochs_done".into(), cfg.epochs.to_string());
    ck.metadata.insert("history".into(), to_json(&reports)?);
    ck.metadata.insert("data".into(), a.data.clone());
    ck.save(&a.out)?;
    let mut csv = String::from("epoch,loss,clamps,seconds,images_per_s\n");
    for r in &reports {
        csv += &format!(
            "{},{},{},{:.3},{:.1}\n",
            r.epoch, r.mean_loss, r.clamps, r.seconds, r.images_per_s
        );
    }
    lamp::fsutil::write_atomic(&sibling(&a.out, "loss.csv"), csv.as_bytes())?;
    if !quiet {
        eprintln!("lamp: wrote {}", a.out.display());
    }
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

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::invalid(format!("cannot encode: {e}")))
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
