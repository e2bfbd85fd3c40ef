//! The statistics of the experiment's table: LAMP minus baseline paired by seed, with a Student-t
//! interval and a verdict that says "better" or "worse" only where the interval excludes zero.

use std::collections::BTreeMap;

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn sample_mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// Two-sided 95% quantile of Student's t with `df` degrees of freedom: a table to 10, then the
/// Cornish-Fisher expansion around the normal quantile (error < 0.002 there).
pub fn t95(df: usize) -> f64 {
    const TABLE: [f64; 10] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    ];
    match df {
        0 => f64::INFINITY,
        1..=10 => TABLE[df - 1],
        _ => {
            let (z, d) = (1.959964f64, df as f64);
            z + (z.powi(3) + z) / (4.0 * d)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

/// LAMP minus baseline over the seeds both cells have (same seed: same initial weights and data
/// order, so the pair differs only in the loss).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Paired {
    pub n: usize,
    pub mean: f64,
    /// Standard deviation of the per-seed differences.
    pub sd: f64,
    /// Half-width of the 95% confidence interval of `mean` (Student t, n − 1 df).
    pub half_width: f64,
}

impl Paired {
    pub fn new(lamp: &BTreeMap<u64, f64>, base: &BTreeMap<u64, f64>) -> Option<Paired> {
        let d: Vec<f64> = lamp
            .iter()
            .filter_map(|(s, a)| base.get(s).map(|b| a - b))
            .collect();
        Paired::of(&d)
    }
    /// From differences directly (also used across classes).
    pub fn of(d: &[f64]) -> Option<Paired> {
        if d.is_empty() {
            return None;
        }
        let (mean, sd) = sample_mean_std(d);
        let n = d.len();
        Some(Paired {
            n,
            mean,
            sd,
            half_width: t95(n - 1) * sd / (n as f64).sqrt(),
        })
    }
    /// Better or worse where the interval excludes zero.
    pub fn verdict(&self) -> Verdict {
        if self.n < 2 {
            Verdict::Unknown
        } else if self.mean - self.half_width > 0.0 {
            Verdict::Better
        } else if self.mean + self.half_width < 0.0 {
            Verdict::Worse
        } else {
            Verdict::NoEffect
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Better,
    Worse,
    NoEffect,
    Unknown,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Better => "LAMP better",
            Verdict::Worse => "LAMP worse",
            Verdict::NoEffect => "no measurable effect",
            Verdict::Unknown => "one seed: unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        // Published two-sided 95% values.
        for (df, want) in [
            (1, 12.706),
            (2, 4.303),
            (10, 2.228),
            (20, 2.086),
            (60, 2.000),
        ] {
            assert!(
                (t95(df) - want).abs() < 2e-3,
                "df {df}: {} vs {want}",
                t95(df)
            );
        }
    }

    #[test]
    fn paired_difference_pairs_seeds_and_tests_them() {
        let lamp: BTreeMap<u64, f64> = [(0, 0.90), (1, 0.92), (2, 0.91), (5, 0.5)].into();
        let base: BTreeMap<u64, f64> = [(0, 0.89), (1, 0.905), (2, 0.897), (3, 0.1)].into();
        let p = Paired::new(&lamp, &base).unwrap();
        // Seeds 0, 1, 2 only: differences 0.010, 0.015, 0.013.
        assert_eq!(p.n, 3);
        assert!((p.mean - 0.038 / 3.0).abs() < 1e-12);
        let sd =
            ((0.010f64 - p.mean).powi(2) + (0.015 - p.mean).powi(2) + (0.013 - p.mean).powi(2))
                .sqrt()
                / 2f64.sqrt();
        assert!((p.sd - sd).abs() < 1e-12);
        assert!((p.half_width - 4.303 * sd / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(p.verdict(), Verdict::Better);
        // Same mean, differences of both signs: the interval spans zero.
        let p = Paired::of(&[0.03, -0.02, 0.028]).unwrap();
        assert_eq!(p.verdict(), Verdict::NoEffect);
        assert_eq!(Paired::of(&[-0.01]).unwrap().verdict(), Verdict::Unknown);
        assert_eq!(
            Paired::of(&[-0.010, -0.011, -0.012]).unwrap().verdict(),
            Verdict::Worse
        );
    }
}
