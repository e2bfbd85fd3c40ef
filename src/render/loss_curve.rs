//! The training curve beside every model: `MODEL.loss.csv` and `MODEL.loss.png`.

use super::picture::png_bytes;
use super::plot::{self, Chart};
use crate::detect::EpochReport;
use crate::error::Result;

/// loss.csv and loss.png for the epoch reports.
pub fn loss_curve(reports: &[EpochReport]) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut csv = String::from("epoch,loss,clamps,seconds,images_per_s\n");
    for r in reports {
        csv += &format!(
            "{},{},{},{:.3},{:.1}\n",
            r.epoch, r.mean_loss, r.clamps, r.seconds, r.images_per_s
        );
    }
    let xs: Vec<f64> = reports.iter().map(|r| r.epoch as f64).collect();
    let ys: Vec<f64> = reports.iter().map(|r| r.mean_loss as f64).collect();
    let ymax = ys.iter().copied().fold(0.0, f64::max) * 1.05;
    let xmax = xs.last().copied().unwrap_or(1.0).max(2.0);
    let mut c = Chart::new(
        560,
        400,
        "training loss",
        "epoch",
        "loss",
        (1.0, xmax),
        (0.0, ymax.max(1e-9)),
    );
    c.polyline(&xs, &ys, plot::BLUE);
    for (&x, &y) in xs.iter().zip(&ys) {
        let (px, py) = c.to_px(x, y);
        plot::rect(&mut c.img, px - 2, py - 2, px + 2, py + 2, plot::BLUE);
    }
    Ok((csv.into_bytes(), png_bytes(&c.img)?))
}
