//! The images `lamp train FOLDER` reads: the folder's own, or where it holds none, those of its
//! subfolders (a set sorted by day or camera), with the folders' names checked, since training
//! takes normal images only: a subfolder named as anomalies (`bad/`, `NG/`, `defects/`) or a
//! layout sorted by label (`good/` beside `crack/`, at any depth) is refused.

use super::listing::walk_images;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Words that name anomalies in folder names (`bad_parts`, `NG`, `cam1-defects`, `Rejected`).
const ANOMALY_WORDS: [&str; 30] = [
    "bad",
    "ng",
    "nok",
    "nio",
    "ko",
    "nogood",
    "defect",
    "defects",
    "defective",
    "anomaly",
    "anomalies",
    "anomalous",
    "abnormal",
    "fail",
    "failed",
    "failure",
    "failures",
    "reject",
    "rejects",
    "rejected",
    "damage",
    "damaged",
    "scrap",
    "scrapped",
    "fault",
    "faults",
    "faulty",
    "broken",
    "outlier",
    "outliers",
];

/// Words that undo them (`defect_free`, `outliers_removed`, `no_anomaly`).
const NEGATIONS: [&str; 7] = ["free", "less", "no", "non", "without", "removed", "clean"];

/// Whole names of folders that hold anomalies or their masks (MVTec AD's `test/`, `ground_truth/`).
const ANOMALY_NAMES: [&str; 6] = ["test", "tests", "ground_truth", "masks", "mask", "not_ok"];

/// Words that name normal images in a layout sorted by label (`good/` beside `crack/`,
/// `ok_parts/` beside `scratch/`, `pass/` beside `fail/`).
const NORMAL_WORDS: [&str; 7] = [
    "good", "normal", "ok", "pass", "passed", "accept", "accepted",
];

/// A folder name's words, lower-cased: split at anything but letters and digits and where a
/// word starts with a capital (`DefectFree` → defect, free; `NGParts` → ng, parts).
fn words(name: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            out.push(String::new());
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1);
        let capital_starts = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase() || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if capital_starts {
            out.push(String::new());
        }
        if let Some(w) = out.last_mut() {
            w.extend(c.to_lowercase());
        }
    }
    out.retain(|w| !w.is_empty());
    out
}

/// Whether a folder's name says it holds anomalies (`bad`, `NG_parts`, `Defects`, `fail`), and
/// not their absence (`defect_free`).
pub fn names_anomalies(name: &str) -> bool {
    let w = words(name);
    let has = |list: &[&str]| w.iter().any(|x| list.contains(&x.as_str()));
    ANOMALY_NAMES.contains(&name.to_lowercase().as_str())
        || w.concat() == "notok"
        || w.concat() == "nogood"
        || (has(&ANOMALY_WORDS) && !has(&NEGATIONS))
}

/// Whether a folder's name says it holds normal images in a layout sorted by label.
fn names_normal(name: &str) -> bool {
    let w = words(name);
    w.iter().any(|x| NORMAL_WORDS.contains(&x.as_str()))
        && !w
            .iter()
            .any(|x| NEGATIONS.contains(&x.as_str()) || x == "not")
}

/// The images training reads from `dir`, with lines to say where they came from (the
/// subfolders they lie in, or the subfolders left unread beside the folder's own images) and,
/// starting `warning: `, a folder named as anomalies. With `skip_bad`, a subfolder that cannot
/// be listed is passed over with a warning.
pub fn in_folder(dir: &Path, skip_bad: bool) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let all = walk_images(dir, skip_bad)?;
    let (own, below): (Vec<PathBuf>, Vec<PathBuf>) =
        all.into_iter().partition(|f| f.parent() == Some(dir));
    // The folder named, named as anomalies (`parts/NG`, tab-completed for `parts/OK`): said.
    let named = dir
        .canonicalize()
        .ok()
        .and_then(|d| Some(d.file_name()?.to_string_lossy().into_owned()))
        .filter(|n| names_anomalies(n));
    let mut notes: Vec<String> = named
        .map(|n| {
            format!(
                "warning: {} is named as anomalies are ({n}): training takes normal images \
                 only, which it learns to reproduce",
                crate::fsutil::path_text(dir)
            )
        })
        .into_iter()
        .collect();
    if !own.is_empty() {
        // More images below than its own (a stray picture among day folders): a warning.
        let unread =
            (!below.is_empty()).then(|| {
                format!(
                "{}training on the {} in {} itself; its subfolders' {} ({}) are not read (name \
                 a subfolder to train on it)",
                if below.len() > own.len() { "warning: " } else { "" },
                crate::error::count(own.len() as u64, "image"),
                crate::fsutil::path_text(dir),
                crate::error::count(below.len() as u64, "image"),
                shown(&subfolders(dir, &below)),
            )
            });
        notes.extend(unread);
        return Ok((own, notes));
    }
    check_names(dir, &below)?;
    let groups = subfolders(dir, &below);
    notes.push(format!(
        "{} holds no images itself: training on the {} in its {} ({})",
        crate::fsutil::path_text(dir),
        crate::error::count(below.len() as u64, "image"),
        crate::error::count(groups.len() as u64, "subfolder"),
        shown(&groups)
    ));
    Ok((below, notes))
}

/// Refuses images of `dir`'s subfolders where one of the folders they lie in is named as
/// anomalies, or where a folder's subfolders are sorted by label (`good/` beside another).
fn check_names(dir: &Path, files: &[PathBuf]) -> Result<()> {
    // Each folder under `dir` (by its parts), with the subfolders below it that hold images.
    let mut children: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(f);
        let parts: Vec<String> = rel
            .parent()
            .into_iter()
            .flat_map(Path::iter)
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        if let Some(bad) = parts.iter().find(|c| names_anomalies(c)) {
            return Err(Error::file(
                dir,
                format!(
                    "holds no images itself, and among its subfolders {bad}/ is named as \
                     anomalies are: training takes normal images only; name the folder of \
                     normal images itself (or rename the folder, if its name misleads)"
                ),
            ));
        }
        for k in 0..parts.len() {
            let below = children.entry(parts[..k].to_vec()).or_default();
            if !below.contains(&parts[k]) {
                below.push(parts[k].clone());
            }
        }
    }
    for (parent, below) in &children {
        // (Siblings all named as normal, `good_day1/` beside `good_day2/`, are one set.)
        let good = below.iter().find(|c| names_normal(c));
        let other = below.iter().find(|c| !names_normal(c));
        if let (Some(good), Some(other)) = (good, other) {
            let folder = parent.iter().fold(dir.to_path_buf(), |p, c| p.join(c));
            return Err(Error::file(
                dir,
                format!(
                    "holds no images itself, and its subfolders look sorted by label ({good}/ \
                     beside {other}/): training takes normal images only; name {} itself",
                    crate::fsutil::path_text(&folder.join(good))
                ),
            ));
        }
    }
    Ok(())
}

/// The subfolders of `dir` that `files` lie in (their names, in sorted order), each with how
/// many.
fn subfolders(dir: &Path, files: &[PathBuf]) -> Vec<(String, usize)> {
    let mut groups: Vec<(String, usize)> = Vec::new();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(f);
        let top = rel
            .iter()
            .next()
            .map_or(String::new(), |p| p.to_string_lossy().into_owned());
        // (Sorted by path: one subfolder's files come together.)
        match groups.last_mut() {
            Some((g, n)) if *g == top => *n += 1,
            _ => groups.push((top, 1)),
        }
    }
    groups
}

/// "a/ 3, b/ 4" for up to four subfolders, then how many more.
fn shown(groups: &[(String, usize)]) -> String {
    let first: Vec<String> = groups
        .iter()
        .take(4)
        .map(|(g, n)| format!("{g}/ {n}"))
        .collect();
    match groups.len() {
        0..=4 => first.join(", "),
        k => format!("{}, and {} more", first.join(", "), k - 4),
    }
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
    fn folder_names_are_read_by_their_words() {
        assert_eq!(words("DefectFree"), ["defect", "free"]);
        assert_eq!(words("NGParts"), ["ng", "parts"]);
        assert_eq!(words("cam1-defects 2024"), ["cam1", "defects", "2024"]);
        for anomalous in [
            "bad",
            "NG",
            "NG_parts",
            "parts_NG",
            "bad-parts",
            "bad parts",
            "cam1_defects",
            "Defective",
            "fail",
            "failed",
            "rejected",
            "damaged",
            "scrap",
            "not-ok",
            "no-good",
            "no_good",
            "test",
            "ground_truth",
            "masks",
            "Anomalies",
        ] {
            assert!(names_anomalies(anomalous), "{anomalous}");
        }
        for normal in [
            "good",
            "Badminton",
            "masked_lighting",
            "failover",
            "defect_free",
            "DefectFree",
            "anomaly_free",
            "faultless",
            "outliers_removed",
            "Scrapbook",
            "tests_2024",
            "ok_parts",
            "2026-11-01",
            "cam2",
        ] {
            assert!(!names_anomalies(normal), "{normal}");
        }
        assert!(names_normal("ok_parts") && names_normal("Good") && names_normal("pass"));
        assert!(!names_normal("no_good") && !names_normal("not_ok") && !names_normal("day1"));
    }

    #[test]
    fn training_reads_a_folders_own_images_or_else_its_subfolders() {
        // Own images: those only, and the subfolders left unread are said.
        let d = folder_of("own", &["a.png", "b.png", "bad/c.png"]);
        let (files, notes) = in_folder(&d, false).unwrap();
        assert_eq!(files, [d.join("a.png"), d.join("b.png")]);
        assert!(
            notes[0].starts_with("training on the 2 images in"),
            "{notes:?}"
        );
        assert!(
            notes[0].contains("subfolders' 1 image (bad/ 1) are not read"),
            "{notes:?}"
        );
        std::fs::remove_dir_all(&d).unwrap();
        // One stray image beside folders of many: a warning.
        let d = folder_of("stray", &["a.png", "day1/b.png", "day2/c.png"]);
        let (files, notes) = in_folder(&d, false).unwrap();
        assert_eq!(
            (files.len(), notes[0].starts_with("warning: ")),
            (1, true),
            "{notes:?}"
        );
        std::fs::remove_dir_all(&d).unwrap();
        // None of its own: the subfolders', nested too, sorted by path, and said.
        let d = folder_of("days", &["day2/x.png", "day1/y.png", "day1/cam/z.png"]);
        let (files, notes) = in_folder(&d, false).unwrap();
        assert_eq!(
            files,
            ["day1/cam/z.png", "day1/y.png", "day2/x.png"].map(|f| d.join(f))
        );
        let said = "training on the 3 images in its 2 subfolders (day1/ 2, day2/ 1)";
        assert!(notes[0].ends_with(said), "{notes:?}");
        std::fs::remove_dir_all(&d).unwrap();
        // MVTec AD's train/ (good/ alone) is a folder of normal images; so are folders good/
        // alone at every level.
        let d = folder_of("train", &["good/a.png"]);
        assert_eq!(in_folder(&d, false).unwrap().0.len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
        let d = folder_of("lines", &["line1/good/a.png", "line2/cam1/good/b.png"]);
        assert_eq!(in_folder(&d, false).unwrap().0.len(), 2);
        std::fs::remove_dir_all(&d).unwrap();
        let d = folder_of("goods", &["good_day1/a.png", "good_day2/b.png"]);
        assert_eq!(in_folder(&d, false).unwrap().0.len(), 2);
        std::fs::remove_dir_all(&d).unwrap();
        // A plain folder: nothing to say; named as anomalies, a warning.
        let d = folder_of("plain", &["a.png"]);
        assert!(in_folder(&d, false).unwrap().1.is_empty());
        std::fs::remove_dir_all(&d).unwrap();
        let d = folder_of("named", &["NG/a.png"]).join("NG");
        let notes = in_folder(&d, false).unwrap().1;
        assert!(
            notes[0].starts_with("warning: ") && notes[0].contains("(NG)"),
            "{notes:?}"
        );
        std::fs::remove_dir_all(d.parent().unwrap()).unwrap();
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
            ("passfail", &["pass/a.png", "fail/b.png"], "fail/ is named"),
            (
                "rejected",
                &["day1/a.png", "rejected/b.png"],
                "rejected/ is named",
            ),
            (
                "ng",
                &["day1/a.png", "NG_parts/b.png"],
                "NG_parts/ is named",
            ),
            (
                "okscratch",
                &["good_1/a.png", "good_2/c.png", "dent/b.png"],
                "beside dent/",
            ),
            // Sorted by label a level down: line1/cam1/good beside line1/cam1/scratch.
            (
                "nested",
                &["cam1/good/a.png", "cam1/scratch/b.png", "cam2/good/c.png"],
                "good/ beside scratch/",
            ),
        ] {
            let d = folder_of(name, files);
            let e = in_folder(&d, false).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("normal images"),
                "{name}: {e}"
            );
            std::fs::remove_dir_all(&d).unwrap();
        }
        // Nothing anywhere: said so, the subfolders counted in.
        let d = folder_of("none", &["sub/notes.txt"]);
        let e = in_folder(&d, false).unwrap_err().to_string();
        assert!(e.contains("no images") && e.contains("subfolders"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
