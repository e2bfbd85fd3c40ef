//! Launches of bias_grad.wgsl: `db[c] = sum over (n, s) of dz[n, c, s]`, also the sum of split-K's
//! partial weight gradients.

use super::prelude::wgsl;
use super::{fold, Dispatch};
use crate::device::{Constants, Device, Group1, ShaderSource};
use crate::error::Result;

pub static BIAS_GRAD: ShaderSource = ShaderSource {
    files: "shaders/bias_grad.wgsl",
    text: || wgsl(&[include_str!("../../shaders/bias_grad.wgsl")]),
    group1: Group1::None,
};

/// Mirror of bias_grad.wgsl's overrides. Offsets are in f32 elements (dz in acts, db in grads).
#[derive(Clone, Debug)]
pub struct BiasGradSpec {
    pub batch: u32,
    pub channels: u32,
    pub spatial: u32,
    pub dz_off: u32,
    pub db_off: u32,
}

impl BiasGradSpec {
    /// One invocation per channel where the sums are short (see bias_grad.wgsl).
    fn per_lane(&self) -> bool {
        self.batch * self.spatial <= 2048
    }
    pub fn constants(&self) -> Constants {
        vec![
            ("BATCH", self.batch as f64),
            ("C", self.channels as f64),
            ("S", self.spatial as f64),
            ("DZ_OFF", self.dz_off as f64),
            ("DB_OFF", self.db_off as f64),
            ("PER_LANE", if self.per_lane() { 1.0 } else { 0.0 }),
        ]
    }
    pub fn dispatch(&self, dev: &Device, label: impl Into<String>) -> Result<Dispatch> {
        Ok(Dispatch {
            label: label.into(),
            pipeline: dev.pipeline(&BIAS_GRAD, "main", &self.constants())?,
            group1: None,
            groups: if self.per_lane() {
                fold(self.channels.div_ceil(64), 1)
            } else {
                fold(self.channels, 1)
            },
            flops: 0.0,
        })
    }
}
