//! The loss vocabulary: the error metric, the amplification and where it acts (docs/design.md,
//! "The method"). The codes are what loss.wgsl reads: explicit discriminants, copied into the
//! shaders' prelude by `kernels/prelude.rs`, never retyped there.

use super::ssim::{map_side, ssim_window};
use super::Choice;
use serde::{Deserialize, Serialize};

/// The per-element error e of a reconstruction y of x (d = y − x): `mae` |d|, `mse` d², `ssim`
/// (1 − SSIM_p) / 2 over the valid 11×11 windows.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Mae = 0,
    Mse = 1,
    Ssim = 2,
}

/// Amplification: `none` is the baseline A(e) = e, `lamp` is A(e) = −ln(1 − e).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Amp {
    None = 0,
    Lamp = 1,
}

/// Where the amplification acts: on each element's error, on each sample's mean error, or on
/// the batch's mean error.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Element = 0,
    Sample = 1,
    Batch = 2,
}

impl Choice for Metric {
    const ALL: &'static [Self] = &[Metric::Mae, Metric::Mse, Metric::Ssim];
    fn name(self) -> &'static str {
        match self {
            Metric::Mae => "mae",
            Metric::Mse => "mse",
            Metric::Ssim => "ssim",
        }
    }
}

impl Choice for Amp {
    const ALL: &'static [Self] = &[Amp::None, Amp::Lamp];
    fn name(self) -> &'static str {
        match self {
            Amp::None => "none",
            Amp::Lamp => "lamp",
        }
    }
}

impl Choice for Granularity {
    const ALL: &'static [Self] = &[
        Granularity::Element,
        Granularity::Sample,
        Granularity::Batch,
    ];
    fn name(self) -> &'static str {
        match self {
            Granularity::Element => "element",
            Granularity::Sample => "sample",
            Granularity::Batch => "batch",
        }
    }
}

/// The loss configuration: metric, amplification and granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossConfig {
    pub metric: Metric,
    pub amp: Amp,
    pub granularity: Granularity,
}

impl Default for LossConfig {
    /// MSE, not amplified: in lamp's tables LAMP per element changed image AUROC by −0.0013 on
    /// Fashion-MNIST with MSE and by nothing measurable elsewhere, so the default is the plain
    /// loss; `LossConfig::lamp()` is the method as its authors apply it.
    fn default() -> Self {
        LossConfig {
            metric: Metric::Mse,
            amp: Amp::None,
            granularity: Granularity::Element,
        }
    }
}

impl LossConfig {
    /// MSE amplified per element: LAMP as its authors apply it.
    pub fn lamp() -> Self {
        LossConfig {
            amp: Amp::Lamp,
            ..Default::default()
        }
    }
}

/// In people's words: "MSE, LAMP per element", "SSIM, no amplification".
impl std::fmt::Display for LossConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let metric = match self.metric {
            Metric::Mae => "MAE",
            Metric::Mse => "MSE",
            Metric::Ssim => "SSIM",
        };
        match self.amp {
            Amp::None => write!(f, "{metric}, no amplification"),
            Amp::Lamp => {
                let per = match self.granularity {
                    Granularity::Element => "element",
                    Granularity::Sample => "sample",
                    Granularity::Batch => "batch",
                };
                write!(f, "{metric}, LAMP per {per}")
            }
        }
    }
}

/// e is clamped to [0, CLAMP_MAX] inside A(e) = −ln(1 − e), so that A stays finite.
pub const CLAMP_MAX: f64 = 1.0 - 1e-6;

/// The plain (un-amplified) error of one sample [C, H, W] against a reference image, in f64 on the
/// host: the mean of e over the sample's elements (over its SSIM map for `ssim`).
pub fn sample_error(metric: Metric, shape: [usize; 3], x: &[f64], y: &[f64]) -> f64 {
    let (sum, n) = match metric {
        Metric::Mae | Metric::Mse => {
            let e = x.iter().zip(y).map(|(xv, yv)| {
                let d = yv - xv;
                if metric == Metric::Mae {
                    d.abs()
                } else {
                    d * d
                }
            });
            (e.sum::<f64>(), x.len())
        }
        Metric::Ssim => {
            let [c_n, h, w] = shape;
            let (mh, mw) = (map_side(h), map_side(w));
            let mut s = 0.0;
            for c in 0..c_n {
                for py in 0..mh {
                    for px in 0..mw {
                        let win = ssim_window(|q| x[q], |q| y[q], w, (c * h + py) * w + px);
                        s += (1.0 - win.s) / 2.0;
                    }
                }
            }
            (s, c_n * mh * mw)
        }
    };
    sum / n as f64
}
