//! `lamp experiment` killed mid-run resumes without recomputing a finished cell, and refuses to
//! resume a table with other options or on other images (a table of two runs would result).

mod common;
use common::*;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn experiment_killed_mid_run_resumes_without_recomputing() {
    let d = tmpdir("experiment");
    let idx = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fashion-mnist-mini");
    let out = d.join("exp");
    let args_on = |c: &mut Command, batch: &str, idx: &Path| {
        c.args([
            "experiment",
            "fashion-mnist",
            "--classes",
            "1",
            "--metrics",
            "mse",
            "--amp",
            "none,lamp",
        ])
        .args([
            "--seeds",
            "0,1",
            "--epochs",
            "1",
            "--batch",
            batch,
            "--idx-dir",
        ])
        .arg(idx)
        .arg("--out")
        .arg(&out);
    };
    let args_with = |c: &mut Command, batch: &str| args_on(c, batch, &idx);
    let args = |c: &mut Command| args_with(c, "32");
    let results = out.join("results.jsonl");
    let lines = || {
        std::fs::read_to_string(&results)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    // Kill it as soon as the first cell is on disk.
    let mut c = lamp();
    args(&mut c);
    let mut child = c.stderr(std::process::Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    while lines() < 1 && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first = std::fs::read_to_string(&results).unwrap();
    let done = first.lines().count();
    assert!(
        (1..4).contains(&done),
        "{done} cells finished before the kill"
    );
    // Resumed with another learning rate or batch: the finished cells are not this run's.
    for (batch, lr) in [("32", "0.5"), ("16", "0.001")] {
        let mut c = lamp();
        args_with(&mut c, batch);
        let o = c.args(["--lr", lr]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let named = if batch == "32" {
            "--lr 0.001"
        } else {
            "--batch 32"
        };
        assert!(
            !o.status.success() && err.contains(named) && err.contains("results.jsonl"),
            "{err}"
        );
    }
    // Resumed on other images of the class (a copy of the IDX files, pixels inverted).
    let other = d.join("other-idx");
    std::fs::create_dir(&other).unwrap();
    for f in std::fs::read_dir(&idx).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, other.join(f.file_name().unwrap())).unwrap();
    }
    let gz = other.join("train-images-idx3-ubyte.gz");
    let mut raw = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap()),
        &mut raw,
    )
    .unwrap();
    raw[16..].iter_mut().for_each(|v| *v = 255 - *v);
    std::fs::remove_file(&gz).unwrap();
    std::fs::write(other.join("train-images-idx3-ubyte"), &raw).unwrap();
    let mut c = lamp();
    args_on(&mut c, "32", &other);
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("other images") && err.contains("results.jsonl"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&results).unwrap(), first);
    // A torn line, as a kill during a write would leave.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&results)
        .unwrap()
        .write_all(b"{\"dataset\":\"fash")
        .unwrap();
    let mut c = lamp();
    args(&mut c);
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains(&format!("{done} done")), "{err}");
    let text = std::fs::read_to_string(&results).unwrap();
    assert_eq!(text.lines().count(), 4, "every cell once");
    assert!(
        text.starts_with(first.trim_end()),
        "finished cells are kept as they were"
    );
    for l in text.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("no corrupt line");
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    // LAMP against the baseline, paired over both seeds, with a verdict.
    let row = md
        .lines()
        .find(|l| l.starts_with("| mse lamp element adam 1ep | 1 | 2 |"))
        .unwrap_or_else(|| panic!("no paired row in:\n{md}"));
    assert!(
        row.contains("LAMP") || row.contains("no measurable effect"),
        "{row}"
    );
    // The model-free baseline's row fills its mean column too (one class: its own value).
    let base = md
        .lines()
        .find(|l| l.starts_with("| mean image (mse) |"))
        .unwrap_or_else(|| panic!("no mean-image row in:\n{md}"));
    let cells: Vec<&str> = base.trim_matches('|').split('|').map(str::trim).collect();
    assert!(
        cells.len() == 3 && cells[1] == cells[2] && !cells[2].is_empty(),
        "{base}"
    );
    for png in ["results.png", "results-difference.png"] {
        image::open(out.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
    }
    std::fs::remove_dir_all(&d).unwrap();
}
