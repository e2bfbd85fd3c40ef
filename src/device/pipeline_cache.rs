//! The pipeline cache on disk: the driver's compiled pipelines kept between runs where the backend
//! offers a cache (Vulkan), so that a second `lamp score` runs without the driver compiling its
//! kernels again (naga still translates the WGSL: that part is lamp's and fast).
//!
//! One file per vendor and device ID (wgpu's cache key), in `LAMP_PIPELINE_CACHE` (a folder, or
//! `off`), else `$XDG_CACHE_HOME/lamp`, else `~/.cache/lamp`: a folder only this user writes.
//! wgpu's header checks the driver's version and rejects another driver's data (which is then
//! replaced), but carries no checksum of the data it hands to the driver, so the file frames it
//! with a CRC-32 of its own: a file that is truncated, damaged or from an older lamp is ignored
//! and replaced, never passed on. Written atomically when the process created pipelines and the
//! driver's data differs from what was read; two processes saving at once leave one whole file
//! (the last), and saves within a process take turns.

use crate::error::Result;
use crate::fsutil;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

pub const ENV: &str = "LAMP_PIPELINE_CACHE";

/// The file's first bytes: what it is and the frame's version.
const MAGIC: &[u8; 8] = b"lampPC01";
/// Magic, CRC-32 of the data (u32 LE), length of the data (u64 LE).
const HEADER: usize = 8 + 4 + 8;
/// A file larger than this is neither loaded nor written (a driver's cache only grows; the next
/// save holds only what that run compiled).
const MAX_BYTES: u64 = 64 << 20;

/// Saves within one process take turns (two devices on one adapter share the file, and
/// `write_atomic`'s temporary file is named by the process).
static SAVING: Mutex<()> = Mutex::new(());

pub struct DiskCache {
    pub cache: wgpu::PipelineCache,
    pub path: PathBuf,
    /// A pipeline was compiled since the file was read.
    dirty: AtomicBool,
    /// CRC-32 and length of the data read from the file: a save of the same data is skipped.
    loaded: Option<(u32, usize)>,
}

/// The folder of the cache files, or None where `LAMP_PIPELINE_CACHE=off` or no home is known.
pub fn folder() -> Option<PathBuf> {
    match std::env::var_os(ENV) {
        Some(v) if v == "off" || v.is_empty() => None,
        Some(v) => Some(PathBuf::from(v)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
            .map(|c| c.join("lamp")),
    }
}

/// `data` framed for the file.
fn frame(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// The data of a framed file, or why it is not used.
fn unframe(file: &[u8]) -> std::result::Result<&[u8], &'static str> {
    if file.len() < HEADER || &file[..8] != MAGIC {
        return Err("not a lamp pipeline cache of this version");
    }
    let crc = u32::from_le_bytes([file[8], file[9], file[10], file[11]]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&file[12..HEADER]);
    let data = &file[HEADER..];
    if u64::from_le_bytes(len) != data.len() as u64 {
        return Err("truncated or extended");
    }
    if crc32fast::hash(data) != crc {
        return Err("checksum mismatch");
    }
    Ok(data)
}

/// The cached data at `path`, if it is whole and ours.
fn read(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_BYTES {
        log::debug!(
            "pipeline cache {}: not a file or too large, not loaded",
            path.display()
        );
        return None;
    }
    let file = std::fs::read(path).ok()?;
    match unframe(&file) {
        Ok(d) => Some(d.to_vec()),
        Err(why) => {
            log::debug!("pipeline cache {}: {why}; starting empty", path.display());
            None
        }
    }
}

impl DiskCache {
    /// The cache for this device, primed from its file; None where the backend has no pipeline
    /// cache (`features` lacks it) or it is turned off.
    pub fn open(
        device: &wgpu::Device,
        info: &wgpu::AdapterInfo,
        features: wgpu::Features,
    ) -> Option<DiskCache> {
        if !features.contains(wgpu::Features::PIPELINE_CACHE) {
            return None;
        }
        let key = wgpu::util::pipeline_cache_key(info)?;
        let path = folder()?.join(format!("{key}.bin"));
        fsutil::remove_stale_temps(&path);
        let data = read(&path);
        // SAFETY: `data` is what `get_data` returned on an adapter with this key, written by
        // this user into their own cache folder; its CRC rules out a truncated or damaged copy
        // (not a deliberate forgery: the folder is trusted as the user's own). wgpu checks its
        // header against this adapter and driver, and with `fallback` a cache it rejects starts
        // empty instead of failing.
        let cache = unsafe {
            device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("lamp"),
                data: data.as_deref(),
                fallback: true,
            })
        };
        log::debug!(
            "pipeline cache {}: {}",
            path.display(),
            match &data {
                Some(d) => format!("{} bytes loaded", d.len()),
                None => "empty".into(),
            }
        );
        Some(DiskCache {
            cache,
            path,
            dirty: AtomicBool::new(false),
            loaded: data.map(|d| (crc32fast::hash(&d), d.len())),
        })
    }

    /// Notes that a pipeline was compiled through the cache.
    pub fn touch(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Writes the cache to its file if a pipeline was compiled since it was read and the
    /// driver's data changed (a driver that caches nothing itself, such as lavapipe, hands back
    /// the same header every time). Returns whether it wrote.
    pub fn save(&self) -> Result<bool> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(false);
        }
        let Some(data) = self.cache.get_data() else {
            return Ok(false);
        };
        if self.loaded == Some((crc32fast::hash(&data), data.len()))
            || data.len() as u64 > MAX_BYTES
        {
            return Ok(false);
        }
        let _turn = SAVING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = self.path.parent() {
            fsutil::ensure_dir(dir)?;
        }
        fsutil::write_atomic(&self.path, &frame(&data))?;
        log::debug!(
            "pipeline cache {}: {} bytes saved",
            self.path.display(),
            data.len()
        );
        Ok(true)
    }
}

impl Drop for DiskCache {
    /// Saves on the way out; a cache that cannot be written costs the next run its compile
    /// time, nothing else, so the error is only logged (`RUST_LOG=lamp=warn` shows it).
    fn drop(&mut self) {
        if let Err(e) = self.save() {
            log::warn!("pipeline cache not saved: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_damage() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let f = frame(&data);
        assert_eq!(unframe(&f), Ok(&data[..]));
        let mut flipped = f.clone();
        flipped[HEADER + 500] ^= 1;
        assert_eq!(unframe(&flipped), Err("checksum mismatch"));
        assert_eq!(unframe(&f[..f.len() - 1]), Err("truncated or extended"));
        assert!(unframe(&f[..HEADER - 1]).is_err());
        let mut other = f.clone();
        other[7] = b'9';
        assert!(unframe(&other).is_err());
    }
}
