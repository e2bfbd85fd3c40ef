//! The images a user names on the command line (or in code): files, folders (with their
//! subfolders) and glob patterns (`*`, `?`, `[...]`, `**`, in any part of the path).

use super::images::walk_images;
use crate::error::{Error, Result};
use std::path::PathBuf;

/// Expands files, folders and patterns into image paths, in the order given (a folder's images,
/// its subfolders' included, and a pattern's files sorted by path). A file named twice is kept
/// once.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for s in inputs {
        let p = PathBuf::from(s);
        if p.is_dir() {
            out.extend(walk_images(&p)?);
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
        } else {
            return Err(Error::file(&p, "no such file or directory"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    Ok(out)
}
