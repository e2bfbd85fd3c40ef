//! Launches of gemm.wgsl, one tiled implicit GEMM for conv2d, conv-transpose2d and linear layers,
//! forward and backward: `GemmSpec` mirrors the shader's overrides field by field, and picks the
//! tile shape and the core (how A's values reach an invocation) for the device.

use super::bias_grad::BiasGradSpec;
pub use super::gemm_core::{
    GemmCore, GEMM_ENV, GEMM_PLAIN, GEMM_SUBGROUP, GEMM_SUBGROUP_WIDE, GEMM_TILED,
};
use super::pack::{reads_by_four, Layout, Packed};
use super::prelude::GemmMode;
use super::split_k::{SplitK, SPLIT_K_MAX_OUTPUTS, SPLIT_K_MIN_TERMS, SPLIT_K_PARTS};
use super::{fold, Dispatch};
use crate::device::{Constants, Device, ShaderSource};
use crate::error::Result;
use crate::model::Act;

/// Mirror of gemm.wgsl's overrides. Offsets are in f32 elements of their arena.
#[derive(Clone, Debug)]
pub struct GemmSpec {
    pub mode: GemmMode,
    pub batch: u32,
    /// G, the tensor read through the window: [C, H, W].
    pub g: [u32; 3],
    /// Q, the plain tensor: [C, H, W].
    pub q: [u32; 3],
    pub kernel: [u32; 2],
    pub stride: u32,
    pub pad: u32,
    pub w_off: u32,
    pub g_off: u32,
    pub q_off: u32,
    pub bias_off: Option<u32>,
    pub act: Act,
    /// Backward epilogue: multiply by act'(stored output at this offset).
    pub backward_h_off: Option<u32>,
    /// Split-K: the reduction is cut into this many parts whose partial sums go to
    /// `partial_off` in acts and are then added up (1 = no split; see `with_split_k`).
    pub k_split: u32,
    /// Of those parts, how many one workgroup runs side by side in its invocations (gemm.wgsl
    /// `KL`; 1 = one part per workgroup). Set by `with_split_k` for few-column weight gradients;
    /// the tiled core ignores it (`kl`) and runs the same parts one per workgroup.
    pub lane_parts: u32,
    pub partial_off: u32,
    /// Layouts of G and Q (and H) (gemm.wgsl).
    pub g_layout: Layout,
    pub q_layout: Layout,
    /// MODE 0/1: the weight packed for the vec4 path, where G reads four channels at a time.
    pub packed: Option<Packed>,
    /// MODE 1: this launch computes one output phase only (py * stride + px); `dispatches`
    /// splits a conv-T whose phases have different numbers of taps into one launch per phase.
    pub phase: Option<u32>,
}

/// Columns per invocation (gemm.wgsl `TN`).
const TN: u32 = 4;
/// Rows per invocation where parts of a few-column weight gradient run side by side.
const LANE_ROWS: u32 = 16;
/// About this many parts for such a gradient (fewer where its rows (n, y) are fewer).
const LANE_SPLIT_PARTS: u32 = 64;

impl GemmSpec {
    /// The GEMM split into parts of its reduction as `split` says, with partial sums at
    /// `scratch_off` in acts (`split.scratch()` floats); `core` decides the tiles. A weight
    /// gradient splits its rows (n, y), a linear layer (1x1 outputs, forward or input gradient)
    /// its channels. Launches not worth splitting come back unchanged.
    pub fn with_split_k(self, scratch_off: u32, split: SplitK, core: GemmCore) -> GemmSpec {
        let outputs = self.m() * self.n();
        let weight_grad = self.mode == GemmMode::WeightGrad;
        let one_by_one = self.q[1] == 1 && self.q[2] == 1 && self.stride == 1;
        if let (SplitK::FewOutputs, Some((_, kl))) = (split, self.lane_geometry()) {
            // Few columns: the parts side by side in each workgroup, KL to a workgroup, about
            // LANE_SPLIT_PARTS in all, each a run of the rows (n, y) (the shader's runs are
            // ceil(rows / parts) long, so fewer than KL parts are left empty). Every core takes
            // the same parts, so that they agree bit for bit; the tiled core one per workgroup.
            // Fewer than two rows a part: not worth a second launch.
            let rows = self.batch * self.q[1];
            let per_part = rows.div_ceil(LANE_SPLIT_PARTS.min(rows).max(1));
            let parts = rows.div_ceil(per_part).next_multiple_of(kl);
            let fits = (outputs as u64) * (parts as u64) <= split.scratch() as u64;
            if rows >= 2 * kl && fits {
                return GemmSpec {
                    k_split: parts,
                    lane_parts: kl,
                    partial_off: scratch_off,
                    ..self
                };
            }
        }
        let parts = match split {
            SplitK::FewOutputs
                if weight_grad && outputs <= SPLIT_K_MAX_OUTPUTS && self.batch >= 4 =>
            {
                (self.batch / 2).min(SPLIT_K_PARTS)
            }
            SplitK::FewOutputs => 1,
            SplitK::Occupancy { target } if weight_grad || one_by_one => {
                let [x, y, z] = self.workgroups(core);
                // The units a part takes whole: rows (n, y) of a weight gradient, channels.
                let units = if weight_grad {
                    self.batch * self.q[1]
                } else {
                    self.g[0]
                };
                let by_length = self.k() / SPLIT_K_MIN_TERMS;
                let by_scratch = (split.scratch() as u64 / outputs.max(1) as u64) as u32;
                target
                    .div_ceil((x * y * z).max(1))
                    .min(by_length)
                    .min(by_scratch)
                    .min(units)
            }
            SplitK::Occupancy { .. } => 1,
        };
        if parts < 2 {
            return self;
        }
        GemmSpec {
            k_split: parts,
            partial_off: scratch_off,
            ..self
        }
    }
    pub fn m(&self) -> u32 {
        self.q[0]
    }
    /// A weight gradient with few columns (at most 64: the 1- and 3-channel layers' 9 to 48)
    /// leaves most column lanes of a tile idle and its one tile a core idle. There each part of
    /// the split reduction takes a small block of the invocations: 16 rows by as many column
    /// lanes as the columns need (a power of two), and a workgroup runs 64 / (LM x column lanes)
    /// parts side by side. (LM, KL), or None where fewer than 2 parts would share a workgroup.
    fn lane_geometry(&self) -> Option<(u32, u32)> {
        if self.mode != GemmMode::WeightGrad {
            return None;
        }
        let column_lanes = self.n().div_ceil(TN).next_power_of_two();
        let lm = self.m().div_ceil(LANE_ROWS).next_power_of_two();
        if column_lanes > 16 || lm * column_lanes > 32 {
            return None;
        }
        Some((lm, 64 / (lm * column_lanes)))
    }
    /// Columns of the GEMM (all phases together for MODE conv-T).
    pub fn n(&self) -> u32 {
        match self.mode {
            GemmMode::WeightGrad => self.g[0] * self.kernel[0] * self.kernel[1],
            _ => self.batch * self.q[1] * self.q[2],
        }
    }
    /// Reduction length (for conv-T, as if every tap were visited).
    pub fn k(&self) -> u32 {
        match self.mode {
            GemmMode::WeightGrad => self.batch * self.q[1] * self.q[2],
            _ => self.g[0] * self.kernel[0] * self.kernel[1],
        }
    }
    /// Multiply-adds the layer needs, counted as 2 FLOPs each (for conv-T only the taps that
    /// land, i.e. what the phase decomposition computes).
    pub fn flops(&self) -> f64 {
        if let (GemmMode::ConvTranspose, Some(p)) = (self.mode, self.phase) {
            let s = self.stride;
            // The taps k0, k0 + s, ... below K of a phase whose first is (phase + pad) mod s.
            let taps = |k: u32, ph: u32| k.saturating_sub((ph + self.pad) % s).div_ceil(s);
            let cols = self.batch * self.q[1].div_ceil(s) * self.q[2].div_ceil(s);
            let taps = taps(self.kernel[0], p / s) * taps(self.kernel[1], p % s);
            return 2.0 * self.m() as f64 * cols as f64 * (self.g[0] * taps) as f64;
        }
        let s2 = if self.mode == GemmMode::ConvTranspose {
            (self.stride * self.stride) as f64
        } else {
            1.0
        };
        2.0 * self.m() as f64 * self.n() as f64 * self.k() as f64 / s2
    }
    /// A conv-T whose phases have different numbers of taps (STRIDE does not divide the kernel:
    /// a k3 s2 conv's input gradient), launched whole, runs every phase's missing taps on
    /// lavapipe, under a mask; `dispatches` launches each phase alone there instead, its taps
    /// constants (−14% on those launches for three more dispatches each: BENCHMARKS.md). Not on
    /// GPUs, whose workgroups branch around the missing taps and whose dispatches cost more.
    fn uneven_phases(&self, dev: &Device) -> bool {
        let s = self.stride;
        dev.info.device_type == wgpu::DeviceType::Cpu
            && self.mode == GemmMode::ConvTranspose
            && s > 1
            && self.phase.is_none()
            && self.k_split <= 1
            && !(self.kernel[0].is_multiple_of(s) && self.kernel[1].is_multiple_of(s))
    }
    /// Parts side by side in a workgroup for this core (gemm.wgsl `KL`): the tiled core stages
    /// one part per workgroup, so it takes the same parts one at a time.
    fn kl(&self, core: GemmCore) -> u32 {
        if core == GemmCore::Tiled {
            1
        } else {
            self.lane_parts.max(1)
        }
    }
    /// Lanes along m and rows per invocation, so that small layers keep lanes busy.
    fn tile(&self, core: GemmCore) -> (u32, u32) {
        if self.kl(core) > 1 {
            if let Some((lm, _)) = self.lane_geometry() {
                return (lm, LANE_ROWS.min(self.m().next_power_of_two()));
            }
        }
        if core == GemmCore::Tiled {
            // 16 rows x 4 columns per invocation (64 FMAs per 20 reads of workgroup memory),
            // tiles of 64 x 64 where Q_C allows, wider and flatter below.
            return match self.m() {
                m if m >= 64 => (4, 16),
                m if m >= 32 => (2, 16),
                m if m >= 16 => (1, 16),
                m if m >= 8 => (1, 8),
                m => (1, m.max(1)),
            };
        }
        if let GemmCore::Subgroup {
            max_size,
            wide_rows,
        } = core
        {
            // Loads of A are cheap here, so 8 or more rows per invocation wherever Q_C allows
            // (BENCHMARKS.md, v5/v6). More pay for weight gradients and wide forward convolutions
            // (more FMAs per load of B); conv-T phases and input gradients too, once the
            // reduction is long and the columns many (v10: before the wide entry had a file of
            // its own, they lost a little with it).
            let m = self.m();
            let wide = match self.mode {
                // Few columns (the 1- and 3-channel layers: 9 to 48) leave most column lanes of
                // a wide block idle: 8 rows there (v11: their weight gradients −23 to −42%).
                GemmMode::WeightGrad => self.n() >= 64,
                // On CPU devices (32 rows) any GEMM of many columns: the 3- and 1-channel
                // layers' forward passes and input gradients too, whose reductions are short
                // (9 to 48 terms; conv-ae 128's dec5 input gradient −29%, enc1 forward −16%).
                GemmMode::Conv if self.backward_h_off.is_none() => {
                    m >= 64 || (wide_rows >= 32 && self.n() >= 512)
                }
                _ if wide_rows >= 32 => self.n() >= 512,
                _ => self.k() >= 64 && self.n() >= 512,
            };
            // LM: a power of two, so that 64/LM column lanes split into whole subgroups, and at
            // most 64/max_size, so that a subgroup never spans two row groups.
            let lm_cap = (64 / max_size.max(1)).max(1);
            let lanes = |rows: u32| 1 << (m / rows).clamp(1, 8).min(lm_cap).ilog2();
            let pick = match m {
                // 32 rows lose where columns are few (a weight gradient of 288 columns: +13%).
                m if wide && wide_rows >= 32 && m >= 32 && self.n() >= 512 => (lanes(32), 32),
                m if wide && m >= 16 => (lanes(16), 16),
                m if m >= 8 => (lanes(8), 8),
                m => (1, m.max(1)),
            };
            // A wide block that makes the whole GEMM one workgroup leaves every core but one
            // idle (linear layers at small batches: 16 columns): 8 rows, if they make two.
            let narrow = (lanes(8), 8);
            if pick.1 > 8 && self.workgroup_count(pick) < 2 && self.workgroup_count(narrow) >= 2 {
                return narrow;
            }
            return pick;
        }
        // 8 rows per invocation pays off for wide GEMMs (measured: weight gradients and conv
        // layers with 64+ output channels); conv-T phases and narrow GEMMs do better with 4,
        // which keeps more workgroups (BENCHMARKS.md, v4).
        let (m, n) = (self.m(), self.n());
        let wide = n >= 128
            && match self.mode {
                GemmMode::WeightGrad => m >= 32,
                GemmMode::Conv => m >= 64,
                GemmMode::ConvTranspose => false,
            };
        match m {
            _ if wide => (if m >= 64 { 8 } else { 4 }, 8),
            m if m >= 32 => (8, 4),
            m if m >= 16 => (4, 4),
            m if m >= 8 => (2, 4),
            m if m >= 4 => (1, 4),
            m => (1, m.max(1)),
        }
    }
    /// The vec4 paths this launch takes (gemm.wgsl: VEC_K, VEC_ROWS, VEC_COLS), wherever its
    /// operands allow. The tiled core stages scalars: it takes VEC_K's order of the reduction
    /// (so that every core gives the same bits) but neither MODE 2 path, which change no order.
    /// VEC_ROWS only with 16 rows or more per invocation: with 8 a lane loads as often either
    /// way, and broadcasting vec4s cost more (measured: enc1's weight gradient +16%).
    pub fn vec_paths(&self, core: GemmCore) -> (bool, bool, bool) {
        let g4 = reads_by_four(self.g, self.g_layout) && self.g_off.is_multiple_of(4);
        let q4 = reads_by_four(self.q, self.q_layout) && self.q_off.is_multiple_of(4);
        let staged = core == GemmCore::Tiled;
        match self.mode {
            // Parts side by side load their own rows (the plain entry): four at a time pays
            // there from 4 rows on.
            GemmMode::WeightGrad => (
                false,
                !staged
                    && q4
                    && (self.tile(core).1 >= 16
                        || (self.kl(core) > 1 && self.tile(core).1.is_multiple_of(4))),
                !staged && g4,
            ),
            _ => (g4 && self.packed.is_some(), false, false),
        }
    }
    pub fn constants(&self, core: GemmCore) -> Constants {
        let (act, alpha) = (self.act.code() as u32 as f64, self.act.alpha() as f64);
        let (lm, tm) = self.tile(core);
        let (vec_k, vec_rows, vec_cols) = self.vec_paths(core);
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let packed = self.packed.unwrap_or(Packed {
            offset: 0,
            in_place: false,
        });
        vec![
            ("MODE", self.mode as u32 as f64),
            ("BATCH", self.batch as f64),
            ("G_C", self.g[0] as f64),
            ("G_H", self.g[1] as f64),
            ("G_W", self.g[2] as f64),
            ("Q_C", self.q[0] as f64),
            ("Q_H", self.q[1] as f64),
            ("Q_W", self.q[2] as f64),
            ("KH", self.kernel[0] as f64),
            ("KW", self.kernel[1] as f64),
            ("STRIDE", self.stride as f64),
            ("PAD", self.pad as f64),
            ("W_OFF", self.w_off as f64),
            ("G_OFF", self.g_off as f64),
            ("Q_OFF", self.q_off as f64),
            ("B_OFF", self.bias_off.unwrap_or(0) as f64),
            ("HAS_BIAS", if self.bias_off.is_some() { 1.0 } else { 0.0 }),
            ("ACT", act),
            ("ALPHA", alpha),
            (
                "BACKWARD",
                if self.backward_h_off.is_some() {
                    1.0
                } else {
                    0.0
                },
            ),
            ("H_OFF", self.backward_h_off.unwrap_or(0) as f64),
            ("LM", lm as f64),
            ("TM", tm as f64),
            ("KSPLIT", self.k_split.max(1) as f64),
            ("KL", self.kl(core) as f64),
            ("P_OFF", self.partial_off as f64),
            ("G_GROUPED", flag(self.g_layout.grouped())),
            ("Q_GROUPED", flag(self.q_layout.grouped())),
            ("G_FLAT_HW", self.g_layout.flat_hw() as f64),
            ("Q_FLAT_HW", self.q_layout.flat_hw() as f64),
            ("VEC_K", flag(vec_k)),
            ("A4_OFF", packed.offset as f64),
            ("A4_IN_PLACE", flag(packed.in_place)),
            ("VEC_ROWS", flag(vec_rows)),
            ("VEC_COLS", flag(vec_cols)),
            ("PHASE_SPLIT", flag(self.phase.is_some())),
            ("PHASE", self.phase.unwrap_or(0) as f64),
        ]
    }
    /// Workgroup counts: column tiles (times the STRIDE² phases for conv-T) and row tiles.
    pub fn workgroups(&self, core: GemmCore) -> [u32; 3] {
        let (col_tiles, row_tiles) = self.tiles(self.tile(core), self.kl(core));
        fold(col_tiles, row_tiles)
    }
    /// Workgroups of a tile with one part per workgroup (the subgroup core's choice of rows).
    fn workgroup_count(&self, tile: (u32, u32)) -> u32 {
        let (col_tiles, row_tiles) = self.tiles(tile, 1);
        col_tiles * row_tiles
    }
    /// Column tiles (with split-K's parts, KL to a workgroup, and conv-T's phases) and row tiles
    /// of a (LM, TM) tile.
    fn tiles(&self, (lm, tm): (u32, u32), kl: u32) -> (u32, u32) {
        let cols_per_tile = TN * (64 / (lm * kl));
        let col_tiles = match self.mode {
            GemmMode::ConvTranspose => {
                let s = self.stride;
                let per_phase = self.batch * self.q[1].div_ceil(s) * self.q[2].div_ceil(s);
                let phases = if self.phase.is_some() { 1 } else { s * s };
                per_phase.div_ceil(cols_per_tile) * phases
            }
            _ => self.n().div_ceil(cols_per_tile),
        } * self.k_split.max(1).div_ceil(kl);
        (col_tiles, self.m().div_ceil(lm * tm))
    }
    /// The GEMM launch with the device's core. A split-K spec also needs its sum of parts:
    /// launch those through `dispatches`.
    pub fn dispatch(&self, dev: &Device, label: impl Into<String>) -> Result<Dispatch> {
        debug_assert!(
            self.k_split <= 1,
            "split-K launches go through `dispatches`"
        );
        self.dispatch_with(dev, GemmCore::best(dev), label)
    }
    /// The launches: the GEMM, and with split-K the sum of its parts (into `grads` for a weight
    /// gradient, through the epilogue otherwise).
    pub fn dispatches(&self, dev: &Device, label: &str) -> Result<Vec<Dispatch>> {
        self.dispatches_with(dev, GemmCore::best(dev), label)
    }
    pub fn dispatches_with(
        &self,
        dev: &Device,
        core: GemmCore,
        label: &str,
    ) -> Result<Vec<Dispatch>> {
        if self.uneven_phases(dev) {
            let s = self.stride;
            return (0..s * s)
                .map(|p| {
                    let one = GemmSpec {
                        phase: Some(p),
                        ..self.clone()
                    };
                    one.dispatch_with(dev, core, format!("{label} (phase {},{})", p / s, p % s))
                })
                .collect();
        }
        let mut d = vec![self.dispatch_with(dev, core, label)?];
        if self.k_split > 1 && self.mode != GemmMode::WeightGrad {
            d.push(Dispatch {
                label: format!("{label} (sum of parts)"),
                pipeline: dev.pipeline(&GEMM_PLAIN, "sum_parts", &self.constants(core))?,
                group1: None,
                groups: fold((self.m() * self.n()).div_ceil(64), 1),
                flops: 0.0,
            });
        } else if self.k_split > 1 {
            // The parts [k_split, outputs] summed per output: bias_grad's reduction exactly.
            let sum = BiasGradSpec::new(
                self.k_split,
                self.m() * self.n(),
                1,
                self.partial_off,
                self.w_off,
            );
            d.push(sum.dispatch(dev, format!("{label} (sum of parts)"))?);
        }
        Ok(d)
    }
    /// The GEMM launch alone with a given core (tests check each core the device has).
    /// The core's shader for this GEMM: the wide subgroup entry only where it takes 32 rows.
    fn shader(&self, core: GemmCore) -> &'static ShaderSource {
        match core {
            // A subgroup's lanes would hold different parts and rows: nothing to broadcast.
            GemmCore::Subgroup { .. } if self.kl(core) > 1 => &GEMM_PLAIN,
            GemmCore::Subgroup { .. } if self.tile(core).1 > 16 => &GEMM_SUBGROUP_WIDE,
            other => other.shader(),
        }
    }
    pub fn dispatch_with(
        &self,
        dev: &Device,
        core: GemmCore,
        label: impl Into<String>,
    ) -> Result<Dispatch> {
        let flat = self.g_layout.flat_hw() > 0 || self.q_layout.flat_hw() > 0;
        if flat && self.mode != GemmMode::WeightGrad && !self.vec_paths(core).0 {
            // Only the packed weights (and the tiled core) carry the flattening's order.
            return Err(crate::error::Error::invalid(format!(
                "{}: a flattened grouped tensor needs its packed weight (kernels::pack)",
                label.into()
            )));
        }
        Ok(Dispatch {
            label: label.into(),
            pipeline: dev.pipeline(self.shader(core), "main", &self.constants(core))?,
            group1: None,
            groups: self.workgroups(core),
            flops: self.flops(),
        })
    }
}
