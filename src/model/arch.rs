//! The autoencoder family: its layers, their PyTorch names and shapes, the parameter arena laid
//! out from one (name, shape) table (the initial weights: `init`).
//! (docs/design.md, "Architectures", has the table of `fmnist-ae`.)
//!
//! `conv-ae` (input C×S×S, stage channels c1..cn, latent d):
//!   enc1..encn   Conv2d(k3, s2, p1) + LeakyReLU(0.2), halving the size each stage
//!   enc(n+1)     flatten (C,H,W order), Linear(cn·s·s → d), no activation
//!   dec1         Linear(d → cn·s·s) + LeakyReLU(0.2), reshape to cn×s×s
//!   dec2..dec(n+1) ConvTranspose2d(k4, s2, p1) + LeakyReLU, the last to C channels + Sigmoid
//! `fmnist-ae` is conv-ae with C=1, S=28, stages [32, 64], latent 32.

use super::layer::{Act, Layer, LayerKind};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The largest input `Arch::for_images` chooses; larger images are shrunk to it (or cut into
/// patches).
pub const MAX_AUTO_SIZE: u32 = 256;
/// Bounds every architecture is checked against (command line and checkpoint metadata alike).
pub const MAX_STAGES: usize = 8;
pub const MAX_CHANNELS: u32 = 4096;
pub const MAX_LATENT: u32 = 65536;
pub const MAX_SIZE: u32 = 4096;
/// 2^28 parameters: 1 GiB of f32, before gradients and Adam's two moments.
pub const MAX_PARAMS: u64 = 1 << 28;
/// Activations of one sample, forward and backward: 2^28 f32 (1 GiB).
pub const MAX_ACTS_PER_SAMPLE: u64 = 1 << 28;

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

    /// The model for images of `channels` × `side` × `side` (`side`: the images' typical smaller
    /// side, or the patch size): fmnist-ae for 28×28 grey images; otherwise conv-ae at the largest size up to
    /// `side` (and at most `MAX_AUTO_SIZE`) that its stages allow, with fewer stages for small
    /// images (4 from 64 px, 3 from 32 px, else 2).
    pub fn for_images(channels: u32, side: u32) -> Result<Arch> {
        if channels == 1 && side == 28 {
            return Ok(Arch::fmnist_ae());
        }
        Arch::conv_ae_for(channels, side, None, None)
    }

    /// The stages and latent size of a conv-ae for `side` px inputs: 4 stages from 64 px, 3 from
    /// 32 px, else 2 (a stage halves the side; the bottleneck stays 4 to 8 px wide).
    pub fn stages_for(side: u32) -> (Vec<u32>, u32) {
        match side {
            64.. => (vec![32, 64, 128, 128], 128),
            32..=63 => (vec![32, 64, 128], 64),
            _ => (vec![32, 64], 32),
        }
    }

    /// A conv-ae for images of `channels` × `side` × `side`: `stages` and `latent` where given,
    /// else as `for_images` chooses them by the side; its input the largest size up to `side`
    /// (and at most `MAX_AUTO_SIZE`) that the stages allow.
    pub fn conv_ae_for(
        channels: u32,
        side: u32,
        stages: Option<Vec<u32>>,
        latent: Option<u32>,
    ) -> Result<Arch> {
        let side = side.min(MAX_AUTO_SIZE);
        let (by_side, latent_by_side) = Arch::stages_for(side);
        let stages = stages.unwrap_or(by_side);
        let latent = latent.unwrap_or(latent_by_side);
        if stages.is_empty() || stages.len() > MAX_STAGES {
            // Refused for the stages, before any size is worked out from them.
            return Arch::conv_ae(channels, side, stages, latent);
        }
        let step = 1u32 << stages.len();
        if side < step {
            return Err(Error::invalid(format!(
                "images of {side} px are too small for a model: it takes {step} px or more"
            )));
        }
        Arch::conv_ae(channels, side - side % step, stages, latent)
    }

    /// A short description: "conv-ae 3x128x128 (stages 32,64,128,128, latent 128)".
    pub fn describe(&self) -> String {
        let stages: Vec<String> = self.stages.iter().map(|s| s.to_string()).collect();
        format!(
            "{} {}x{}x{} (stages {}, latent {})",
            self.name,
            self.channels,
            self.size,
            self.size,
            stages.join(","),
            self.latent
        )
    }

    pub fn by_name(name: &str) -> Result<Arch> {
        match name {
            "fmnist-ae" => Ok(Arch::fmnist_ae()),
            "conv-ae" => Arch::conv_ae(1, 128, vec![32, 64, 128, 128], 128),
            // (`auto` is the command line's: it picks one of these from the images.)
            "auto" => Err(Error::invalid(
                "architecture auto is chosen from training images, which this command has none \
                 of: name fmnist-ae or conv-ae",
            )),
            other => Err(Error::invalid(format!(
                "unknown architecture {other:?} (known: auto, fmnist-ae, conv-ae)"
            ))),
        }
    }

    pub fn check(&self) -> Result<()> {
        if self.name != "fmnist-ae" && self.name != "conv-ae" {
            return Err(Error::invalid(format!(
                "unknown architecture {:?} (fmnist-ae or conv-ae)",
                self.name
            )));
        }
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
        // Bounds first, in u64: sizes from metadata or the command line must not wrap the
        // shape arithmetic or size a buffer before anything is checked.
        if self.stages.len() > MAX_STAGES {
            return Err(Error::invalid(format!(
                "{} stages; at most {MAX_STAGES}",
                self.stages.len()
            )));
        }
        if let Some(&c) = self.stages.iter().find(|&&c| c > MAX_CHANNELS) {
            return Err(Error::invalid(format!(
                "a stage of {c} channels; at most {MAX_CHANNELS}"
            )));
        }
        if self.latent > MAX_LATENT {
            return Err(Error::invalid(format!(
                "latent size {}; at most {MAX_LATENT}",
                self.latent
            )));
        }
        if self.size > MAX_SIZE {
            return Err(Error::invalid(format!(
                "input size {}; at most {MAX_SIZE} pixels (larger images: train on patches, --patch)",
                self.size
            )));
        }
        let div = 1u32 << self.stages.len();
        if self.size < div || !self.size.is_multiple_of(div) {
            return Err(Error::invalid(format!(
                "input size {} must be a positive multiple of {div} (2^stages) for {} stages",
                self.size,
                self.stages.len()
            )));
        }
        let (params, acts) = self.sizes();
        if params > MAX_PARAMS {
            return Err(Error::invalid(format!(
                "{params} parameters; at most {MAX_PARAMS} (a smaller --latent, fewer channels or a smaller --size)"
            )));
        }
        if acts > MAX_ACTS_PER_SAMPLE {
            return Err(Error::invalid(format!(
                "{acts} activations per image; at most {MAX_ACTS_PER_SAMPLE} (fewer channels or a smaller --size)"
            )));
        }
        Ok(())
    }

    /// Parameters and activations per sample, in u64 (no wrap for any bounded shape).
    fn sizes(&self) -> (u64, u64) {
        let (mut params, mut acts) = (0u64, 0u64);
        let (mut c, mut side) = (self.channels as u64, self.size as u64);
        for &s in &self.stages {
            let s = s as u64;
            side /= 2;
            params += 2 * (c * s * 16 + s + c); // conv (k3) and its mirror (k4), biases
            acts += 2 * s * side * side;
            c = s;
        }
        let flat = c * side * side;
        params += 2 * flat * self.latent as u64 + flat + self.latent as u64;
        (
            params,
            acts + self.latent as u64 + 2 * self.channels as u64 * (self.size as u64).pow(2),
        )
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
    /// The weight and bias of layer `name` (every layer has both, weight first).
    pub fn layer(&self, name: &str) -> Option<(&ParamEntry, &ParamEntry)> {
        let i = self
            .entries
            .iter()
            .position(|e| e.name.strip_suffix(".weight") == Some(name))?;
        let bias = self.entries.get(i + 1)?;
        (bias.name.strip_suffix(".bias") == Some(name)).then(|| (&self.entries[i], bias))
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
    fn models_for_images_fit_their_size() {
        assert_eq!(Arch::for_images(1, 28).unwrap(), Arch::fmnist_ae());
        let a = Arch::for_images(3, 128).unwrap();
        assert_eq!((a.channels, a.size, a.stages.len()), (3, 128, 4));
        assert_eq!(Arch::for_images(3, 100).unwrap().size, 96);
        assert_eq!(Arch::for_images(1, 1024).unwrap().size, MAX_AUTO_SIZE);
        let small = Arch::for_images(3, 28).unwrap();
        assert_eq!((small.size, small.stages.len()), (28, 2));
        assert_eq!(Arch::for_images(1, 40).unwrap().size, 40);
        assert!(Arch::for_images(1, 3).is_err());
        for side in [4, 17, 31, 32, 63, 64, 200, 700] {
            Arch::for_images(3, side).unwrap().check().unwrap();
        }
    }
}
