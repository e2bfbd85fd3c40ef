//! Shared by the integration tests: one device per test binary, random non-zero data, NaN
//! poisoning and the error measure with its rule.
#![allow(dead_code)]

pub mod cases;
pub mod layouts;

use lamp::device::Device;
use lamp::rng::SplitMix64;
use std::sync::{Arc, OnceLock};

/// The device every test of this binary shares.
pub fn device() -> Arc<Device> {
    static DEV: OnceLock<Arc<Device>> = OnceLock::new();
    DEV.get_or_init(|| {
        Arc::new(
            Device::new(None).expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)"),
        )
    })
    .clone()
}

/// Uniform in [lo, hi), never exactly zero.
pub fn random(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f32> {
    let mut r = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let v = (lo + (hi - lo) * r.next_f64()) as f32;
            if v == 0.0 {
                1e-3
            } else {
                v
            }
        })
        .collect()
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Relative L2 error ‖got − want‖ / ‖want‖ (absolute when want is all zeros). Panics with the
/// largest element error and where it is if any value is non-finite (an unwritten NaN).
pub fn rel_l2(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length");
    let mut num = 0.0;
    let mut den = 0.0;
    let mut worst = (0usize, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.is_finite(),
            "element {i} is {g} (not written, or non-finite); want {w}"
        );
        let d = g as f64 - w;
        num += d * d;
        den += w * w;
        if d.abs() > worst.1 {
            worst = (i, d.abs());
        }
    }
    let e = if den > 0.0 {
        (num / den).sqrt()
    } else {
        num.sqrt()
    };
    if e > 1e-5 {
        eprintln!(
            "rel L2 {e:.3e}; largest error {:.3e} at {} (got {}, want {})",
            worst.1, worst.0, got[worst.0], want[worst.0]
        );
    }
    e
}

/// Asserts rel_l2 ≤ tol, naming the check.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    let e = rel_l2(got, want);
    assert!(e <= tol, "{what}: relative L2 error {e:.3e} > {tol:.1e}");
}

/// The lamp binary, with Mesa's window-system variable set (lamp never opens a window) and no
/// pipeline cache (tests write nothing into the home folder; the cache's own test sets one).
pub fn lamp() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lamp"));
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c.env("LAMP_PIPELINE_CACHE", "off");
    // SIGINT and SIGTERM at their defaults, as from a terminal: tests started in the background
    // of a script inherit SIGINT ignored, and lamp leaves a signal ignored at its start ignored.
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: signal() is async-signal-safe, as code between fork and exec must be.
        unsafe {
            c.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                Ok(())
            });
        }
    }
    c
}

/// Runs a command (lamp's, mostly) and asserts that it succeeded, with its stderr if not.
pub fn ok(c: &mut std::process::Command) -> std::process::Output {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A fresh, empty temporary folder for one test.
pub fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lamp-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs lamp and asserts a clean failure: non-zero exit, no panic, and a one-line error that
/// contains every needle.
pub fn fails<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S], needles: &[&str]) {
    let out = lamp().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "lamp {args:?} should fail; stderr: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "lamp {args:?} panicked: {err}"
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("lamp: error:"))
        .unwrap_or_else(|| panic!("no error line for {args:?}: {err}"));
    for n in needles {
        assert!(
            line.contains(n),
            "lamp {args:?}: {line:?} should mention {n:?}"
        );
    }
}

/// Every metric × amplification × granularity.
pub fn loss_configs() -> Vec<lamp::model::LossConfig> {
    use lamp::model::{Amp, Granularity, LossConfig, Metric};
    let mut v = Vec::new();
    for metric in [Metric::Mae, Metric::Mse, Metric::Ssim] {
        for amp in [Amp::None, Amp::Lamp] {
            for granularity in [
                Granularity::Element,
                Granularity::Sample,
                Granularity::Batch,
            ] {
                v.push(LossConfig {
                    metric,
                    amp,
                    granularity,
                });
            }
        }
    }
    v
}

/// CRC-32 (IEEE), for hand-made PNG chunks and lamp's pipeline cache frame.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// 40 noisy 28x28 blobs in `dir`: a folder a model of one epoch trains on in seconds.
pub fn blobs(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut r = SplitMix64::new(5);
    for i in 0..40 {
        let (cx, cy) = (8.0 + 12.0 * r.next_f64(), 8.0 + 12.0 * r.next_f64());
        let img = image::GrayImage::from_fn(28, 28, |x, y| {
            let d = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
            image::Luma([((1.0 - d / 14.0).clamp(0.0, 1.0) * 220.0 + 20.0 * r.next_f64()) as u8])
        });
        img.save(dir.join(format!("{i:02}.png"))).unwrap();
    }
}

/// The files under `dir` (relative paths, sorted) with their bytes.
pub fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().into(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}
