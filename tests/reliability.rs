//! Crash safety through the binary: a resumed run ends with the same model bytes as an
//! uninterrupted one; SIGKILL at random points never leaves an invalid checkpoint; a NaN stops training cleanly and keeps the last good checkpoint; SIGINT and
//! SIGTERM stop at a step and resume to the same bytes; one writer per --out; temporary files of
//! killed writers are cleaned up; a damaged pipeline cache is replaced, not used.

mod common;
use common::*;
use lamp::detect::Checkpoint;
use lamp::rng::SplitMix64;
use std::io::BufRead;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn train(data: &Path, out: &Path, epochs: u32, extra: &[&str]) -> std::process::Output {
    spawn_train(data, out, epochs, extra)
        .wait_with_output()
        .unwrap()
}

/// A folder of images (`d/good`) and an uninterrupted run of `epochs` on them
/// (`d/reference.safetensors`), to compare interrupted runs with.
fn with_reference(name: &str, epochs: u32) -> (std::path::PathBuf, std::path::PathBuf) {
    let d = tmpdir(name);
    blobs(&d.join("good"));
    let reference = d.join("reference.safetensors");
    assert!(train(&d.join("good"), &reference, epochs, &[])
        .status
        .success());
    (d, reference)
}

/// Asserts that the checkpoints at `a` and `b` hold the same parameters and Adam state.
fn assert_same_model(a: &Path, b: &Path, what: &str) {
    let (a, b) = (
        Checkpoint::load(a, None).unwrap(),
        Checkpoint::load(b, None).unwrap(),
    );
    assert!(tensors(&a) == tensors(&b), "{what}");
    // Their recipes too, but for the output's name: a resumed run names its model's shape and
    // initial weights as an uninterrupted one does.
    let recipe = |c: &Checkpoint| {
        let r = c.metadata.get("recipe").cloned().unwrap_or_default();
        let kept: Vec<String> = r
            .lines()
            .filter(|l| !l.contains("out ="))
            .map(String::from)
            .collect();
        kept
    };
    assert_eq!(recipe(&a), recipe(&b), "{what}: recipes");
}

fn tensors(ck: &Checkpoint) -> (Vec<f32>, Vec<f32>, Vec<f32>, u32) {
    let o = ck.optimizer.clone().unwrap();
    (ck.params.clone(), o.exp_avg, o.exp_avg_sq, o.t)
}

#[test]
fn resume_matches_uninterrupted_run() {
    let d = tmpdir("resume");
    blobs(&d.join("good"));
    let full = d.join("full.safetensors");
    let part = d.join("part.safetensors");
    // Extending a finished run matches an uninterrupted one where the learning rate does not
    // depend on the run's length (a killed run resumed at the same length always does: below).
    let constant = ["--schedule", "constant"];
    assert!(train(&d.join("good"), &full, 4, &constant).status.success());
    assert!(train(&d.join("good"), &part, 2, &constant).status.success());
    let o = train(
        &d.join("good"),
        &part,
        4,
        &["--resume", "--schedule", "constant"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (
        Checkpoint::load(&full, None).unwrap(),
        Checkpoint::load(&part, None).unwrap(),
    );
    assert!(
        tensors(&a) == tensors(&b),
        "resumed run must end with the same parameters and Adam state"
    );
    assert_eq!(a.metadata.get("calibration"), b.metadata.get("calibration"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn sigkill_never_corrupts_and_resume_finishes() {
    let epochs = 14;
    let (d, reference) = with_reference("kill", epochs);
    let out = d.join("killed.safetensors");
    // Snapshots between epochs go beside --out until the run finishes.
    let partial = d.join("killed.partial.safetensors");
    let mut rng = SplitMix64::new(99);
    let mut kills = 0;
    for _ in 0..4 {
        let resume = out.exists() || partial.exists();
        let mut c = lamp();
        c.arg("train").arg(d.join("good")).arg("--out").arg(&out);
        c.args(["--epochs", &epochs.to_string(), "--batch", "8", "--quiet"]);
        if resume {
            c.arg("--resume");
        }
        let mut child = c.spawn().unwrap();
        let wait = Duration::from_millis(800 + rng.below(2500));
        let t0 = Instant::now();
        let mut finished = false;
        while t0.elapsed() < wait {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !finished {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        // Whatever is on disk is a whole, valid checkpoint (never a torn file).
        for path in [&out, &partial] {
            if !path.exists() {
                continue;
            }
            let ck =
                Checkpoint::load(path, None).expect("checkpoint on disk is valid after SIGKILL");
            assert!(ck.optimizer.is_some());
            if !ck.metadata.contains_key("calibration") {
                // An unfinished run says how to finish it instead of scoring with no threshold.
                let good = d.join("good");
                fails(
                    &[
                        std::ffi::OsStr::new("score"),
                        path.as_os_str(),
                        good.as_os_str(),
                    ],
                    &["--resume", "it writes --out", "killed.safetensors"],
                );
            }
        }
        let temps = std::fs::read_dir(&d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count();
        assert!(
            temps <= 1,
            "at most the temporary file of the write in flight is left"
        );
    }
    // Finish the run.
    let o = train(
        &d.join("good"),
        &out,
        epochs,
        if out.exists() || partial.exists() {
            &["--resume"]
        } else {
            &[]
        },
    );
    assert!(!partial.exists(), "a finished run removes its snapshot");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_model(
        &reference,
        &out,
        &format!("after {kills} kills and resumes, the model equals the uninterrupted one"),
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn nan_stops_cleanly_and_keeps_the_last_good_checkpoint() {
    let d = tmpdir("nan");
    blobs(&d.join("good"));
    let out = d.join("m.safetensors");
    assert!(train(&d.join("good"), &out, 2, &[]).status.success());
    let before = std::fs::read(&out).unwrap();
    let o = train(&d.join("good"), &out, 6, &["--resume", "--lr", "1e9"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a NaN must stop training");
    assert!(
        err.contains("non-finite") && err.contains("--lr") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "the last good checkpoint stays"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Starts `lamp train` on `data` into `out` (batch 8, `epochs`), with piped stderr.
fn spawn_train(data: &Path, out: &Path, epochs: u32, extra: &[&str]) -> std::process::Child {
    lamp()
        .arg("train")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(["--epochs", &epochs.to_string(), "--batch", "8", "--quiet"])
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most 60 s) until `p` exists.
fn wait_for(p: &Path) {
    let t0 = Instant::now();
    while !p.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{p:?} never appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends SIGname through the shell's builtin `kill` (no procps needed).
fn signal(child: &std::process::Child, name: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("kill -{name} {}", child.id())])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

#[cfg(unix)]
#[test]
fn sigint_stops_at_a_step_and_resume_ends_with_the_same_bytes() {
    let epochs = 60;
    let (d, reference) = with_reference("sigint", epochs);
    let out = d.join("m.safetensors");
    let partial = d.join("m.partial.safetensors");
    // Snapshots an hour apart: the first epoch's is written at once, and the stop writes the
    // last whole epoch's, which is the one the message names.
    let mut child = lamp()
        .arg("train")
        .arg(d.join("good"))
        .arg("--out")
        .arg(&out)
        .args(["--epochs", &epochs.to_string(), "--batch", "8"])
        .args(["--snapshot-every", "3600"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Signalled once the third epoch's progress line is out (a line per epoch in a log), however
    // fast the device: well before the last of 60.
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut err = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        err += &line;
        err.push('\n');
        if line.contains("epoch 3/") {
            break;
        }
    }
    signal(&child, "INT");
    for line in lines {
        err += &line.unwrap();
        err.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("--resume") && !err.contains("panicked"),
        "{err}"
    );
    assert!(!out.exists(), "an interrupted run writes no finished model");
    let ck = Checkpoint::load(&partial, None).expect("the snapshot is whole after SIGINT");
    let done = &ck.metadata["epochs_done"];
    assert!(
        done != "1" && err.contains(&format!("the snapshot after epoch {done} is in")),
        "the snapshot of the last whole epoch ({done}) is written when stopped: {err}"
    );
    // Its loss curve beside it, a line per whole epoch, until the run finishes.
    let curve = d.join("m.partial.loss.csv");
    let rows = std::fs::read_to_string(&curve).expect("the stopped run's loss curve");
    assert_eq!(
        rows.lines().count(),
        done.parse::<usize>().unwrap() + 1,
        "{rows}"
    );
    assert!(
        err.contains("m.partial.loss.png") && d.join("m.partial.loss.png").is_file(),
        "{err}"
    );
    let o = train(&d.join("good"), &out, epochs, &["--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!curve.exists() && !d.join("m.partial.loss.png").exists());
    assert_same_model(
        &reference,
        &out,
        "interrupted and resumed equals uninterrupted",
    );
    assert!(!partial.exists());
    // SIGTERM likewise, with its own status; sent twice at once, as `timeout` does (to the
    // process, then its group), it is still one request to stop at a step.
    let child = spawn_train(&d.join("good"), &d.join("t.safetensors"), epochs, &[]);
    wait_for(&d.join("t.partial.safetensors"));
    let pid = child.id();
    let twice = format!("kill -TERM {pid}; kill -TERM {pid}");
    assert!(Command::new("sh")
        .args(["-c", &twice])
        .status()
        .unwrap()
        .success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(
        err.contains("--resume"),
        "stopped at a step, not ended at once: {err}"
    );
    assert!(!d.join(".t.safetensors.lock").exists());
    // A SIGINT the parent ignores (a script's background job) leaves the run to finish: sent
    // after the third of 30 epochs, all 30 are trained.
    let ignoring = d.join("i.safetensors");
    let mut child = Command::new("sh")
        .args([
            "-c",
            "trap '' INT; exec \"$@\"",
            "sh",
            env!("CARGO_BIN_EXE_lamp"),
        ])
        .arg("train")
        .arg(d.join("good"))
        .arg("--out")
        .arg(&ignoring)
        .args(["--epochs", "30", "--batch", "8", "--snapshot-every", "3600"])
        .envs(lamp().get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let third = line.contains("epoch 3/");
        err += &line;
        err.push('\n');
        if third {
            break;
        }
    }
    signal(&child, "INT");
    for line in lines {
        err += &line.unwrap();
        err.push('\n');
    }
    assert!(child.wait().unwrap().success(), "{err}");
    let ck = Checkpoint::load(&ignoring, None).unwrap();
    assert_eq!(ck.metadata["epochs_done"], "30", "{err}");
    assert!(!err.contains("stopping"), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[cfg(unix)]
#[test]
fn a_second_writer_of_one_out_is_refused() {
    let d = tmpdir("lock");
    blobs(&d.join("good"));
    let out = d.join("m.safetensors");
    let first = spawn_train(&d.join("good"), &out, 100, &[]);
    wait_for(&d.join("m.partial.safetensors")); // the first holds the lock by now
    let o = train(&d.join("good"), &out, 2, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a second writer must be refused");
    assert!(
        err.contains("m.safetensors") && err.contains("another lamp process"),
        "{err}"
    );
    let lock = d.join(".m.safetensors.lock");
    assert!(
        lock.exists(),
        "a refused run leaves the holder's lock file alone"
    );
    signal(&first, "TERM");
    let o = first.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143));
    assert!(
        !lock.exists(),
        "the lock file goes with the run that held it"
    );
    // The lock goes with the process. Its snapshot stays: a fresh run is refused until the
    // snapshot is resumed or deleted, and then proceeds.
    let o = train(&d.join("good"), &out, 2, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--resume"), "{err}");
    std::fs::remove_file(d.join("m.partial.safetensors")).unwrap();
    assert!(train(&d.join("good"), &out, 2, &[]).status.success());
    assert!(!lock.exists(), "nor does a finished run leave one");
    std::fs::remove_dir_all(&d).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn temporary_files_of_dead_writers_are_removed() {
    let d = tmpdir("stale");
    blobs(&d.join("good"));
    // A process that has ended: its PID runs nothing now.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = d.join(format!(".m.safetensors.tmp-{dead}"));
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    // A live writer's (this test's own PID) must stay.
    let live = d.join(format!(".m.safetensors.tmp-{}", std::process::id()));
    std::fs::write(&live, b"in flight").unwrap();
    let o = train(&d.join("good"), &d.join("m.safetensors"), 2, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!stale.exists(), "a dead writer's temporary file is removed");
    assert!(live.exists(), "a live writer's temporary file stays");
    std::fs::remove_dir_all(&d).unwrap();
}

/// The pipeline cache file (Vulkan's, kept between runs in `LAMP_PIPELINE_CACHE`): written by a
/// run, ignored and replaced when damaged (a flipped byte, a truncated file), never read or
/// written with `off`. The runs score 40 images with a model of one epoch; CI's lavapipe offers the
/// cache (a driver that stores no pipelines of its own still hands back its header).
#[test]
fn a_damaged_pipeline_cache_is_replaced_and_off_writes_none() {
    let info = lamp().arg("info").output().unwrap();
    if String::from_utf8_lossy(&info.stdout).contains("pipeline cache no") {
        eprintln!("this adapter offers no pipeline cache: nothing to test");
        return;
    }
    let dir = tmpdir("pipeline-cache");
    let cache = dir.join("cache");
    blobs(&dir.join("img"));
    let model = dir.join("m.safetensors");
    let ok = |c: &mut std::process::Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let trained = train(&dir.join("img"), &model, 1, &[]);
    assert!(trained.status.success());
    let score = |env: &std::ffi::OsStr| {
        ok(lamp()
            .env("LAMP_PIPELINE_CACHE", env)
            .arg("score")
            .arg(&model)
            .arg(dir.join("img")))
    };
    let files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    // A whole frame: magic, CRC-32 of the data, its length, the data.
    let whole = |f: &[u8]| {
        f.len() > 20
            && f.starts_with(b"lampPC01")
            && u64::from_le_bytes(f[12..20].try_into().unwrap()) == (f.len() - 20) as u64
            && u32::from_le_bytes(f[8..12].try_into().unwrap()) == crc32(&f[20..])
    };
    score(std::ffi::OsStr::new("off"));
    assert!(files().is_empty(), "off wrote {:?}", files());
    score(cache.as_os_str());
    let written = files();
    assert_eq!(written.len(), 1, "one cache file: {written:?}");
    let good = std::fs::read(&written[0]).unwrap();
    assert!(whole(&good), "a whole frame: {good:?}");
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    for damaged in [flipped, good[..good.len() - 3].to_vec(), b"junk".to_vec()] {
        assert!(!whole(&damaged));
        std::fs::write(&written[0], &damaged).unwrap();
        score(cache.as_os_str());
        let now = std::fs::read(&written[0]).unwrap();
        assert!(
            whole(&now),
            "the damaged file was replaced by a whole one: {now:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
