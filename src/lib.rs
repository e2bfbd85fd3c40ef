//! lamp: a GPU compute-shader engine for unsupervised visual anomaly detection with LAMP (loss
//! amplification). Hand-written WGSL kernels (`shaders/`) run the autoencoder's forward and
//! backward passes, the fused amplified loss and the optimizer; this crate is the host that
//! schedules them. The method, the models and the metrics are defined in docs/design.md.
//!
//! # The map
//!
//! The data path, image → batch → forward → loss → backward → optimizer → score, walks forward
//! through the modules; each imports only the ones above it in this list (tests/architecture.rs
//! checks):
//!
//! | module | holds |
//! |---|---|
//! | [`error`], [`fsutil`], [`rng`] | the error type, atomic writes, the seeded generator |
//! | [`model`] | architectures, layers, the loss vocabulary, SSIM, optimizers; the f64 reference |
//! | [`data`] | data sets: images and folders, MVTec AD trees, Fashion-MNIST, the built-in demo set |
//! | [`device`] | the adapter, limits, and the shader registry (layouts, modules, pipelines) |
//! | [`kernels`] | one launcher per shader family, mirroring its overrides; the WGSL prelude |
//! | [`engine`] | arenas, layouts, step plans, the training set on the device, statistics |
//! | [`detect`] | training and calibration, checkpoints, scoring and maps, evaluation, metrics |
//! | [`render`] | charts, colour maps, panels, the evaluation report |
//! | [`export`] | a trained model as an ONNX graph (network and score) |
//! | [`study`] | the LAMP experiment and its report, loss landscapes, benchmarks |
//!
//! The `lamp` binary adds `src/cli/` (one small function per subcommand) on top.
//!
//! A layer's maths is in [`model::reference`] (plain f64 loops), its kernel in `shaders/gemm.wgsl`
//! with its launcher in [`kernels::gemm`] and [`kernels::layer`], its test in `tests/layers.rs`.
//!
//! # Use as a library
//!
//! Train on normal images, then score new ones (here the small Fashion-MNIST subset built into
//! lamp: trousers are normal, everything else anomalous):
//!
//! ```
//! # fn main() -> lamp::Result<()> {
//! use lamp::{data::demo, FitOptions, TrainConfig};
//!
//! let normal = demo::training_set(1)?; // trousers
//! let options = FitOptions {
//!     train: TrainConfig { epochs: 2, batch: 32, lr: 2e-3, ..Default::default() },
//!     ..Default::default()
//! };
//! let mut detector = lamp::fit(&normal, options)?;
//!
//! let test = demo::test_set(1)?;
//! let scores = detector.score_samples(&test.data.samples, false)?;
//! let auroc = lamp::detect::metrics::auroc(
//!     &scores.iter().map(|s| s.score).collect::<Vec<_>>(),
//!     &test.anomalous,
//! );
//! assert!(auroc.unwrap() > 0.6);
//! # Ok(())
//! # }
//! ```
//!
//! A saved model is loaded with [`Detector::load`] and scores an image with
//! [`Detector::score`] or [`Detector::score_file`].

/// `eprint!` that never panics: what lamp tells the user on standard error (progress, warnings)
/// is dropped when that stream cannot be written, because a reader that went away
/// (`lamp train ... 2>&1 | head -1`) must not abandon a training run or lose its model.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::say_to_stderr(format_args!($($t)*)) };
}
/// `eprintln!` that never panics (see `say!`).
#[macro_export]
macro_rules! sayln {
    () => { $crate::say_to_stderr(format_args!("\n")) };
    ($($t:tt)*) => { $crate::say_to_stderr(format_args!("{}\n", format_args!($($t)*))) };
}

/// Writes to standard error, ignoring failure (see `say!`).
#[doc(hidden)]
pub fn say_to_stderr(text: std::fmt::Arguments) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_fmt(text);
}

pub mod data;
pub mod detect;
pub mod device;
pub mod engine;
pub mod error;
pub mod export;
pub mod fsutil;
pub mod kernels;
pub mod model;
pub mod render;
pub mod rng;
pub mod study;

pub use detect::{fit, Detector, FitOptions, Score, TrainConfig};
pub use error::{Error, Result};
