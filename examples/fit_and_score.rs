//! lamp as a library: train a detector on normal images, save it, load it back and score images,
//! with no command line involved. Here the normal images are trousers from the Fashion-MNIST
//! subset built into lamp, and the test set holds 100 trousers and 100 other garments:
//!
//!     cargo run --release --example fit_and_score [-- OUT_DIR]

use lamp::data::demo;
use lamp::detect::metrics::auroc;
use lamp::{Detector, FitOptions, TrainConfig};
use std::path::PathBuf;

fn main() -> lamp::Result<()> {
    // Mesa's window-system code complains on stderr when this is unset; nothing here opens a window.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let out = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, PathBuf::from);
    lamp::fsutil::ensure_dir(&out)?;

    // Train on normal images only (class 1, trousers), and calibrate the threshold on 10% of them.
    let normal = demo::training_set(1)?;
    let options = FitOptions {
        train: TrainConfig {
            epochs: 4,
            batch: 32,
            lr: 2e-3,
            ..Default::default()
        },
        ..Default::default()
    };
    let detector = lamp::fit(&normal, options)?;
    let model = out.join("trousers.safetensors");
    detector.save(&model)?;
    println!(
        "trained on {} normal images (10% held out for the threshold); threshold {:.5}; saved {}",
        normal.len(),
        detector.calibration().threshold,
        model.display()
    );

    // Load it back and score the test set: a verdict per image, and how well scores separate.
    let mut detector = Detector::load(&model)?;
    let test = demo::test_set(1)?;
    let scores = detector.score_samples(&test.data.samples, false)?;
    let flagged = |normal: bool| {
        (0..scores.len())
            .filter(|&i| test.anomalous[i] != normal && scores[i].anomalous)
            .count()
    };
    let raw: Vec<f32> = scores.iter().map(|s| s.score).collect();
    println!(
        "image AUROC {:.4}; flagged {} of {} anomalies and {} of {} normal images",
        auroc(&raw, &test.anomalous).unwrap_or(f64::NAN),
        flagged(false),
        test.anomalous.iter().filter(|&&a| a).count(),
        flagged(true),
        test.anomalous.iter().filter(|&&a| !a).count(),
    );

    // One image with its anomaly map (28×28, smoothed).
    let one = detector.score_samples(test.data.sample(0), true)?.remove(0);
    let map = one.map.unwrap_or_default();
    let peak = map.iter().copied().fold(0.0, f32::max);
    println!(
        "{}: score {:.5} ({}), map peak {peak:.4}",
        test.data.names[0],
        one.score,
        if one.anomalous { "anomalous" } else { "normal" }
    );
    Ok(())
}
