//! Each layer's launches, forward and backward side by side: how a conv, conv-transpose or linear
//! layer maps onto the three indexings of gemm.wgsl and onto bias_grad.wgsl.
//!
//!   forward:       conv/linear -> MODE conv,   conv-T -> MODE conv-T   (bias + activation fused)
//!   input grad:    conv/linear -> MODE conv-T, conv-T -> MODE conv     (× act' of the layer below)
//!   weight grad:   MODE weight-grad; Q is dz for conv/linear and the input for conv-T
//!   bias grad:     bias_grad.wgsl over dz

use super::pack::{Layout, Packed};
use super::{BiasGradSpec, GemmMode, GemmSpec};
use crate::model::{Act, Layer, LayerKind};

/// Where a layer's tensors live: parameter offsets and activation-arena offsets.
#[derive(Clone, Copy, Debug)]
pub struct LayerOffsets {
    pub weight: u32,
    pub bias: u32,
    /// The layer's input (post-activation output of the layer below, or the batch).
    pub input: u32,
    /// The layer's post-activation output.
    pub output: u32,
    /// Gradient with respect to the layer's pre-activation output.
    pub dz: u32,
    /// Layouts, as this layer sees them: the input's (and its gradient's), the output's and
    /// dz's (kernels::pack::Layout).
    pub input_layout: Layout,
    pub output_layout: Layout,
    /// The weight packed for the forward GEMM and for the input gradient's (kernels::pack),
    /// where they read G four channels at a time.
    pub packed_forward: Option<Packed>,
    pub packed_input_grad: Option<Packed>,
}

fn base(l: &Layer, batch: u32, mode: GemmMode) -> GemmSpec {
    GemmSpec {
        mode,
        batch,
        g: l.input,
        q: l.output,
        kernel: [l.kernel, l.kernel],
        stride: l.stride,
        pad: l.pad,
        w_off: 0,
        g_off: 0,
        q_off: 0,
        bias_off: None,
        act: Act::Identity,
        backward_h_off: None,
        k_split: 1,
        lane_parts: 1,
        partial_off: 0,
        g_layout: Layout::Plain,
        q_layout: Layout::Plain,
        packed: None,
        phase: None,
    }
}

/// output = act(layer(input) + bias)
pub fn forward(l: &Layer, batch: u32, o: &LayerOffsets) -> GemmSpec {
    let mode = if l.kind == LayerKind::ConvTranspose {
        GemmMode::ConvTranspose
    } else {
        GemmMode::Conv
    };
    GemmSpec {
        w_off: o.weight,
        g_off: o.input,
        q_off: o.output,
        bias_off: Some(o.bias),
        act: l.act,
        g_layout: o.input_layout,
        q_layout: o.output_layout,
        packed: o.packed_forward,
        ..base(l, batch, mode)
    }
}

/// dz of the layer below = (layer's input gradient) × act'(its stored output), written over
/// `dz_below`; `below_act` is the activation of the layer that produced this layer's input.
pub fn input_grad(
    l: &Layer,
    batch: u32,
    o: &LayerOffsets,
    dz_below: u32,
    below_act: Act,
) -> GemmSpec {
    let mode = if l.kind == LayerKind::ConvTranspose {
        GemmMode::Conv
    } else {
        GemmMode::ConvTranspose
    };
    GemmSpec {
        g: l.output,
        q: l.input,
        w_off: o.weight,
        g_off: o.dz,
        q_off: dz_below,
        act: below_act,
        backward_h_off: Some(o.input),
        g_layout: o.output_layout,
        q_layout: o.input_layout,
        packed: o.packed_input_grad,
        ..base(l, batch, mode)
    }
}

/// dW into the gradient arena at `dw_off` (the weight's own offset).
pub fn weight_grad(l: &Layer, batch: u32, o: &LayerOffsets) -> GemmSpec {
    let s = base(l, batch, GemmMode::WeightGrad);
    if l.kind == LayerKind::ConvTranspose {
        GemmSpec {
            g: l.output,
            q: l.input,
            g_off: o.dz,
            q_off: o.input,
            w_off: o.weight,
            g_layout: o.output_layout,
            q_layout: o.input_layout,
            ..s
        }
    } else {
        GemmSpec {
            g: l.input,
            q: l.output,
            g_off: o.input,
            q_off: o.dz,
            w_off: o.weight,
            g_layout: o.input_layout,
            q_layout: o.output_layout,
            ..s
        }
    }
}

/// db into the gradient arena at the bias's own offset.
pub fn bias_grad(l: &Layer, batch: u32, o: &LayerOffsets) -> BiasGradSpec {
    BiasGradSpec {
        layout: o.output_layout,
        ..BiasGradSpec::new(batch, l.output[0], l.output[1] * l.output[2], o.dz, o.bias)
    }
}
