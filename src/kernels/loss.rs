//! Launches of loss.wgsl: the fused amplified loss, its per-sample plain errors and statistics,
//! and its gradient with respect to the last layer's pre-sigmoid output.

use super::prelude::wgsl;
use super::Dispatch;
use crate::device::{Constants, Device, Group1, ShaderSource};
use crate::error::{Error, Result};
use crate::model::{ssim, Act, LossConfig, Metric};

pub static LOSS: ShaderSource = ShaderSource {
    files: "shaders/loss.wgsl",
    text: || wgsl(&[include_str!("../../shaders/loss.wgsl")]),
    group1: Group1::None,
};

/// Mirror of loss.wgsl's overrides. Offsets are in f32 elements of acts.
#[derive(Clone, Debug)]
pub struct LossSpec {
    pub loss: LossConfig,
    pub batch: u32,
    /// The stats buffer's batch capacity.
    pub stats_batch: u32,
    /// Sample shape [C, H, W].
    pub shape: [u32; 3],
    pub x_off: u32,
    pub y_off: u32,
    pub dz_off: u32,
    pub scratch_off: u32,
    pub grad: bool,
    /// The activation of the layer that produced y: loss.wgsl fuses a sigmoid's backward into
    /// dz, so anything else is refused.
    pub output_act: Act,
}

impl LossSpec {
    /// f32 elements of SSIM scratch needed per sample.
    pub fn scratch_per_sample(shape: [u32; 3]) -> usize {
        let [c, h, w] = shape.map(|v| v as usize);
        5 * c * ssim::map_side(h) * ssim::map_side(w)
    }
    pub fn constants(&self) -> Constants {
        vec![
            ("METRIC", self.loss.metric as u32 as f64),
            ("AMP", self.loss.amp as u32 as f64),
            ("GRAN", self.loss.granularity as u32 as f64),
            ("BATCH", self.batch as f64),
            ("STATS_B", self.stats_batch as f64),
            ("C", self.shape[0] as f64),
            ("H", self.shape[1] as f64),
            ("W", self.shape[2] as f64),
            ("X_OFF", self.x_off as f64),
            ("Y_OFF", self.y_off as f64),
            ("DZ_OFF", self.dz_off as f64),
            ("S_OFF", self.scratch_off as f64),
            ("GRAD", if self.grad { 1.0 } else { 0.0 }),
            ("WG", self.lanes() as f64),
        ]
    }
    /// Invocations per sample (loss.wgsl `WG`): 64 for small images, whose few terms per lane
    /// leave lavapipe mostly switching SIMD groups at the tree's barriers (fmnist-ae's 784
    /// elements: loss_elements 0.45 ms against 1.40 with 256), 256 for large ones (conv-ae
    /// 128's 49,152: 3.3–3.7 ms against 4.7–4.9 with 64). Measured at those two sizes only.
    fn lanes(&self) -> u32 {
        if self.shape.iter().product::<u32>() <= 4096 {
            64
        } else {
            256
        }
    }
    /// loss_elements, then (when a gradient or the batch loss is wanted) loss_finalize.
    pub fn dispatches(&self, dev: &Device) -> Result<Vec<Dispatch>> {
        if self.output_act != Act::Sigmoid {
            return Err(Error::invalid(format!(
                "the loss kernel fuses a sigmoid's backward, but the model's last layer ends in {:?}",
                self.output_act
            )));
        }
        let w = ssim::WINDOW as u32;
        if self.loss.metric == Metric::Ssim && (self.shape[1] < w || self.shape[2] < w) {
            return Err(Error::invalid(format!(
                "ssim needs images of at least {w}x{w} pixels, got {}x{}",
                self.shape[1], self.shape[2]
            )));
        }
        let c = self.constants();
        let launch = |entry: &'static str, groups: u32| -> Result<Dispatch> {
            Ok(Dispatch {
                label: entry.into(),
                pipeline: dev.pipeline(&LOSS, entry, &c)?,
                group1: None,
                groups: [groups, 1, 1],
                flops: 0.0,
            })
        };
        Ok(vec![
            launch("loss_elements", self.batch)?,
            launch("loss_finalize", if self.grad { self.batch } else { 1 })?,
        ])
    }
}
