//! The scoring and map pipeline, one for every command. An image's plain error ℓ is its mean
//! per-element error with the training metric; its pixel anomaly map is the per-element error
//! averaged over channels (for SSIM the (1 − SSIM)/2 map), Gaussian-smoothed. Its score (higher
//! = more anomalous) aggregates them as the checkpoint's `ScoreConfig` says: ℓ itself (`mean`),
//! the map's maximum (`max`), or the mean of the map's top k% pixels (`topk`). Calibration,
//! evaluation, the experiment runner and `lamp score` all take their errors and maps from
//! `score_with_maps`.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::ssim::{self, ssim_window};
use crate::model::{Choice, Metric};
use serde::{Deserialize, Serialize};

/// The smoothing of checkpoints that do not say (σ in pixels).
pub const MAP_SIGMA: f32 = 4.0;

/// How an image's score is made from its error and its map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// The plain error ℓ (the mean per-element error).
    Mean,
    /// The largest value of the smoothed map.
    Max,
    /// The mean of the smoothed map's highest `top_k` fraction of pixels.
    Topk,
}

impl Aggregate {
    /// What the score is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Aggregate::Mean => "mean error",
            Aggregate::Max => "maximum of the map",
            Aggregate::Topk => "mean of the map's top pixels",
        }
    }

    /// The score a model of `arch` gets unless told otherwise (`lamp train --score-agg auto`):
    /// the mean error for fmnist-ae, whose benchmark's anomalies are whole images of another
    /// class (the demo: mean 0.976 against topk 0.963 image AUROC), and the top of the map for
    /// conv-ae, which is for photographs, where a defect covers a few per cent of the image and
    /// the mean dilutes it (the object benchmark, README: topk above mean on every object).
    pub fn default_for(arch: &crate::model::Arch) -> Aggregate {
        if arch.name == "fmnist-ae" {
            Aggregate::Mean
        } else {
            Aggregate::Topk
        }
    }
}

impl Choice for Aggregate {
    const ALL: &'static [Self] = &[Aggregate::Mean, Aggregate::Max, Aggregate::Topk];
    fn name(self) -> &'static str {
        match self {
            Aggregate::Mean => "mean",
            Aggregate::Max => "max",
            Aggregate::Topk => "topk",
        }
    }
}

/// How images are scored, stored in the checkpoint (metadata key `score`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreConfig {
    pub aggregate: Aggregate,
    /// The fraction of pixels `topk` averages.
    pub top_k: f64,
    /// The maps' Gaussian smoothing, σ in pixels.
    pub sigma: f32,
    /// Images are aligned to the checkpoint's reference image by shifts of up to this many pixels
    /// each way before they are scored (align.rs); 0: not aligned.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub align: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Default for ScoreConfig {
    /// The plain error, maps smoothed with σ = 4 px (what checkpoints without `score` used).
    fn default() -> Self {
        ScoreConfig {
            aggregate: Aggregate::Mean,
            top_k: 0.01,
            sigma: MAP_SIGMA,
            align: 0,
        }
    }
}

/// Largest smoothing σ (pixels): its kernel spans 6σ, and maps are at most 4096 pixels a side.
pub const MAX_SIGMA: f32 = 1024.0;

impl ScoreConfig {
    /// The image score in words: "mean error", "maximum of the map", "mean of the map's top 1%
    /// of pixels".
    pub fn describe_aggregate(&self) -> String {
        match self.aggregate {
            Aggregate::Topk => format!("mean of the map's top {}% of pixels", self.top_k * 100.0),
            a => a.describe().to_string(),
        }
    }
    /// Smoothing scaled to maps of `side` pixels: σ = 4 at 256 px, between 1 and 8.
    pub fn sigma_for(side: u32) -> f32 {
        (4.0 * side as f32 / 256.0).clamp(1.0, 8.0)
    }
    pub fn check(&self) -> Result<()> {
        if !(self.top_k > 0.0 && self.top_k <= 1.0) {
            return Err(Error::setting(
                "top_k",
                format!("must be in (0, 1], got {}", self.top_k),
            ));
        }
        if !(self.sigma >= 0.0 && self.sigma <= MAX_SIGMA) {
            return Err(Error::setting(
                "sigma",
                format!("must be a number from 0 to {MAX_SIGMA}, got {}", self.sigma),
            ));
        }
        Ok(())
    }
    /// Whether scores need the maps (every aggregate but `mean`).
    pub fn needs_maps(&self) -> bool {
        self.aggregate != Aggregate::Mean
    }
    /// The score of an image with plain error `error` and smoothed map `map`.
    pub fn score(&self, error: f32, map: &[f32]) -> f32 {
        aggregate(self.aggregate, self.top_k, error, map)
    }
}

/// An image's score by `agg` from its plain error and smoothed map.
pub fn aggregate(agg: Aggregate, top_k: f64, error: f32, map: &[f32]) -> f32 {
    match agg {
        Aggregate::Mean => error,
        Aggregate::Max => map.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        Aggregate::Topk => {
            let k = top_count(map.len(), top_k);
            let mut v = map.to_vec();
            v.sort_by(|a, b| b.total_cmp(a));
            (v[..k.min(v.len())].iter().map(|&x| x as f64).sum::<f64>() / k as f64) as f32
        }
    }
}

/// The normal map of normal images' `maps`: each pixel's mean (summed in f64).
pub fn normal_map(maps: &[Vec<f32>]) -> Vec<f32> {
    let len = maps.first().map_or(0, Vec::len);
    let mut sum = vec![0f64; len];
    for m in maps {
        for (s, &v) in sum.iter_mut().zip(m) {
            *s += v as f64;
        }
    }
    let n = maps.len().max(1) as f64;
    sum.into_iter().map(|s| (s / n) as f32).collect()
}

/// What of `map` lies above the normal map, pixel by pixel (0 where it does not): where an image
/// differs from what normal images show there. Photographs of one part reconstruct worse at
/// some places in every image (edges, highlights, a sparkle that moves); subtracting them lets
/// a small defect elsewhere stand out (the object benchmark, README).
pub fn above_normal(map: &mut [f32], normal: &[f32]) {
    for (v, &n) in map.iter_mut().zip(normal) {
        *v = (*v - n).max(0.0);
    }
}

/// The normal map of calibration images' `maps`, returned, and each of their maps above the
/// mean of the *others'* maps: an image's own map is not in the normal map it is compared with,
/// as no new image's is, so the threshold set on them is not too low. At least two maps.
pub fn above_normal_leave_one_out(maps: &mut [Vec<f32>]) -> Vec<f32> {
    let normal = normal_map(maps);
    let n = maps.len() as f64;
    if n < 2.0 {
        return normal;
    }
    for m in maps.iter_mut() {
        for (v, &mean) in m.iter_mut().zip(&normal) {
            let others = (mean as f64 * n - *v as f64) / (n - 1.0);
            *v = (*v as f64 - others).max(0.0) as f32;
        }
    }
    normal
}

/// Where a map is over the pixel threshold: how many of its pixels, and the smallest box that
/// holds them (map pixels; `right` and `bottom` exclusive). The region a map's picture outlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub pixels: usize,
    pub left: u32,
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
}

/// The region of the `side`×`side` `map` over `threshold`, None where no pixel is.
pub fn outlined_region(map: &[f32], side: u32, threshold: f32) -> Option<Region> {
    let mut r: Option<Region> = None;
    for (i, _) in map.iter().enumerate().filter(|(_, &v)| v > threshold) {
        let (x, y) = ((i as u32) % side, (i as u32) / side);
        let g = r.get_or_insert(Region {
            pixels: 0,
            left: x,
            top: y,
            right: x + 1,
            bottom: y + 1,
        });
        g.pixels += 1;
        g.left = g.left.min(x);
        g.right = g.right.max(x + 1);
        g.top = g.top.min(y);
        g.bottom = g.bottom.max(y + 1);
    }
    r
}

impl Region {
    /// The box in the pixels of an image of `w`×`h` that was resized to the map's `side`
    /// (rounded outwards, so it still holds the region).
    pub fn in_image(&self, side: u32, w: u32, h: u32) -> [u32; 4] {
        let down = |v: u32, n: u32| (v as u64 * n as u64 / side as u64) as u32;
        let up = |v: u32, n: u32| (v as u64 * n as u64).div_ceil(side as u64) as u32;
        [
            down(self.left, w),
            down(self.top, h),
            up(self.right, w),
            up(self.bottom, h),
        ]
    }
}

/// How many of a map's `len` pixels `topk` averages: the top `top_k` fraction, at least one.
pub fn top_count(len: usize, top_k: f64) -> usize {
    ((len as f64 * top_k).ceil() as usize).clamp(1, len.max(1))
}

/// Plain errors and smoothed pixel maps of `x`: n images of the model's channels and `side`
/// pixels a side. Images of the model's input size are scored whole; larger ones (a model
/// trained on patches) window by window, the windows' maps stitched into one of `side` pixels.
pub fn errors_and_maps(
    e: &mut Engine,
    x: &[f32],
    side: u32,
    sigma: f32,
) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
    if side == e.arch.size {
        score_with_maps(e, x, sigma)
    } else {
        score_windows(e, x, side, sigma)
    }
}

/// The stride of the windows that score a large image: half a window, so every pixel lies in up
/// to four windows and no window edge goes unseen.
pub fn window_stride(window: u32) -> u32 {
    (window / 2).max(1)
}

/// The starts of windows of `window` pixels every `stride` that cover [0, side), the last flush
/// with the end.
pub fn window_starts(side: u32, window: u32, stride: u32) -> Vec<u32> {
    let last = side.saturating_sub(window);
    let mut v: Vec<u32> = (0..=last).step_by(stride.max(1) as usize).collect();
    if v.last() != Some(&last) {
        v.push(last);
    }
    v
}

/// Scores each image of `x` (n × C × side × side) window by window: every window's pixel map,
/// averaged where windows overlap, is the image's map; its mean is the image's plain error.
pub fn score_windows(
    e: &mut Engine,
    x: &[f32],
    side: u32,
    sigma: f32,
) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
    let (c, win) = (e.arch.channels, e.arch.size);
    let per = (c * side * side) as usize;
    if side < win || !x.len().is_multiple_of(per) {
        return Err(Error::invalid(format!(
            "{} values are not whole images of {c}x{side}x{side} (windows of {win})",
            x.len()
        )));
    }
    let starts = window_starts(side, win, window_stride(win));
    let p = e.arch.input_len();
    let (s, w) = (side as usize, win as usize);
    let (mut errors, mut maps) = (Vec::new(), Vec::new());
    for image in x.chunks_exact(per) {
        let mut windows = Vec::with_capacity(starts.len().pow(2) * p);
        let mut at = Vec::with_capacity(starts.len().pow(2));
        for &y0 in &starts {
            for &x0 in &starts {
                let view = crate::kernels::View {
                    y0,
                    x0,
                    ..crate::kernels::View::whole(0)
                };
                view.extract(image, c, side, win, &mut windows);
                at.push((y0 as usize, x0 as usize));
            }
        }
        let (_, recon) = e.score_with_recon(&windows)?;
        let (mut sum, mut count) = (vec![0f32; s * s], vec![0u32; s * s]);
        for (k, &(y0, x0)) in at.iter().enumerate() {
            let m = pixel_map(
                e.loss.metric,
                e.arch.input_shape(),
                &windows[k * p..][..p],
                &recon[k * p..][..p],
            );
            for y in 0..w {
                for xx in 0..w {
                    let q = (y0 + y) * s + x0 + xx;
                    sum[q] += m[y * w + xx];
                    count[q] += 1;
                }
            }
        }
        let map: Vec<f32> = sum
            .iter()
            .zip(&count)
            .map(|(v, &n)| v / n.max(1) as f32)
            .collect();
        errors.push((map.iter().map(|&v| v as f64).sum::<f64>() / map.len() as f64) as f32);
        maps.push(smooth(&map, s, s, sigma));
    }
    Ok((errors, maps))
}

/// Plain errors and smoothed pixel maps (H×W each, σ = `sigma`) of `x` (n samples of the
/// model's input), in batches of the engine's size.
pub fn score_with_maps(e: &mut Engine, x: &[f32], sigma: f32) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
    let (errors, recon) = e.score_with_recon(x)?;
    let shape = e.arch.input_shape();
    let p = e.arch.input_len();
    let (w, h) = (shape[2] as usize, shape[1] as usize);
    let maps = (0..errors.len())
        .map(|i| {
            let m = pixel_map(e.loss.metric, shape, &x[i * p..][..p], &recon[i * p..][..p]);
            smooth(&m, w, h, sigma)
        })
        .collect();
    Ok((errors, maps))
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

/// The 1-D Gaussian of `smooth` (σ > 0): 2r + 1 taps, r = ⌈4σ⌉, not normalised, and their sum
/// (each pass divides by it). The ONNX export builds its smoothing from the same taps.
pub fn smoothing_kernel(sigma: f32) -> (Vec<f32>, f32) {
    let r = (4.0 * sigma).ceil() as isize;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let ks: f32 = k.iter().sum();
    (k, ks)
}

/// Separable Gaussian smoothing (σ pixels, kernel truncated at 4σ, borders clamped).
pub fn smooth(map: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 {
        return map.to_vec();
    }
    let (k, ks) = smoothing_kernel(sigma);
    let r = (k.len() / 2) as isize;
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
    fn maps_above_normal_leave_each_image_out() {
        let maps = vec![vec![1.0, 4.0], vec![3.0, 0.0], vec![2.0, 2.0]];
        assert_eq!(normal_map(&maps), vec![2.0, 2.0]);
        let mut m = maps[0].clone();
        above_normal(&mut m, &[2.0, 2.0]);
        assert_eq!(m, vec![0.0, 2.0]);
        let mut loo = maps.clone();
        let normal = above_normal_leave_one_out(&mut loo);
        assert_eq!(normal, vec![2.0, 2.0]);
        // Image 0 against the mean of images 1 and 2: (2.5, 1.0).
        assert_eq!(loo[0], vec![0.0, 3.0]);
        assert_eq!(loo[1], vec![1.5, 0.0]);
        assert_eq!(loo[2], vec![0.0, 0.0]);
    }

    #[test]
    fn the_default_score_follows_the_model() {
        let conv = crate::model::Arch::for_images(3, 64).unwrap();
        assert_eq!(Aggregate::default_for(&conv), Aggregate::Topk);
        let fmnist = crate::model::Arch::fmnist_ae();
        assert_eq!(Aggregate::default_for(&fmnist), Aggregate::Mean);
    }

    #[test]
    fn the_outlined_region_holds_every_pixel_over_the_threshold() {
        let side = 8;
        let mut map = vec![0.1f32; 64];
        assert_eq!(outlined_region(&map, side, 0.1), None);
        for (x, y) in [(2, 5), (6, 3), (3, 4)] {
            map[y * 8 + x] = 0.5;
        }
        let r = outlined_region(&map, side, 0.1).unwrap();
        assert_eq!(
            r,
            Region {
                pixels: 3,
                left: 2,
                top: 3,
                right: 7,
                bottom: 6
            }
        );
        // An image of 100x50 resized to 8x8: map pixel x covers [12.5x, 12.5(x+1)).
        assert_eq!(r.in_image(side, 100, 50), [25, 18, 88, 38]);
        assert_eq!(r.in_image(side, 8, 8), [2, 3, 7, 6]);
    }

    #[test]
    fn windows_cover_the_image() {
        assert_eq!(
            window_starts(256, 64, 32),
            vec![0, 32, 64, 96, 128, 160, 192]
        );
        assert_eq!(window_starts(100, 64, 32), vec![0, 32, 36]);
        assert_eq!(window_starts(64, 64, 32), vec![0]);
    }

    #[test]
    fn aggregates_of_a_map() {
        let map: Vec<f32> = (1..=100).map(|v| v as f32).collect();
        assert_eq!(aggregate(Aggregate::Mean, 0.01, 7.0, &map), 7.0);
        assert_eq!(aggregate(Aggregate::Max, 0.01, 7.0, &map), 100.0);
        assert_eq!(aggregate(Aggregate::Topk, 0.01, 7.0, &map), 100.0);
        assert_eq!(aggregate(Aggregate::Topk, 0.05, 7.0, &map), 98.0);
        assert_eq!(ScoreConfig::sigma_for(256), 4.0);
        assert_eq!(ScoreConfig::sigma_for(28), 1.0);
        assert_eq!(ScoreConfig::sigma_for(4096), 8.0);
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
