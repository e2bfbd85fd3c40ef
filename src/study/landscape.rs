//! `lamp landscape`: the loss surface around trained weights along two random filter-normalised
//! directions (Li et al., "Visualizing the Loss Landscape of Neural Nets", 2018), for the plain
//! and the amplified loss on the same model and batch. One forward pass on the device per grid
//! point gives both: the per-sample plain errors and the amplified loss.
//!
//! Directions: Gaussian, then each filter (a weight tensor's slice along its first dimension)
//! rescaled to the norm of the same filter of the trained weights; biases get no direction (Li
//! et al.'s "ignore biases" setting). Sharpness: the mean rise of each loss over the grid points
//! within radius r of the trained weights (the centre left out), absolute and relative to the
//! loss there.

use crate::data::Dataset;
use crate::detect::Checkpoint;
use crate::device::Device;
use crate::engine::{fitting_batch, Engine};
use crate::error::{Error, Result};
use crate::fsutil::{ensure_dir, write_atomic};
use crate::model::{Amp, Granularity, LossConfig};
use crate::render::chart::Chart;
use crate::render::plot;
use crate::render::{png_bytes, table};
use crate::rng::SplitMix64;
use image::RgbImage;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// A random direction in parameter space, filter-normalised against `params`.
pub fn direction(ck: &Checkpoint, rng: &mut SplitMix64) -> Vec<f32> {
    let table = ck.arch.param_table();
    let mut d = vec![0f32; table.len()];
    for e in &table.entries {
        if e.shape.len() < 2 {
            continue; // biases: no direction
        }
        let filters = e.shape[0];
        let per = e.len() / filters;
        for f in 0..filters {
            let r = e.offset + f * per..e.offset + (f + 1) * per;
            let g: Vec<f64> = (0..per).map(|_| rng.gaussian()).collect();
            let gn = g.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            let wn = ck.params[r.clone()]
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            for (dst, gv) in d[r].iter_mut().zip(&g) {
                *dst = (gv / gn * wn) as f32;
            }
        }
    }
    d
}

#[derive(Serialize, Debug)]
pub struct Surface {
    pub alphas: Vec<f64>,
    /// `plain[i][j]`: plain loss at (alpha_i, beta_j).
    pub plain: Vec<Vec<f64>>,
    pub amplified: Vec<Vec<f64>>,
    pub amplification: LossConfig,
    pub batch: usize,
    pub sharpness_radius: f64,
    pub plain_at_center: f64,
    pub amplified_at_center: f64,
    pub plain_mean_rise: f64,
    pub amplified_mean_rise: f64,
    pub plain_relative_rise: f64,
    pub amplified_relative_rise: f64,
}

/// Largest grid (points per direction): 201² forward passes already take hours on a CPU.
pub const MAX_GRID: usize = 201;

/// The grid and the batch the losses are measured on.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Grid points per direction (at least 3).
    pub grid: usize,
    /// The grid spans [-radius, radius] along each (filter-normalised) direction.
    pub radius: f64,
    /// Samples in the batch (fewer where the device holds fewer).
    pub batch: usize,
    /// Draws the batch and the directions.
    pub seed: u64,
}

/// A batch of up to `size` samples of `data`, drawn by a seeded shuffle.
pub fn draw_batch(data: &Dataset, size: usize, seed: u64) -> Vec<f32> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    SplitMix64::new(seed).shuffle(&mut order);
    order
        .iter()
        .take(size)
        .flat_map(|&i| data.sample(i).iter().copied())
        .collect()
}

/// Evaluates the grid around `ck` on a batch of `data` and writes plain.png, amplified.png (one
/// colour scale), landscape.json and landscape.csv into `out`.
pub fn run(
    device: Arc<Device>,
    ck: &Checkpoint,
    data: &Dataset,
    o: &Options,
    out: &Path,
) -> Result<Surface> {
    let base = ck
        .loss
        .ok_or_else(|| Error::invalid("the checkpoint has no loss settings"))?;
    let (grid, radius, seed) = (o.grid, o.radius, o.seed);
    // Odd, so that the trained weights are the centre point; 5 or more, so that points other
    // than the centre lie within the sharpness radius (half the grid's).
    if !(5..=MAX_GRID).contains(&grid) || grid % 2 == 0 {
        return Err(Error::setting(
            "grid",
            format!("must be an odd number from 5 to {MAX_GRID}, got {grid}"),
        ));
    }
    if o.batch == 0 {
        return Err(Error::setting("batch", "must be at least 1"));
    }
    if !(radius > 0.0 && radius.is_finite()) {
        return Err(Error::setting(
            "radius",
            format!("must be a positive number, got {radius}"),
        ));
    }
    // Amplification as trained, or per element when the model was trained without it.
    let amplification = LossConfig {
        metric: base.metric,
        amp: Amp::Lamp,
        granularity: if base.amp == Amp::Lamp {
            base.granularity
        } else {
            Granularity::Element
        },
    };
    let batch = fitting_batch(&device, &ck.arch, base, o.batch.max(1)).max(1);
    let x = draw_batch(data, batch, seed);
    let n = x.len() / ck.arch.input_len();
    let mut e = Engine::new(device, ck.arch.clone(), amplification, n, &ck.params)?;
    e.upload_batch(&x, n)?;
    let mut rng = SplitMix64::new(seed);
    let (d1, d2) = (direction(ck, &mut rng), direction(ck, &mut rng));
    // From the centre (exactly 0: the trained weights) out to ±radius.
    let c = grid / 2;
    let alphas: Vec<f64> = (0..grid)
        .map(|i| radius * (i as f64 - c as f64) / c as f64)
        .collect();
    let mut plain = vec![vec![0.0; grid]; grid];
    let mut amplified = vec![vec![0.0; grid]; grid];
    let mut p = vec![0f32; ck.params.len()];
    for (i, &a) in alphas.iter().enumerate() {
        for (j, &b) in alphas.iter().enumerate() {
            for (t, v) in p.iter_mut().enumerate() {
                *v = ck.params[t] + (a * d1[t] as f64 + b * d2[t] as f64) as f32;
            }
            e.write_params(&p);
            e.score_step(n)?;
            let errors = e.errors(n)?;
            plain[i][j] = errors.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            amplified[i][j] = e.wait_stats()?.loss as f64;
        }
    }
    let finite = plain
        .iter()
        .chain(&amplified)
        .flatten()
        .all(|v| v.is_finite());
    if !finite {
        return Err(Error::NonFinite(format!(
            "some losses on the grid are not finite: the radius ({radius}) takes the weights \
             too far from the trained ones; give a smaller --radius"
        )));
    }
    let (p0, a0) = (plain[c][c], amplified[c][c]);
    let r = radius / 2.0;
    let (mut rp, mut ra, mut cnt) = (0.0, 0.0, 0usize);
    for (i, &a) in alphas.iter().enumerate() {
        for (j, &b) in alphas.iter().enumerate() {
            let centre = i == c && j == c;
            if !centre && (a * a + b * b).sqrt() <= r + 1e-12 {
                rp += plain[i][j] - p0;
                ra += amplified[i][j] - a0;
                cnt += 1;
            }
        }
    }
    let s = Surface {
        plain_mean_rise: rp / cnt as f64,
        amplified_mean_rise: ra / cnt as f64,
        plain_relative_rise: rp / cnt as f64 / p0,
        amplified_relative_rise: ra / cnt as f64 / a0,
        alphas,
        plain,
        amplified,
        amplification,
        batch: n,
        sharpness_radius: r,
        plain_at_center: p0,
        amplified_at_center: a0,
    };
    ensure_dir(out)?;
    let lo = s
        .plain
        .iter()
        .chain(&s.amplified)
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = s
        .plain
        .iter()
        .chain(&s.amplified)
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let title_p = format!("plain {:?} loss", base.metric).to_lowercase();
    let title_a = format!("amplified ({:?}) loss", amplification.granularity).to_lowercase();
    write_atomic(
        &out.join("plain.png"),
        &png_bytes(&surface_png(&s.alphas, &s.plain, lo, hi, &title_p)?)?,
    )?;
    write_atomic(
        &out.join("amplified.png"),
        &png_bytes(&surface_png(&s.alphas, &s.amplified, lo, hi, &title_a)?)?,
    )?;
    write_atomic(
        &out.join("landscape.json"),
        serde_json::to_string_pretty(&s)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let mut rows = Vec::new();
    for (i, a) in s.alphas.iter().enumerate() {
        for (j, b) in s.alphas.iter().enumerate() {
            let v = [*a, *b, s.plain[i][j], s.amplified[i][j]];
            rows.push(v.map(|x| x.to_string()).to_vec());
        }
    }
    let header = ["alpha", "beta", "plain", "amplified"];
    write_atomic(&out.join("landscape.csv"), &table::csv(&header, &rows)?)?;
    Ok(s)
}

/// A heat map of the surface on the shared logarithmic scale [lo, hi], with iso-lines at 8
/// levels, axes labelled with the step along each direction, and a colour bar.
fn surface_png(alphas: &[f64], z: &[Vec<f64>], lo: f64, hi: f64, title: &str) -> Result<RgbImage> {
    let (a0, a1) = (alphas[0], alphas[alphas.len() - 1]);
    let mut c = Chart::new(
        640,
        540,
        title,
        "alpha (direction 1)",
        "beta (direction 2)",
        (a0, a1),
        (a0, a1),
    );
    let n = alphas.len();
    let step = (a1 - a0) / (n - 1) as f64;
    // Logarithmic colours: the surface spans orders of magnitude away from the minimum.
    let (llo, lhi) = (lo.max(1e-12).ln(), hi.max(1e-12).ln());
    let t = |v: f64| ((v.max(1e-12).ln() - llo) / (lhi - llo).max(1e-300)) as f32;
    let level = |v: f64| (t(v) * 8.0).floor().min(7.0) as i32;
    let h = step / 2.0;
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (alphas[i], alphas[j]);
            c.rect((a - h, b - h), (a + h, b + h), plot::turbo(t(z[i][j])));
        }
    }
    // Iso-lines: cell edges where the level changes.
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (alphas[i], alphas[j]);
            if i + 1 < n && level(z[i][j]) != level(z[i + 1][j]) {
                c.polyline(&[a + h, a + h], &[b - h, b + h], plot::WHITE);
            }
            if j + 1 < n && level(z[i][j]) != level(z[i][j + 1]) {
                c.polyline(&[a - h, a + h], &[b + h, b + h], plot::WHITE);
            }
        }
    }
    c.point((0.0, 0.0), plot::BLACK);
    c.colour_bar(&format!("{lo:.4}"), &format!("{hi:.3}"), "log scale");
    c.png()
}
