//! Hostile inputs through the binary, as a table: corrupt, huge, non-finite and non-regular
//! files, checkpoint metadata that lies, option values out of range, data sets that are empty or
//! inflate, and output streams that close or fill. Every case runs under a 4 GiB address-space
//! limit (prlimit) and a time limit, so that a regression fails the test instead of exhausting
//! the machine, and must end with the exit status it names, no panic, no signal, and a message
//! that names the file or option.

#[path = "hostile/args.rs"]
mod args;
mod common;
#[path = "hostile/files.rs"]
mod files;
#[path = "hostile/fixtures.rs"]
mod fixtures;
#[path = "hostile/harness.rs"]
mod harness;

use common::*;
use std::path::PathBuf;
use std::process::Stdio;

/// What every family of cases works with: a folder, good images, a trained model and its bytes,
/// and an --out path.
pub struct Env {
    pub d: PathBuf,
    pub good: PathBuf,
    pub model: PathBuf,
    pub ck: Vec<u8>,
    pub out: PathBuf,
}

impl Env {
    /// Writes `bytes` to a file `n` in the folder.
    pub fn write(&self, n: &str, bytes: &[u8]) -> PathBuf {
        let p = self.d.join(n);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

#[test]
fn hostile_corpus() {
    let d = tmpdir("hostile");
    let good = d.join("good");
    std::fs::create_dir_all(&good).unwrap();
    for i in 0..8 {
        fixtures::png(&good.join(format!("g{i}.png")), 28, 28, i);
    }
    let model = d.join("m.safetensors");
    let o = lamp()
        .arg("train")
        .arg(&good)
        .arg("--out")
        .arg(&model)
        .args(["--epochs", "2", "--batch", "2", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = Env {
        ck: std::fs::read(&model).unwrap(),
        out: d.join("o.safetensors"),
        d: d.clone(),
        good,
        model,
    };
    let mut cases = files::images(&e);
    cases.extend(files::checkpoints(&e));
    cases.extend(args::options(&e));
    cases.extend(args::data_sets(&e));
    cases.extend(args::streams(&e));
    assert!(cases.len() >= 100, "{} cases", cases.len());
    harness::check(&cases);
    let _ = std::fs::remove_dir_all(&d);
}

/// A closed pipe ends lamp quietly with SIGPIPE's status.
#[cfg(unix)]
#[test]
fn closed_pipe_ends_quietly() {
    let mut child = lamp()
        .arg("info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before lamp writes
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(141), "{err}");
}
