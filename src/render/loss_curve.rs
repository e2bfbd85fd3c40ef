//! The training curve beside every model: `MODEL.loss.csv` and `MODEL.loss.png` (the training
//! loss, amplified as trained, and the plain error of the held-out normal images per epoch, on a
//! log axis).

use super::chart::Chart;
use super::picture::png_bytes;
use super::plot;
use crate::detect::EpochReport;
use crate::error::Result;

/// loss.csv and loss.png for the epoch reports; `mean_image`, the held-out images' error (or,
/// with `on_training`, the training images' where none were held out)
/// against the mean training image, is drawn as a line: a held-out error that sits on it is the
/// plateau where the model reproduces the mean image. `windows`: the held-out error is of
/// windows of the held-out images (a model trained with `--patch`), and the chart says so.
pub fn loss_curve(
    reports: &[EpochReport],
    mean_image: Option<(f64, bool)>,
    windows: bool,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let timed = r.seconds > 0.0 || r.images_per_s > 0.0;
            vec![
                r.epoch.to_string(),
                r.mean_loss.to_string(),
                r.held_out_error.map_or(String::new(), |v| v.to_string()),
                r.clamps.to_string(),
                // Epochs read back from a snapshot carry no timing (snapshots leave it out, so
                // that a resumed run ends with the same bytes): empty, not 0.
                if timed {
                    format!("{:.3}", r.seconds)
                } else {
                    String::new()
                },
                if timed {
                    format!("{:.1}", r.images_per_s)
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    let header = [
        "epoch",
        "loss",
        "held_out_error",
        "clamps",
        "seconds",
        "images_per_s",
    ];
    let csv = super::table::csv(&header, &rows)?;
    // A log axis: the loss falls by one or two orders of magnitude, and on a linear axis the
    // last nine tenths of a run (where the detail the model learns shows) look flat.
    // A diverged epoch's NaN or infinity is left out (the CSV keeps it).
    let (xs, loss): (Vec<f64>, Vec<f64>) = reports
        .iter()
        .filter(|r| r.mean_loss.is_finite())
        .map(|r| (r.epoch as f64, log10(r.mean_loss)))
        .unzip();
    let held_out: Vec<(f64, f64)> = reports
        .iter()
        .filter_map(|r| {
            let v = r.held_out_error.filter(|v| v.is_finite())?;
            Some((r.epoch as f64, log10(v)))
        })
        .collect();
    let on_training = mean_image.is_some_and(|(_, t)| t);
    let base = mean_image
        .map(|(v, _)| v)
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| v.log10());
    let ys = || {
        let curves = loss.iter().chain(held_out.iter().map(|(_, y)| y));
        curves.chain(base.iter()).copied()
    };
    let (lo, hi) = match (ys().reduce(f64::min), ys().reduce(f64::max)) {
        (Some(lo), Some(hi)) => (lo, hi),
        _ => (-1.0, 0.0),
    };
    let pad = ((hi - lo) * 0.08).max(0.02);
    // One epoch: its point in the middle of an axis around it, not at the edge of one to 2.
    let last = reports.last().map_or(1.0, |r| r.epoch as f64);
    let xs_range = match last > 1.0 {
        true => (1.0, last),
        false => (0.5, 1.5),
    };
    let mut c = Chart::new(
        700,
        420,
        match held_out.is_empty() {
            true => "training loss",
            false => "training loss and held-out error",
        },
        "epoch",
        "loss (log scale)",
        xs_range,
        (lo - pad, hi + pad),
    );
    c.y_ticks_at(log_ticks(lo - pad, hi + pad));
    c.whole_x();
    let mut series = vec![("training loss", plot::BLUE, xs.clone(), loss)];
    if !held_out.is_empty() {
        let (hx, hy) = held_out.into_iter().unzip();
        let name = match windows {
            true => "held-out error, windows (plain)",
            false => "held-out error (plain)",
        };
        series.push((name, plot::ORANGE, hx, hy));
    }
    for (_, colour, x, y) in &series {
        // Markers where they stay apart.
        c.line(x, y, *colour, x.len() <= 60);
    }
    let mut legend: Vec<(&str, image::Rgb<u8>)> = series.iter().map(|s| (s.0, s.1)).collect();
    if let Some(b) = base {
        c.hline_between(c.x.0, c.x.1, b, plot::DARK_GREY, 2);
        let name = match on_training {
            true => "mean image (training images)",
            false => "mean image (held-out)",
        };
        legend.push((name, plot::DARK_GREY));
    }
    c.legend(&legend);
    Ok((csv, png_bytes(&c.png()?)?))
}

/// Whether every value is a power of ten (1e-3, 0.01, 1, 100).
fn mantissas_are_decades(values: &[f64]) -> bool {
    values
        .iter()
        .all(|v| (v.log10() - v.log10().round()).abs() < 1e-9)
}

/// log10 of a finite loss; a loss of 0 sits at 1e-30.
fn log10(v: f32) -> f64 {
    (v as f64).max(1e-30).log10()
}

/// Ticks for a log10 axis from `lo` to `hi` (logarithms), at round values: decades (with 2× and
/// 5× where there are few) over a span of more than a decade; within one, 1, 2 and 5 × 10^k, or
/// every digit × 10^k, where those give three or more; otherwise multiples of a round step (1, 2
/// or 5 × 10^k) chosen for about five ticks. Each is (its logarithm, its value as text).
pub fn log_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let inside = |v: f64| v > 0.0 && (lo..=hi).contains(&v.log10());
    let mut values: Vec<f64> = Vec::new();
    let decades = (lo.floor() as i32)..=(hi.ceil() as i32);
    let all: [f64; 9] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
    // Decades over a span of more than one; within a decade or so, 1, 2, 5, then every digit
    // (spaced as a log axis spaces them, where equal steps would crowd at its top).
    let sets: &[&[f64]] = match hi - lo > 1.0 {
        true => &[&[1.0], &[1.0, 2.0, 5.0]],
        false => &[&[1.0, 2.0, 5.0], &all],
    };
    for mantissas in sets {
        values = decades
            .clone()
            // Parsed, not multiplied: the nearest f64 to the round value, which prints as it.
            .flat_map(|k| mantissas.iter().map(move |m| format!("{m}e{k}")))
            .filter_map(|text| text.parse::<f64>().ok())
            .filter(|&v| inside(v))
            .collect();
        if values.len() >= 3 {
            break;
        }
    }
    // Every n-th decade where there are many.
    if mantissas_are_decades(&values) {
        let every = values.len().div_ceil(7).max(1);
        values = values.into_iter().step_by(every).collect();
    }
    let mut decimals = 0;
    // Too few round values (a span of a few per cent): equal steps.
    if values.len() < 3 && hi - lo <= 1.0 || values.len() < 2 {
        let (a, b) = (10f64.powf(lo), 10f64.powf(hi));
        let rough = (b - a) / 5.0;
        let k = rough.log10().floor();
        let unit = 10f64.powf(k);
        let step = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * unit)
            .find(|&s| s >= rough)
            .unwrap_or(10.0 * unit);
        decimals = (-step.log10().floor()).max(0.0) as usize;
        let first = (a / step).ceil() as i64;
        values = (first..)
            .map(|i| i as f64 * step)
            .take_while(|&v| v <= b)
            .filter(|&v| inside(v))
            .collect();
    }
    values
        .into_iter()
        .map(|v| (v.log10(), round_text(v, decimals)))
        .collect()
}

/// A round value as text: `decimals` where it is a multiple of a step, otherwise as many as its
/// one significant digit needs ("0.005", "20", "2e-5").
fn round_text(v: f64, decimals: usize) -> String {
    let e = v.log10().floor();
    if e < -4.0 {
        // Tiny losses in exponent form, with the digits a step's multiples need.
        let digits = decimals.saturating_sub((-e) as usize);
        return format!("{v:.digits$e}");
    }
    if decimals > 0 || (-4.0..5.0).contains(&e) {
        format!("{v:.*}", decimals.max((-e).max(0.0) as usize))
    } else {
        format!("{v:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log ticks sit on round values inside the axis, say exactly what they mark, are never
    /// alike, and there are 2 to 8 of them, from a loss that moved 2% to one over 12 decades.
    #[test]
    fn log_ticks_are_round_values() {
        for (lo, hi) in [
            (-1.87, -1.78),
            (-1.95, -1.86),
            (-2.0, -1.99),
            (-3.3, -2.1),
            (-1.2, 0.4),
            (-1.696, -0.916),
            (-0.6, -0.1),
            (-4.5, -0.7),
            (-30.0, -1.0),
            (0.2, 3.9),
        ] {
            let t = log_ticks(lo, hi);
            assert!((2..=8).contains(&t.len()), "{lo}..{hi}: {t:?}");
            let value = |label: &str| label.parse::<f64>().unwrap();
            // Round: one significant digit each, or multiples of a step of 1, 2 or 5 × 10^k.
            let step = value(&t[1].1) - value(&t[0].1);
            let mantissa = step / 10f64.powf((step.log10() + 1e-6).floor());
            for (y, label) in &t {
                assert!((lo..=hi).contains(y), "{lo}..{hi}: {t:?}");
                let v = value(label);
                assert!((v.log10() - y).abs() < 1e-9, "{label} at 10^{y}");
                let mantissa_text = label.split('e').next().unwrap_or_default();
                let digits: String = mantissa_text.chars().filter(char::is_ascii_digit).collect();
                let one_digit = digits.trim_matches('0').len() == 1;
                let multiple = [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6)
                    && ((v / step) - (v / step).round()).abs() < 1e-6;
                assert!(one_digit || multiple, "{label} is not round: {t:?}");
            }
            for w in t.windows(2) {
                assert!(w[0].0 < w[1].0 && w[0].1 != w[1].1, "{t:?}");
            }
        }
        // Within a decade, ticks spaced as the log axis spaces them: a line at 0.0228 (a
        // mean image's error) has one close by, not only 0.05 and 0.1 far above it.
        let labels: Vec<String> = log_ticks(-1.696, -0.916).into_iter().map(|t| t.1).collect();
        assert_eq!(
            labels,
            ["0.03", "0.04", "0.05", "0.06", "0.07", "0.08", "0.09", "0.1"]
        );
        assert_eq!(round_text(0.005, 0), "0.005");
        assert_eq!(round_text(20.0, 0), "20");
        assert_eq!(round_text(2e-5, 0), "2e-5");
        assert_eq!(round_text(0.0135, 4), "0.0135");
        assert_eq!(round_text(1.005e-9, 12), "1.005e-9");
        // A loss that sits at 1e-30 (an all-zero error) gets short labels too.
        assert!(log_ticks(-30.01, -29.99).iter().all(|(_, l)| l.len() <= 10));
        assert_eq!(log10(0.0), -30.0);
    }

    #[test]
    fn the_mean_image_line_is_drawn_and_diverged_epochs_left_out() {
        let report = |epoch, loss: f32, held: f32| EpochReport {
            epoch,
            mean_loss: loss,
            clamps: 0,
            seconds: 1.0,
            images_per_s: 10.0,
            held_out_error: Some(held),
        };
        let reports = vec![report(1, 0.05, 0.04), report(2, 0.01, 0.012)];
        let (csv, plain) = loss_curve(&reports, None, false).unwrap();
        let (csv2, with_line) = loss_curve(&reports, Some((0.03, false)), false).unwrap();
        assert_eq!(csv, csv2, "the line is in the picture only");
        assert_ne!(plain, with_line);
        // A NaN epoch keeps its CSV row and draws.
        let mut diverged = reports.clone();
        diverged.push(report(3, f32::NAN, f32::NAN));
        let (csv, _) = loss_curve(&diverged, Some((0.03, false)), true).unwrap();
        assert!(String::from_utf8(csv).unwrap().contains("NaN"));
    }
}
