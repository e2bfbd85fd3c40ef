//! The images a user names on the command line (or in code): files, folders (with their
//! subfolders) and glob patterns (`*`, `?`, `[...]`, `**`, in any part of the path).

use super::images::walk_images;
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

/// Names of folders that hold anomalies in the layouts people use (`bad/`, `defect/`, MVTec AD's
/// `test/` and `ground_truth/`): a training set found in one is refused, not learnt as normal.
const ANOMALY_FOLDERS: [&str; 14] = [
    "bad", "ng", "nok", "reject", "rejects", "faulty", "broken", "abnormal", "test", "tests",
    MASKS_DIR, "masks", "mask", "outliers",
];

/// Whether a folder's name says it holds anomalies (`bad`, `defects`, `Anomalous`, …).
fn names_anomalies(name: &str) -> bool {
    let n = name.to_lowercase();
    ANOMALY_FOLDERS.contains(&n.as_str()) || n.starts_with("defect") || n.starts_with("anomal")
}

/// The images a training run reads from the folder `dir`: its own images; where it holds none,
/// those of its subfolders (a set sorted into folders by day or camera), with a line that says
/// how many came from where. Subfolders laid out by label (`good/` beside `crack/`) or named as
/// anomalies (`bad/`, `defects/`, `test/`) are refused: training takes normal images only.
pub fn training_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let own = super::list_images(dir);
    if own.is_ok() || !dir.is_dir() {
        return own;
    }
    let all = match walk_images(dir, false) {
        Ok(all) => all,
        // Nothing below either (or a subfolder that cannot be listed): the folder's own error,
        // which names its subfolders.
        Err(_) => return own,
    };
    // Each image's subfolder, by its first part under `dir`, with a count, in sorted order.
    let mut groups: Vec<(String, usize)> = Vec::new();
    for f in &all {
        let rel = f.strip_prefix(dir).unwrap_or(f);
        let top = rel
            .iter()
            .next()
            .map_or(String::new(), |p| p.to_string_lossy().into_owned());
        let folders: Vec<String> = rel
            .parent()
            .into_iter()
            .flat_map(|p| p.iter().map(|c| c.to_string_lossy().into_owned()))
            .collect();
        if let Some(bad) = folders.iter().find(|c| names_anomalies(c)) {
            return Err(Error::file(
                dir,
                format!(
                    "holds no images itself, and among its subfolders {bad}/ is named as \
                     anomalies are: training takes normal images only; name the folder of \
                     normal images itself"
                ),
            ));
        }
        match groups.last_mut() {
            Some((g, n)) if *g == top => *n += 1,
            _ => groups.push((top, 1)),
        }
    }
    let normal = ["good", "normal", "ok"];
    if groups.len() > 1 {
        if let Some((good, _)) = groups
            .iter()
            .find(|(g, _)| normal.contains(&g.to_lowercase().as_str()))
        {
            let other = groups.iter().find(|(g, _)| g != good).map_or("", |g| &g.0);
            return Err(Error::file(
                dir,
                format!(
                    "holds no images itself, and its subfolders look sorted by label ({good}/ \
                     beside {other}/): training takes normal images only; name {} itself",
                    crate::fsutil::path_text(&dir.join(good))
                ),
            ));
        }
    }
    let shown: Vec<String> = groups
        .iter()
        .take(4)
        .map(|(g, n)| format!("{g}/ {n}"))
        .collect();
    crate::sayln!(
        "lamp: {} holds no images itself: training on the {} in its {} ({}{})",
        crate::fsutil::path_text(dir),
        crate::error::count(all.len() as u64, "image"),
        crate::error::count(groups.len() as u64, "subfolder"),
        shown.join(", "),
        match groups.len() {
            0..=4 => String::new(),
            k => format!(", and {} more", k - 4),
        }
    );
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Listing only: the files need not be images to be found.
    fn folder_of(name: &str, files: &[&str]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lamp-train-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for f in files {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        }
        d
    }

    #[test]
    fn training_reads_a_folders_own_images_or_else_its_subfolders() {
        // Own images: those only (a subfolder of rejects beside them is not read).
        let d = folder_of("own", &["a.png", "b.png", "bad/c.png"]);
        assert_eq!(
            training_images(&d).unwrap(),
            vec![d.join("a.png"), d.join("b.png")]
        );
        std::fs::remove_dir_all(&d).unwrap();
        // None of its own: the subfolders', nested too, sorted by path.
        let d = folder_of("days", &["day2/x.png", "day1/y.png", "day1/cam/z.png"]);
        assert_eq!(
            training_images(&d).unwrap(),
            vec![
                d.join("day1/cam/z.png"),
                d.join("day1/y.png"),
                d.join("day2/x.png")
            ]
        );
        std::fs::remove_dir_all(&d).unwrap();
        // MVTec AD's train/ (good/ alone) is a folder of normal images.
        let d = folder_of("train", &["good/a.png"]);
        assert_eq!(training_images(&d).unwrap(), vec![d.join("good/a.png")]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn training_refuses_subfolders_of_anomalies_or_of_labels() {
        for (name, files, says) in [
            (
                "labels",
                &["good/a.png", "crack/b.png"][..],
                "good/ beside crack/",
            ),
            (
                "bad",
                &["ok/a.png", "Bad/b.png"],
                "Bad/ is named as anomalies",
            ),
            (
                "deep",
                &["day1/a.png", "day2/defects/b.png"],
                "defects/ is named",
            ),
            ("test", &["x/train/a.png", "x/test/b.png"], "test/ is named"),
        ] {
            let d = folder_of(name, files);
            let e = training_images(&d).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("normal images"),
                "{name}: {e}"
            );
            std::fs::remove_dir_all(&d).unwrap();
        }
        // Nothing anywhere: the folder's own error, naming the subfolders.
        let d = folder_of("none", &["sub/notes.txt"]);
        let e = training_images(&d).unwrap_err().to_string();
        assert!(e.contains("sub/") && e.contains("no images"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
