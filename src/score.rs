//! Scoring: image scores from the device, pixel anomaly maps from the reconstruction, the
//! calibrated threshold stored in a checkpoint, and the pictures drawn from maps.
//!
//! Score of an image: its plain error ℓ with the training metric (DESIGN §1); higher = more
//! anomalous; verdict anomalous when score > threshold (PyOD's convention). Normalised score:
//! (score − threshold) / (max − min) + 0.5 clipped to [0, 1], so the threshold maps to 0.5
//! (anomalib's convention), with min and max taken over the calibration images.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::kernels::Metric;
use crate::metrics;
use crate::plot;
use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

/// How the threshold was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdMethod {
    /// The (1 − contamination) quantile of the calibration scores.
    Quantile,
    /// mean + k·σ of the calibration scores.
    Sigma,
}

/// Stored in the checkpoint (metadata key `calibration`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub method: ThresholdMethod,
    pub contamination: f64,
    pub k: f64,
    pub threshold: f32,
    pub min: f32,
    pub max: f32,
    pub mean: f64,
    pub std: f64,
    /// Threshold of pixel maps, same rule over the calibration images' pixels.
    pub pixel_threshold: f32,
    /// Largest pixel value seen in calibration (scales heat maps).
    pub pixel_max: f32,
    pub count: usize,
    /// "held-out" or "training" (when no images were held out).
    pub source: String,
}

impl Calibration {
    pub fn fit(
        scores: &[f32],
        pixels: &[f32],
        method: ThresholdMethod,
        contamination: f64,
        k: f64,
        source: &str,
    ) -> Result<Calibration> {
        if scores.is_empty() {
            return Err(Error::invalid("no images to calibrate the threshold on"));
        }
        if !(0.0..1.0).contains(&contamination) {
            return Err(Error::invalid(format!(
                "--contamination must be in [0, 1), got {contamination}"
            )));
        }
        let (mean, std) = metrics::mean_std(scores);
        let rule = |v: &[f32]| match method {
            ThresholdMethod::Quantile => metrics::quantile(v, 1.0 - contamination),
            ThresholdMethod::Sigma => {
                let (m, s) = metrics::mean_std(v);
                (m + k * s) as f32
            }
        };
        let min = scores.iter().copied().fold(f32::INFINITY, f32::min);
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        Ok(Calibration {
            method,
            contamination,
            k,
            threshold: rule(scores),
            min,
            max,
            mean,
            std,
            pixel_threshold: rule(pixels),
            pixel_max: pixels.iter().copied().fold(0.0, f32::max),
            count: scores.len(),
            source: source.into(),
        })
    }

    pub fn normalise(&self, raw: f32) -> f32 {
        let span = (self.max - self.min).max(f32::EPSILON);
        ((raw - self.threshold) / span + 0.5).clamp(0.0, 1.0)
    }

    pub fn is_anomalous(&self, raw: f32) -> bool {
        raw > self.threshold
    }
}

/// Scores and reconstructions of `x` (n samples), in batches of the engine's size.
pub fn score_with_recon(e: &mut Engine, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
    let p = e.arch.input_len();
    let n = x.len() / p;
    let (mut scores, mut recon) = (Vec::with_capacity(n), Vec::with_capacity(x.len()));
    for start in (0..n).step_by(e.max_batch) {
        let b = e.max_batch.min(n - start);
        e.upload_batch(&x[start * p..(start + b) * p], b)?;
        e.score_step(b)?;
        scores.extend(e.errors(b)?);
        recon.extend(e.recon(b)?);
    }
    Ok((scores, recon))
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
            let (mh, mw) = (h.saturating_sub(10), w.saturating_sub(10));
            if mh == 0 || mw == 0 {
                return map;
            }
            let mut e = vec![0f64; mh * mw];
            for ch in 0..c {
                let (xs, ys) = (&x[ch * h * w..][..h * w], &y[ch * h * w..][..h * w]);
                for py in 0..mh {
                    for px in 0..mw {
                        let win = crate::reference::ssim_window(
                            |q| xs[q] as f64,
                            |q| ys[q] as f64,
                            w,
                            py * w + px,
                        );
                        e[py * mw + px] += (1.0 - win.s) / 2.0 / c as f64;
                    }
                }
            }
            for yy in 0..h {
                for xx in 0..w {
                    let py = yy.saturating_sub(5).min(mh - 1);
                    let px = xx.saturating_sub(5).min(mw - 1);
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

/// The image (CHW in [0, 1]) as RGB, scaled up by an integer factor (nearest).
pub fn to_rgb(x: &[f32], shape: [u32; 3], scale: u32) -> RgbImage {
    let [c, h, w] = shape;
    let n = (h * w) as usize;
    RgbImage::from_fn(w * scale, h * scale, |xx, yy| {
        let i = ((yy / scale) * w + xx / scale) as usize;
        let v = |ch: usize| (x[ch * n + i].clamp(0.0, 1.0) * 255.0).round() as u8;
        if c == 1 {
            Rgb([v(0), v(0), v(0)])
        } else {
            Rgb([v(0), v(1), v(2)])
        }
    })
}

/// The map through the turbo colour map, 0 ↦ blue and `vmax` ↦ red, scaled up.
pub fn heat(map: &[f32], w: u32, h: u32, vmax: f32, scale: u32) -> RgbImage {
    RgbImage::from_fn(w * scale, h * scale, |xx, yy| {
        plot::turbo(map[((yy / scale) * w + xx / scale) as usize] / vmax.max(f32::EPSILON))
    })
}

/// Outlines the region where `mask` is set (its border pixels) in `c`.
pub fn outline(img: &mut RgbImage, mask: &[bool], w: u32, h: u32, scale: u32, c: Rgb<u8>) {
    let at = |x: i64, y: i64| {
        x >= 0 && y >= 0 && x < w as i64 && y < h as i64 && mask[(y as u32 * w + x as u32) as usize]
    };
    for y in 0..(h * scale) as i64 {
        for x in 0..(w * scale) as i64 {
            let (mx, my) = (x / scale as i64, y / scale as i64);
            if !at(mx, my) {
                continue;
            }
            // Border of the upscaled region: a neighbour (in upscaled pixels) outside it.
            let outside = [(-1, 0), (1, 0), (0, -1), (0, 1)].iter().any(|(dx, dy)| {
                !at(
                    (x + dx).div_euclid(scale as i64),
                    (y + dy).div_euclid(scale as i64),
                )
            });
            if outside {
                img.put_pixel(x as u32, y as u32, c);
            }
        }
    }
}

/// Heat-map overlay: the image blended with the coloured map, the predicted region outlined in
/// white, and a colour bar with its scale at the right.
pub fn overlay(
    x: &[f32],
    shape: [u32; 3],
    map: &[f32],
    vmax: f32,
    pixel_threshold: f32,
) -> RgbImage {
    let [_, h, w] = shape;
    let scale = (256 / h.max(w)).max(1);
    let base = to_rgb(x, shape, scale);
    let hm = heat(map, w, h, vmax, scale);
    let (iw, ih) = (w * scale, h * scale);
    let mut out = RgbImage::from_pixel(iw + 70, ih.max(120), plot::WHITE);
    for (xx, yy, p) in base.enumerate_pixels() {
        let q = hm.get_pixel(xx, yy);
        let mix = |a: u8, b: u8| ((a as u16 + b as u16) / 2) as u8;
        out.put_pixel(
            xx,
            yy,
            Rgb([mix(p[0], q[0]), mix(p[1], q[1]), mix(p[2], q[2])]),
        );
    }
    let mask: Vec<bool> = map.iter().map(|&v| v > pixel_threshold).collect();
    outline(&mut out, &mask, w, h, scale, plot::WHITE);
    plot::colorbar(
        &mut out,
        iw as i32 + 8,
        8,
        ih.min(240) as i32 - 16,
        "0",
        &format!("{vmax:.2}"),
    );
    out
}

/// The raw map as a 16-bit grayscale PNG buffer: value v ↦ round(v · 65535), v clipped to [0, 1].
pub fn map_u16(map: &[f32], w: u32, h: u32) -> image::ImageBuffer<image::Luma<u16>, Vec<u16>> {
    image::ImageBuffer::from_fn(w, h, |x, y| {
        image::Luma([(map[(y * w + x) as usize].clamp(0.0, 1.0) * 65535.0).round() as u16])
    })
}

/// Encodes an image as PNG bytes (for atomic writes).
pub fn png_bytes<P: image::PixelWithColorType, C: std::ops::Deref<Target = [P::Subpixel]>>(
    img: &image::ImageBuffer<P, C>,
) -> Result<Vec<u8>>
where
    [P::Subpixel]: image::EncodableLayout,
{
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::invalid(format!("cannot encode PNG: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_maps_threshold_to_half_and_flags_above() {
        let s: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let c = Calibration::fit(&s, &s, ThresholdMethod::Quantile, 0.01, 3.0, "held-out").unwrap();
        assert!((c.threshold - 0.9801).abs() < 1e-4, "{}", c.threshold);
        assert_eq!(c.normalise(c.threshold), 0.5);
        assert!(c.is_anomalous(0.99) && !c.is_anomalous(0.5));
        let k = Calibration::fit(&s, &s, ThresholdMethod::Sigma, 0.01, 2.0, "held-out").unwrap();
        let (m, sd) = metrics::mean_std(&s);
        assert!((k.threshold as f64 - (m + 2.0 * sd)).abs() < 1e-5);
    }

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
