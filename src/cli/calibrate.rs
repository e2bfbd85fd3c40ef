//! `lamp calibrate`: a trained model's threshold set anew from normal images, without training.

use super::args::choice;
use clap::Args;
use lamp::data::{self, inputs::expand_inputs};
use lamp::detect::{Checkpoint, Detector, ThresholdMethod, SCORE_BATCH};
use lamp::device::Device;
use lamp::error::Result;
use lamp::model::Choice;
use std::path::PathBuf;

#[derive(Args)]
pub struct CalibrateArgs {
    /// Checkpoint written by `lamp train`.
    model: PathBuf,
    /// Normal images: files, folders of images (with their subfolders), or glob patterns (*, ?,
    /// [...], ** in any part of the path).
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Where to write the recalibrated checkpoint [default: over MODEL].
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// How the threshold is set [default: as the model was calibrated].
    #[arg(long, value_parser = choice::<ThresholdMethod>())]
    threshold: Option<ThresholdMethod>,
    /// Expected fraction of anomalies among the images (quantile method) [default: the model's].
    #[arg(long)]
    contamination: Option<f64>,
    /// k of the sigma method [default: the model's].
    #[arg(long)]
    sigma_k: Option<f64>,
}

pub fn run(adapter: Option<&str>, a: CalibrateArgs) -> Result<()> {
    let ck = Checkpoint::load(&a.model, None)?;
    let (_, old) = ck.trained(&a.model)?;
    let method = a.threshold.unwrap_or(old.method);
    let contamination = a.contamination.unwrap_or(old.contamination);
    let k = a.sigma_k.unwrap_or(old.k);
    lamp::detect::Calibration::check(method, contamination, k)?;
    let paths = expand_inputs(&a.inputs)?;
    let arch = ck.arch.clone();
    let images = data::load_images(&paths, arch.channels, ck.image_size())?;
    let device = Device::shared(adapter)?;
    let mut det = Detector::from_checkpoint(device, ck, &a.model, SCORE_BATCH)?;
    let source = format!("recalibrated on {}", a.inputs.join(" "));
    det.recalibrate(&images.samples, method, contamination, k, &source)?;
    let out = a.out.as_ref().unwrap_or(&a.model);
    det.save(out)?;
    let c = det.calibration();
    eprintln!(
        "lamp: threshold {:.6} (was {:.6}; {} from {}); wrote {}",
        c.threshold,
        old.threshold,
        c.method.name(),
        super::count(c.count as u64, "image"),
        out.display()
    );
    for w in det.warnings() {
        eprintln!(
            "lamp: warning: {}",
            super::message(&lamp::Error::Invalid(w))
        );
    }
    Ok(())
}
