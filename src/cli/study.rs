//! `lamp experiment` (the LAMP-versus-baseline table) and `lamp landscape` (loss surfaces).

use super::args::{choice, ArchArgs};
use clap::Args;
use lamp::data::{self, Source};
use lamp::detect::Aggregate;
use lamp::detect::{Checkpoint, TrainConfig};
use lamp::device::Device;
use lamp::error::{Error, Result};
use lamp::model::{Amp, Granularity, Metric, OptimizerKind, Schedule};
use lamp::study::{experiment, landscape};
use std::path::PathBuf;

#[derive(Args)]
pub struct ExperimentArgs {
    /// fashion-mnist, or mvtec (then DIR holds MVTec AD categories).
    dataset: String,
    /// MVTec AD root (for `mvtec`).
    dir: Option<PathBuf>,
    /// Results folder (results.jsonl, results.md, plots); rerunning resumes it.
    #[arg(short, long)]
    out: PathBuf,
    /// Fashion-MNIST classes ("0-9", "0,3") or MVTec categories ("bottle,screw"; default all).
    #[arg(long)]
    classes: Option<String>,
    /// Reconstruction metrics to compare (mae, mse, ssim).
    #[arg(long, value_parser = choice::<Metric>(), value_delimiter = ',', default_value = "mae,mse,ssim")]
    metrics: Vec<Metric>,
    /// Losses to compare: none (the plain error) and lamp (amplified).
    #[arg(long, value_parser = choice::<Amp>(), value_delimiter = ',', default_value = "none,lamp")]
    amp: Vec<Amp>,
    /// Where LAMP amplifies: element, sample, batch (for the lamp cells).
    #[arg(
        long = "amp-granularity",
        value_parser = choice::<Granularity>(),
        value_delimiter = ',',
        default_value = "element"
    )]
    granularity: Vec<Granularity>,
    /// Training epochs per cell.
    #[arg(long, value_parser = super::args::whole::<u32>, default_value_t = 10)]
    epochs: u32,
    /// Seeds: each cell is trained once per seed, and LAMP and the baseline are paired by seed.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// adam, or sgd (momentum 0.9).
    #[arg(long, value_parser = choice::<OptimizerKind>(), default_value = "adam")]
    optimizer: OptimizerKind,
    /// Training batch size [default: 64, or a class's number of training images where it has
    /// fewer].
    #[arg(long, value_parser = super::args::whole::<usize>)]
    batch: Option<usize>,
    /// Default: 1e-3 for Adam, 1e-2 for SGD.
    #[arg(long)]
    lr: Option<f64>,
    /// Folder of the Fashion-MNIST IDX files (for fashion-mnist:C data).
    #[arg(long)]
    idx_dir: Option<PathBuf>,
    #[command(flatten)]
    arch: ArchArgs,
    /// Train on random PxP patches of the images at their own size, score by stitched windows
    /// (mvtec; the model is conv-ae for P unless --arch says otherwise).
    #[arg(long, value_parser = super::args::whole::<u32>)]
    patch: Option<u32>,
    /// Flip and rotate each training sample (as `lamp train --augment`).
    #[arg(long)]
    augment: bool,
    /// Train to remove synthetic defects (as `lamp train --denoise`).
    #[arg(long)]
    denoise: bool,
    /// At least this many optimizer steps (more epochs for small sets).
    #[arg(long, value_parser = super::args::whole::<u32>, default_value_t = 0)]
    min_steps: u32,
    /// Learning-rate schedule: constant, or cosine (to a hundredth).
    #[arg(long, value_parser = choice::<Schedule>(), default_value = "constant")]
    schedule: Schedule,
    /// An image's score: mean error, maximum or top-k mean of its smoothed map.
    #[arg(long, value_parser = choice::<Aggregate>(), default_value = "mean")]
    score_agg: Aggregate,
    /// With --score-agg topk: the fraction of the map's pixels averaged (0.01 = the top 1%).
    #[arg(long, default_value_t = 0.01)]
    top_k: f64,
}

#[derive(Args)]
pub struct LandscapeArgs {
    /// Checkpoint written by `lamp train`.
    model: PathBuf,
    /// Training data (the batch is drawn from it): a folder, an MVTec category, fashion-mnist:C.
    data: String,
    /// Output folder: plain.png and amplified.png (the two losses over the grid, one colour
    /// scale), landscape.csv and landscape.json.
    #[arg(short, long)]
    out: PathBuf,
    /// Grid points per direction.
    #[arg(long, value_parser = super::args::whole::<usize>, default_value_t = 15)]
    grid: usize,
    /// The grid spans [-radius, radius] along each (filter-normalised) direction.
    #[arg(long, default_value_t = 1.0)]
    radius: f64,
    /// Samples in the batch the loss is evaluated on.
    #[arg(long, value_parser = super::args::whole::<usize>, default_value_t = 128)]
    batch: usize,
    /// Seed of the batch and of the two random directions.
    #[arg(long, value_parser = super::args::whole::<u64>, default_value_t = 0)]
    seed: u64,
    /// Folder of the Fashion-MNIST IDX files (for fashion-mnist:C data).
    #[arg(long)]
    idx_dir: Option<PathBuf>,
}

pub fn experiment(adapter: Option<&str>, a: ExperimentArgs) -> Result<()> {
    let lr = a.lr.unwrap_or(a.optimizer.default_lr());
    // The command that reproduces (and resumes) this table, printed at its top.
    let command = std::iter::once("lamp".to_string())
        .chain(
            std::env::args()
                .skip(1)
                .map(|s| if s.contains(' ') { format!("'{s}'") } else { s }),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let arch = match a.patch {
        Some(p) => a.arch.for_patch(p)?.arch(None)?,
        None => a.arch.arch(None)?,
    };
    let (arch, classes, loader) = experiment::setup(
        &a.dataset,
        a.dir.as_deref(),
        a.classes.as_deref(),
        a.idx_dir.as_deref(),
        arch,
        a.patch.is_some(),
    )?;
    if let Some(p) = a.patch.filter(|&p| p != arch.size) {
        return Err(Error::setting(
            "patch",
            format!("{p} is not the model's input size ({})", arch.size),
        ));
    }
    let score = lamp::detect::score::ScoreConfig {
        aggregate: a.score_agg,
        top_k: a.top_k,
        ..Default::default()
    };
    score.check()?;
    let recipe = experiment::Recipe {
        patch: a.patch,
        augment: a.augment,
        denoise: a.denoise,
        min_steps: a.min_steps,
        schedule: a.schedule,
        aggregate: a.score_agg,
        top_k: a.top_k,
        init: a.arch.init.resolve(&arch),
    };
    let plan = experiment::Plan {
        dataset: a.dataset.clone(),
        classes,
        metrics: a.metrics.clone(),
        amps: a.amp.clone(),
        granularities: a.granularity.clone(),
        seeds: a.seeds.clone(),
        epochs: a.epochs,
        batch: a.batch.unwrap_or(experiment::DEFAULT_BATCH),
        batch_given: a.batch.is_some(),
        lr,
        optimizer: a.optimizer,
        recipe,
        command,
    };
    TrainConfig {
        epochs: a.epochs,
        batch: plan.batch,
        lr,
        seed: 0,
        optimizer: a.optimizer,
        schedule: Schedule::Constant,
        augment: false,
        denoise: false,
        init: None,
    }
    .check(usize::MAX)?;
    if a.batch == Some(0) {
        return Err(Error::setting("batch", "must be at least 1"));
    }
    // One writer per results folder: a second run on it would train every cell twice.
    lamp::fsutil::ensure_dir(&a.out)?;
    let _lock = lamp::fsutil::lock_exclusive(&a.out.join("results.jsonl"), "experiment folder")?;
    experiment::run(Device::shared(adapter)?, &plan, &*loader, &arch, &a.out)?;
    outln!("lamp experiment: {}", a.out.join("results.md").display())?;
    Ok(())
}

pub fn landscape(adapter: Option<&str>, a: LandscapeArgs) -> Result<()> {
    let ck = Checkpoint::load(&a.model, None)?;
    if ck.loss.is_none() {
        return Err(Error::file(&a.model, "no loss settings in the metadata"));
    }
    let src = Source::parse(&a.data, a.idx_dir.as_deref())?;
    if let Some(dir) = src.training_folder() {
        let what = "the pictures written there";
        super::args::check_not_inside(&a.out, "-o", &[&dir], false, what)?;
    }
    let d = data::load_training(&src, ck.arch.channels, ck.arch.size)?;
    let options = landscape::Options {
        grid: a.grid,
        radius: a.radius,
        batch: a.batch,
        seed: a.seed,
    };
    let s = landscape::run(Device::shared(adapter)?, &ck, &d, &options, &a.out)?;
    outln!(
        "loss at the trained weights: plain {:.5}, amplified {:.5}; mean rise within r = {}: plain {:.5} ({:+.0}%), amplified {:.5} ({:+.0}%) -> {}",
        s.plain_at_center,
        s.amplified_at_center,
        s.sharpness_radius,
        s.plain_mean_rise,
        100.0 * s.plain_relative_rise,
        s.amplified_mean_rise,
        100.0 * s.amplified_relative_rise,
        a.out.display()
    )?;
    Ok(())
}
