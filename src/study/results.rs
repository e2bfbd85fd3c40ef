//! The results store of `lamp experiment`: one finished cell per line of `results.jsonl`, appended
//! with a single write and fsynced, so a killed run leaves at most a torn last line, which the
//! next read drops. The runner appends; the report reads.

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

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
    /// What else the training and scoring did ("patch32 augment topk cosine 500steps"; empty
    /// for whole images, constant rate and the plain error, as the first tables had).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub recipe: String,
}

/// The last word of a recipe's name that names its initial weights ("he-init").
pub const INIT_SUFFIX: &str = "-init";

/// A recipe's name (experiment's Recipe::name, which writes it) without its initial weights:
/// the name of what a model-free baseline beside its cells saw.
pub fn name_without_init(name: &str) -> String {
    name.split(' ')
        .filter(|p| !p.ends_with(INIT_SUFFIX))
        .collect::<Vec<_>>()
        .join(" ")
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
    /// Per-region overlap (up to a false-positive rate of 0.3), where the test set has masks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aupro: Option<f64>,
    /// The baselines' pixel metrics and the per-pixel Gaussian's (see detect::baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_image_pixel_auroc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_image_aupro: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaussian_auroc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaussian_pixel_auroc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaussian_aupro: Option<f64>,
    pub first_loss: f32,
    pub last_loss: f32,
    pub clamps: u64,
    pub train_seconds: f64,
    pub images_per_s: f64,
    pub device: String,
    pub command: String,
    /// The learning rate and batch the table was run with (not in the key: older results lack
    /// them); a resumed table with others is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// The batch the cell trained with, where it differs from `batch`: the default cut to a
    /// class with fewer training images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_used: Option<usize>,
    /// A fingerprint of the images the cell trained and was tested on (`experiment::data_id`;
    /// older results lack it): a table resumed on other images of a class is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_id: Option<String>,
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
                crate::sayln!(
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
pub fn append(path: &Path, r: &CellResult) -> Result<()> {
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
