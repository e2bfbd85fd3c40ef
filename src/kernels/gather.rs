//! Launches of gather.wgsl: a training batch assembled in the activation arena from the
//! device-resident data set, one dispatch per chunk of the data set. Each sample is a view of an
//! image: a window (the whole image, or a patch of it) under one of the 8 flips and rotations,
//! with, in training to remove defects, a synthetic defect pasted into the input.

use super::prelude::wgsl;
use super::{strided_groups, Dispatch};
use crate::device::{Constants, Device, Group1, ShaderSource};
use crate::error::Result;

pub static GATHER: ShaderSource = ShaderSource {
    files: "shaders/gather.wgsl",
    text: || wgsl(&[include_str!("../../shaders/gather.wgsl")]),
    group1: Group1::Data,
};

/// One sample of an epoch: `image`'s window at (`y0`, `x0`) seen through `op` (bit 0: mirror x,
/// bit 1: mirror y, bit 2: transpose), with the window's rectangle [`rows`) × [`cols`) (each
/// packed as first | end << 16; empty when first = end) set to `value` in the model's input.
/// Mirrors gather.wgsl's `views` entries (two vec4s).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct View {
    pub image: u32,
    pub y0: u32,
    pub x0: u32,
    pub op: u32,
    pub rows: u32,
    pub cols: u32,
    pub value: f32,
    pub pad: u32,
}

impl View {
    /// The whole image `image`, as it is.
    pub fn whole(image: u32) -> View {
        View {
            image,
            ..Default::default()
        }
    }
    /// Where the window's pixel (`oy`, `ox`) of a window `out` wide comes from in the image.
    pub fn source(&self, oy: u32, ox: u32, out: u32) -> (u32, u32) {
        let (mut y, mut x) = (oy, ox);
        if self.op & 4 != 0 {
            std::mem::swap(&mut y, &mut x);
        }
        if self.op & 1 != 0 {
            x = out - 1 - x;
        }
        if self.op & 2 != 0 {
            y = out - 1 - y;
        }
        (self.y0 + y, self.x0 + x)
    }
    /// A synthetic defect: the window's rows [y0, y1) × columns [x0, x1) set to `value`.
    pub fn with_defect(self, (y0, y1): (u32, u32), (x0, x1): (u32, u32), value: f32) -> View {
        View {
            rows: y0 | y1 << 16,
            cols: x0 | x1 << 16,
            value,
            ..self
        }
    }
    /// Whether the window's pixel (`oy`, `ox`) lies in the defect.
    pub fn in_defect(&self, oy: u32, ox: u32) -> bool {
        let inside = |v: u32, packed: u32| v >= (packed & 0xffff) && v < packed >> 16;
        inside(oy, self.rows) && inside(ox, self.cols)
    }
    /// The view of one `c`×`src`×`src` image as a `c`×`out`×`out` sample (the model's input,
    /// defect included), appended to `input`, and the clean sample to `target` if given.
    pub fn extract_pair(
        &self,
        image: &[f32],
        (c, src, out): (u32, u32, u32),
        input: &mut Vec<f32>,
        mut target: Option<&mut Vec<f32>>,
    ) {
        for ch in 0..c {
            let plane = &image[(ch * src * src) as usize..];
            for oy in 0..out {
                for ox in 0..out {
                    let (y, x) = self.source(oy, ox, out);
                    let clean = plane[(y * src + x) as usize];
                    input.push(if self.in_defect(oy, ox) {
                        self.value
                    } else {
                        clean
                    });
                    if let Some(t) = target.as_deref_mut() {
                        t.push(clean);
                    }
                }
            }
        }
    }
    /// The view's input sample alone (see `extract_pair`).
    pub fn extract(&self, image: &[f32], c: u32, src: u32, out: u32, out_buf: &mut Vec<f32>) {
        self.extract_pair(image, (c, src, out), out_buf, None);
    }
}

/// Mirror of gather.wgsl's overrides.
#[derive(Clone, Debug)]
pub struct GatherSpec {
    pub channels: u32,
    /// Side of the data set's images.
    pub src: u32,
    /// Side of the model's input.
    pub out: u32,
    pub batch: u32,
    /// Where the batch's inputs go in acts, and its targets (the same offset: no defects).
    pub x_off: u32,
    pub t_off: u32,
    /// The chunk's first image and its length.
    pub chunk_start: u32,
    pub chunk_len: u32,
}

impl GatherSpec {
    pub fn constants(&self) -> Constants {
        vec![
            ("C", self.channels as f64),
            ("SRC", self.src as f64),
            ("OUT", self.out as f64),
            ("BATCH", self.batch as f64),
            ("X_OFF", self.x_off as f64),
            ("T_OFF", self.t_off as f64),
            ("CHUNK_START", self.chunk_start as f64),
            ("CHUNK_LEN", self.chunk_len as f64),
        ]
    }
    /// The launch with the chunk's bind group (data chunk, epoch views).
    pub fn dispatch(&self, dev: &Device, chunk: wgpu::BindGroup) -> Result<Dispatch> {
        let n = self.batch as u64 * self.channels as u64 * (self.out as u64).pow(2);
        Ok(Dispatch {
            label: "gather".into(),
            pipeline: dev.pipeline(&GATHER, "main", &self.constants())?,
            group1: Some(chunk),
            groups: strided_groups(n),
            flops: 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::View;

    #[test]
    fn a_defect_replaces_its_rectangle_in_the_input_only() {
        let image: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let v = View::whole(0).with_defect((1, 3), (2, 4), -1.0);
        let (mut input, mut target) = (Vec::new(), Vec::new());
        v.extract_pair(&image, (1, 4, 4), &mut input, Some(&mut target));
        assert_eq!(target, image);
        let want: Vec<f32> = (0..16)
            .map(|i| {
                if (1..3).contains(&(i / 4)) && (2..4).contains(&(i % 4)) {
                    -1.0
                } else {
                    i as f32
                }
            })
            .collect();
        assert_eq!(input, want);
    }

    /// The 3×3 window [[0 1 2] [3 4 5] [6 7 8]] seen through `op`, row by row.
    fn seen(op: u32) -> Vec<u32> {
        let v = View {
            op,
            ..View::default()
        };
        let mut out = Vec::new();
        for oy in 0..3 {
            for ox in 0..3 {
                let (y, x) = v.source(oy, ox, 3);
                out.push(y * 3 + x);
            }
        }
        out
    }

    #[test]
    fn the_eight_views_are_the_flips_and_rotations() {
        assert_eq!(seen(0), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(seen(1), [2, 1, 0, 5, 4, 3, 8, 7, 6], "mirror x");
        assert_eq!(seen(2), [6, 7, 8, 3, 4, 5, 0, 1, 2], "mirror y");
        assert_eq!(seen(4), [0, 3, 6, 1, 4, 7, 2, 5, 8], "transpose");
        assert_eq!(seen(3), [8, 7, 6, 5, 4, 3, 2, 1, 0], "half turn");
        let mut all: Vec<Vec<u32>> = (0..8).map(seen).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 8, "eight distinct views");
    }
}
