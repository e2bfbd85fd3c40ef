//! The training curve beside every model: `MODEL.loss.csv` and `MODEL.loss.png` (the training
//! loss, amplified as trained, and the plain error of the held-out normal images per epoch, on a
//! log axis).

use super::chart::Chart;
use super::picture::png_bytes;
use super::plot;
use crate::detect::EpochReport;
use crate::error::Result;

/// loss.csv and loss.png for the epoch reports; `mean_image`, the held-out images' error
/// against the mean training image, is drawn as a line: a held-out error that sits on it is the
/// plateau where the model reproduces the mean image. `windows`: the held-out error is of
/// windows of the held-out images (a model trained with `--patch`), and the chart says so.
pub fn loss_curve(
    reports: &[EpochReport],
    mean_image: Option<f64>,
    windows: bool,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.epoch.to_string(),
                r.mean_loss.to_string(),
                r.held_out_error.map_or(String::new(), |v| v.to_string()),
                r.clamps.to_string(),
                format!("{:.3}", r.seconds),
                format!("{:.1}", r.images_per_s),
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
    let base = mean_image
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
    let xmax = reports.last().map_or(1.0, |r| r.epoch as f64).max(2.0);
    let mut c = Chart::new(
        700,
        420,
        "training loss and held-out error",
        "epoch",
        "loss (log scale)",
        (1.0, xmax),
        (lo - pad, hi + pad),
    );
    c.y_ticks(|v, step| significant(10f64.powf(v), digits_apart(step)));
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
        legend.push(("mean image (held-out)", plot::DARK_GREY));
    }
    c.legend(&legend);
    Ok((csv, png_bytes(&c.png()?)?))
}

/// log10 of a finite loss; a loss of 0 sits at 1e-30.
fn log10(v: f32) -> f64 {
    (v as f64).max(1e-30).log10()
}

/// `v` (positive) to `digits` significant digits, all of its whole digits from 100 to 9999: at
/// two, "0.0063", "12", "4.1e-6".
fn significant(v: f64, digits: usize) -> String {
    let e = v.log10().floor();
    if (-4.0..4.0).contains(&e) {
        format!("{v:.*}", (digits as f64 - 1.0 - e).max(0.0) as usize)
    } else {
        format!("{v:.*e}", digits.max(1) - 1)
    }
}

/// Significant digits (2 to 6) that tell apart values `step` apart on a log10 axis: a loss that
/// changed by a few percent has ticks a few percent apart, which two digits print alike.
fn digits_apart(step: f64) -> usize {
    // Neighbours differ by a factor 10^step, about 1 + step · ln 10; d digits resolve 10^(1 − d).
    let relative = (step * std::f64::consts::LN_10).max(1e-9);
    (1.0 + (-relative.log10()).ceil()).clamp(2.0, 6.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_keep_two_significant_digits() {
        assert_eq!(significant(0.006309, 2), "0.0063");
        assert_eq!(significant(0.1, 2), "0.10");
        assert_eq!(significant(12.3, 2), "12");
        assert_eq!(significant(4.1e-6, 2), "4.1e-6");
        assert_eq!(significant(0.015849, 3), "0.0158");
        // Ticks as close as the chart may put them, over spans from a few percent of a loss to
        // several orders of magnitude, at any offset: no two neighbours print alike.
        for span in [0.004, 0.01, 0.03, 0.073, 0.2, 1.0, 3.0, 8.0] {
            let step = span / 6.0;
            for lo in [-7.3, -4.0, -1.9, -1.05, 0.0, 2.7] {
                let labels: Vec<String> = (0..7)
                    .map(|k| significant(10f64.powf(lo + k as f64 * step), digits_apart(step)))
                    .collect();
                for w in labels.windows(2) {
                    assert_ne!(w[0], w[1], "span {span} from 10^{lo}: {labels:?}");
                }
            }
        }
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
        let (csv2, with_line) = loss_curve(&reports, Some(0.03), false).unwrap();
        assert_eq!(csv, csv2, "the line is in the picture only");
        assert_ne!(plain, with_line);
        // A NaN epoch keeps its CSV row and draws.
        let mut diverged = reports.clone();
        diverged.push(report(3, f32::NAN, f32::NAN));
        let (csv, _) = loss_curve(&diverged, Some(0.03), true).unwrap();
        assert!(String::from_utf8(csv).unwrap().contains("NaN"));
    }
}
