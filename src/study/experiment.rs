//! `lamp experiment`: the one-class protocol for every combination of class × metric ×
//! amplification × granularity × seed, one cell at a time, each trained by the same core as
//! `lamp train` (detect::train). Each finished cell is appended to `results.jsonl`
//! (study::results); a restarted run skips the cells already there. `results.md` and its charts
//! are rebuilt from the JSONL after every cell (study::report).

use super::report;
use super::results::{append, read_results, CellKey, CellResult, INIT_SUFFIX};
use crate::data::{self, Dataset, TestSet};
use crate::detect::baseline::{
    gaussian_separation, mean_image_auroc, mean_image_separation, separation, Separation,
};
use crate::detect::fit::{engine_for, FitOptions};
use crate::detect::metrics;
use crate::detect::score::{errors_and_maps, Aggregate, ScoreConfig};
use crate::detect::train::{self, TrainConfig};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::fsutil::ensure_dir;
use crate::model::{
    Amp, Arch, Choice, Granularity, Init, LossConfig, Metric, OptimizerKind, Schedule,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// How cells train and score beyond the loss: the recipe of `lamp train`'s options. The default
/// is the first tables' (whole images, a constant rate, the plain error, exactly `epochs`,
/// PyTorch's initial weights).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    /// Train on windows of this side of the full-size images, score by stitched windows.
    pub patch: Option<u32>,
    pub augment: bool,
    pub denoise: bool,
    pub min_steps: u32,
    pub schedule: Schedule,
    pub aggregate: Aggregate,
    pub top_k: f64,
    /// The initial weights (settled for the model: the command line's `auto` is resolved).
    pub init: Init,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            patch: None,
            augment: false,
            denoise: false,
            min_steps: 0,
            schedule: Schedule::Constant,
            aggregate: Aggregate::Mean,
            top_k: ScoreConfig::default().top_k,
            init: Init::Pytorch,
        }
    }
}

impl Recipe {
    /// Its name in the results: what differs from the default.
    pub fn name(&self) -> String {
        let d = Recipe::default();
        let mut parts = Vec::new();
        if let Some(p) = self.patch {
            parts.push(format!("patch{p}"));
        }
        if self.augment {
            parts.push("augment".into());
        }
        if self.denoise {
            parts.push("denoise".into());
        }
        if self.aggregate != d.aggregate {
            parts.push(match self.aggregate {
                Aggregate::Topk => format!("top{}%", self.top_k * 100.0),
                a => a.name().into(),
            });
        }
        if self.schedule != d.schedule {
            parts.push(self.schedule.name().into());
        }
        if self.min_steps > 0 {
            parts.push(format!("{}steps", self.min_steps));
        }
        if self.init != d.init {
            parts.push(format!("{}{INIT_SUFFIX}", self.init.name()));
        }
        parts.join(" ")
    }
}

pub struct Plan {
    pub dataset: String,
    pub classes: Vec<String>,
    pub metrics: Vec<Metric>,
    pub amps: Vec<Amp>,
    pub granularities: Vec<Granularity>,
    pub seeds: Vec<u64>,
    pub epochs: u32,
    /// The batch asked for, or `DEFAULT_BATCH`: recorded with each cell as asked.
    pub batch: usize,
    /// Whether `batch` was asked for: the default is cut to a class's training images where
    /// it has fewer (a batch larger than the set is refused).
    pub batch_given: bool,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub recipe: Recipe,
    /// The command that reproduces (and resumes) the table, printed at its top.
    pub command: String,
}

impl Plan {
    /// Every cell, in run order. `none` has one granularity (they coincide).
    pub fn cells(&self) -> Vec<(CellKey, LossConfig)> {
        let mut v = Vec::new();
        for seed in &self.seeds {
            for class in &self.classes {
                for &metric in &self.metrics {
                    for &amp in &self.amps {
                        let grans: Vec<Granularity> = if amp == Amp::None {
                            vec![Granularity::Element]
                        } else {
                            self.granularities.clone()
                        };
                        for granularity in grans {
                            let key = CellKey {
                                dataset: self.dataset.clone(),
                                class: class.clone(),
                                metric: metric.name().into(),
                                amp: amp.name().into(),
                                granularity: if amp == Amp::None {
                                    "-".into()
                                } else {
                                    granularity.name().into()
                                },
                                optimizer: self.optimizer.name().into(),
                                epochs: self.epochs,
                                seed: *seed,
                                recipe: self.recipe.name(),
                            };
                            v.push((
                                key,
                                LossConfig {
                                    metric,
                                    amp,
                                    granularity,
                                },
                            ));
                        }
                    }
                }
            }
        }
        v
    }
}

/// `lamp experiment`'s batch where none is asked for (the tables' batch).
pub const DEFAULT_BATCH: usize = 64;

/// Loads (training set, test set) for one class or category.
pub type Loader = Box<dyn Fn(&str) -> Result<(Dataset, TestSet)>>;

/// Runs every cell not yet in `out/results.jsonl`.
pub fn run(
    device: Arc<Device>,
    plan: &Plan,
    load: &dyn Fn(&str) -> Result<(Dataset, TestSet)>,
    arch: &Arch,
    out: &Path,
) -> Result<()> {
    ensure_dir(out)?;
    let path = out.join("results.jsonl");
    let results = read_results(&path)?;
    let cells = plan.cells();
    // A cell of this table trained otherwise would be taken as done: its figures are not this
    // run's.
    let wanted: BTreeSet<&CellKey> = cells.iter().map(|(k, _)| k).collect();
    for r in results.iter().filter(|r| wanted.contains(&r.key)) {
        let other = match (r.lr, r.batch) {
            (Some(lr), _) if lr != plan.lr => Some(format!("--lr {lr} (this run: {})", plan.lr)),
            (_, Some(b)) if b != plan.batch => {
                Some(format!("--batch {b} (this run: {})", plan.batch))
            }
            _ => None,
        };
        if let Some(other) = other {
            return Err(Error::file(
                &path,
                format!(
                    "holds cells of this table trained with {other}: give the same options to \
                     resume it, or another output folder"
                ),
            ));
        }
    }
    let done: BTreeSet<CellKey> = results.iter().map(|r| r.key.clone()).collect();
    let todo: Vec<&(CellKey, LossConfig)> = cells
        .iter()
        .filter(|(key, _)| !done.contains(key))
        .collect();
    crate::sayln!(
        "lamp experiment: {} cells, {} done, {} to run",
        cells.len(),
        cells.len() - todo.len(),
        todo.len()
    );
    let mut cache: BTreeMap<String, (Dataset, TestSet, String)> = BTreeMap::new();
    let mut baselines: BTreeMap<(String, String), (Separation, Separation)> = BTreeMap::new();
    for (i, (key, loss)) in todo.iter().enumerate() {
        if !cache.contains_key(&key.class) {
            cache.clear();
            let (tr, test) = load(&key.class)?;
            let id = data_id(&tr, &test);
            check_same_data(&path, &results, &key.dataset, &key.class, &id)?;
            cache.insert(key.class.clone(), (tr, test, id));
        }
        let (tr, test, id) = &cache[&key.class];
        let side = tr.shape[1];
        let score = ScoreConfig {
            aggregate: plan.recipe.aggregate,
            top_k: plan.recipe.top_k,
            sigma: ScoreConfig::sigma_for(side),
            align: 0,
        };
        let (mean_image, gaussian) = *baselines
            .entry((key.class.clone(), key.metric.clone()))
            .or_insert_with(|| {
                let mut m = mean_image_separation(tr, test, loss.metric, &score);
                // The plain error's AUROC, as the first tables have it.
                m.image_auroc = mean_image_auroc(tr, test, loss.metric);
                (m, gaussian_separation(tr, test, &score))
            });
        let t0 = Instant::now();
        let options = FitOptions {
            arch: arch.clone(),
            loss: *loss,
            train: TrainConfig {
                epochs: plan.epochs,
                batch: match plan.batch_given {
                    true => plan.batch,
                    false => plan.batch.min(tr.len()).max(1),
                },
                lr: plan.lr,
                seed: key.seed,
                optimizer: plan.optimizer,
                schedule: plan.recipe.schedule,
                augment: plan.recipe.augment,
                denoise: plan.recipe.denoise,
                init: Some(plan.recipe.init),
            },
            min_steps: plan.recipe.min_steps,
            ..Default::default()
        }
        .resolved(&device, tr.len());
        let params = arch.init_with(plan.recipe.init, key.seed);
        let mut e = engine_for(device.clone(), &options, &params, None, tr)?;
        let cfg = &options.train;
        let reports = train::train(&mut e, cfg, Vec::new(), 0, None, |_| {}, |_, _| Ok(()))?;
        let train_seconds = t0.elapsed().as_secs_f64();
        let model = if test.masks.is_none() && !score.needs_maps() && side == arch.size {
            let s = e.score(&test.data.samples)?;
            Separation {
                image_auroc: metrics::auroc(&s, &test.anomalous),
                ..Default::default()
            }
        } else {
            // The maps as they are (no normal map): the tables' cells predate it, and a rerun
            // of a table must give its figures again.
            let (errors, maps) = errors_and_maps(&mut e, &test.data.samples, side, score.sigma)?;
            let s: Vec<f32> = errors
                .iter()
                .zip(&maps)
                .map(|(&x, m)| score.score(x, m))
                .collect();
            separation(test, &s, &maps)
        };
        let auroc = model.image_auroc.unwrap_or(f64::NAN);
        let base = mean_image.image_auroc.unwrap_or(f64::NAN);
        let r = CellResult {
            key: key.clone(),
            auroc,
            mean_image_auroc: base,
            pixel_auroc: model.pixel_auroc,
            aupro: model.aupro,
            mean_image_pixel_auroc: mean_image.pixel_auroc,
            mean_image_aupro: mean_image.aupro,
            gaussian_auroc: test.masks.as_ref().and(gaussian.image_auroc),
            gaussian_pixel_auroc: gaussian.pixel_auroc,
            gaussian_aupro: gaussian.aupro,
            first_loss: reports.first().map_or(f32::NAN, |r| r.mean_loss),
            last_loss: reports.last().map_or(f32::NAN, |r| r.mean_loss),
            clamps: reports.iter().map(|r| r.clamps).max().unwrap_or(0),
            train_seconds,
            images_per_s: (tr.len() as f64 * cfg.epochs as f64) / train_seconds,
            device: device.describe(),
            command: plan.command.clone(),
            lr: Some(plan.lr),
            batch: Some(plan.batch),
            batch_used: (cfg.batch != plan.batch).then_some(cfg.batch),
            data_id: Some(id.clone()),
        };
        append(&path, &r)?;
        crate::sayln!(
            "  [{}/{}] class {} {} {} {} seed {}: AUROC {:.4} (mean-image {:.4}) {:.0} s",
            i + 1,
            todo.len(),
            key.class,
            key.metric,
            key.amp,
            key.granularity,
            key.seed,
            auroc,
            base,
            train_seconds
        );
        report::write(out, &plan.command)?;
    }
    report::write(out, &plan.command)
}

/// A fingerprint of a class's images as loaded (training set, test set, labels and masks), as 8
/// hex digits: the CRC-32 of their values.
pub fn data_id(tr: &Dataset, test: &TestSet) -> String {
    let mut h = crc32fast::Hasher::new();
    for d in [tr, &test.data] {
        d.shape.iter().for_each(|v| h.update(&v.to_le_bytes()));
        h.update(&(d.len() as u64).to_le_bytes());
        d.samples.iter().for_each(|v| h.update(&v.to_le_bytes()));
    }
    h.update(&test.anomalous.iter().map(|&a| a as u8).collect::<Vec<u8>>());
    for m in test.masks.iter().flatten() {
        h.update(&m.iter().map(|&a| a as u8).collect::<Vec<u8>>());
    }
    format!("{:08x}", h.finalize())
}

/// The cells of `class` already in the table were trained on the images `load` gives now (where
/// they say: older results do not): a data folder changed since, or another with the same
/// name, would make one table of two data sets.
fn check_same_data(
    path: &Path,
    results: &[CellResult],
    dataset: &str,
    class: &str,
    id: &str,
) -> Result<()> {
    let other = results.iter().find(|r| {
        r.key.dataset == dataset
            && r.key.class == class
            && r.data_id.as_deref().is_some_and(|d| d != id)
    });
    match other {
        None => Ok(()),
        Some(r) => Err(Error::file(
            path,
            format!(
                "holds cells of {class} trained on other images (data fingerprint {}, the \
                 images read now: {id}): the data changed since; resume with the images the \
                 table began with, or give another output folder",
                r.data_id.as_deref().unwrap_or_default()
            ),
        )),
    }
}

/// Loader for MVTec AD categories under `root` (each `root/<category>`), at the model's input
/// `size`, or with `patch` at the category's own image size.
pub fn mvtec_loader(
    root: std::path::PathBuf,
    channels: u32,
    size: u32,
    patch: bool,
) -> impl Fn(&str) -> Result<(Dataset, TestSet)> {
    move |category: &str| {
        let src = data::Source::Mvtec(root.join(category));
        let training = src.training(false)?;
        let side = match training.shape(false)? {
            Some(s) if patch => s.median_side.min(1024),
            _ => size,
        };
        if side < size {
            return Err(Error::invalid(format!(
                "{category}: images of {side} pixels are smaller than the patches ({size})"
            )));
        }
        Ok((
            training.load(channels, side, false)?.0,
            data::load_test(&src, channels, side)?,
        ))
    }
}

/// Parses "0-9", "1,3,5" or a mix into class names. A range is checked before it is expanded
/// (at most `MAX_CLASS_RANGE` classes): "0-4000000000" is an error, not 4e9 strings.
pub fn parse_classes(s: &str) -> Result<Vec<String>> {
    let bad = |why: String| Error::setting("classes", why);
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = match (a.trim().parse(), b.trim().parse()) {
                    (Ok(a), Ok(b)) => (a, b),
                    _ => return Err(bad(format!("{part:?} is not a range like 0-9"))),
                };
                if b < a || b - a >= MAX_CLASS_RANGE {
                    return Err(bad(format!(
                        "{part:?}: a range runs upwards over at most {MAX_CLASS_RANGE} classes"
                    )));
                }
                v.extend((a..=b).map(|c| c.to_string()));
            }
            None => v.push(part.to_string()),
        }
    }
    if v.is_empty() {
        return Err(bad("names no class".into()));
    }
    Ok(v)
}

/// Most classes one range may name.
pub const MAX_CLASS_RANGE: u32 = 1000;

/// Loader for the Fashion-MNIST one-class protocol: class c's 6000 training images; all 10000
/// test images, class c normal.
pub fn fashion_loader(dir: std::path::PathBuf) -> impl Fn(&str) -> Result<(Dataset, TestSet)> {
    move |class: &str| {
        let src = data::Source::parse(&format!("fashion-mnist:{class}"), Some(&dir))?;
        Ok((
            data::load_training(&src, 1, 28)?,
            data::load_test(&src, 1, 28)?,
        ))
    }
}

/// The model, the classes and their loader of data set `dataset`: `fashion-mnist` (classes
/// "0-9" by default, IDX files in `idx_dir` or Debian's folder; the model is fmnist-ae) or `mvtec`
/// (the categories under `dir`, all by default; the model is `arch`).
pub fn setup(
    dataset: &str,
    dir: Option<&Path>,
    classes: Option<&str>,
    idx_dir: Option<&Path>,
    arch: Arch,
    patch: bool,
) -> Result<(Arch, Vec<String>, Loader)> {
    match dataset {
        "fashion-mnist" => {
            let dir = idx_dir
                .map(Path::to_path_buf)
                .unwrap_or_else(|| std::path::PathBuf::from(data::FASHION_MNIST_DIR));
            let classes = parse_classes(classes.unwrap_or("0-9"))?;
            if let Some(c) = classes
                .iter()
                .find(|c| c.parse::<u8>().map_or(true, |v| v > 9))
            {
                return Err(Error::setting(
                    "classes",
                    format!("fashion-mnist classes are 0..9, got {c:?}"),
                ));
            }
            Ok((Arch::fmnist_ae(), classes, Box::new(fashion_loader(dir))))
        }
        "mvtec" => {
            let root = dir
                .ok_or_else(|| Error::invalid("the mvtec experiment needs the MVTec AD folder"))?;
            let classes = match classes {
                Some(c) => c.split(',').map(|s| s.trim().to_string()).collect(),
                None => data::mvtec::categories(root)?,
            };
            let (ch, size) = (arch.channels, arch.size);
            let loader = Box::new(mvtec_loader(root.to_path_buf(), ch, size, patch));
            Ok((arch, classes, loader))
        }
        other => Err(Error::invalid(format!(
            "unknown data set {other:?} (fashion-mnist or mvtec)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipe_is_named_by_what_differs_from_the_first_tables() {
        assert_eq!(Recipe::default().name(), "");
        let textures = Recipe {
            patch: Some(32),
            augment: true,
            min_steps: 500,
            schedule: Schedule::Cosine,
            ..Default::default()
        };
        assert_eq!(textures.name(), "patch32 augment cosine 500steps");
        // Cells from PyTorch's initial weights keep their names; He's are told apart.
        let he = Recipe {
            init: Init::He,
            ..textures
        };
        assert_eq!(he.name(), "patch32 augment cosine 500steps he-init");
        assert_eq!(
            super::super::results::name_without_init(&he.name()),
            "patch32 augment cosine 500steps"
        );
    }
}
