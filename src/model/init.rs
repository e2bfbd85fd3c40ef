//! The initial weights, drawn from a seed.
//!
//! - `pytorch`: PyTorch's default for Conv2d, ConvTranspose2d and Linear (kaiming_uniform_ with
//!   a = √5): weights and biases U(±1/√fan_in). Their variance, 1/(3·fan_in), shrinks the signal
//!   by about 0.58 per layer, which barely matters in fmnist-ae's five layers but leaves a deep
//!   conv-ae on the mean-image plateau for hundreds of steps (scripts/plateau_init.py: the cup's
//!   default run leaves it after 190–220 of 501 steps).
//! - `he`: He et al.'s normal initialisation, which keeps the signal's scale through every
//!   layer: weights N(0, gain²/n), biases zero, where n is the number of inputs each output
//!   sums and the gain is √(2/(1 + 0.2²)) before a leaky ReLU of slope 0.2, and 1 before no
//!   activation (the latent code) or the sigmoid (LeCun's variance, so that the first outputs
//!   spread around 0.5 instead of saturating). The same study with PyTorch's
//!   kaiming_normal_(a=0.2): off the plateau after 60 steps, the held-out error 25–35% lower.
//!
//! n is not PyTorch's fan_in for a transposed convolution: PyTorch counts its *output* channels
//! × kernel area, while each of its outputs sums in_channels × (kernel / stride)² terms. For
//! conv-ae's last layer (to 1 or 3 channels) PyTorch's count is 8× or 2.7× too small, and with
//! it kaiming_normal_'s outputs saturate the sigmoid: on the texture benchmark (32 px patches,
//! grey) that start ended training at a higher loss and lower AUROC than PyTorch's default on
//! all three categories (README).
//! `pytorch` uses PyTorch's fan_in (`Layer::fan_in`), so it matches what PyTorch draws in
//! distribution (not in values: the stream is SplitMix64's).

use super::{Act, Arch, Choice, Layer, LayerKind};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// How the initial weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    Pytorch,
    He,
}

/// The stages from which a conv-ae starts from He's weights by default.
pub const DEEP_STAGES: usize = 4;

/// How many inputs each output of `l` sums (away from the padding).
fn inputs_per_output(l: &Layer) -> f64 {
    let (i, k, s) = (l.input[0] as f64, l.kernel as f64, l.stride as f64);
    match l.kind {
        LayerKind::Conv => i * k * k,
        LayerKind::ConvTranspose => i * (k / s) * (k / s),
        LayerKind::Linear => l.in_len() as f64,
    }
}

/// He's gain for what follows a layer: √(2/(1 + a²)) for a leaky ReLU of slope a, 1 for no
/// activation or the sigmoid.
fn gain(act: Act) -> f64 {
    match act {
        Act::LeakyRelu(a) => (2.0 / (1.0 + (a as f64) * (a as f64))).sqrt(),
        Act::Relu => 2f64.sqrt(),
        Act::Identity | Act::Sigmoid => 1.0,
    }
}

/// The standard deviation of a layer's weights under `Init::He`.
pub fn he_std(l: &Layer) -> f64 {
    gain(l.act) / inputs_per_output(l).sqrt()
}

impl Init {
    /// The default for a model: He's for a conv-ae of `DEEP_STAGES` stages or more (the model
    /// for images of 64 px and up), whose depth PyTorch's init fades the signal through;
    /// PyTorch's for smaller ones, where it trained as well or better (the texture benchmark's
    /// 32 px patch models, README), and for fmnist-ae (the reference model, whose tables and
    /// gradient checks were made with it).
    pub fn default_for(arch: &Arch) -> Init {
        if arch.name != "fmnist-ae" && arch.stages.len() >= DEEP_STAGES {
            Init::He
        } else {
            Init::Pytorch
        }
    }
}

impl Choice for Init {
    const ALL: &'static [Self] = &[Init::Pytorch, Init::He];
    fn name(self) -> &'static str {
        match self {
            Init::Pytorch => "pytorch",
            Init::He => "he",
        }
    }
}

impl Arch {
    /// PyTorch's default initialisation from `seed` (`Init::Pytorch`).
    pub fn init(&self, seed: u64) -> Vec<f32> {
        self.init_with(Init::Pytorch, seed)
    }

    /// The parameter arena drawn as `how` says from a SplitMix64 stream of `seed`.
    pub fn init_with(&self, how: Init, seed: u64) -> Vec<f32> {
        let table = self.param_table();
        let mut rng = SplitMix64::new(seed);
        let mut arena = vec![0f32; table.len()];
        for l in self.layers() {
            let fan_in = l.fan_in() as f64;
            let (w, b) = table
                .layer(&l.name)
                .expect("every layer has a weight and a bias");
            match how {
                Init::Pytorch => {
                    let bound = 1.0 / fan_in.sqrt();
                    for e in [w, b] {
                        for v in &mut arena[e.offset..e.offset + e.len()] {
                            *v = ((rng.next_f64() * 2.0 - 1.0) * bound) as f32;
                        }
                    }
                }
                Init::He => {
                    let std = he_std(&l);
                    for v in &mut arena[w.offset..w.offset + w.len()] {
                        *v = (rng.gaussian() * std) as f32;
                    }
                    // Biases stay zero.
                }
            }
        }
        arena
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytorch_init_is_seeded_and_bounded() {
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

    #[test]
    fn he_init_has_he_variance_and_zero_biases() {
        let a = Arch::for_images(3, 64).unwrap();
        // The variances by hand for three kinds of layer: a convolution before a leaky ReLU,
        // the latent code (no activation), the last transposed convolution (32 -> 3 channels,
        // kernel 4, stride 2: 32 x 4 inputs per output) before the sigmoid.
        let by_name = |n: &str| a.layers().into_iter().find(|l| l.name == n).unwrap();
        let close = |x: f64, y: f64| (x / y - 1.0).abs() < 1e-6;
        assert!(close(he_std(&by_name("enc1")).powi(2), 2.0 / 1.04 / 27.0));
        assert!(close(
            he_std(&by_name("enc5")).powi(2),
            1.0 / (128.0 * 16.0)
        ));
        assert!(close(he_std(&by_name("dec5")).powi(2), 1.0 / 128.0));
        let p = a.init_with(Init::He, 3);
        assert_eq!(p, a.init_with(Init::He, 3));
        assert_ne!(p, a.init_with(Init::He, 4));
        let t = a.param_table();
        for l in a.layers() {
            let (w, b) = t.layer(&l.name).unwrap();
            assert!(p[b.offset..b.offset + b.len()].iter().all(|&v| v == 0.0));
            let w = &p[w.offset..w.offset + w.len()];
            let n = w.len() as f64;
            let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let want = he_std(&l).powi(2);
            // Sampling error of a variance: about sqrt(2/n) relative; every layer here has at
            // least 864 weights (about 5%), so 20% cannot fail by chance.
            assert!(n >= 864.0, "{} has {n} weights", l.name);
            assert!(
                (var / want - 1.0).abs() < 0.2,
                "{}: {var} vs {want}",
                l.name
            );
            assert!(
                mean.abs() < 4.0 * (want / n).sqrt(),
                "{}: mean {mean}",
                l.name
            );
            // Normal, not uniform: about 68% within one standard deviation (uniform: 58%).
            let within = w.iter().filter(|&&v| (v as f64).powi(2) < want).count() as f64 / n;
            assert!((within - 0.683).abs() < 0.05, "{}: {within}", l.name);
        }
    }

    /// Why conv-ae defaults to He's: the signal's scale through the encoder (the f64 reference's
    /// forward pass on random images). PyTorch's default shrinks it about 0.58× per layer, so
    /// the latent code of a 4-stage conv-ae starts near zero and the decoder sees no input
    /// (64 px: the latent's RMS over the input's 0.77 with He's, 0.03 with PyTorch's).
    #[test]
    fn he_init_keeps_the_signal_through_the_encoder() {
        let a = Arch::for_images(3, 64).unwrap();
        let mut rng = SplitMix64::new(11);
        let x: Vec<f64> = (0..2 * a.input_len()).map(|_| rng.next_f64()).collect();
        let rms = |v: &[f64]| (v.iter().map(|t| t * t).sum::<f64>() / v.len() as f64).sqrt();
        let latent_rms = |how: Init| {
            let p: Vec<f64> = a.init_with(how, 5).iter().map(|&v| v as f64).collect();
            let acts = crate::model::reference::model_forward(&a, &p, &x, 2);
            // acts[l + 1] is layer l's output; the layer after the stages is the latent.
            rms(&acts[a.stages.len() + 1]) / rms(&x)
        };
        let (he, pytorch) = (latent_rms(Init::He), latent_rms(Init::Pytorch));
        assert!(he > 0.5, "He: latent/input RMS {he}");
        assert!(he > 10.0 * pytorch, "He {he} against PyTorch {pytorch}");
    }

    #[test]
    fn the_default_init_follows_the_model() {
        assert_eq!(Init::default_for(&Arch::fmnist_ae()), Init::Pytorch);
        for (side, init) in [
            (256, Init::He),
            (64, Init::He),
            (63, Init::Pytorch),
            (32, Init::Pytorch),
        ] {
            let a = Arch::for_images(3, side).unwrap();
            assert_eq!(Init::default_for(&a), init, "{side} px");
        }
    }
}
