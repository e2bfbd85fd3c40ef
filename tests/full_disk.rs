//! A full disk, on a small tmpfs: every write that cannot finish is an error naming the file, and
//! nothing already there is lost. Needs root to mount the tmpfs: `cargo test --release --
//! --ignored` as root (CI does).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// A tmpfs mounted at a folder, unmounted when dropped (also when an assertion fails).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB at `dir` (created).
    fn mount(dir: &Path, kib: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(mounted, "cannot mount a tmpfs here: this test needs root");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The memory page's size in bytes (a tmpfs counts whole pages).
fn page_size() -> u64 {
    let o = Command::new("getconf").arg("PAGESIZE").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// Training on a full disk fails at its first snapshot, and leaves neither a partial checkpoint
/// nor a temporary file.
#[test]
#[ignore = "needs root: mounts a tmpfs"]
fn full_disk_is_a_clean_error() {
    let d = tmpdir("full");
    blobs(&d.join("good"));
    let mnt = d.join("mnt");
    // The fmnist-ae checkpoint (~2 MB with Adam's state) cannot fit in 256 KiB: the first
    // snapshot (m.partial.safetensors) fails.
    let tmpfs = Tmpfs::mount(&mnt, 256);
    let out = mnt.join("m.safetensors");
    let o = lamp()
        .arg("train")
        .arg(d.join("good"))
        .arg("--out")
        .arg(&out)
        .args(["--epochs", "1", "--batch", "8", "--quiet"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // The (empty) lock file stays by design; nothing else may.
    let left: Vec<_> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".m.safetensors.lock")
        .collect();
    drop(tmpfs);
    assert!(!o.status.success(), "a full disk must fail the run");
    assert!(
        err.contains("m.partial.safetensors") && err.contains("No space left"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        left.is_empty(),
        "no partial or temporary file is left: {left:?}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// An evaluation report that does not fit is an error naming the file, and leaves the report that
/// was in the folder as it was (not half of a new one over half of the old).
#[test]
#[ignore = "needs root: mounts a tmpfs"]
fn full_disk_keeps_the_last_report() {
    let d = tmpdir("full-report");
    let cat = d.join("cat");
    blobs(&cat.join("train/good"));
    blobs(&cat.join("test/good"));
    // Anomalies: blobs with a bright square.
    std::fs::create_dir_all(cat.join("test/spot")).unwrap();
    for i in 0..10 {
        let name = format!("{i:02}.png");
        let mut img = image::open(cat.join("test/good").join(&name))
            .unwrap()
            .to_luma8();
        for (x, y) in (0..36).map(|k| (4 + k % 6, 4 + k / 6)) {
            img.put_pixel(x, y, image::Luma([255]));
        }
        img.save(cat.join("test/spot").join(&name)).unwrap();
    }
    let model = d.join("m.safetensors");
    ok(lamp()
        .arg("train")
        .arg(&cat)
        .arg("--out")
        .arg(&model)
        .args(["--epochs", "1", "--quiet"]));
    let eval = |model: &Path, out: &Path| {
        lamp()
            .arg("eval")
            .arg(model)
            .arg(&cat)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let old = d.join("old");
    assert!(eval(&model, &old).status.success());
    let before = files_under(&old);
    // Room for the old report and a few pages more: not for a second report beside it.
    let page = page_size();
    let pages: u64 = before
        .iter()
        .map(|(_, b)| (b.len() as u64).div_ceil(page))
        .sum();
    let mnt = d.join("mnt");
    let tmpfs = Tmpfs::mount(&mnt, (pages + 4) * page / 1024);
    let report = mnt.join("report");
    for (rel, bytes) in &before {
        std::fs::create_dir_all(report.join(rel).parent().unwrap()).unwrap();
        std::fs::write(report.join(rel), bytes).unwrap();
    }
    // Another model's name: every file of its report would differ from the old one's.
    let other = d.join("other.safetensors");
    std::fs::copy(&model, &other).unwrap();
    let o = eval(&other, &report);
    let err = String::from_utf8_lossy(&o.stderr);
    let after = files_under(&report);
    let hidden: Vec<_> = std::fs::read_dir(&report)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    drop(tmpfs);
    assert!(!o.status.success(), "a full disk must fail the evaluation");
    assert!(
        err.contains("No space left")
            && err.contains("left as it was")
            && !err.contains("panicked"),
        "{err}"
    );
    assert!(after == before, "the old report is changed");
    assert!(hidden.is_empty(), "nothing is left behind: {hidden:?}");
    std::fs::remove_dir_all(&d).unwrap();
}
