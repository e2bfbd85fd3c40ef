//! The tools: `lamp info` (adapters and limits), `lamp init` (a freshly initialised model),
//! `lamp grad` (one pass for checking against another framework) and `lamp bench`.

use super::args::{ArchArgs, LossArgs};
use clap::Args;
use lamp::data::tensors::{self, Tensors};
use lamp::detect::checkpoint::to_json;
use lamp::detect::Checkpoint;
use lamp::device::{self, Device};
use lamp::engine::Engine;
use lamp::error::{Error, Result};
use lamp::fsutil::write_atomic;
use lamp::kernels::GemmCore;
use lamp::model::{Arch, Choice};
use lamp::study::bench;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    arch: ArchArgs,
    /// Seed of the initial weights.
    #[arg(long, value_parser = super::args::whole::<u64>, default_value_t = 0)]
    seed: u64,
    /// The model file to write (safetensors).
    #[arg(short, long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct GradArgs {
    /// Checkpoint, or a bare safetensors file of PyTorch-named tensors (with --arch).
    #[arg(long, conflicts_with = "init_seed")]
    model: Option<PathBuf>,
    /// Build the model from this seed (PyTorch's initialisation) instead of loading it.
    #[arg(long, value_parser = super::args::whole::<u64>)]
    init_seed: Option<u64>,
    /// Architecture of --init-seed or of a bare --model file.
    #[arg(long)]
    arch: Option<String>,
    /// safetensors file with a tensor `x` [B, C, H, W] in [0, 1].
    #[arg(long)]
    input: PathBuf,
    /// Output safetensors file: the loss, the reconstruction and every gradient (or, with
    /// --adam-steps, the parameters after the steps).
    #[arg(short, long)]
    out: PathBuf,
    /// Take K Adam steps on the batch instead, and write the parameters.
    #[arg(long, value_parser = super::args::whole::<u32>, default_value_t = 0)]
    adam_steps: u32,
    /// Adam's learning rate for --adam-steps [default: 0.001].
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    #[command(flatten)]
    loss: LossArgs,
}

#[derive(Args)]
pub struct BenchArgs {
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

pub fn info(adapter: Option<&str>) -> Result<()> {
    let all = device::list_adapters();
    outln!("adapters:")?;
    if all.is_empty() {
        // (As an error is worded: `adapter` becomes --adapter.)
        let why = super::message(&Error::NoAdapter(device::no_adapter_hint()));
        outln!("  (none) — {why}")?;
    }
    for a in &all {
        outln!(
            "  {} ({:?}, {:?}, driver {} {})",
            a.name,
            a.backend,
            a.device_type,
            a.driver,
            a.driver_info
        )?;
    }
    let g = Device::new(adapter)?;
    outln!("chosen: {}", g.describe())?;
    let l = &g.limits;
    outln!("limits:")?;
    outln!(
        "  max_storage_buffer_binding_size: {} MiB",
        l.max_storage_buffer_binding_size >> 20
    )?;
    outln!("  max_buffer_size: {} MiB", l.max_buffer_size >> 20)?;
    outln!(
        "  max_storage_buffers_per_shader_stage: {}",
        l.max_storage_buffers_per_shader_stage
    )?;
    outln!(
        "  max_compute_workgroups_per_dimension: {}",
        l.max_compute_workgroups_per_dimension
    )?;
    outln!(
        "  max_compute_invocations_per_workgroup: {}",
        l.max_compute_invocations_per_workgroup
    )?;
    outln!(
        "  max_compute_workgroup_storage_size: {}",
        l.max_compute_workgroup_storage_size
    )?;
    let has = |f: wgpu::Features| if g.features.contains(f) { "yes" } else { "no" };
    outln!(
        "features lamp uses: subgroups {}, timestamp queries {}, pipeline cache {}",
        has(wgpu::Features::SUBGROUP),
        has(wgpu::Features::TIMESTAMP_QUERY),
        has(wgpu::Features::PIPELINE_CACHE)
    )?;
    let pc = lamp::device::pipeline_cache::ENV;
    match &g.pipeline_cache {
        Some(c) => outln!(
            "pipeline cache file: {} ({pc} = a folder, or off)",
            lamp::fsutil::path_text(&c.path)
        )?,
        None if g.features.contains(wgpu::Features::PIPELINE_CACHE) => {
            outln!("pipeline cache file: none ({pc} is off, or no home folder is known)")?
        }
        None => outln!("pipeline cache file: none (wgpu offers one on Vulkan only)")?,
    }
    outln!(
        "training steps per submit: {} ({} = 1 to {} to choose)",
        match lamp::engine::steps_per_submit_from_env() {
            Ok(k) => k.to_string(),
            Err(e) => format!("refused: {e}"),
        },
        lamp::engine::STEPS_PER_SUBMIT_ENV,
        lamp::engine::MAX_STEPS_PER_SUBMIT
    )?;
    let core = GemmCore::best(&g);
    outln!(
        "subgroup sizes: {}..{}; GEMM core: {} ({}; {} = {} to choose)",
        g.subgroup_sizes.0,
        g.subgroup_sizes.1,
        core.describe(),
        match std::env::var(lamp::kernels::gemm::GEMM_ENV) {
            Ok(v) if v == core.name() => "as asked".to_string(),
            Ok(v) => format!("{v:?} asked: not one this device runs; chosen for this device"),
            Err(_) => "chosen for this device".to_string(),
        },
        lamp::kernels::gemm::GEMM_ENV,
        GemmCore::NAMES.join("|"),
    )?;
    let layout = lamp::engine::layout::layout_name();
    let env = lamp::engine::layout::LAYOUT_ENV;
    let ignored = match std::env::var(env) {
        Ok(v) if v != "plain" && v != "grouped" => format!("; {env}={v:?} ignored"),
        _ => String::new(),
    };
    outln!(
        "activation layout: {layout} ({}{ignored}; {env} = plain|grouped to choose)",
        if layout == "plain" {
            "every map NCHW, as asked"
        } else {
            "hidden maps in channel groups of four, read four at a time"
        },
    )?;
    Ok(())
}

pub fn init(a: InitArgs) -> Result<()> {
    // A fresh model replaces only a fresh model (or nothing): not a trained one or a run's
    // snapshot (they have an optimizer state), not an image.
    if a.out.exists() {
        let fresh = Checkpoint::load(&a.out, None).is_ok_and(|c| {
            c.optimizer.is_none() && !c.metadata.contains_key("history") && c.loss.is_none()
        });
        if !fresh {
            return Err(Error::file(
                &a.out,
                "exists and is not an untrained model (a trained one, a run's snapshot, or \
                 another file): init would replace it; write elsewhere, or remove it first",
            ));
        }
    }
    let arch = a.arch.arch(None)?;
    let init = a.arch.init.resolve(&arch);
    let p = arch.init_with(init, a.seed);
    let what = arch.describe();
    let mut c = Checkpoint::new(arch, None, p);
    c.metadata.insert("init_seed".into(), a.seed.to_string());
    c.metadata.insert("init".into(), init.name().into());
    c.save(&a.out)?;
    lamp::sayln!(
        "lamp: wrote {} ({what}, initial weights {}, seed {}; untrained)",
        a.out.display(),
        init.name(),
        a.seed
    );
    Ok(())
}

pub fn bench(adapter: Option<&str>, a: BenchArgs) -> Result<()> {
    let options = bench::Options {
        quick: a.quick,
        fmnist_only: a.fmnist_only,
    };
    let r = bench::run(Device::shared(adapter)?, options)?;
    if a.json {
        outln!("{}", to_json(&r)?)?;
    } else {
        out!("{}", bench::text(&r))?;
    }
    Ok(())
}

pub fn grad(adapter: Option<&str>, a: GradArgs) -> Result<()> {
    let batch = [a.input.clone()];
    super::args::check_not_read(&a.out, "-o", &batch, Some("the input batch being read"))?;
    let model: Vec<std::path::PathBuf> = a.model.iter().cloned().collect();
    super::args::check_not_an_input(&a.out, "-o", &model)?;
    let lr = match (a.lr, a.adam_steps) {
        (Some(_), 0) => {
            return Err(Error::setting(
                "lr",
                "applies to --adam-steps only (without them grad takes no step)",
            ))
        }
        (lr, _) => lr.unwrap_or(1e-3),
    };
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
    let (x, shape) = tensors::read_batch(&a.input)?;
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
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(Error::setting(
            "lr",
            format!("must be a positive number, got {lr}"),
        ));
    }
    let loss = a.loss.config();
    let mut e = Engine::new(Device::shared(adapter)?, arch.clone(), loss, batch, &params)?;
    e.optimizer.set_lr(lr);
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
        if p.iter().any(|v| !v.is_finite()) || losses.iter().any(|l| !l.is_finite()) {
            return Err(Error::NonFinite(format!(
                "{} Adam steps of lr {lr} left the loss or the parameters non-finite: lower --lr",
                a.adam_steps
            )));
        }
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
    let views: Tensors = out
        .iter()
        .map(|(k, (s, v))| (k.clone(), (s.clone(), v.as_slice())))
        .collect();
    write_atomic(&a.out, &tensors::write_safetensors(&meta, &views))
}
