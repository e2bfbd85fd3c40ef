//! The weights as gemm.wgsl's vec4 path reads them (VEC_K, MODE 0/1): for the GEMM of a layer's
//! forward pass or input gradient whose G is read four channels at a time, A's four terms of the
//! reduction must sit side by side too: `[Q_C, G_C/4, KH, KW, 4]`, element (m, c, kh, kw) being
//! the weight that multiplies G's channel c at tap (kh, kw) for Q's channel m. A linear layer's
//! forward weight `[out, in]` is that already (read in place); every other form is a copy that
//! pack.wgsl writes past the parameters in their own buffer once per step, from a table built
//! here (so that packed weights take no room from the activations, whose binding bounds the
//! batch).

use super::prelude::wgsl;
use super::{strided_groups, Dispatch};
use crate::device::{Constants, Device, Group1, ShaderSource};
use crate::error::Result;
use crate::model::{Layer, LayerKind};

pub static PACK: ShaderSource = ShaderSource {
    files: "shaders/pack.wgsl",
    text: || wgsl(&[include_str!("../../shaders/pack.wgsl")]),
    // The table rides in group 1 as the first of a pair of storage buffers.
    group1: Group1::Data,
};

/// Where a GEMM finds its packed weight: vec4 index `offset` of params, the weight itself
/// (`in_place`) or a copy past the parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packed {
    pub offset: u32,
    pub in_place: bool,
}

/// How a tensor is laid out, as a kernel sees it (gemm.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// NCHW.
    #[default]
    Plain,
    /// `[N, C/4, H, W, 4]`: four consecutive channels of a pixel side by side.
    Grouped,
    /// A grouped `[C, H, W]` tensor that a linear layer sees as `[C*H*W, 1, 1]`, its channels in
    /// memory order; `hw` = H*W. The linear layer's weights, bias and gradients follow PyTorch's
    /// flattening order (c, y, x), so the kernels map between the two with `flat_index`.
    Flat { hw: u32 },
}

impl Layout {
    /// gemm.wgsl's `*_GROUPED` override.
    pub fn grouped(self) -> bool {
        self == Layout::Grouped
    }
    /// gemm.wgsl's `*_FLAT_HW` override (0: not flattened).
    pub fn flat_hw(self) -> u32 {
        match self {
            Layout::Flat { hw } => hw,
            _ => 0,
        }
    }
}

/// Element `e` (memory order) of a flattened grouped tensor of `hw` pixels: its index in
/// PyTorch's flattening, c * hw + p (gemm.wgsl's `flat`). `hw` = 0: unchanged.
pub fn flat_index(e: usize, hw: usize) -> usize {
    if hw == 0 {
        return e;
    }
    let (c4, r) = (e / (4 * hw), e % (4 * hw));
    (c4 * 4 + r % 4) * hw + r / 4
}

/// Whether a [C, H, W] tensor reads four channels per vec4 in its layout: grouped or flat, or
/// 1x1 (the same in both layouts), with whole quads of channels.
pub fn reads_by_four(shape: [u32; 3], layout: Layout) -> bool {
    shape[0].is_multiple_of(4) && (layout != Layout::Plain || shape[1] * shape[2] == 1)
}

/// Every layer's packed weights (forward, input gradient) and the table that builds the copies.
#[derive(Clone, Debug, Default)]
pub struct Packing {
    /// Per layer: the forward GEMM's packed weight and the input gradient's, where they read G
    /// four channels at a time.
    pub forms: Vec<(Option<Packed>, Option<Packed>)>,
    /// Per packed float (from `dst` in params): its index among the parameters.
    pub index: Vec<u32>,
}

impl Packing {
    /// The packing for `layers`, whose weights start at `weights[li]` in params, each layer
    /// seeing its input and output as `layouts[li]` says, copies from `dst` (floats, a multiple
    /// of 4) in params. The first layer's input gradient is packed only where `first_input_grad`
    /// (a model never computes it; a test of one layer does).
    pub fn new(
        layers: &[Layer],
        weights: &[usize],
        layouts: &[(Layout, Layout)],
        dst: usize,
        first_input_grad: bool,
    ) -> Packing {
        let mut p = Packing::default();
        for (li, l) in layers.iter().enumerate() {
            let (input, output) = layouts[li];
            let w = weights[li];
            let conv_t = l.kind == LayerKind::ConvTranspose;
            // Forward: G is the input, Q the output. Conv and linear weights are [Q_C, G_C, ..]
            // (m-major).
            let fwd = reads_by_four(l.input, input).then(|| {
                let form = Form {
                    m: (l.output[0], output.flat_hw()),
                    c: (l.input[0], input.flat_hw()),
                    m_major: !conv_t,
                };
                p.form(l, w, form, dst)
            });
            // Input gradient: G is the output gradient, Q the input's; conv-T's weight is m-major.
            let bwd =
                ((li > 0 || first_input_grad) && reads_by_four(l.output, output)).then(|| {
                    let form = Form {
                        m: (l.input[0], input.flat_hw()),
                        c: (l.output[0], output.flat_hw()),
                        m_major: conv_t,
                    };
                    p.form(l, w, form, dst)
                });
            p.forms.push((fwd, bwd));
        }
        p
    }

    /// The packed form of the weight at `w` in params.
    fn form(&mut self, l: &Layer, w: usize, f: Form, dst: usize) -> Packed {
        let kk = (l.kernel * l.kernel) as usize;
        let ((m_len, m_hw), (c_len, c_hw)) = (f.m, f.c);
        // [m, c] with whole rows of c in PyTorch's order: the weight itself, read in place (a
        // flattened m maps its rows there: gemm_vec4.wgsl `a_vec`).
        if f.m_major && kk == 1 && w.is_multiple_of(4) && c_hw == 0 {
            return Packed {
                offset: (w / 4) as u32,
                in_place: true,
            };
        }
        let at = dst + self.index.len();
        let (m_len, c_len) = (m_len as usize, c_len as usize);
        for m in 0..m_len {
            let mt = flat_index(m, m_hw as usize);
            for c4 in 0..c_len / 4 {
                for k in 0..kk {
                    for j in 0..4 {
                        let ct = flat_index(c4 * 4 + j, c_hw as usize);
                        let (a, b) = if f.m_major { (mt, ct) } else { (ct, mt) };
                        let n_b = if f.m_major { c_len } else { m_len };
                        self.index.push((w + (a * n_b + b) * kk + k) as u32);
                    }
                }
            }
        }
        Packed {
            offset: (at / 4) as u32,
            in_place: false,
        }
    }

    /// The launch of pack.wgsl that writes the copies at `dst` in params (where `new` put them),
    /// with the index table uploaded; none where nothing is copied.
    pub fn dispatch(&self, dev: &Device, dst: usize) -> Result<Option<Dispatch>> {
        if self.index.is_empty() {
            return Ok(None);
        }
        let table = dev.checked("allocating the packing table", || {
            dev.storage("packing table", self.index.len())
        })?;
        dev.queue
            .write_buffer(&table, 0, bytemuck::cast_slice(&self.index));
        let group = dev.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("packing table"),
            layout: &dev.registry.data,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: table.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: table.as_entire_binding(),
                },
            ],
        });
        let spec = PackSpec {
            len: self.index.len() as u32,
            dst: dst as u32,
        };
        spec.dispatch(dev, group).map(Some)
    }

    /// No packed weights at all (every GEMM on its scalar paths) for `layers` layers.
    pub fn none(layers: usize) -> Packing {
        Packing {
            forms: vec![(None, None); layers],
            index: Vec::new(),
        }
    }

    /// Floats the copies take.
    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// A packed form: Q's channels m and G's channels c (count, and `hw` where flattened), and
/// whether the weight is [m, c, KH, KW] (`m_major`) or [c, m, KH, KW].
struct Form {
    m: (u32, u32),
    c: (u32, u32),
    m_major: bool,
}

/// Mirror of pack.wgsl's overrides.
#[derive(Clone, Debug)]
pub struct PackSpec {
    pub len: u32,
    pub dst: u32,
}

impl PackSpec {
    pub fn constants(&self) -> Constants {
        vec![("LEN", self.len as f64), ("DST", self.dst as f64)]
    }
    /// The launch, with `table` the bind group of the index table (group 1).
    pub fn dispatch(&self, dev: &Device, table: wgpu::BindGroup) -> Result<Dispatch> {
        Ok(Dispatch {
            label: "pack weights".into(),
            pipeline: dev.pipeline(&PACK, "main", &self.constants())?,
            group1: Some(table),
            groups: strided_groups((self.len / 4) as u64),
            flops: 0.0,
        })
    }
}
