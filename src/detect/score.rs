//! The scoring and map pipeline, one for every command: an image's score is its plain error ℓ
//! with the training metric (higher = more anomalous); its pixel anomaly map is the per-element
//! error averaged over channels (for SSIM the (1 − SSIM)/2 map), Gaussian-smoothed with
//! σ = `MAP_SIGMA`. Calibration, evaluation, the experiment runner and `lamp score` all take
//! their scores and maps from `score_with_maps`.

use crate::engine::Engine;
use crate::error::Result;
use crate::model::ssim::{self, ssim_window};
use crate::model::Metric;

/// Gaussian smoothing of pixel maps, in pixels, for pixel metrics, thresholds and pictures.
pub const MAP_SIGMA: f32 = 4.0;

/// Scores and smoothed pixel maps (H×W each) of `x` (n samples), in batches of the engine's size.
pub fn score_with_maps(e: &mut Engine, x: &[f32]) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
    let (scores, recon) = e.score_with_recon(x)?;
    let shape = e.arch.input_shape();
    let p = e.arch.input_len();
    let (w, h) = (shape[2] as usize, shape[1] as usize);
    let maps = (0..scores.len())
        .map(|i| {
            let m = pixel_map(e.loss.metric, shape, &x[i * p..][..p], &recon[i * p..][..p]);
            smooth(&m, w, h, MAP_SIGMA)
        })
        .collect();
    Ok((scores, maps))
}

/// The pixel anomaly map (H×W) of one sample: the per-element error averaged over channels; for
/// SSIM the (1 − SSIM)/2 map of the valid windows, placed at the windows' centres and extended
/// to the border by the nearest valid value.
pub fn pixel_map(metric: Metric, shape: [u32; 3], x: &[f32], y: &[f32]) -> Vec<f32> {
    let [c, h, w] = shape.map(|v| v as usize);
    let mut map = vec![0f32; h * w];
    match metric {
        Metric::Mae | Metric::Mse => {
            for ch in 0..c {
                for i in 0..h * w {
                    let d = x[ch * h * w + i] - y[ch * h * w + i];
                    map[i] += if metric == Metric::Mae {
                        d.abs()
                    } else {
                        d * d
                    } / c as f32;
                }
            }
        }
        Metric::Ssim => {
            let (mh, mw) = (ssim::map_side(h), ssim::map_side(w));
            if mh == 0 || mw == 0 {
                return map;
            }
            let mut e = vec![0f64; mh * mw];
            for ch in 0..c {
                let (xs, ys) = (&x[ch * h * w..][..h * w], &y[ch * h * w..][..h * w]);
                for py in 0..mh {
                    for px in 0..mw {
                        let win = ssim_window(|q| xs[q] as f64, |q| ys[q] as f64, w, py * w + px);
                        e[py * mw + px] += (1.0 - win.s) / 2.0 / c as f64;
                    }
                }
            }
            for yy in 0..h {
                for xx in 0..w {
                    let py = yy.saturating_sub(ssim::HALF).min(mh - 1);
                    let px = xx.saturating_sub(ssim::HALF).min(mw - 1);
                    map[yy * w + xx] = e[py * mw + px] as f32;
                }
            }
        }
    }
    map
}

/// Separable Gaussian smoothing (σ pixels, kernel truncated at 4σ, borders clamped).
pub fn smooth(map: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 {
        return map.to_vec();
    }
    let r = (4.0 * sigma).ceil() as isize;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let ks: f32 = k.iter().sum();
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0f32; src.len()];
        for y in 0..h as isize {
            for x in 0..w as isize {
                let mut s = 0.0;
                for (i, kv) in k.iter().enumerate() {
                    let o = i as isize - r;
                    let (sx, sy) = if horizontal {
                        ((x + o).clamp(0, w as isize - 1), y)
                    } else {
                        (x, (y + o).clamp(0, h as isize - 1))
                    };
                    s += kv * src[sy as usize * w + sx as usize];
                }
                out[y as usize * w + x as usize] = s / ks;
            }
        }
        out
    };
    pass(&pass(map, true), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssim_map_of_identical_images_is_zero_and_smoothing_keeps_mass() {
        let x: Vec<f32> = (0..400).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        let m = pixel_map(Metric::Ssim, [1, 20, 20], &x, &x);
        assert!(m.iter().all(|v| v.abs() < 1e-6));
        let mut d = vec![0f32; 400];
        d[210] = 1.0;
        let s = smooth(&d, 20, 20, 2.0);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-3);
        assert!(s[210] < 0.1 && s[210] > s[215]);
    }
}
