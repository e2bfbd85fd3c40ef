//! Launches of bias_grad.wgsl: `db[c] = sum over (n, s) of dz[n, c, s]`, also the sum of split-K's
//! partial weight gradients.

use super::pack::Layout;
use super::prelude::wgsl;
use super::split_k::{SplitK, SPLIT_K_MIN_TERMS};
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
    /// Split: the samples cut into this many parts whose sums go to `partial_off` in acts and
    /// are then added up (1 = no split; see `with_split`).
    pub parts: u32,
    pub partial_off: u32,
    /// dz's layout (grouped `[batch, channels/4, spatial, 4]`, or a flattened grouped tensor,
    /// whose bias follows PyTorch's order).
    pub layout: Layout,
}

impl BiasGradSpec {
    /// `db[c]` over `dz` [batch, channels, spatial], whole.
    pub fn new(batch: u32, channels: u32, spatial: u32, dz_off: u32, db_off: u32) -> Self {
        BiasGradSpec {
            batch,
            channels,
            spatial,
            dz_off,
            db_off,
            parts: 1,
            partial_off: 0,
            layout: Layout::Plain,
        }
    }
    /// One invocation per channel where the sums are short (see bias_grad.wgsl).
    fn per_lane(&self) -> bool {
        self.batch * self.spatial <= 2048
    }
    /// A workgroup per quad of channels of a grouped dz, read as vec4s (bias_grad.wgsl `quads`).
    fn by_quads(&self) -> bool {
        !self.per_lane() && self.layout.grouped() && self.dz_off.is_multiple_of(4)
    }
    /// Split into parts of the samples where `split` is the GPU policy and the launch would
    /// have fewer workgroups than its target (partial sums at `scratch_off` in acts).
    pub fn with_split(self, scratch_off: u32, split: SplitK) -> Self {
        let SplitK::Occupancy { target } = split else {
            return self;
        };
        if self.per_lane() {
            return self;
        }
        let by_length = self.batch * self.spatial / SPLIT_K_MIN_TERMS;
        let by_scratch = (split.scratch() as u64 / self.channels.max(1) as u64) as u32;
        // Workgroups per part: one per channel, or per quad of channels (`by_quads`).
        let groups = if self.by_quads() {
            self.channels / 4
        } else {
            self.channels
        };
        let parts = (target / groups.max(1))
            .min(self.batch)
            .min(by_length)
            .min(by_scratch);
        if parts < 2 {
            return self;
        }
        BiasGradSpec {
            parts,
            partial_off: scratch_off,
            ..self
        }
    }
    pub fn constants(&self) -> Constants {
        vec![
            ("BATCH", self.batch as f64),
            ("C", self.channels as f64),
            ("S", self.spatial as f64),
            ("DZ_OFF", self.dz_off as f64),
            ("DB_OFF", self.db_off as f64),
            ("PER_LANE", if self.per_lane() { 1.0 } else { 0.0 }),
            ("PARTS", self.parts.max(1) as f64),
            ("P_OFF", self.partial_off as f64),
            ("GROUPED", if self.layout.grouped() { 1.0 } else { 0.0 }),
            ("FLAT_HW", self.layout.flat_hw() as f64),
        ]
    }
    /// The launches: the sums, and with a split the sum of the parts.
    pub fn dispatches(&self, dev: &Device, label: &str) -> Result<Vec<Dispatch>> {
        let mut d = vec![self.dispatch(dev, label)?];
        if self.parts > 1 {
            let sum = BiasGradSpec {
                // The parts are plain [PARTS, channels]; a flattened layer's bias keeps its order.
                layout: match self.layout {
                    Layout::Flat { .. } => self.layout,
                    _ => Layout::Plain,
                },
                ..BiasGradSpec::new(self.parts, self.channels, 1, self.partial_off, self.db_off)
            };
            d.push(sum.dispatch(dev, format!("{label} (sum of parts)"))?);
        }
        Ok(d)
    }
    /// The first launch alone (a split one also needs its sum: `dispatches`).
    pub fn dispatch(&self, dev: &Device, label: impl Into<String>) -> Result<Dispatch> {
        Ok(Dispatch {
            label: label.into(),
            pipeline: dev.pipeline(
                &BIAS_GRAD,
                if self.by_quads() { "quads" } else { "main" },
                &self.constants(),
            )?,
            group1: None,
            groups: if self.per_lane() {
                fold(self.channels.div_ceil(64), 1)
            } else if self.by_quads() {
                fold(self.channels / 4 * self.parts.max(1), 1)
            } else {
                fold(self.channels * self.parts.max(1), 1)
            },
            flops: 0.0,
        })
    }
}
