//! The images a user names on the command line (or in code): files, folders (with their
//! subfolders) and simple `*` / `?` patterns in the last part of a path.

use super::images::walk_images;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

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
        } else if s.contains('*') || s.contains('?') {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let pat = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rd = std::fs::read_dir(dir)
                .map_err(|e| Error::file(dir, format!("cannot list: {e}")))?;
            let mut hits: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|q| {
                    q.is_file()
                        && q.file_name()
                            .is_some_and(|n| wildcard(&pat, &n.to_string_lossy()))
                })
                .collect();
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

/// Shell-style matching of * and ?.
fn wildcard(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(st) = star {
            i = st + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards_match_like_a_shell() {
        for (pat, name, want) in [
            ("*.png", "a.png", true),
            ("*.png", "a.jpg", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*b*", "abc", true),
            ("*", "", true),
            ("a*c*e", "abcde", true),
            ("a*c*e", "abcd", false),
        ] {
            assert_eq!(wildcard(pat, name), want, "{pat} vs {name}");
        }
    }
}
