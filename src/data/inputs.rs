//! The images a user names on the command line (or in code): files, folders (with their
//! subfolders) and glob patterns (`*`, `?`, `[...]`, `**`, in any part of the path).

use super::listing::walk_images;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The folder of an MVTec AD category that holds the test images' masks.
pub const MASKS_DIR: &str = "ground_truth";

/// Whether `dir` is laid out as an MVTec AD category (`test/` and `ground_truth/` in it).
pub fn is_mvtec_category(dir: &Path) -> bool {
    dir.join("test").is_dir() && dir.join(MASKS_DIR).is_dir()
}

/// The folders among `paths`' that hold defects by the MVTec AD layout (`test/<defect>/` beside
/// `test/good/`), each with how many of `paths` lie in it, in the order first met.
pub fn defect_folders(paths: &[PathBuf]) -> Vec<(PathBuf, usize)> {
    let mut out: Vec<(PathBuf, usize)> = Vec::new();
    for p in paths {
        let Some(dir) = p.parent() else { continue };
        let labelled = dir.file_name().is_some_and(|n| n != "good")
            && dir.parent().is_some_and(|split| {
                split.file_name().is_some_and(|n| n == "test") && split.join("good").is_dir()
            });
        if !labelled {
            continue;
        }
        match out.iter_mut().find(|(d, _)| d == dir) {
            Some((_, n)) => *n += 1,
            None => out.push((dir.to_path_buf(), 1)),
        }
    }
    out
}

/// Expands files, folders and patterns into image paths, in the order given (a folder's images,
/// its subfolders' included, and a pattern's files sorted by path). A file named twice is kept
/// once. The masks of an MVTec AD category named as a folder (its `ground_truth/`) are not
/// images to score and are left out. With `skip_bad`, subfolders that cannot be listed are
/// passed over with a warning.
pub fn expand_inputs(inputs: &[String], skip_bad: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for s in inputs {
        let p = PathBuf::from(s);
        if p.is_dir() {
            let masks = is_mvtec_category(&p).then(|| p.join(MASKS_DIR));
            let images = walk_images(&p, skip_bad)?;
            out.extend(
                images
                    .into_iter()
                    .filter(|f| masks.as_ref().is_none_or(|m| !f.starts_with(m))),
            );
        } else if p.exists() {
            // A file, or something that is not one (a FIFO): reading it says which.
            out.push(p);
        } else if s.contains(['*', '?', '[']) {
            // A glob pattern: wildcards in any part of the path ('data/*/good/*.png', '**').
            let paths =
                glob::glob(s).map_err(|e| Error::file(&p, format!("not a valid pattern: {e}")))?;
            let mut hits = Vec::new();
            for entry in paths {
                let hit = entry
                    .map_err(|e| Error::file(e.path(), format!("cannot read: {}", e.error())))?;
                if hit.is_file() {
                    hits.push(hit);
                }
            }
            if hits.is_empty() {
                return Err(Error::file(&p, "pattern matches no file"));
            }
            hits.sort();
            out.extend(hits);
        } else if s.starts_with("fashion-mnist:") {
            // A data set's name, which train and eval take: here images are wanted.
            return Err(Error::file(
                &p,
                "no such file or directory: a data set's name is for lamp train and lamp eval; \
                 this command takes image files, folders or patterns",
            ));
        } else {
            return Err(Error::file(&p, "no such file or directory"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    Ok(out)
}
