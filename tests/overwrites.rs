//! Nothing a user has is lost to a slip of an option: an output named like one of the images
//! being read, or placed where its images would be read the next time, is refused before
//! anything is written; a calibration that could not be loaded again is never written; a
//! finished model resumed with no epoch left is left as it is.

mod common;
use common::*;
use std::path::Path;

/// `n` grey `size` px images of smooth waves and a little noise (different for each seed).
fn waves(dir: &Path, n: usize, size: u32, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut r = lamp::rng::SplitMix64::new(seed);
    for i in 0..n {
        let (p, q) = (r.next_f64() * 6.0, r.next_f64() * 6.0);
        let img = image::GrayImage::from_fn(size, size, |x, y| {
            let (x, y) = (x as f64 / size as f64, y as f64 / size as f64);
            let v = 0.5 + 0.3 * (6.0 * x + p).sin() * (5.0 * y + q).cos();
            image::Luma([((v + 0.05 * (r.next_f64() - 0.5)) * 255.0) as u8])
        });
        img.save(dir.join(format!("{i:03}.png"))).unwrap();
    }
}

fn run(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let o = lamp().args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn outputs_never_replace_inputs_and_models_stay_loadable() {
    let d = tmpdir("overwrites");
    let good = d.join("good");
    waves(&good, 12, 32, 1);
    let model = d.join("m.safetensors");
    let s = |p: &Path| p.as_os_str().to_owned();
    let (good_s, model_s) = (s(&good), s(&model));
    run(&[
        "train".as_ref(),
        &good_s,
        "--epochs".as_ref(),
        "2".as_ref(),
        "--min-steps".as_ref(),
        "0".as_ref(),
        "--quiet".as_ref(),
        "--out".as_ref(),
        &model_s,
    ]);
    let image = good.join("003.png");
    let image_bytes = std::fs::read(&image).unwrap();
    let model_bytes = std::fs::read(&model).unwrap();

    // A model written into its own training folder: its loss curve would be trained on next.
    let inside = good.join("m2.safetensors");
    fails(
        &[
            s(Path::new("train")),
            good_s.clone(),
            s(Path::new("--out")),
            s(&inside),
        ],
        &["m2.safetensors", "loss curve", "--out"],
    );
    assert!(!inside.exists() && !good.join("m2.loss.png").exists());
    // score -o and calibrate --out over an image being read.
    let score = |extra: &[&Path]| {
        let mut v = vec![s(Path::new("score")), model_s.clone(), good_s.clone()];
        v.extend(extra.iter().map(|p| s(p)));
        v
    };
    fails(
        &score(&[Path::new("-o"), &image]),
        &["003.png", "-o", "one of the images"],
    );
    // --maps inside a folder being scored: its maps would be scored the next time.
    let maps = good.join("maps");
    fails(
        &score(&[Path::new("--maps"), &maps]),
        &["maps", "--maps", "heat maps"],
    );
    assert!(!maps.exists());
    let calibrate = |extra: &[&str]| {
        let mut v = vec![s(Path::new("calibrate")), model_s.clone(), good_s.clone()];
        v.extend(extra.iter().map(|e| s(Path::new(e))));
        v
    };
    let mut over = calibrate(&["--out"]);
    over.push(s(&image));
    fails(&over, &["003.png", "--out", "one of the images"]);
    assert_eq!(std::fs::read(&image).unwrap(), image_bytes);
    // A negative k would set a negative threshold, which no lamp loads: refused, the model
    // (calibrate writes over it by default) unchanged.
    fails(
        &calibrate(&["--threshold", "sigma", "--sigma-k", "-5"]),
        &["--sigma-k", "-5"],
    );
    assert_eq!(std::fs::read(&model).unwrap(), model_bytes);

    // Resumed with no epoch left to train: nothing to do, and the model is not rewritten.
    let o = run(&[
        "train".as_ref(),
        &good_s,
        "--epochs".as_ref(),
        "2".as_ref(),
        "--min-steps".as_ref(),
        "0".as_ref(),
        "--resume".as_ref(),
        "--out".as_ref(),
        &model_s,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("already trained for 2 epochs"), "{err}");
    assert_eq!(std::fs::read(&model).unwrap(), model_bytes);

    // One image far from the model's size among ordinary ones: named in a warning.
    let mixed = d.join("mixed");
    waves(&mixed, 3, 32, 2);
    image::GrayImage::from_pixel(1, 1, image::Luma([128]))
        .save(mixed.join("tiny.png"))
        .unwrap();
    let o = run(&["score".as_ref(), &model_s, &s(&mixed)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("1 of the 4 images") && err.contains("tiny.png") && err.contains("1 px"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
