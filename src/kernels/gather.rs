//! Launches of gather.wgsl: a training batch assembled in the activation arena from the
//! device-resident data set, in the epoch's order, one dispatch per chunk of the data set.

use super::prelude::wgsl;
use super::{strided_groups, Dispatch};
use crate::device::{Constants, Device, Group1, ShaderSource};
use crate::error::Result;

pub static GATHER: ShaderSource = ShaderSource {
    files: "shaders/gather.wgsl",
    text: || wgsl(&[include_str!("../../shaders/gather.wgsl")]),
    group1: Group1::Data,
};

/// Mirror of gather.wgsl's overrides.
#[derive(Clone, Debug)]
pub struct GatherSpec {
    /// Elements per sample.
    pub per_sample: u32,
    pub batch: u32,
    /// Where the batch goes in acts.
    pub x_off: u32,
    /// The chunk's first sample and its length.
    pub chunk_start: u32,
    pub chunk_len: u32,
}

impl GatherSpec {
    pub fn constants(&self) -> Constants {
        vec![
            ("P", self.per_sample as f64),
            ("BATCH", self.batch as f64),
            ("X_OFF", self.x_off as f64),
            ("CHUNK_START", self.chunk_start as f64),
            ("CHUNK_LEN", self.chunk_len as f64),
        ]
    }
    /// The launch with the chunk's bind group (data chunk, epoch order).
    pub fn dispatch(&self, dev: &Device, chunk: wgpu::BindGroup) -> Result<Dispatch> {
        Ok(Dispatch {
            label: "gather".into(),
            pipeline: dev.pipeline(&GATHER, "main", &self.constants())?,
            group1: Some(chunk),
            groups: strided_groups(self.batch as u64 * self.per_sample as u64),
            flops: 0.0,
        })
    }
}
