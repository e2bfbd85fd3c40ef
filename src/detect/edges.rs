//! The edge profile of a model trained on patches. Such a model scores an image by windows whose
//! maps are averaged where they overlap (score::score_windows). A pixel near the image's edge
//! lies in fewer windows, and only near their edges, where a reconstruction is worst: a normal
//! image's map runs higher and noisier there (on 384 px brick crops, the edges' spread was 2× the
//! inside's and a corner's 3.5×), its highest pixels sit on the edges, and the pixel threshold
//! set on them hides defects inside.
//!
//! The profile is the mean and the standard deviation of normal images' maps over the pixels at
//! the same distances (dy, dx) from the nearest horizontal and vertical edge, each counted up to
//! `reach` (one window; farther is the inside, one class). A map then counts, pixel by pixel,
//! max(0, (m − mean) · min(1, sd_inside / sd)): inside, what lies above its mean, as a normal
//! map counts (score::above_normal); nearer the edges, in the inside's units of spread where
//! theirs is larger. The four sides are folded together (a conv-ae reconstructs them alike), so
//! a corner class holds four pixels of every image.

use crate::error::{Error, Result};

/// Mean and standard deviation of normal maps by distance class (see the module's comment).
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeProfile {
    /// Distances are counted up to this many pixels; farther is the inside.
    pub reach: u32,
    /// Per class (dy · (reach + 1) + dx), (reach + 1)² of them.
    pub mean: Vec<f32>,
    pub sd: Vec<f32>,
}

/// The class of every pixel of a side × side map.
fn classes(side: usize, reach: usize) -> Vec<usize> {
    let d = |v: usize| v.min(side - 1 - v).min(reach);
    (0..side * side)
        .map(|q| d(q / side) * (reach + 1) + d(q % side))
        .collect()
}

/// Per-class sums of values, squares and counts (f64).
#[derive(Clone)]
struct Sums {
    sum: Vec<f64>,
    sq: Vec<f64>,
    n: Vec<f64>,
}

impl Sums {
    fn new(reach: usize) -> Sums {
        let k = (reach + 1) * (reach + 1);
        Sums {
            sum: vec![0.0; k],
            sq: vec![0.0; k],
            n: vec![0.0; k],
        }
    }
    fn add(&mut self, map: &[f32], classes: &[usize], sign: f64) {
        for (&v, &c) in map.iter().zip(classes) {
            let v = v as f64;
            self.sum[c] += sign * v;
            self.sq[c] += sign * v * v;
            self.n[c] += sign;
        }
    }
    fn profile(&self, reach: u32) -> EdgeProfile {
        let (mut mean, mut sd) = (Vec::new(), Vec::new());
        for c in 0..self.n.len() {
            let n = self.n[c].max(1.0);
            let m = self.sum[c] / n;
            mean.push(m as f32);
            sd.push((self.sq[c] / n - m * m).max(0.0).sqrt() as f32);
        }
        EdgeProfile { reach, mean, sd }
    }
}

impl EdgeProfile {
    /// The profile of normal images' maps (side × side each).
    pub fn of(maps: &[Vec<f32>], side: u32, reach: u32) -> EdgeProfile {
        let r = reach.min(side.saturating_sub(1) / 2) as usize;
        let cls = classes(side as usize, r);
        let mut s = Sums::new(r);
        for m in maps {
            s.add(m, &cls, 1.0);
        }
        s.profile(r as u32)
    }

    /// The profile of calibration images' `maps`, returned, and each map counted against the
    /// profile of the *others* (as `above_normal_leave_one_out` does for a normal map): no new
    /// image's map is in the profile it is counted against. At least two maps, or None.
    pub fn leave_one_out(maps: &mut [Vec<f32>], side: u32, reach: u32) -> Option<EdgeProfile> {
        if maps.len() < 2 {
            return None;
        }
        let r = reach.min(side.saturating_sub(1) / 2) as usize;
        let cls = classes(side as usize, r);
        let mut all = Sums::new(r);
        for m in maps.iter() {
            all.add(m, &cls, 1.0);
        }
        for m in maps.iter_mut() {
            let mut others = all.clone();
            others.add(m, &cls, -1.0);
            others.profile(r as u32).count_with(m, &cls);
        }
        Some(all.profile(r as u32))
    }

    /// Counts maps (side × side each) against the profile, in place: maps of the images the
    /// profile was made for (the checkpoint's load checks that they are).
    pub fn count(&self, maps: &mut [Vec<f32>], side: u32) -> Result<()> {
        let r = (self.reach as usize).min(side.saturating_sub(1) as usize / 2);
        let cls = classes(side as usize, r);
        for map in maps {
            if r != self.reach as usize || map.len() != cls.len() {
                return Err(Error::invalid(format!(
                    "an edge profile of reach {} px cannot count a map of {} values as \
                     {side}x{side}",
                    self.reach,
                    map.len()
                )));
            }
            self.count_with(map, &cls);
        }
        Ok(())
    }

    fn count_with(&self, map: &mut [f32], classes: &[usize]) {
        let inside = *self.sd.last().unwrap_or(&0.0);
        for (v, &c) in map.iter_mut().zip(classes) {
            // Spread is only ever taken out, never added: a class near a corner holds a few
            // pixels of a few images, and one that happened to be quiet there (brick: 0.4 of
            // the inside's spread) would blow up whatever comes next (false outlines in the
            // corners of 2 of 16 images). A class with no spread is counted above its mean.
            let scale = match self.sd[c] > inside && inside > 1e-12 {
                true => inside / self.sd[c],
                false => 1.0,
            };
            *v = ((*v - self.mean[c]) * scale).max(0.0);
        }
    }

    /// As a tensor [2, reach + 1, reach + 1]: the means, then the deviations.
    pub fn to_tensor(&self) -> (Vec<usize>, Vec<f32>) {
        let k = self.reach as usize + 1;
        (vec![2, k, k], [&self.mean[..], &self.sd[..]].concat())
    }

    /// From a tensor as `to_tensor` writes it, checked: finite, never negative.
    pub fn from_tensor(shape: &[usize], values: &[f32]) -> Result<EdgeProfile> {
        let k = match shape {
            [2, k, k2] if k == k2 && *k >= 1 && values.len() == 2 * k * k => *k,
            _ => {
                return Err(Error::invalid(format!(
                    "an edge profile of shape {shape:?}, expected [2, R+1, R+1]"
                )))
            }
        };
        if let Some(v) = values.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(Error::invalid(format!(
                "an edge profile holds {v}: means and deviations of errors are finite and never \
                 negative"
            )));
        }
        Ok(EdgeProfile {
            reach: k as u32 - 1,
            mean: values[..k * k].to_vec(),
            sd: values[k * k..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// Maps of normal images as a patch model makes them: noise of spread 1 around 1 inside,
    /// and of spread 3 around 2 within 2 px of an edge.
    fn normal_maps(r: &mut SplitMix64, n: usize, side: usize) -> Vec<Vec<f32>> {
        let gauss = |r: &mut SplitMix64| {
            let (u, v) = (r.next_f64().max(1e-12), r.next_f64());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        (0..n)
            .map(|_| {
                (0..side * side)
                    .map(|q| {
                        let (y, x) = (q / side, q % side);
                        let d = y.min(x).min(side - 1 - y).min(side - 1 - x);
                        let (m, s) = if d < 2 { (2.0, 3.0) } else { (1.0, 1.0) };
                        (m + s * gauss(r)).max(0.0) as f32
                    })
                    .collect()
            })
            .collect()
    }

    fn edge_and_inside_peaks(maps: &[Vec<f32>], side: usize) -> (f32, f32) {
        let (mut e, mut i) = (0f32, 0f32);
        for m in maps {
            for (q, &v) in m.iter().enumerate() {
                let (y, x) = (q / side, q % side);
                let d = y.min(x).min(side - 1 - y).min(side - 1 - x);
                if d < 2 {
                    e = e.max(v);
                } else if d >= 8 {
                    i = i.max(v);
                }
            }
        }
        (e, i)
    }

    #[test]
    fn counted_against_the_profile_the_edges_no_longer_stand_out() {
        let mut r = SplitMix64::new(4);
        let side = 40;
        let mut maps = normal_maps(&mut r, 30, side);
        let (e, i) = edge_and_inside_peaks(&maps, side);
        assert!(
            e > 2.0 * i,
            "the made-up maps peak on their edges: {e} vs {i}"
        );
        let profile = EdgeProfile::leave_one_out(&mut maps, side as u32, 8).unwrap();
        // A corner is class 0, the inside the last.
        let k = profile.mean.len();
        assert_eq!(k, 81);
        assert!(profile.sd[0] > 2.0 * profile.sd[k - 1], "{:?}", profile.sd);
        let (e, i) = edge_and_inside_peaks(&maps, side);
        assert!(e < 1.3 * i, "counted, edges peak at {e}, the inside at {i}");
        // A new normal image, and one with a defect inside: only the defect stands out.
        let mut fresh = normal_maps(&mut r, 2, side);
        fresh[1][20 * side + 20] += 12.0;
        profile.count(&mut fresh, side as u32).unwrap();
        // Another side than the profile's reach allows: refused, not counted wrongly.
        assert!(profile.count(&mut [vec![0.0; 100]], 10).is_err());
        let top = |m: &[f32]| {
            let q = (0..m.len()).max_by(|&a, &b| m[a].total_cmp(&m[b])).unwrap();
            (q, m[q])
        };
        assert_eq!(top(&fresh[1]).0, 20 * side + 20);
        assert!(top(&fresh[1]).1 > 1.5 * top(&fresh[0]).1);
    }

    #[test]
    fn each_map_is_counted_against_the_others_only_and_spread_is_never_added() {
        // Two flat maps, 3 and 1: each against the other's profile (spread 0, so counted above
        // its mean alone): 2 and 0. Against a profile that included itself, 1 and 0.
        let side = 12;
        let mut maps = vec![vec![3.0f32; side * side], vec![1.0; side * side]];
        let p = EdgeProfile::leave_one_out(&mut maps, side as u32, 3).unwrap();
        assert!(maps[0].iter().all(|&v| v == 2.0), "{:?}", &maps[0][..4]);
        assert!(maps[1].iter().all(|&v| v == 0.0));
        assert!(p.mean.iter().all(|&m| m == 2.0) && p.sd.iter().all(|&s| s == 1.0));
        // A class quieter than the inside is counted above its mean, not scaled up.
        let quiet = EdgeProfile {
            reach: 1,
            mean: vec![0.0, 0.0, 0.0, 0.0],
            sd: vec![0.5, 2.0, 2.0, 1.0],
        };
        let mut m = [vec![1.0f32; 9]];
        quiet.count(&mut m, 3).unwrap();
        // Corners (class 0, quieter): 1; edges (class 1 or 2, twice the spread): 0.5; inside: 1.
        assert_eq!(m[0], vec![1.0, 0.5, 1.0, 0.5, 1.0, 0.5, 1.0, 0.5, 1.0]);
    }

    #[test]
    fn classes_fold_the_four_sides_and_stop_at_the_reach() {
        let c = classes(10, 3);
        // Corners, all four: class 0; the middle: (3, 3).
        for q in [0, 9, 90, 99] {
            assert_eq!(c[q], 0);
        }
        assert_eq!(c[5 * 10 + 5], 3 * 4 + 3);
        // One pixel in from the left, two down from the top: (dy 2, dx 1), as its mirror images.
        assert_eq!(c[2 * 10 + 1], 2 * 4 + 1);
        assert_eq!(c[7 * 10 + 8], 2 * 4 + 1);
    }

    #[test]
    fn a_profile_round_trips_as_a_tensor_and_bad_ones_are_refused() {
        let mut r = SplitMix64::new(2);
        let maps = normal_maps(&mut r, 3, 12);
        let p = EdgeProfile::of(&maps, 12, 4);
        let (shape, values) = p.to_tensor();
        assert_eq!(shape, vec![2, 5, 5]);
        assert_eq!(EdgeProfile::from_tensor(&shape, &values).unwrap(), p);
        assert!(EdgeProfile::from_tensor(&[2, 5, 4], &values[..40]).is_err());
        let mut bad = values.clone();
        bad[3] = f32::NAN;
        let e = EdgeProfile::from_tensor(&shape, &bad).unwrap_err();
        assert!(e.to_string().contains("NaN"), "{e}");
    }
}
