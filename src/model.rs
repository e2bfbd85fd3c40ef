//! The autoencoder family: its layers, their PyTorch names and shapes, the parameter arena laid
//! out from one (name, shape) table, and PyTorch's default initialisation from a seed.
//!
//! `conv-ae` (input C×S×S, stage channels c1..cn, latent d):
//!   enc1..encn   Conv2d(k3, s2, p1) + LeakyReLU(0.2), halving the size each stage
//!   enc(n+1)     flatten (C,H,W order), Linear(cn·s·s → d), no activation
//!   dec1         Linear(d → cn·s·s) + LeakyReLU(0.2), reshape to cn×s×s
//!   dec2..dec(n+1) ConvTranspose2d(k4, s2, p1) + LeakyReLU, the last to C channels + Sigmoid
//! `fmnist-ae` (DESIGN §2) is conv-ae with C=1, S=28, stages [32, 64], latent 32.

use crate::error::{Error, Result};
use crate::kernels::Act;
use serde::{Deserialize, Serialize};

/// The architecture, as stored in checkpoint metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    /// "fmnist-ae" or "conv-ae".
    pub name: String,
    pub channels: u32,
    pub size: u32,
    pub stages: Vec<u32>,
    pub latent: u32,
}

impl Arch {
    pub fn fmnist_ae() -> Arch {
        Arch {
            name: "fmnist-ae".into(),
            channels: 1,
            size: 28,
            stages: vec![32, 64],
            latent: 32,
        }
    }

    pub fn conv_ae(channels: u32, size: u32, stages: Vec<u32>, latent: u32) -> Result<Arch> {
        let a = Arch {
            name: "conv-ae".into(),
            channels,
            size,
            stages,
            latent,
        };
        a.check()?;
        Ok(a)
    }

    pub fn by_name(name: &str) -> Result<Arch> {
        match name {
            "fmnist-ae" => Ok(Arch::fmnist_ae()),
            "conv-ae" => Arch::conv_ae(1, 128, vec![32, 64, 128, 128], 128),
            other => Err(Error::invalid(format!(
                "unknown architecture {other:?} (known: fmnist-ae, conv-ae)"
            ))),
        }
    }

    pub fn check(&self) -> Result<()> {
        if self.channels != 1 && self.channels != 3 {
            return Err(Error::invalid(format!(
                "channels must be 1 or 3, got {}",
                self.channels
            )));
        }
        if self.stages.is_empty() || self.stages.contains(&0) || self.latent == 0 {
            return Err(Error::invalid(
                "the model needs at least one stage and a latent size",
            ));
        }
        let div = 1u32 << self.stages.len();
        if self.size < div || !self.size.is_multiple_of(div) {
            return Err(Error::invalid(format!(
                "input size {} must be a multiple of {div} (2^stages) for {} stages",
                self.size,
                self.stages.len()
            )));
        }
        Ok(())
    }

    /// Sample shape [C, H, W].
    pub fn input_shape(&self) -> [u32; 3] {
        [self.channels, self.size, self.size]
    }

    pub fn input_len(&self) -> usize {
        (self.channels * self.size * self.size) as usize
    }

    /// The layers in forward order.
    pub fn layers(&self) -> Vec<Layer> {
        let leaky = Act::LeakyRelu(0.2);
        let mut v = Vec::new();
        let mut shape = self.input_shape();
        for (i, &c) in self.stages.iter().enumerate() {
            let out = [c, shape[1] / 2, shape[2] / 2];
            v.push(Layer::new(
                format!("enc{}", i + 1),
                LayerKind::Conv,
                shape,
                out,
                3,
                leaky,
            ));
            shape = out;
        }
        let flat = shape[0] * shape[1] * shape[2];
        let bottleneck = shape;
        let n = self.stages.len();
        v.push(Layer::new(
            format!("enc{}", n + 1),
            LayerKind::Linear,
            [flat, 1, 1],
            [self.latent, 1, 1],
            1,
            Act::Identity,
        ));
        v.push(Layer::new(
            "dec1".into(),
            LayerKind::Linear,
            [self.latent, 1, 1],
            [flat, 1, 1],
            1,
            leaky,
        ));
        shape = bottleneck;
        for i in (0..n).rev() {
            let (c, act) = if i == 0 {
                (self.channels, Act::Sigmoid)
            } else {
                (self.stages[i - 1], leaky)
            };
            let out = [c, shape[1] * 2, shape[2] * 2];
            v.push(Layer::new(
                format!("dec{}", n + 1 - i),
                LayerKind::ConvTranspose,
                shape,
                out,
                4,
                act,
            ));
            shape = out;
        }
        v
    }

    /// Parameter tensors (PyTorch names and shapes) in arena order.
    pub fn param_table(&self) -> ParamTable {
        let mut t = ParamTable::default();
        for l in self.layers() {
            t.push(format!("{}.weight", l.name), l.weight_shape());
            t.push(format!("{}.bias", l.name), vec![l.output[0] as usize]);
        }
        t
    }

    /// PyTorch's default initialisation (kaiming_uniform_(a=√5) for weights, which is
    /// U(±1/√fan_in), and U(±1/√fan_in) for biases), from a SplitMix64 stream of `seed`.
    pub fn init(&self, seed: u64) -> Vec<f32> {
        let table = self.param_table();
        let mut rng = SplitMix64::new(seed);
        let mut arena = vec![0f32; table.len()];
        for l in self.layers() {
            let bound = 1.0 / (l.fan_in() as f64).sqrt();
            for name in [format!("{}.weight", l.name), format!("{}.bias", l.name)] {
                let e = table.get(&name).expect("layer parameters are in the table");
                for v in &mut arena[e.offset..e.offset + e.len()] {
                    *v = ((rng.next_f64() * 2.0 - 1.0) * bound) as f32;
                }
            }
        }
        arena
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
    fn new(
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
            kind,
            input,
            output,
            kernel,
            stride,
            pad,
            act,
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

/// One entry of the (name, shape) table.
#[derive(Clone, Debug)]
pub struct ParamEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl ParamEntry {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Names, shapes and offsets of every tensor in a flat arena; parameters, gradients and both Adam
/// moments share this layout.
#[derive(Clone, Debug, Default)]
pub struct ParamTable {
    pub entries: Vec<ParamEntry>,
}

impl ParamTable {
    fn push(&mut self, name: String, shape: Vec<usize>) {
        let offset = self.len();
        self.entries.push(ParamEntry {
            name,
            shape,
            offset,
        });
    }
    pub fn len(&self) -> usize {
        self.entries.last().map_or(0, |e| e.offset + e.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// SplitMix64: a tiny, fixed generator, so a seed means the same model in every version.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmnist_ae_matches_design_table() {
        let a = Arch::fmnist_ae();
        let t = a.param_table();
        let shapes: Vec<(String, Vec<usize>)> = t
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.shape.clone()))
            .collect();
        let want: Vec<(&str, Vec<usize>)> = vec![
            ("enc1.weight", vec![32, 1, 3, 3]),
            ("enc1.bias", vec![32]),
            ("enc2.weight", vec![64, 32, 3, 3]),
            ("enc2.bias", vec![64]),
            ("enc3.weight", vec![32, 3136]),
            ("enc3.bias", vec![32]),
            ("dec1.weight", vec![3136, 32]),
            ("dec1.bias", vec![3136]),
            ("dec2.weight", vec![64, 32, 4, 4]),
            ("dec2.bias", vec![32]),
            ("dec3.weight", vec![32, 1, 4, 4]),
            ("dec3.bias", vec![1]),
        ];
        assert_eq!(shapes.len(), want.len());
        for ((n, s), (wn, ws)) in shapes.iter().zip(&want) {
            assert_eq!(n, wn);
            assert_eq!(s, ws);
        }
        let outs: Vec<[u32; 3]> = a.layers().iter().map(|l| l.output).collect();
        assert_eq!(
            outs,
            vec![
                [32, 14, 14],
                [64, 7, 7],
                [32, 1, 1],
                [3136, 1, 1],
                [32, 14, 14],
                [1, 28, 28]
            ]
        );
        assert_eq!(
            a.layers()[4].fan_in(),
            32 * 16,
            "ConvTranspose fan_in uses weight.size(1)"
        );
    }

    #[test]
    fn init_is_seeded_and_bounded() {
        let a = Arch::fmnist_ae();
        let p = a.init(7);
        assert_eq!(p, a.init(7));
        assert_ne!(p, a.init(8));
        let t = a.param_table();
        let e = t.get("enc2.weight").unwrap();
        let bound = 1.0 / (288f32).sqrt();
        let w = &p[e.offset..e.offset + e.len()];
        assert!(w.iter().all(|v| v.abs() <= bound));
        // Uniform on ±bound: the mean absolute value is close to bound/2.
        let mean_abs = w.iter().map(|v| v.abs()).sum::<f32>() / w.len() as f32;
        assert!((mean_abs / bound - 0.5).abs() < 0.02, "{mean_abs}");
    }
}
