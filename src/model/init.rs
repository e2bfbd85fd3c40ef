//! The initial weights, drawn from a seed.
//!
//! - `pytorch`: PyTorch's default for Conv2d, ConvTranspose2d and Linear (kaiming_uniform_ with
//!   a = √5): weights and biases U(±1/√fan_in). Their variance, 1/(3·fan_in), shrinks the signal
//!   by about 0.58 per layer, which barely matters in fmnist-ae's five layers but leaves a deep
//!   conv-ae on the mean-image plateau for hundreds of steps (scripts/plateau_init.py: the cup's
//!   default run leaves it after 190–220 of 501 steps).
//! - `he`: He et al.'s normal initialisation for leaky ReLU (slope 0.2) layers, PyTorch's
//!   kaiming_normal_(a=0.2, mode="fan_in"): weights N(0, 2/((1 + 0.2²)·fan_in)), biases zero,
//!   which keeps the signal's scale through every layer (the same study: off the plateau after
//!   60 steps, the held-out error 25–35% lower at the end).
//!
//! fan_in is PyTorch's (`Layer::fan_in`), so either matches what PyTorch would draw in
//! distribution (not in values: the stream is SplitMix64's).

use super::{Arch, Choice};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// How the initial weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    Pytorch,
    He,
}

/// The negative slope of lamp's leaky ReLU, which He's gain accounts for.
const LEAKY_SLOPE: f64 = 0.2;

impl Init {
    /// The default for a model: PyTorch's for fmnist-ae (the reference model, whose tables and
    /// gradient checks were made with it), He's for conv-ae.
    pub fn default_for(arch: &Arch) -> Init {
        if arch.name == "fmnist-ae" {
            Init::Pytorch
        } else {
            Init::He
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
                    let std = (2.0 / ((1.0 + LEAKY_SLOPE * LEAKY_SLOPE) * fan_in)).sqrt();
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
            let want = 2.0 / (1.04 * l.fan_in() as f64);
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
    /// (64 px: the latent's RMS over the input's 1.07 with He's, 0.03 with PyTorch's).
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
        assert_eq!(
            Init::default_for(&Arch::for_images(3, 64).unwrap()),
            Init::He
        );
    }
}
