//! Checkpoints: safetensors files with PyTorch's tensor names and layouts, the architecture and
//! settings in the metadata, and (optionally) Adam's state under `optimizer.exp_avg.<name>` and
//! `optimizer.exp_avg_sq.<name>`, so one file both scores and resumes training, and (optionally)
//! the normal map its scores subtract, `score.normal_map` [S, S] (score::above_normal), the
//! image it aligns images to, `score.reference` [C, S, S] (align.rs), and a patch model's edge
//! profile, `score.edge_profile` [2, R+1, R+1] (edges.rs).
//!
//! Files are written canonically (tensors and metadata keys sorted, header padded to 8 bytes),
//! so load → save reproduces a lamp checkpoint byte for byte; writes are atomic (fsutil).

use super::calibrate::{Calibration, Normal};
use super::edges::EdgeProfile;
use super::score::ScoreConfig;
use super::train::TrainConfig;
use crate::data::tensors::{le_f32, write_safetensors, Tensors};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::model::{Arch, Choice, Init, LossConfig, ParamTable};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

mod read;
use read::{not_a_checkpoint, read_arena, read_edge_profile, read_reference};

pub const FORMAT: &str = "lamp-checkpoint";
/// The tensor of the normal map (Checkpoint::normal_map).
pub const NORMAL_MAP: &str = "score.normal_map";
/// The tensor of the image that images are aligned to (Checkpoint::reference).
pub const REFERENCE: &str = "score.reference";
/// The tensor of a patch model's edge profile (Checkpoint::edge_profile).
pub const EDGE_PROFILE: &str = "score.edge_profile";
/// Metadata: the CRC-32 of the tensor data (8 hex digits), written with every checkpoint and
/// checked where present (files from before it have none): a bit flipped on a disk or in a
/// copy would otherwise change the scores without a word.
pub const DATA_CRC32: &str = "data_crc32";
/// The newest metadata version this build reads, and the one it writes for a model that aligns
/// images or counts its maps against an edge profile (a lamp that reads only version 1 would
/// score it unaligned, or its maps as they are, against a threshold set on maps made otherwise:
/// it must refuse it instead).
pub const VERSION: u32 = 2;
/// The version written for every other model, which lamps of version 1 read as before.
pub const VERSION_PLAIN: u32 = 1;

/// Adam's state: the step count and both moments (arena layout).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    pub t: u32,
    pub exp_avg: Vec<f32>,
    pub exp_avg_sq: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub arch: Arch,
    pub loss: Option<LossConfig>,
    /// The parameter arena (layout of `arch.param_table()`).
    pub params: Vec<f32>,
    pub optimizer: Option<OptimizerState>,
    /// The mean anomaly map of normal images, per pixel, at the side images are scored at:
    /// scores and maps count only what lies above it (score::above_normal).
    pub normal_map: Option<Vec<f32>>,
    /// The image [C, S, S] that images are aligned to before scoring (align.rs), where the model
    /// aligns them.
    pub reference: Option<Vec<f32>>,
    /// A patch model's edge profile, which its maps are counted against (edges.rs).
    pub edge_profile: Option<EdgeProfile>,
    /// Every metadata entry, including the ones above as JSON strings; other tools' keys are kept.
    pub metadata: BTreeMap<String, String>,
}

/// The parameters and Adam's two moments of the largest model `Arch::check` allows, in f32,
/// plus room for metadata.
const MAX_CHECKPOINT_BYTES: u64 = 3 * 4 * crate::model::arch::MAX_PARAMS + (1 << 24);

impl Checkpoint {
    pub fn new(arch: Arch, loss: Option<LossConfig>, params: Vec<f32>) -> Checkpoint {
        Checkpoint {
            arch,
            loss,
            params,
            optimizer: None,
            normal_map: None,
            reference: None,
            edge_profile: None,
            // Which lamp wrote it (kept as read when a checkpoint is loaded and saved again).
            metadata: BTreeMap::from([(
                "lamp_version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
        }
    }

    /// An edge profile fits a model trained on patches, with no normal map, and has the reach
    /// its windows and images make (edges.rs).
    fn check_edge_profile(&self, p: &EdgeProfile) -> Result<()> {
        let Some(image) = self.meta::<Patches>("patch").map(|p| p.image) else {
            return Err(Error::invalid(
                "an edge profile in a model not trained on patches",
            ));
        };
        if self.normal_map.is_some() {
            return Err(Error::invalid("an edge profile beside a normal map"));
        }
        let reach = self.arch.size.min(image.saturating_sub(1) / 2);
        if p.reach != reach {
            return Err(Error::invalid(format!(
                "an edge profile of reach {} px, where windows of {} px on images of {image} px \
                 make {reach}",
                p.reach, self.arch.size
            )));
        }
        Ok(())
    }

    /// What the model's maps are counted against, in words, for reports (None: nothing).
    pub fn counted_against(&self) -> Option<&'static str> {
        match (&self.normal_map, &self.edge_profile) {
            (Some(_), _) => Some("above the normal map (what normal images show at each pixel)"),
            (_, Some(_)) => Some(
                "against the edge profile (what normal images show at each distance from the \
                 edges, in the inside's spread)",
            ),
            _ => None,
        }
    }

    /// What maps are counted against: the normal map, or the edge profile (one at most).
    pub fn kept_normal(&self) -> (Option<&[f32]>, Option<&EdgeProfile>) {
        (self.normal_map.as_deref(), self.edge_profile.as_ref())
    }

    /// Keeps what calibration set for maps to be counted against (and nothing else).
    pub fn set_normal(&mut self, normal: Option<Normal>) {
        (self.normal_map, self.edge_profile) = match normal {
            None => (None, None),
            Some(Normal::Map(m)) => (Some(m), None),
            Some(Normal::Edges(p)) => (None, Some(p)),
        };
    }

    /// Serialises to safetensors bytes, after the checks the loader makes of the metadata:
    /// nothing is written that could not be read back.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.check_metadata(true)?;
        let table = self.arch.param_table();
        let mut meta = self.metadata.clone();
        meta.insert("format".into(), FORMAT.into());
        let version = match self.reference.is_some() || self.edge_profile.is_some() {
            true => VERSION,
            false => VERSION_PLAIN,
        };
        meta.insert("version".into(), version.to_string());
        meta.insert("arch".into(), to_json(&self.arch)?);
        if let Some(l) = &self.loss {
            meta.insert("loss".into(), to_json(l)?);
        }
        let mut tensors = Tensors::new();
        for e in &table.entries {
            tensors.insert(
                e.name.clone(),
                (e.shape.clone(), &self.params[e.offset..e.offset + e.len()]),
            );
        }
        if let Some(o) = &self.optimizer {
            meta.insert("optimizer.step".into(), o.t.to_string());
            for e in &table.entries {
                let r = e.offset..e.offset + e.len();
                tensors.insert(
                    format!("optimizer.exp_avg.{}", e.name),
                    (e.shape.clone(), &o.exp_avg[r.clone()]),
                );
                tensors.insert(
                    format!("optimizer.exp_avg_sq.{}", e.name),
                    (e.shape.clone(), &o.exp_avg_sq[r]),
                );
            }
        }
        if let Some(m) = &self.normal_map {
            let s = self.image_size() as usize;
            if m.len() != s * s {
                return Err(Error::invalid(format!(
                    "a normal map of {} values for images of {s}x{s}",
                    m.len()
                )));
            }
            tensors.insert(NORMAL_MAP.into(), (vec![s, s], m.as_slice()));
        }
        if let Some(p) = &self.edge_profile {
            self.check_edge_profile(p)?;
        }
        let edges = self.edge_profile.as_ref().map(EdgeProfile::to_tensor);
        if let Some((shape, values)) = &edges {
            tensors.insert(EDGE_PROFILE.into(), (shape.clone(), values.as_slice()));
        }
        if let Some(r) = &self.reference {
            let [c, s, _] = self.arch.input_shape().map(|v| v as usize);
            if r.len() != c * s * s {
                return Err(Error::invalid(format!(
                    "a reference image of {} values for images of {c}x{s}x{s}",
                    r.len()
                )));
            }
            tensors.insert(REFERENCE.into(), (vec![c, s, s], r.as_slice()));
        }
        meta.insert(DATA_CRC32.into(), format!("{:08x}", data_crc32(&tensors)));
        Ok(write_safetensors(&meta, &tensors))
    }

    /// Writes atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        // Temporary files of runs killed mid-write would otherwise pile up beside the model.
        fsutil::remove_stale_temps(path);
        fsutil::write_atomic(path, &self.to_bytes()?)
    }

    /// Reads a lamp checkpoint, or a bare safetensors file of PyTorch-named tensors when `arch`
    /// says what they are.
    pub fn load(path: &Path, arch: Option<&Arch>) -> Result<Checkpoint> {
        Self::read(path, arch, true)
    }

    /// As `load`, for `lamp calibrate`, which replaces the calibration: one the loader refuses
    /// (out of range: written by a lamp before the check) is kept unchecked, to be replaced.
    pub fn load_to_recalibrate(path: &Path) -> Result<Checkpoint> {
        Self::read(path, None, false)
    }

    fn read(path: &Path, arch: Option<&Arch>, check_calibration: bool) -> Result<Checkpoint> {
        let meta = fsutil::regular_file(path)?;
        if meta.len() > MAX_CHECKPOINT_BYTES {
            return Err(Error::file(
                path,
                format!(
                    "{} bytes is larger than any lamp checkpoint ({MAX_CHECKPOINT_BYTES} at most)",
                    meta.len()
                ),
            ));
        }
        let bytes =
            std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        Self::parse(&bytes, arch, check_calibration).map_err(|e| match e {
            Error::Invalid(m) => Error::file(path, m),
            other => other,
        })
    }

    pub fn from_bytes(bytes: &[u8], arch_hint: Option<&Arch>) -> Result<Checkpoint> {
        Self::parse(bytes, arch_hint, true)
    }

    fn parse(
        bytes: &[u8],
        arch_hint: Option<&Arch>,
        check_calibration: bool,
    ) -> Result<Checkpoint> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| Error::invalid(not_a_checkpoint(bytes, e)))?;
        let (header_len, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::invalid(format!("not a valid safetensors file ({e})")))?;
        let metadata: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .map(|m| m.into_iter().collect())
            .unwrap_or_default();
        if let Some(want) = metadata.get(DATA_CRC32) {
            // The data follow the 8-byte length and the header (safetensors' layout).
            let got = format!("{:08x}", crc32fast::hash(&bytes[8 + header_len..]));
            if got != *want {
                return Err(Error::invalid(format!(
                    "the tensor data do not match the checksum written with them (CRC-32 \
                     {want}, read {got}): the file was damaged after lamp wrote it (a disk or a \
                     copy); restore it, or train again"
                )));
            }
        }
        if let Some(v) = metadata.get("version") {
            let v: u32 = v
                .parse()
                .map_err(|_| Error::invalid(format!("unreadable metadata version {v:?}")))?;
            if v > VERSION {
                return Err(Error::invalid(format!(
                    "checkpoint metadata version {v} is newer than this lamp reads ({VERSION}); upgrade lamp"
                )));
            }
        }
        let arch = match (metadata.get("arch"), arch_hint) {
            (Some(a), _) => serde_json::from_str::<Arch>(a)
                .map_err(|e| Error::invalid(format!("unreadable architecture in metadata: {e}")))?,
            (None, Some(a)) => a.clone(),
            (None, None) => return Err(Error::invalid(
                "no architecture in the metadata: a bare tensor file, not a checkpoint of lamp train (lamp grad and lamp train --resume take such a file with `arch`)",
            )),
        };
        arch.check()?;
        if let (Some(hint), true) = (arch_hint, metadata.contains_key("arch")) {
            if hint.name != arch.name {
                return Err(Error::invalid(format!(
                    "checkpoint holds a {} model, not {}",
                    arch.name, hint.name
                )));
            }
        }
        let loss = match metadata.get("loss") {
            Some(l) => Some(
                serde_json::from_str(l)
                    .map_err(|e| Error::invalid(format!("unreadable loss in metadata: {e}")))?,
            ),
            None => None,
        };
        let table = arch.param_table();
        let params = read_arena(&st, &table, "")?;
        let optimizer = match metadata.get("optimizer.step") {
            Some(t) => Some(OptimizerState {
                t: t.parse()
                    .map_err(|_| Error::invalid(format!("unreadable optimizer step {t:?}")))?,
                exp_avg: read_arena(&st, &table, "optimizer.exp_avg.")?,
                exp_avg_sq: read_arena(&st, &table, "optimizer.exp_avg_sq.")?,
            }),
            None => None,
        };
        let mut ck = Checkpoint {
            arch,
            loss,
            params,
            optimizer,
            normal_map: None,
            reference: None,
            edge_profile: None,
            metadata,
        };
        ck.check_metadata(check_calibration)?;
        if let Ok(t) = st.tensor(NORMAL_MAP) {
            // Its side is the images' (checked with the metadata above); its values are errors.
            let s = ck.image_size() as usize;
            if t.dtype() != safetensors::Dtype::F32 || t.shape() != [s, s] {
                return Err(Error::invalid(format!(
                    "tensor {NORMAL_MAP} is {:?} {:?}, expected F32 [{s}, {s}]",
                    t.dtype(),
                    t.shape()
                )));
            }
            let m: Vec<f32> = le_f32(t.data()).collect();
            if let Some(v) = m.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(Error::invalid(format!(
                    "tensor {NORMAL_MAP} holds {v}: errors are finite and never negative; the \
                     file is damaged (train the model again)"
                )));
            }
            if ck.metadata.contains_key("patch") {
                return Err(Error::invalid(format!(
                    "tensor {NORMAL_MAP} in a model trained on patches, whose windows' maps do \
                     not line up (it counts them against an edge profile): the file is damaged"
                )));
            }
            ck.normal_map = Some(m);
        }
        ck.reference = read_reference(&st, &ck)?;
        ck.edge_profile = read_edge_profile(&st, &ck)?;
        Ok(ck)
    }

    /// The metadata that sizes work or decides verdicts is checked when the file is read, not
    /// trusted: a patch setting sizes every image loaded, a score setting the smoothing kernel.
    fn check_metadata(&self, check_calibration: bool) -> Result<()> {
        fn parsed<T: serde::de::DeserializeOwned>(
            meta: &BTreeMap<String, String>,
            key: &str,
            what: &str,
        ) -> Result<Option<T>> {
            meta.get(key)
                .map(|v| serde_json::from_str(v))
                .transpose()
                .map_err(|e| Error::invalid(format!("unreadable {what} in the metadata: {e}")))
        }
        let m = &self.metadata;
        if let Some(p) = parsed::<Patches>(m, "patch", "patch settings")? {
            let size = self.arch.size;
            if p.image < size || p.image > crate::model::arch::MAX_SIZE {
                return Err(Error::invalid(format!(
                    "patch settings: images of {} pixels for {size}-pixel patches (at most {})",
                    p.image,
                    crate::model::arch::MAX_SIZE
                )));
            }
            if p.stride == 0 || p.stride > size {
                return Err(Error::invalid(format!(
                    "patch settings: a stride of {} for {size}-pixel patches",
                    p.stride
                )));
            }
        }
        // What inspect, eval and --resume read back: dropped silently if it did not parse.
        parsed::<Vec<super::train::EpochReport>>(m, "history", "training history")?;
        // (as JSON: its type, in detect::fit, builds on this module)
        parsed::<serde_json::Value>(m, "held_out", "held-out check")?;
        parsed::<serde_json::Value>(m, "train", "training settings")?;
        if let Some(s) = parsed::<ScoreConfig>(m, "score", "score settings")? {
            s.check()
                .map_err(|e| Error::invalid(format!("score settings: {e}")))?;
        }
        let calibration = parsed::<Calibration>(m, "calibration", "calibration");
        if let Some(c) = calibration?.filter(|_| check_calibration) {
            c.check_values().map_err(|e| {
                Error::invalid(format!(
                    "calibration: {e} (set it anew: lamp calibrate MODEL NORMAL_IMAGES)"
                ))
            })?;
        }
        Ok(())
    }

    /// The side of the images the model scores: its input size, or, for a model trained on
    /// patches, the images' size.
    pub fn image_size(&self) -> u32 {
        self.meta::<Patches>("patch")
            .map_or(self.arch.size, |p| p.image)
    }

    /// The initial weights the run that made this checkpoint started from: its train settings'
    /// choice, `lamp init`'s record, or PyTorch's (checkpoints from before the choice).
    pub fn started_init(&self) -> Init {
        self.meta::<TrainConfig>("train")
            .and_then(|t| t.init)
            .or_else(|| self.metadata.get("init").and_then(|s| Init::parse(s)))
            .unwrap_or(Init::Pytorch)
    }

    pub fn meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.metadata
            .get(key)
            .and_then(|v| serde_json::from_str(v).ok())
    }

    /// The loss and the calibrated threshold of a finished training run, or an error that says
    /// what the checkpoint at `path` lacks (and, for an interrupted run, how to finish it).
    pub fn trained(&self, path: &Path) -> Result<(LossConfig, Calibration)> {
        let loss = self.loss.ok_or_else(|| {
            Error::file(
                path,
                "no loss settings in the metadata (not written by lamp train)",
            )
        })?;
        // A calibration read from a file was parsed and checked when it was loaded.
        let cal: Calibration = match self.meta("calibration") {
            Some(c) => c,
            None => {
                // A checkpoint written between epochs: training stopped before it finished.
                return Err(match self.metadata.get("epochs_done") {
                    Some(done) => Error::Unfinished {
                        path: path.to_path_buf(),
                        epochs_done: done.clone(),
                    },
                    None => Error::file(
                        path,
                        "no calibrated threshold in the metadata (not written by lamp train)",
                    ),
                });
            }
        };
        Ok((loss, cal))
    }
}

/// A model trained on patches of larger images: the images' side and the scoring windows'
/// stride (metadata key `patch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patches {
    pub image: u32,
    pub stride: u32,
}

/// A metadata value as JSON text.
pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::invalid(format!("cannot encode metadata: {e}")))
}

/// The CRC-32 of the tensors' bytes in the order write_safetensors writes them (by name,
/// little-endian).
fn data_crc32(tensors: &Tensors) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for (_, values) in tensors.values() {
        if cfg!(target_endian = "little") {
            h.update(bytemuck::cast_slice(values));
        } else {
            values.iter().for_each(|v| h.update(&v.to_le_bytes()));
        }
    }
    h.finalize()
}

#[cfg(test)]
mod tests;
