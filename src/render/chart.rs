//! Charts for reports (ROC, score histogram, loss curve, result bars, loss surfaces), drawn by
//! the plotters crate with the font embedded in lamp (`font`), as PNG pictures or as SVG for the
//! HTML reports. A `Chart` records what to draw in data coordinates; `png` and `svg` draw it, so
//! both formats show the same chart. Ticks fall on round values (plotters chooses them); legends
//! and colour bars sit to the right of the plot area, where no data can run into them.

use super::font::{self, FAMILY};
use crate::error::{Error, Result};
use image::{Rgb, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One thing drawn in data coordinates.
enum Item {
    Line {
        xs: Vec<f64>,
        ys: Vec<f64>,
        colour: Rgb<u8>,
        width: u32,
        markers: bool,
    },
    /// A filled rectangle between two corners.
    Rect {
        from: (f64, f64),
        to: (f64, f64),
        colour: Rgb<u8>,
    },
    Whisker {
        x: f64,
        lo: f64,
        hi: f64,
        colour: Rgb<u8>,
    },
    VLine {
        x: f64,
        colour: Rgb<u8>,
        label: String,
    },
    /// A small square marker.
    Point { at: (f64, f64), colour: Rgb<u8> },
}

/// A colour bar to the right of the plot: the turbo map from `lo` (bottom) to `hi` (top).
struct ColourBar {
    lo: String,
    hi: String,
    caption: String,
}

/// A chart to draw: frame, items in data coordinates, legend, colour bar.
pub struct Chart {
    pub width: u32,
    pub height: u32,
    title: String,
    x_label: String,
    y_label: String,
    pub x: (f64, f64),
    pub y: (f64, f64),
    /// Names of the unit slots [i, i + 1) along x, for bar charts (no numeric x ticks then).
    categories: Vec<String>,
    items: Vec<Item>,
    pub(crate) legend: Vec<(String, Rgb<u8>)>,
    colour_bar: Option<ColourBar>,
    /// Ticks on x only at whole numbers (epochs, counts).
    whole_x: bool,
    /// The y ticks (position, label), where not the axis's own numbers (a log axis's).
    y_ticks: Option<Vec<(f64, String)>>,
}

fn colour(c: Rgb<u8>) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// How many ticks an axis asks plotters for (it puts them on multiples of 1, 2 or 5 × 10^k).
const X_TICKS: usize = 7;
const Y_TICKS: usize = 6;

/// Decimals that show every tick of `range` (with `ticks` ticks) exactly: the most any of them
/// needs, so that all labels of an axis have the same number.
fn decimals(range: (f64, f64), ticks: usize) -> usize {
    use plotters::coord::ranged1d::Ranged;
    use plotters::coord::types::RangedCoordf64;
    let keys = RangedCoordf64::from(range.0..range.1).key_points(ticks);
    keys.iter()
        .map(|v| {
            let text = format!("{v:.8}");
            let kept = text.trim_end_matches('0');
            kept.len() - kept.find('.').map_or(kept.len(), |p| p + 1)
        })
        .max()
        .unwrap_or(0)
}

/// A tick's label: the axis's decimals, scientific for very small or large spans, never "-0".
fn tick_label(v: f64, range: (f64, f64), decimals: usize) -> String {
    let span = range.1 - range.0;
    let v = if v.abs() < span.abs() * 1e-9 { 0.0 } else { v };
    if span > 0.0 && !(1e-4..1e6).contains(&span) {
        format!("{v:.1e}")
    } else {
        format!("{v:.decimals$}")
    }
}

/// The drawing error as lamp's.
fn drawing<E: std::fmt::Display>(e: E) -> Error {
    Error::invalid(format!("cannot draw a chart: {e}"))
}

impl Chart {
    /// An empty chart of `w`×`h` pixels over the data ranges `x` and `y`.
    pub fn new(
        w: u32,
        h: u32,
        title: &str,
        x_label: &str,
        y_label: &str,
        x: (f64, f64),
        y: (f64, f64),
    ) -> Chart {
        // A range plotters can draw: finite (a diverged loss is inf) and not empty.
        let widen = |(a, b): (f64, f64)| {
            let (a, b) = match (a.is_finite(), b.is_finite()) {
                (true, true) => (a, b),
                (true, false) => (a, a + 1.0),
                (false, true) => (b - 1.0, b),
                (false, false) => (0.0, 1.0),
            };
            if b > a {
                (a, b)
            } else {
                (a - 0.5, a + 0.5)
            }
        };
        Chart {
            width: w,
            height: h,
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x: widen(x),
            y: widen(y),
            categories: Vec::new(),
            items: Vec::new(),
            legend: Vec::new(),
            colour_bar: None,
            whole_x: false,
            y_ticks: None,
        }
    }

    /// A bar chart's frame: one slot [i, i + 1) per name, labelled below, and its legend.
    pub fn categories(
        w: u32,
        h: u32,
        title: &str,
        y_label: &str,
        names: &[String],
        y: (f64, f64),
        legend: &[(&str, Rgb<u8>)],
    ) -> Chart {
        let mut c = Chart::new(
            w,
            h,
            title,
            "",
            y_label,
            (0.0, names.len().max(1) as f64),
            y,
        );
        c.categories = names.to_vec();
        c.legend(legend);
        c
    }

    pub fn polyline(&mut self, xs: &[f64], ys: &[f64], c: Rgb<u8>) {
        self.line(xs, ys, c, false);
    }

    /// A line through the points, with a marker on each when `markers`.
    pub fn line(&mut self, xs: &[f64], ys: &[f64], c: Rgb<u8>, markers: bool) {
        self.items.push(Item::Line {
            xs: xs.to_vec(),
            ys: ys.to_vec(),
            colour: c,
            width: 2,
            markers,
        });
    }

    /// A filled bar from the bottom of the y range up to `v` between x0 and x1.
    pub fn bar(&mut self, x0: f64, x1: f64, v: f64, c: Rgb<u8>) {
        self.bar_from(x0, x1, self.y.0, v, c);
    }

    /// A filled bar between heights `from` and `to`, held inside the y range.
    pub fn bar_from(&mut self, x0: f64, x1: f64, from: f64, to: f64, c: Rgb<u8>) {
        let (a, b) = (self.clip_y(from), self.clip_y(to));
        self.rect((x0, a), (x1, b), c);
    }

    /// A filled rectangle between two corners (data coordinates, held inside the ranges).
    pub fn rect(&mut self, from: (f64, f64), to: (f64, f64), c: Rgb<u8>) {
        let clip = |p: (f64, f64)| {
            (
                p.0.clamp(self.x.0.min(self.x.1), self.x.0.max(self.x.1)),
                self.clip_y(p.1),
            )
        };
        self.items.push(Item::Rect {
            from: clip(from),
            to: clip(to),
            colour: c,
        });
    }

    /// A vertical whisker at `x` from `lo` to `hi`, with caps.
    pub fn whisker(&mut self, x: f64, lo: f64, hi: f64, c: Rgb<u8>) {
        let (lo, hi) = (self.clip_y(lo), self.clip_y(hi));
        self.items.push(Item::Whisker {
            x,
            lo,
            hi,
            colour: c,
        });
    }

    fn clip_y(&self, v: f64) -> f64 {
        v.clamp(self.y.0.min(self.y.1), self.y.0.max(self.y.1))
    }

    /// A horizontal line across the plot at height `y`.
    pub fn hline(&mut self, y: f64, c: Rgb<u8>) {
        self.hline_between(self.x.0, self.x.1, y, c, 1);
    }

    /// A horizontal line from x0 to x1 at height `y`, `w` pixels thick.
    pub fn hline_between(&mut self, x0: f64, x1: f64, y: f64, c: Rgb<u8>, w: u32) {
        self.items.push(Item::Line {
            xs: vec![x0, x1],
            ys: vec![y, y],
            colour: c,
            width: w,
            markers: false,
        });
    }

    /// A vertical line at `x` across the plot, labelled at its top.
    pub fn vline(&mut self, x: f64, c: Rgb<u8>, label: &str) {
        self.items.push(Item::VLine {
            x,
            colour: c,
            label: label.into(),
        });
    }

    /// Ticks on x at whole numbers only (an axis of epochs or counts).
    pub fn whole_x(&mut self) {
        self.whole_x = true;
    }

    /// Puts the y ticks and their grid lines at these positions, with these labels, instead of
    /// at the axis's own round numbers (a log axis: round values at their logarithms).
    pub fn y_ticks_at(&mut self, ticks: Vec<(f64, String)>) {
        self.y_ticks = Some(ticks);
    }

    /// A small square marker at `at`.
    pub fn point(&mut self, at: (f64, f64), c: Rgb<u8>) {
        self.items.push(Item::Point { at, colour: c });
    }

    /// Legend entries, listed to the right of the plot area.
    pub fn legend(&mut self, entries: &[(&str, Rgb<u8>)]) {
        self.legend
            .extend(entries.iter().map(|(l, c)| (l.to_string(), *c)));
    }

    /// A turbo colour bar to the right of the plot, its ends labelled `lo` and `hi`.
    pub fn colour_bar(&mut self, lo: &str, hi: &str, caption: &str) {
        self.colour_bar = Some(ColourBar {
            lo: lo.into(),
            hi: hi.into(),
            caption: caption.into(),
        });
    }

    /// The chart as a picture.
    pub fn png(&self) -> Result<RgbImage> {
        font::register();
        let (w, h) = (self.width, self.height);
        let mut buf = vec![255u8; w as usize * h as usize * 3];
        {
            let root = font::Raster::with_buffer(&mut buf, (w, h)).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(drawing)?;
        }
        RgbImage::from_raw(w, h, buf).ok_or_else(|| drawing("buffer of the wrong size"))
    }

    /// The chart as an SVG document (for inline use in HTML).
    pub fn svg(&self) -> Result<String> {
        font::register();
        let mut s = String::new();
        {
            let root =
                SVGBackend::with_string(&mut s, (self.width, self.height)).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(drawing)?;
        }
        Ok(s)
    }

    /// Pixels kept free right of the plot: the legend's widest entry, the colour bar.
    fn right_margin<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> u32 {
        let style = TextStyle::from((FAMILY, font::SMALL).into_font());
        let legend = self
            .legend
            .iter()
            .map(|(l, _)| root.estimate_text_size(l, &style).map_or(0, |s| s.0) + 34)
            .max()
            .unwrap_or(0);
        let bar = if let Some(b) = &self.colour_bar {
            let widest = [&b.lo, &b.hi]
                .iter()
                .map(|t| root.estimate_text_size(t, &style).map_or(0, |s| s.0))
                .max()
                .unwrap_or(0);
            widest + 44
        } else {
            0
        };
        legend.max(bar) + 16
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(drawing)?;
        let text = |size: f64| TextStyle::from((FAMILY, size).into_font());
        let right = self.right_margin(root);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, text(font::TITLE))
            .margin(10)
            .margin_right(right)
            .x_label_area_size(if self.x_label.is_empty() { 34 } else { 48 })
            .y_label_area_size(70)
            .build_cartesian_2d(self.x.0..self.x.1, self.y.0..self.y.1)
            .map_err(drawing)?;
        let xspan = self.x.1 - self.x.0;
        // Whole-number axes: no more ticks than whole numbers, so that every tick is one.
        let x_ticks = if self.whole_x {
            X_TICKS.min(xspan.floor() as usize + 1).max(2)
        } else {
            X_TICKS
        };
        let (xd, yd) = (decimals(self.x, x_ticks), decimals(self.y, Y_TICKS));
        let x_fmt = |v: &f64| tick_label(*v, self.x, xd);
        let y_fmt = |v: &f64| tick_label(*v, self.y, yd);
        let none = |_: &f64| String::new();
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(text(font::SMALL))
            .axis_desc_style(text(font::NORMAL))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(TRANSPARENT)
            .y_labels(Y_TICKS)
            .y_label_formatter(&y_fmt);
        if self.y_ticks.is_some() {
            mesh.disable_y_mesh().y_labels(0).y_label_formatter(&none);
        }
        if self.categories.is_empty() {
            mesh.x_labels(x_ticks).x_label_formatter(&x_fmt);
        } else {
            mesh.disable_x_mesh().x_labels(0).x_label_formatter(&none);
        }
        mesh.draw().map_err(drawing)?;
        // Ticks of our own: a grid line across the plot and the label left of the axis.
        for (y, label) in self.y_ticks.iter().flatten() {
            let grid = PathElement::new([(self.x.0, *y), (self.x.1, *y)], RGBColor(225, 225, 225));
            chart.draw_series([grid]).map_err(drawing)?;
            let (px, py) = chart.backend_coord(&(self.x.0, *y));
            let style = text(font::SMALL).pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(label.clone(), (px - 8, py), style))
                .map_err(drawing)?;
        }

        let dx = xspan / 200.0;
        for item in &self.items {
            match item {
                Item::Line {
                    xs,
                    ys,
                    colour: c,
                    width,
                    markers,
                } => {
                    let style = colour(*c).stroke_width(*width);
                    let points: Vec<(f64, f64)> =
                        xs.iter().copied().zip(ys.iter().copied()).collect();
                    chart
                        .draw_series(LineSeries::new(points.iter().copied(), style))
                        .map_err(drawing)?;
                    if *markers {
                        chart
                            .draw_series(
                                points
                                    .iter()
                                    .map(|&p| Circle::new(p, 3, colour(*c).filled())),
                            )
                            .map_err(drawing)?;
                    }
                }
                Item::Rect {
                    from,
                    to,
                    colour: c,
                } => {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [*from, *to],
                            colour(*c).filled(),
                        )))
                        .map_err(drawing)?;
                }
                Item::Whisker {
                    x,
                    lo,
                    hi,
                    colour: c,
                } => {
                    let cap = if self.categories.is_empty() { dx } else { 0.03 };
                    let style = colour(*c).stroke_width(1);
                    for path in [
                        vec![(*x, *lo), (*x, *hi)],
                        vec![(x - cap, *lo), (x + cap, *lo)],
                        vec![(x - cap, *hi), (x + cap, *hi)],
                    ] {
                        chart
                            .draw_series(std::iter::once(PathElement::new(path, style)))
                            .map_err(drawing)?;
                    }
                }
                Item::VLine {
                    x,
                    colour: c,
                    label,
                } => {
                    let style = colour(*c).stroke_width(2);
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(*x, self.y.0), (*x, self.y.1)],
                            style,
                        )))
                        .map_err(drawing)?;
                    // The label on the side of the line with more room.
                    let left_side = (x - self.x.0) > xspan * 0.6;
                    let (offset, anchor) = if left_side {
                        (-5, Pos::new(HPos::Right, VPos::Top))
                    } else {
                        (5, Pos::new(HPos::Left, VPos::Top))
                    };
                    let c = colour(*c);
                    let style = text(font::SMALL).color(&c).pos(anchor);
                    chart
                        .draw_series(std::iter::once(
                            EmptyElement::at((*x, self.y.1))
                                + Text::new(label.clone(), (offset, 5), style),
                        ))
                        .map_err(drawing)?;
                }
                Item::Point { at, colour: c } => {
                    chart
                        .draw_series(std::iter::once(
                            EmptyElement::at(*at)
                                + Rectangle::new([(-3, -3), (3, 3)], colour(*c).filled()),
                        ))
                        .map_err(drawing)?;
                }
            }
        }

        // Category names under their slots, smaller where a slot is narrow.
        let (px, py) = chart.plotting_area().get_pixel_range();
        if !self.categories.is_empty() {
            let slot = (px.end - px.start) as f64 / self.categories.len().max(1) as f64;
            for (i, name) in self.categories.iter().enumerate() {
                let (cx, _) = chart.backend_coord(&(i as f64 + 0.5, self.y.0));
                let mut size = font::SMALL;
                while size > 8.0
                    && root
                        .estimate_text_size(name, &text(size))
                        .map_or(0.0, |s| s.0 as f64)
                        > slot - 4.0
                {
                    size -= 1.0;
                }
                let style = text(size).pos(Pos::new(HPos::Center, VPos::Top));
                root.draw(&Text::new(name.clone(), (cx, py.end + 8), style))
                    .map_err(drawing)?;
            }
        }

        // Legend and colour bar right of the plot area.
        let x0 = px.end + 16;
        let mut y = py.start + 4;
        for (label, c) in &self.legend {
            root.draw(&Rectangle::new(
                [(x0, y + 2), (x0 + 12, y + 12)],
                colour(*c).filled(),
            ))
            .map_err(drawing)?;
            let style = text(font::SMALL).pos(Pos::new(HPos::Left, VPos::Top));
            root.draw(&Text::new(label.clone(), (x0 + 18, y), style))
                .map_err(drawing)?;
            y += 20;
        }
        if let Some(bar) = &self.colour_bar {
            let (top, bottom) = (y.max(py.start), py.end);
            let n = (bottom - top).max(2);
            for k in 0..n {
                let c = super::plot::turbo(1.0 - k as f32 / (n - 1) as f32);
                root.draw(&Rectangle::new(
                    [(x0, top + k), (x0 + 14, top + k + 1)],
                    colour(c).filled(),
                ))
                .map_err(drawing)?;
            }
            let at = |t: &str, yy: i32, v: VPos| {
                Text::new(
                    t.to_string(),
                    (x0 + 20, yy),
                    text(font::SMALL).pos(Pos::new(HPos::Left, v)),
                )
            };
            root.draw(&at(&bar.hi, top, VPos::Top)).map_err(drawing)?;
            root.draw(&at(&bar.lo, bottom, VPos::Bottom))
                .map_err(drawing)?;
            let mid = (top + bottom) / 2;
            root.draw(&at(&bar.caption, mid, VPos::Center))
                .map_err(drawing)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_round_and_short() {
        // plotters' ticks over [0, 0.17] are 0.00, 0.05, …: two decimals, all alike.
        assert_eq!(decimals((0.0, 0.17), Y_TICKS), 2);
        assert_eq!(decimals((0.0, 1.0), X_TICKS), 1);
        assert_eq!(decimals((1.0, 10.0), X_TICKS), 0);
        assert_eq!(decimals((0.0068, 0.0153), X_TICKS), 3);
        // A one-epoch loss chart's axis (0.5 to 1.5, two whole ticks at most): one tick, at 1.
        use plotters::coord::{ranged1d::Ranged, types::RangedCoordf64};
        assert_eq!(RangedCoordf64::from(0.5..1.5).key_points(2), vec![1.0]);
        assert_eq!(tick_label(0.05, (0.0, 0.17), 2), "0.05");
        assert_eq!(tick_label(-1e-18, (0.0, 0.2), 2), "0.00");
        assert_eq!(tick_label(2e-6, (0.0, 1e-5), 0), "2.0e-6");
    }

    #[test]
    fn charts_of_non_finite_ranges_still_draw() {
        let mut c = Chart::new(
            200,
            150,
            "t",
            "x",
            "y",
            (1.0, f64::INFINITY),
            (f64::NAN, 0.0),
        );
        c.polyline(&[1.0, 2.0], &[0.0, f64::INFINITY], super::super::plot::BLUE);
        assert!(c.png().is_ok() && c.svg().is_ok());
    }

    #[test]
    fn charts_draw_as_png_and_svg() {
        let mut c = Chart::new(400, 300, "t", "x", "y", (0.0, 1.0), (0.0, 0.17));
        c.line(
            &[0.0, 0.5, 1.0],
            &[0.0, 0.1, 0.17],
            super::super::plot::BLUE,
            true,
        );
        c.vline(0.9, super::super::plot::RED, "threshold");
        c.legend(&[("normal", super::super::plot::BLUE)]);
        let img = c.png().unwrap();
        assert_eq!(img.dimensions(), (400, 300));
        // Drawn: dark text pixels and the series' blue.
        assert!(img.pixels().any(|p| p[0] < 60 && p[1] < 60 && p[2] < 60));
        assert!(img.pixels().any(|p| *p == super::super::plot::BLUE));
        let svg = c.svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("threshold") && svg.contains("0.15"));
    }
}
