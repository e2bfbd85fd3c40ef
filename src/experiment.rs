//! `lamp experiment`: the one-class protocol for every combination of class × metric ×
//! amplification × granularity × seed, one cell at a time. Each finished cell is appended to
//! `results.jsonl` (one line, written and fsynced at once); a restarted run reads the file, drops
//! a torn last line, and skips the cells already there. `results.md` and its charts are rebuilt
//! from the JSONL after every cell (report.rs).

use crate::data::{self, Dataset, TestSet};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::fsutil::{ensure_dir, write_atomic};
use crate::gpu::Gpu;
use crate::kernels::{Amp, Granularity, Kernels, LossConfig, Metric};
use crate::metrics;
use crate::model::Arch;
use crate::reference;
use crate::train::{self, TrainConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// One cell of the table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CellKey {
    pub dataset: String,
    pub class: String,
    pub metric: String,
    pub amp: String,
    pub granularity: String,
    pub optimizer: String,
    pub epochs: u32,
    pub seed: u64,
}

/// A finished cell, one line of results.jsonl.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellResult {
    #[serde(flatten)]
    pub key: CellKey,
    pub auroc: f64,
    /// The model-free baseline on the same split: error against the mean training image.
    pub mean_image_auroc: f64,
    pub pixel_auroc: Option<f64>,
    pub first_loss: f32,
    pub last_loss: f32,
    pub clamps: u64,
    pub train_seconds: f64,
    pub images_per_s: f64,
    pub device: String,
    pub command: String,
}

pub struct Plan {
    pub dataset: String,
    pub classes: Vec<String>,
    pub metrics: Vec<Metric>,
    pub amps: Vec<Amp>,
    pub granularities: Vec<Granularity>,
    pub seeds: Vec<u64>,
    pub epochs: u32,
    pub batch: usize,
    pub lr: f64,
    pub optimizer: String,
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
                                metric: name(&metric),
                                amp: name(&amp),
                                granularity: if amp == Amp::None {
                                    "-".into()
                                } else {
                                    name(&granularity)
                                },
                                optimizer: self.optimizer.clone(),
                                epochs: self.epochs,
                                seed: *seed,
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

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Reads results.jsonl, dropping (and rewriting without) a torn or unreadable last line.
pub fn read_results(path: &Path) -> Result<Vec<CellResult>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::file(path, format!("cannot read: {e}"))),
    };
    let mut out = Vec::new();
    let mut good = String::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let complete = line.ends_with('\n');
        match serde_json::from_str::<CellResult>(line.trim_end()) {
            Ok(r) if complete => {
                out.push(r);
                good.push_str(line);
            }
            _ if i + 1 == lines.len() => {
                eprintln!(
                    "lamp: dropping an incomplete last line of {}",
                    path.display()
                );
                write_atomic(path, good.as_bytes())?;
            }
            Err(e) => return Err(Error::file(path, format!("line {}: {e}", i + 1))),
            Ok(_) => unreachable!("incomplete lines are only possible last"),
        }
    }
    Ok(out)
}

/// Appends one line with a single write, then fsyncs.
fn append(path: &Path, r: &CellResult) -> Result<()> {
    let mut line = serde_json::to_string(r)
        .map_err(|e| Error::invalid(format!("cannot encode result: {e}")))?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    f.write_all(line.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::file(path, format!("cannot append: {e}")))
}

/// Image AUROC of the model-free baseline: each test image's error against the mean training
/// image, with the metric (f64 on the host).
pub fn mean_image_auroc(train: &Dataset, test: &TestSet, metric: Metric) -> Option<f64> {
    let p = train.sample_len();
    let mut mean = vec![0f64; p];
    for i in 0..train.len() {
        for (m, v) in mean.iter_mut().zip(train.sample(i)) {
            *m += *v as f64 / train.len() as f64;
        }
    }
    let shape = test.data.shape.map(|v| v as usize);
    let cfg = LossConfig {
        metric,
        amp: Amp::None,
        granularity: Granularity::Element,
    };
    let scores: Vec<f32> = (0..test.data.len())
        .map(|i| {
            let x: Vec<f64> = test.data.sample(i).iter().map(|&v| v as f64).collect();
            reference::loss(cfg, shape, 1, &x, &mean).errors[0] as f32
        })
        .collect();
    metrics::auroc(&scores, &test.anomalous)
}

/// Loads (training set, test set) for one class or category.
pub type Loader = Box<dyn Fn(&str) -> Result<(Dataset, TestSet)>>;

/// Runs every cell not yet in `out/results.jsonl`.
pub fn run(
    g: Arc<Gpu>,
    k: Arc<Kernels>,
    plan: &Plan,
    load: &dyn Fn(&str) -> Result<(Dataset, TestSet)>,
    arch: &Arch,
    out: &Path,
) -> Result<()> {
    ensure_dir(out)?;
    let path = out.join("results.jsonl");
    let done: BTreeSet<CellKey> = read_results(&path)?.into_iter().map(|r| r.key).collect();
    let cells = plan.cells();
    let todo: Vec<&(CellKey, LossConfig)> = cells
        .iter()
        .filter(|(key, _)| !done.contains(key))
        .collect();
    eprintln!(
        "lamp experiment: {} cells, {} done, {} to run",
        cells.len(),
        cells.len() - todo.len(),
        todo.len()
    );
    let mut cache: BTreeMap<String, (Dataset, TestSet)> = BTreeMap::new();
    let mut baselines: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (i, (key, loss)) in todo.iter().enumerate() {
        if !cache.contains_key(&key.class) {
            cache.clear();
            cache.insert(key.class.clone(), load(&key.class)?);
        }
        let (tr, test) = &cache[&key.class];
        let base = match baselines.get(&(key.class.clone(), key.metric.clone())) {
            Some(b) => *b,
            None => {
                let b = mean_image_auroc(tr, test, loss.metric).unwrap_or(f64::NAN);
                baselines.insert((key.class.clone(), key.metric.clone()), b);
                b
            }
        };
        let t0 = Instant::now();
        let cfg = TrainConfig {
            epochs: plan.epochs,
            batch: plan.batch,
            lr: plan.lr,
            seed: key.seed,
        };
        let mut e = Engine::new(
            g.clone(),
            k.clone(),
            arch.clone(),
            *loss,
            plan.batch,
            &arch.init(key.seed),
        )?;
        e.sgd = plan.optimizer == "sgd";
        e.upload_dataset(&tr.samples, tr.len())?;
        let reports = train::train(&mut e, tr.len(), &cfg, Vec::new(), 0, |_| {}, |_, _| Ok(()))?;
        let train_seconds = t0.elapsed().as_secs_f64();
        let (scores, pixel_auroc) = match &test.masks {
            None => (e.score(&test.data.samples)?, None),
            Some(masks) => {
                let (scores, recon) = crate::score::score_with_recon(&mut e, &test.data.samples)?;
                let p = test.data.sample_len();
                let (w, h) = (test.data.shape[2] as usize, test.data.shape[1] as usize);
                let mut all = Vec::with_capacity(test.data.len() * w * h);
                for i in 0..test.data.len() {
                    let m = crate::score::pixel_map(
                        loss.metric,
                        test.data.shape,
                        test.data.sample(i),
                        &recon[i * p..][..p],
                    );
                    all.extend(crate::score::smooth(&m, w, h, crate::eval::MAP_SIGMA));
                }
                let gt: Vec<bool> = masks.iter().flatten().copied().collect();
                (scores, metrics::auroc(&all, &gt))
            }
        };
        let auroc = metrics::auroc(&scores, &test.anomalous).unwrap_or(f64::NAN);
        let r = CellResult {
            key: key.clone(),
            auroc,
            mean_image_auroc: base,
            pixel_auroc,
            first_loss: reports.first().map_or(f32::NAN, |r| r.mean_loss),
            last_loss: reports.last().map_or(f32::NAN, |r| r.mean_loss),
            clamps: reports.iter().map(|r| r.clamps).max().unwrap_or(0),
            train_seconds,
            images_per_s: (tr.len() as f64 * plan.epochs as f64) / train_seconds,
            device: g.describe(),
            command: plan.command.clone(),
        };
        append(&path, &r)?;
        eprintln!(
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
        crate::report::write(out, &plan.command)?;
    }
    crate::report::write(out, &plan.command)
}

/// Loader for MVTec AD categories under `root` (each `root/<category>`).
pub fn mvtec_loader(
    root: std::path::PathBuf,
    channels: u32,
    size: u32,
) -> impl Fn(&str) -> Result<(Dataset, TestSet)> {
    move |category: &str| {
        let src = data::Source::Mvtec(root.join(category));
        Ok((
            data::load_training(&src, channels, size)?,
            data::load_test(&src, channels, size)?,
        ))
    }
}

/// Parses "0-9", "1,3,5" or a mix into class names.
pub fn parse_classes(s: &str) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (
                    a.parse()
                        .map_err(|_| Error::invalid(format!("bad class range {part:?}")))?,
                    b.parse()
                        .map_err(|_| Error::invalid(format!("bad class range {part:?}")))?,
                );
                v.extend((a..=b).map(|c| c.to_string()));
            }
            None => v.push(part.to_string()),
        }
    }
    if v.is_empty() {
        return Err(Error::invalid("no classes given"));
    }
    Ok(v)
}

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
