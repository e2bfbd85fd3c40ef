//! One layer of the autoencoder: its kind, shapes, kernel geometry and the activation fused into
//! it. The layers' maths, written as plain loops, is in `reference.rs`; their GPU launches are in
//! `kernels/layer.rs`.

use serde::{Deserialize, Serialize};

/// Activation fused into a producing kernel (and its derivative into the backward one).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    Identity,
    LeakyRelu(f32),
    Relu,
    Sigmoid,
}

/// The activation's code as gemm.wgsl reads it (override `ACT`, constants `ACT_*`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActCode {
    Identity = 0,
    LeakyRelu = 1,
    Relu = 2,
    Sigmoid = 3,
}

impl ActCode {
    pub const ALL: [ActCode; 4] = [
        ActCode::Identity,
        ActCode::LeakyRelu,
        ActCode::Relu,
        ActCode::Sigmoid,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ActCode::Identity => "identity",
            ActCode::LeakyRelu => "leaky_relu",
            ActCode::Relu => "relu",
            ActCode::Sigmoid => "sigmoid",
        }
    }
}

impl Act {
    pub fn code(self) -> ActCode {
        match self {
            Act::Identity => ActCode::Identity,
            Act::LeakyRelu(_) => ActCode::LeakyRelu,
            Act::Relu => ActCode::Relu,
            Act::Sigmoid => ActCode::Sigmoid,
        }
    }
    /// The negative slope of a leaky ReLU (0 for the others).
    pub fn alpha(self) -> f32 {
        match self {
            Act::LeakyRelu(a) => a,
            _ => 0.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    Conv,
    ConvTranspose,
    Linear,
}

/// One layer: kind, input and output shapes [C, H, W] (linear layers as [F, 1, 1]), square kernel,
/// and the activation fused into it.
#[derive(Clone, Debug)]
pub struct Layer {
    pub name: String,
    pub kind: LayerKind,
    pub input: [u32; 3],
    pub output: [u32; 3],
    pub kernel: u32,
    pub stride: u32,
    pub pad: u32,
    pub act: Act,
}

impl Layer {
    /// A layer of the autoencoder family: stride 2 and padding 1 for (transposed) convolutions.
    pub(crate) fn new(
        name: String,
        kind: LayerKind,
        input: [u32; 3],
        output: [u32; 3],
        kernel: u32,
        act: Act,
    ) -> Layer {
        let (stride, pad) = if kind == LayerKind::Linear {
            (1, 0)
        } else {
            (2, 1)
        };
        Layer {
            name,
            ..Layer::custom(kind, input, output, kernel, stride, pad, act)
        }
    }

    /// A layer of any geometry (tests use odd ones). Shapes are [C, H, W].
    #[allow(clippy::too_many_arguments)]
    pub fn custom(
        kind: LayerKind,
        input: [u32; 3],
        output: [u32; 3],
        kernel: u32,
        stride: u32,
        pad: u32,
        act: Act,
    ) -> Layer {
        Layer {
            name: "custom".into(),
            kind,
            input,
            output,
            kernel,
            stride,
            pad,
            act,
        }
    }

    pub fn weight_shape(&self) -> Vec<usize> {
        let (i, o, k) = (
            self.input[0] as usize,
            self.output[0] as usize,
            self.kernel as usize,
        );
        match self.kind {
            LayerKind::Conv => vec![o, i, k, k],
            LayerKind::ConvTranspose => vec![i, o, k, k],
            LayerKind::Linear => vec![o, i],
        }
    }

    /// PyTorch's fan_in: weight.size(1) × receptive field (for ConvTranspose, size(1) is out).
    pub fn fan_in(&self) -> usize {
        let s = self.weight_shape();
        s[1] * s[2..].iter().product::<usize>()
    }

    pub fn in_len(&self) -> usize {
        self.input.iter().product::<u32>() as usize
    }
    pub fn out_len(&self) -> usize {
        self.output.iter().product::<u32>() as usize
    }
    /// Multiply-adds per sample of the forward pass (useful work, without padding taps).
    pub fn macs(&self) -> f64 {
        let k2 = (self.kernel * self.kernel) as f64;
        match self.kind {
            LayerKind::Conv => self.out_len() as f64 * self.input[0] as f64 * k2,
            LayerKind::ConvTranspose => self.in_len() as f64 * self.output[0] as f64 * k2,
            LayerKind::Linear => (self.in_len() * self.out_len()) as f64,
        }
    }
}
