//! The training curve beside every model: `MODEL.loss.csv` and `MODEL.loss.png` (the training
//! loss, amplified as trained, and the plain error of the held-out normal images per epoch).

use super::chart::Chart;
use super::picture::png_bytes;
use super::plot;
use crate::detect::EpochReport;
use crate::error::Result;

/// loss.csv and loss.png for the epoch reports.
pub fn loss_curve(reports: &[EpochReport]) -> Result<(Vec<u8>, Vec<u8>)> {
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
    let xs: Vec<f64> = reports.iter().map(|r| r.epoch as f64).collect();
    let loss: Vec<f64> = reports.iter().map(|r| r.mean_loss as f64).collect();
    let held_out: Vec<(f64, f64)> = reports
        .iter()
        .filter_map(|r| r.held_out_error.map(|v| (r.epoch as f64, v as f64)))
        .collect();
    let ymax = loss
        .iter()
        .chain(held_out.iter().map(|(_, y)| y))
        .copied()
        .fold(0.0, f64::max)
        * 1.05;
    let xmax = xs.last().copied().unwrap_or(1.0).max(2.0);
    let mut c = Chart::new(
        700,
        420,
        "training loss",
        "epoch",
        "loss",
        (1.0, xmax),
        (0.0, ymax.max(1e-9)),
    );
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
    let legend: Vec<(&str, image::Rgb<u8>)> = series.iter().map(|s| (s.0, s.1)).collect();
    c.legend(&legend);
    Ok((csv, png_bytes(&c.png()?)?))
}
