//! Alignment of parts that sit a few pixels apart from image to image (`--align PX`).
//!
//! A reconstruction model learns the part where the training images put it; a part framed a few
//! pixels elsewhere is an anomaly along every edge, and a normal map of shifted parts is bright
//! along every edge too. With alignment, each image is moved by the whole-pixel shift within
//! ±reach that brings it nearest the model's reference image (the mean training image, itself
//! made of the aligned training images) before it is scored or trained on. The strip a shift
//! uncovers is filled from the reference (a strip of repeated edge pixels would be an anomaly of
//! its own), and its pixels are cleared from the map, which is then moved back to the image's own
//! pixels. An image's score is a function of its map's values, not their places, so it is the
//! same whether taken before or after the map is moved back.
//!
//! Nearest means the least mean squared difference over the interior every shift covers, each
//! side's mean removed (the brightness of the light changes between images).

use super::score;
use crate::data::Dataset;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// An image's shift: the aligned image at (x, y) is the image at (x + dx, y + dy).
pub type Shift = (i32, i32);

/// What images are aligned to, and how far they may move.
#[derive(Clone, Copy)]
pub struct Alignment<'a> {
    /// The reference image [C, S, S].
    pub reference: &'a [f32],
    /// Shifts of up to this many pixels each way.
    pub reach: u32,
}

/// Shifts of more than this fraction of the side would leave too little interior to compare.
pub const MAX_REACH_FRACTION: f64 = 0.25;

impl<'a> Alignment<'a> {
    /// The alignment of a model with this reference (none without one).
    pub fn of(reference: Option<&'a [f32]>, reach: u32) -> Option<Self> {
        reference.map(|reference| Alignment { reference, reach })
    }

    fn side(&self, channels: usize) -> usize {
        ((self.reference.len() / channels.max(1)) as f64).sqrt() as usize
    }

    /// The shift within ±reach that brings `img` ([C, S, S], as the reference) nearest the
    /// reference; ties go to the smaller shift.
    pub fn best_shift(&self, img: &[f32], channels: usize) -> Shift {
        let s = self.side(channels);
        let r = (self.reach as usize).min(s.saturating_sub(1) / 2);
        let inner = s - 2 * r;
        let n = (channels * inner * inner) as f64;
        // The reference's interior, its mean removed.
        let mut target = Vec::with_capacity(n as usize);
        for c in 0..channels {
            for y in r..s - r {
                let row = &self.reference[(c * s + y) * s..][r..s - r];
                target.extend(row.iter().map(|&v| v as f64));
            }
        }
        let t_mean = target.iter().sum::<f64>() / n;
        target.iter_mut().for_each(|v| *v -= t_mean);
        let distance = |dx: i32, dy: i32| {
            let (mut sum, mut sq, mut cross) = (0.0, 0.0, 0.0);
            let mut k = 0;
            for c in 0..channels {
                for y in r..s - r {
                    let sy = (y as i32 + dy) as usize;
                    let x0 = (r as i32 + dx) as usize;
                    for &v in &img[(c * s + sy) * s..][x0..x0 + inner] {
                        let v = v as f64;
                        sum += v;
                        sq += v * v;
                        cross += v * target[k];
                        k += 1;
                    }
                }
            }
            // Σ((v − v̄) − t)² with Σt = 0, less Σt², the same for every shift.
            sq - sum * sum / n - 2.0 * cross
        };
        let r = r as i32;
        let size = |(dx, dy): Shift| dx.abs().max(dy.abs());
        let mut best: (Shift, f64) = ((0, 0), distance(0, 0));
        for dy in -r..=r {
            for dx in -r..=r {
                let d = distance(dx, dy);
                if d < best.1 || (d == best.1 && size((dx, dy)) < size(best.0)) {
                    best = ((dx, dy), d);
                }
            }
        }
        best.0
    }

    /// `img` moved by `shift`, the uncovered strip filled from the reference.
    pub fn moved(&self, img: &[f32], channels: usize, (dx, dy): Shift) -> Vec<f32> {
        let s = self.side(channels);
        let mut out = self.reference.to_vec();
        for c in 0..channels {
            for y in 0..s {
                let sy = y as i32 + dy;
                if !(0..s as i32).contains(&sy) {
                    continue;
                }
                for x in 0..s {
                    let sx = x as i32 + dx;
                    if (0..s as i32).contains(&sx) {
                        out[(c * s + y) * s + x] = img[(c * s + sy as usize) * s + sx as usize];
                    }
                }
            }
        }
        out
    }

    /// Every image of `x` ([n, C, S, S]) aligned, and the shift of each.
    pub fn align_all(&self, x: &[f32], channels: usize) -> Result<(Vec<f32>, Vec<Shift>)> {
        let per = self.reference.len().max(1);
        if !x.len().is_multiple_of(per) {
            return Err(Error::invalid(format!(
                "{} values are not whole images of the reference's {per}",
                x.len()
            )));
        }
        let n = x.len() / per;
        let threads = std::thread::available_parallelism()
            .map_or(2, |t| t.get())
            .min(n.max(1));
        let chunk = n.div_ceil(threads).max(1);
        let parts: Vec<(Vec<f32>, Vec<Shift>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = x
                .chunks(chunk * per)
                .map(|part| {
                    scope.spawn(move || {
                        let (mut out, mut shifts) = (Vec::with_capacity(part.len()), Vec::new());
                        for img in part.chunks(per) {
                            let d = self.best_shift(img, channels);
                            out.extend(self.moved(img, channels, d));
                            shifts.push(d);
                        }
                        (out, shifts)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let (mut out, mut shifts) = (Vec::with_capacity(x.len()), Vec::with_capacity(n));
        for (o, s) in parts {
            out.extend(o);
            shifts.extend(s);
        }
        Ok((out, shifts))
    }
}

/// The reference of training images `x` ([n, C, S, S]): their mean, then twice the mean of the
/// images aligned to it.
pub fn reference_of(x: &[f32], channels: usize, side: usize, reach: u32) -> Result<Vec<f32>> {
    let per = channels * side * side;
    let mean = |v: &[f32]| {
        let n = (v.len() / per).max(1);
        let mut m = vec![0f64; per];
        for img in v.chunks(per) {
            m.iter_mut().zip(img).for_each(|(a, &b)| *a += b as f64);
        }
        m.into_iter()
            .map(|a| (a / n as f64) as f32)
            .collect::<Vec<f32>>()
    };
    let mut reference = mean(x);
    for _ in 0..2 {
        let al = Alignment {
            reference: &reference,
            reach,
        };
        reference = mean(&al.align_all(x, channels)?.0);
    }
    Ok(reference)
}

/// A training run's images, aligned.
pub struct TrainingSets {
    /// The reference of the training images.
    pub reference: Vec<f32>,
    /// The training images moved onto it.
    pub train: Dataset,
    /// The held-out images moved onto it.
    pub held_out: Option<Dataset>,
}

/// A training run's images aligned by shifts of up to `reach` pixels (none where it is 0): the
/// reference of the training images `tr`, and `tr` and the held-out images `val` moved onto it.
/// Whole images only: `tr` at the model's input size, `side`.
pub fn training_sets(
    tr: &Dataset,
    val: Option<&Dataset>,
    reach: u32,
    side: u32,
) -> Result<Option<TrainingSets>> {
    if reach == 0 {
        return Ok(None);
    }
    let [c, s, _] = tr.shape;
    if s != side {
        return Err(Error::setting(
            "align",
            "aligns whole images, not patches: a model trained on patches learns the texture \
             wherever it lies",
        ));
    }
    check_reach(reach, side)?;
    let c = c as usize;
    let reference = reference_of(&tr.samples, c, s as usize, reach)?;
    let al = Alignment {
        reference: &reference,
        reach,
    };
    let moved = |d: &Dataset| -> Result<Dataset> {
        Ok(Dataset {
            samples: al.align_all(&d.samples, c)?.0,
            shape: d.shape,
            names: d.names.clone(),
            labels: d.labels.clone(),
        })
    };
    let (train, held_out) = (moved(tr)?, val.map(moved).transpose()?);
    Ok(Some(TrainingSets {
        reference,
        train,
        held_out,
    }))
}

/// Refuses a reach that would leave too little of the image to compare (`MAX_REACH_FRACTION`).
pub fn check_reach(reach: u32, side: u32) -> Result<()> {
    let most = (side as f64 * MAX_REACH_FRACTION) as u32;
    if reach > most {
        return Err(Error::setting(
            "align",
            format!(
                "{reach} px is more than a quarter of the {side} px images ({most} at most): \
                 crop the images closer to the part"
            ),
        ));
    }
    Ok(())
}

/// The map of an aligned image with the strip its shift uncovered cleared: those pixels are the
/// reference's, not the image's.
pub fn clear_uncovered(map: &mut [f32], side: usize, (dx, dy): Shift) {
    let inside = |v: i32| (0..side as i32).contains(&v);
    for y in 0..side {
        for x in 0..side {
            if !inside(y as i32 + dy) || !inside(x as i32 + dx) {
                map[y * side + x] = 0.0;
            }
        }
    }
}

/// A map of an aligned image moved back onto the image's own pixels (0 where the aligned image
/// did not reach).
pub fn map_back(map: &[f32], side: usize, (dx, dy): Shift) -> Vec<f32> {
    let mut out = vec![0f32; map.len()];
    for y in 0..side {
        for x in 0..side {
            let (sx, sy) = (x as i32 - dx, y as i32 - dy);
            if (0..side as i32).contains(&sx) && (0..side as i32).contains(&sy) {
                out[y * side + x] = map[sy as usize * side + sx as usize];
            }
        }
    }
    out
}

/// Images' plain errors, their smoothed maps and the shift each was aligned by.
pub type ErrorsMapsShifts = (Vec<f32>, Vec<Vec<f32>>, Vec<Shift>);

/// Plain errors and smoothed maps (score::errors_and_maps) of `x`, aligned first where
/// `alignment` is given: then the maps are the aligned images' with their uncovered strips
/// cleared, and each image's shift comes with them (none without alignment).
pub fn errors_and_maps(
    e: &mut Engine,
    x: &[f32],
    side: u32,
    sigma: f32,
    alignment: Option<Alignment>,
) -> Result<ErrorsMapsShifts> {
    let Some(al) = alignment else {
        let (errors, maps) = score::errors_and_maps(e, x, side, sigma)?;
        return Ok((errors, maps, Vec::new()));
    };
    let channels = e.arch.channels as usize;
    let (moved, shifts) = al.align_all(x, channels)?;
    let (errors, mut maps) = score::errors_and_maps(e, &moved, side, sigma)?;
    for (m, &d) in maps.iter_mut().zip(&shifts) {
        clear_uncovered(m, side as usize, d);
    }
    Ok((errors, maps, shifts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// A smooth random picture [C, S, S] (a few random waves and noise): one best shift.
    fn picture(r: &mut SplitMix64, channels: usize, s: usize) -> Vec<f32> {
        let waves: Vec<[f64; 4]> = (0..4)
            .map(|_| {
                [
                    r.next_f64() * 0.6,
                    r.next_f64() * 0.6,
                    r.next_f64() * 6.3,
                    0.1 + 0.1 * r.next_f64(),
                ]
            })
            .collect();
        let mut v = Vec::with_capacity(channels * s * s);
        for c in 0..channels {
            for y in 0..s {
                for x in 0..s {
                    let w: f64 = waves
                        .iter()
                        .map(|[fx, fy, p, a]| {
                            a * (fx * x as f64 + fy * y as f64 + p + c as f64).sin()
                        })
                        .sum();
                    v.push((0.5 + w + 0.02 * (r.next_f64() - 0.5)) as f32);
                }
            }
        }
        v
    }

    /// `img` with its content at (x + s) instead of x: out(x) = img(x − s), edges repeated.
    fn displaced(img: &[f32], channels: usize, side: usize, (sx, sy): Shift) -> Vec<f32> {
        let clamp = |v: i32| v.clamp(0, side as i32 - 1) as usize;
        let mut out = vec![0f32; img.len()];
        for c in 0..channels {
            for y in 0..side {
                for x in 0..side {
                    out[(c * side + y) * side + x] =
                        img[(c * side + clamp(y as i32 - sy)) * side + clamp(x as i32 - sx)];
                }
            }
        }
        out
    }

    #[test]
    fn the_best_shift_undoes_a_known_displacement() {
        let mut r = SplitMix64::new(11);
        for channels in [1, 3] {
            let side = 40;
            let reference = picture(&mut r, channels, side);
            let al = Alignment {
                reference: &reference,
                reach: 5,
            };
            for _ in 0..6 {
                let d = (r.below(11) as i32 - 5, r.below(11) as i32 - 5);
                // Brighter and noisier than the reference, as a new framing is.
                let img: Vec<f32> = displaced(&reference, channels, side, d)
                    .iter()
                    .map(|v| v * 1.05 + 0.01 * (r.next_f64() as f32 - 0.5))
                    .collect();
                assert_eq!(al.best_shift(&img, channels), d, "{channels} channels");
                // Moved by it, the image is the reference's interior again (up to the
                // brightness and noise), and the uncovered strip is the reference's.
                let m = al.moved(&img, channels, d);
                let s = side as i32;
                for (i, (&a, &b)) in m.iter().zip(&reference).enumerate() {
                    let (x, y) = ((i % side) as i32, ((i / side) % side) as i32);
                    let covered = (0..s).contains(&(x + d.0)) && (0..s).contains(&(y + d.1));
                    if !covered {
                        assert_eq!(a, b);
                    } else if (0..s).contains(&(x - d.0)) && (0..s).contains(&(y - d.1)) {
                        // (away from the displaced image's repeated edges)
                        assert!((a - b * 1.05).abs() <= 0.006, "{a} {b} at {x},{y}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_map_moves_back_onto_the_images_pixels() {
        let side = 16;
        let d = (3, -2);
        // A defect at (5, 7) of the image is at (5 − 3, 7 + 2) of the aligned image.
        let mut aligned = vec![0f32; side * side];
        aligned[9 * side + 2] = 1.0;
        // A value in the uncovered strip (x + 3 ≥ 16) is cleared.
        aligned[4 * side + 14] = 5.0;
        clear_uncovered(&mut aligned, side, d);
        assert_eq!(aligned[4 * side + 14], 0.0);
        let back = map_back(&aligned, side, d);
        assert_eq!(back[7 * side + 5], 1.0);
        assert_eq!(back.iter().sum::<f32>(), 1.0);
        // The values, not their places, make a score: the same before and after.
        let sorted = |m: &[f32]| {
            let mut v = m.to_vec();
            v.sort_by(f32::total_cmp);
            v
        };
        assert_eq!(sorted(&aligned), sorted(&back));
    }

    #[test]
    fn the_reference_of_displaced_images_is_sharp() {
        let mut r = SplitMix64::new(5);
        let (channels, side) = (1, 32);
        let base = picture(&mut r, channels, side);
        let mut x = Vec::new();
        for _ in 0..12 {
            let d = (r.below(7) as i32 - 3, r.below(7) as i32 - 3);
            x.extend(displaced(&base, channels, side, d));
        }
        let reference = reference_of(&x, channels, side, 3).unwrap();
        let plain = reference_of(&x, channels, side, 0).unwrap();
        // Against the picture, up to a shift of the whole (the reference's frame is the
        // images' mean frame): the aligned mean is nearer than the plain mean.
        let near = |m: &[f32]| {
            let al = Alignment {
                reference: &base,
                reach: 3,
            };
            let d = al.best_shift(m, channels);
            let moved = al.moved(m, channels, d);
            let inner: f64 = (4..side - 4)
                .flat_map(|y| (4..side - 4).map(move |x| y * side + x))
                .map(|i| ((moved[i] - base[i]) as f64).powi(2))
                .sum();
            inner
        };
        assert!(
            near(&reference) < 0.2 * near(&plain),
            "{} vs {}",
            near(&reference),
            near(&plain)
        );
    }
}
