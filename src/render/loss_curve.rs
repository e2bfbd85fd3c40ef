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
/// plateau where the model reproduces the mean image.
pub fn loss_curve(reports: &[EpochReport], mean_image: Option<f64>) -> Result<(Vec<u8>, Vec<u8>)> {
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
    c.y_ticks(|v| significant(10f64.powf(v)));
    c.whole_x();
    let mut series = vec![("training loss", plot::BLUE, xs.clone(), loss)];
    if !held_out.is_empty() {
        let (hx, hy) = held_out.into_iter().unzip();
        series.push(("held-out error (plain)", plot::ORANGE, hx, hy));
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

/// `v` (positive) to two significant digits, all of its whole digits from 100 to 9999: "0.0063",
/// "12", "4.1e-6".
fn significant(v: f64) -> String {
    let e = v.log10().floor();
    if (-4.0..4.0).contains(&e) {
        format!("{v:.*}", (1.0 - e).max(0.0) as usize)
    } else {
        format!("{v:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_keep_two_significant_digits() {
        assert_eq!(significant(0.006309), "0.0063");
        assert_eq!(significant(0.1), "0.10");
        assert_eq!(significant(12.3), "12");
        assert_eq!(significant(4.1e-6), "4.1e-6");
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
        let (csv, plain) = loss_curve(&reports, None).unwrap();
        let (csv2, with_line) = loss_curve(&reports, Some(0.03)).unwrap();
        assert_eq!(csv, csv2, "the line is in the picture only");
        assert_ne!(plain, with_line);
        // A NaN epoch keeps its CSV row and draws.
        let mut diverged = reports.clone();
        diverged.push(report(3, f32::NAN, f32::NAN));
        let (csv, _) = loss_curve(&diverged, Some(0.03)).unwrap();
        assert!(String::from_utf8(csv).unwrap().contains("NaN"));
    }
}
