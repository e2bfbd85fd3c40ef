//! `lamp export MODEL --format onnx --out model.onnx`: a trained model for other runtimes.

use clap::{Args, ValueEnum};
use lamp::detect::{Checkpoint, Patches, ScoreConfig};
use lamp::error::{Error, Result};
use lamp::export::onnx;
use lamp::fsutil::{self, path_text};
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// Checkpoint written by `lamp train`.
    model: PathBuf,
    /// Format to write.
    #[arg(long, value_enum, default_value_t = Format::Onnx)]
    format: Format,
    /// Where to write the exported model.
    #[arg(short, long)]
    out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// ONNX (opset 17): input `image`, outputs `reconstruction` and `score`.
    Onnx,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let ck = Checkpoint::load(&a.model, None)?;
    // Writing over the checkpoint would lose the model the export came from.
    if let (Ok(m), Ok(o)) = (a.model.canonicalize(), a.out.canonicalize()) {
        if m == o {
            return Err(Error::file(
                &a.out,
                "is the checkpoint being exported; write the export elsewhere",
            ));
        }
    }
    super::args::check_writable(&a.out)?;
    let Format::Onnx = a.format;
    let model = onnx::model(&ck, &a.model)?;
    fsutil::remove_stale_temps(&a.out);
    fsutil::write_atomic(&a.out, &onnx::to_bytes(&model))?;
    let [c, s, _] = ck.arch.input_shape();
    let score: ScoreConfig = ck.meta("score").unwrap_or_default();
    outln!(
        "wrote {} (ONNX opset {}): input `{}` float32 [N, {c}, {s}, {s}] in [0, 1]; outputs `{}` \
         [N, {c}, {s}, {s}] and `{}` [N] ({}); threshold in metadata `lamp.threshold`",
        path_text(&a.out),
        onnx::OPSET,
        onnx::INPUT,
        onnx::RECONSTRUCTION,
        onnx::SCORE,
        score.aggregate.describe()
    )?;
    if let Some(p) = ck.meta::<Patches>("patch") {
        lamp::sayln!(
            "lamp: note: {} was trained on {s}x{s} patches of {}x{} images; the ONNX graph \
             scores one {s}x{s} window, so its `score` is a window's score, not an image's",
            path_text(&a.model),
            p.image,
            p.image
        );
    }
    Ok(())
}
