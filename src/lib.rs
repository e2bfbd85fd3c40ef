//! lamp: a GPU compute-shader engine for unsupervised visual anomaly detection with LAMP (loss
//! amplification). Hand-written WGSL kernels (`shaders/`) do the numeric work; this crate is the
//! host: device setup, the kernel registry, the model's layers, the step scheduler, data loading
//! and checkpoints. See DESIGN.md for the method and the reference model.

pub mod engine;
pub mod error;
pub mod gpu;
pub mod kernels;
pub mod layers;
pub mod model;
pub mod reference;

pub use error::{Error, Result};
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod eval;
pub mod experiment;
pub mod fit;
pub mod fsutil;
pub mod landscape;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod score;
pub mod train;
