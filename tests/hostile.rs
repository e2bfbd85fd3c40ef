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

/// `n` good 28x28 images in `d/good` and a model trained on them for `epochs`, batch 2.
fn trained(d: &std::path::Path, n: u32, epochs: &str) -> (PathBuf, PathBuf) {
    let good = d.join("good");
    std::fs::create_dir_all(&good).unwrap();
    for i in 0..n {
        fixtures::png(&good.join(format!("g{i}.png")), 28, 28, i);
    }
    let model = d.join("m.safetensors");
    let o = lamp()
        .arg("train")
        .arg(&good)
        .arg("--out")
        .arg(&model)
        .args(["--epochs", epochs, "--batch", "2", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (good, model)
}

#[test]
fn hostile_corpus() {
    let d = tmpdir("hostile");
    let (good, model) = trained(&d, 8, "2");
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
    eprintln!("hostile corpus: {} cases", cases.len());
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

/// A closed standard error (`lamp train ... 2>&1 | head -1`) does not end training: the
/// progress lines are dropped and the model is written.
#[cfg(unix)]
#[test]
fn training_outlives_a_closed_stderr() {
    let d = tmpdir("stderr-closed");
    let good = d.join("good");
    std::fs::create_dir_all(&good).unwrap();
    for i in 0..8 {
        fixtures::png(&good.join(format!("g{i}.png")), 28, 28, i);
    }
    let model = d.join("m.safetensors");
    let mut child = lamp()
        .arg("train")
        .arg(&good)
        .arg("--out")
        .arg(&model)
        .args(["--epochs", "2", "--batch", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader goes away before lamp writes its first line
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(model.exists(), "the model is written");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Two names that differ only in bytes that are not UTF-8 stay different in every output (the
/// bytes are written as \xNN), and a quoted CSV keeps its columns for names with commas.
#[cfg(unix)]
#[test]
fn names_stay_distinct_and_csv_keeps_its_columns() {
    use std::os::unix::ffi::OsStrExt;
    let d = tmpdir("names");
    let (_, model) = trained(&d, 4, "1");
    let odd = d.join("odd");
    std::fs::create_dir_all(&odd).unwrap();
    for name in [&b"a\xff.png"[..], b"a\xfe.png", b"b,\"c\".png", b"d\ne.png"] {
        fixtures::png(&odd.join(std::ffi::OsStr::from_bytes(name)), 28, 28, 7);
    }
    let run = |flag: &str| {
        let o = lamp()
            .arg("score")
            .arg(&model)
            .arg(&odd)
            .arg(flag)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).expect("output is UTF-8")
    };
    let json = run("--json");
    assert!(
        json.contains("a\\\\xFF.png") && json.contains("a\\\\xFE.png"),
        "{json}"
    );
    let csv = run("--csv");
    assert!(
        csv.contains("a\\xFF.png") && csv.contains("a\\xFE.png"),
        "{csv}"
    );
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.len() == 5), "{rows:?}");
    // One model scored every row: its fingerprint, 8 hex digits, the same on each.
    assert!(
        rows.iter().all(|r| r[4].len() == 8 && r[4] == rows[0][4]),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r[0].ends_with("b,\"c\".png")),
        "{rows:?}"
    );
    // Python's csv module reads the same rows (where Python is installed).
    let file = d.join("scores.csv");
    std::fs::write(&file, &csv).unwrap();
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import csv, json, sys; print(json.dumps(list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))))",
        ])
        .arg(&file)
        .output();
    match py {
        Ok(o) if o.status.success() => {
            let read: Vec<Vec<String>> = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(
                read[0],
                ["path", "score", "normalised", "verdict", "model_id"]
            );
            assert_eq!(read[1..], rows[..], "Python's csv module reads other rows");
            assert!(read.iter().any(|r| r[0].ends_with("d\ne.png")), "{read:?}");
        }
        _ => eprintln!("no python3 here: the CSV was not read back with Python's csv module"),
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// `score --skip-bad` accounts for every input: an unreadable image gets its row, in path order,
/// verdict `unreadable` and no score, in the table, the CSV and the JSON lines alike.
#[test]
fn skipped_images_keep_their_rows() {
    let d = tmpdir("skip-rows");
    let (_, model) = trained(&d, 4, "1");
    let line = d.join("line");
    std::fs::create_dir_all(&line).unwrap();
    fixtures::png(&line.join("a.png"), 28, 28, 1);
    std::fs::write(line.join("b.png"), b"\x89PNG\r\n\x1a\n cut short").unwrap();
    fixtures::png(&line.join("c.png"), 28, 28, 2);
    let run = |flag: &[&str]| {
        let o = lamp()
            .arg("score")
            .arg(&model)
            .arg(&line)
            .arg("--skip-bad")
            .args(flag)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        assert!(err.contains("b.png"), "the warning names it: {err}");
        String::from_utf8(o.stdout).unwrap()
    };
    let json: Vec<serde_json::Value> = run(&["--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verdicts: Vec<&str> = json
        .iter()
        .map(|v| v["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts.len(), 3);
    assert_eq!(verdicts[1], "unreadable", "{json:?}");
    assert!(json[1]["path"].as_str().unwrap().ends_with("b.png"));
    assert!(json[1]["score"].is_null() && json[1]["error"].as_str().unwrap().contains("b.png"));
    assert!(json[0]["score"].is_number() && json[2]["score"].is_number());
    let csv = run(&["--csv"]);
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    assert!(rows[1][0].ends_with("b.png") && rows[1][1].is_empty() && rows[1][3] == "unreadable");
    let table = run(&[]);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        table.lines().nth(2).unwrap().ends_with("unreadable"),
        "{table}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Masks stored as 0/1 in 16 bits (which 8-bit conversion rounds to all zeros) mark defects as
/// 0/255 masks do.
#[test]
fn masks_of_zero_and_one_count() {
    let d = tmpdir("masks01");
    let tree = d.join("cat");
    for sub in ["train/good", "test/good", "test/spot", "ground_truth/spot"] {
        std::fs::create_dir_all(tree.join(sub)).unwrap();
    }
    for i in 0..6 {
        fixtures::png(&tree.join(format!("train/good/{i}.png")), 28, 28, i);
        fixtures::png(&tree.join(format!("test/good/{i}.png")), 28, 28, i + 6);
    }
    for (i, sixteen) in [(0, true), (1, true)] {
        let mut img =
            image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * 7 + y * 3) % 256) as u8]));
        for y in 10..16 {
            for x in 10..16 {
                img.put_pixel(x, y, image::Luma([255]));
            }
        }
        img.save(tree.join(format!("test/spot/{i}.png"))).unwrap();
        let inside = |x: u32, y: u32| (10..16).contains(&x) && (10..16).contains(&y);
        let p = tree.join(format!("ground_truth/spot/{i}_mask.png"));
        if sixteen {
            image::ImageBuffer::<image::Luma<u16>, _>::from_fn(28, 28, |x, y| {
                image::Luma([inside(x, y) as u16])
            })
            .save(&p)
            .unwrap();
        } else {
            image::GrayImage::from_fn(28, 28, |x, y| image::Luma([inside(x, y) as u8]))
                .save(&p)
                .unwrap();
        }
    }
    let model = d.join("m.safetensors");
    let o = lamp()
        .arg("train")
        .arg(&tree)
        .arg("--out")
        .arg(&model)
        .args(["--epochs", "1", "--batch", "2", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = d.join("ev");
    let o = lamp()
        .arg("eval")
        .arg(&model)
        .arg(&tree)
        .arg("--out")
        .arg(&ev)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("metrics.json")).unwrap()).unwrap();
    assert!(
        m["pixel_auroc"].is_number(),
        "0/1 masks must give pixel metrics: {m}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
