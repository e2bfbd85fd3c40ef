//! Small raster charts for reports (ROC, score histogram, loss curve) and colour maps for heat
//! maps, drawn straight into PNG images with an 8×8 bitmap font. No plotting framework: these
//! few figures need axes, lines, bars and labels, nothing more.

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

pub const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
pub const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
pub const GREY: Rgb<u8> = Rgb([200, 200, 200]);
pub const DARK_GREY: Rgb<u8> = Rgb([110, 110, 110]);
pub const BLUE: Rgb<u8> = Rgb([31, 119, 180]);
pub const ORANGE: Rgb<u8> = Rgb([255, 127, 14]);
pub const RED: Rgb<u8> = Rgb([214, 39, 40]);
pub const GREEN: Rgb<u8> = Rgb([44, 160, 44]);
pub const PURPLE: Rgb<u8> = Rgb([148, 103, 189]);
pub const BROWN: Rgb<u8> = Rgb([140, 86, 75]);
pub const PINK: Rgb<u8> = Rgb([227, 119, 194]);
pub const OLIVE: Rgb<u8> = Rgb([188, 189, 34]);
/// Distinct colours for series, in order (the "tab10" palette, less its grey).
pub const SERIES: [Rgb<u8>; 8] = [BLUE, ORANGE, GREEN, RED, PURPLE, BROWN, PINK, OLIVE];

/// Turbo colour map (Mikhail, Google 2019), polynomial approximation; t in [0, 1].
pub fn turbo(t: f32) -> Rgb<u8> {
    let t = t.clamp(0.0, 1.0) as f64;
    let r = 0.13572138
        + t * (4.61539260
            + t * (-42.66032258 + t * (132.13108234 + t * (-152.94239396 + t * 59.28637943))));
    let g = 0.09140261
        + t * (2.19418839
            + t * (4.84296658 + t * (-14.18503333 + t * (4.27729857 + t * 2.82956604))));
    let b = 0.10667330
        + t * (12.64194608
            + t * (-60.58204836 + t * (110.36276771 + t * (-89.90310912 + t * 27.34824973))));
    let c = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    Rgb([c(r), c(g), c(b)])
}

/// Draws `text` with its top-left corner at (x, y), each font pixel `scale`×`scale`.
pub fn text(img: &mut RgbImage, x: i32, y: i32, s: &str, scale: u32, color: Rgb<u8>) {
    for (i, ch) in s.chars().enumerate() {
        let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else {
            continue;
        };
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (i as u32 * 8 * scale + col * scale + dx) as i32;
                            let py = y + (row as u32 * scale + dy) as i32;
                            put(img, px, py, color);
                        }
                    }
                }
            }
        }
    }
}

pub fn text_width(s: &str, scale: u32) -> i32 {
    (s.chars().count() as u32 * 8 * scale) as i32
}

pub fn put(img: &mut RgbImage, x: i32, y: i32, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// A line of width `w` (Bresenham, thickened).
pub fn line(img: &mut RgbImage, (x0, y0): (i32, i32), (x1, y1): (i32, i32), c: Rgb<u8>, w: i32) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    loop {
        for oy in -(w / 2)..=(w - 1) / 2 {
            for ox in -(w / 2)..=(w - 1) / 2 {
                put(img, x + ox, y + oy, c);
            }
        }
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

pub fn rect(img: &mut RgbImage, x0: i32, y0: i32, x1: i32, y1: i32, c: Rgb<u8>) {
    for y in y0.min(y1)..=y0.max(y1) {
        for x in x0.min(x1)..=x0.max(x1) {
            put(img, x, y, c);
        }
    }
}

/// A chart's frame: data ranges mapped into a plot area with margins for labels.
pub struct Chart {
    pub img: RgbImage,
    pub x: (f64, f64),
    pub y: (f64, f64),
    left: i32,
    top: i32,
    right: i32,
    bottom: i32,
}

/// Tick label: compact, readable.
fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 || v.abs() < 0.01 {
        format!("{v:.1e}")
    } else if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else if v.abs() < 0.1 {
        format!("{v:.3}")
    } else {
        format!("{v:.2}")
    }
}

impl Chart {
    /// A white image with title, axis labels and 5 ticks per axis.
    pub fn new(
        w: u32,
        h: u32,
        title: &str,
        xlabel: &str,
        ylabel: &str,
        x: (f64, f64),
        y: (f64, f64),
    ) -> Chart {
        let mut c = Chart::frame(w, h, title, xlabel, ylabel, x, y, 20);
        for i in 0..=4 {
            let xv = x.0 + i as f64 / 4.0 * (x.1 - x.0);
            c.x_tick(xv, &fmt_tick(xv));
        }
        c
    }

    /// A bar chart's frame: one slot of width 1 per category, labelled below, and the legend to
    /// the right of the plot area.
    pub fn categories(
        w: u32,
        h: u32,
        title: &str,
        ylabel: &str,
        names: &[String],
        y: (f64, f64),
        legend: &[(&str, Rgb<u8>)],
    ) -> Chart {
        let legend_w = legend
            .iter()
            .map(|(l, _)| text_width(l, 1) + 30)
            .max()
            .unwrap_or(0);
        let x = (0.0, names.len().max(1) as f64);
        let mut c = Chart::frame(w, h, title, "", ylabel, x, y, 20 + legend_w);
        for (i, n) in names.iter().enumerate() {
            c.x_tick(i as f64 + 0.5, n);
        }
        for (i, (label, colour)) in legend.iter().enumerate() {
            c.legend_entry(c.right + 16, i, label, *colour);
        }
        c
    }

    /// Title, axis labels, y ticks with grid lines and the axes; `right` pixels kept free.
    #[allow(clippy::too_many_arguments)]
    fn frame(
        w: u32,
        h: u32,
        title: &str,
        xlabel: &str,
        ylabel: &str,
        x: (f64, f64),
        y: (f64, f64),
        right: i32,
    ) -> Chart {
        let mut img = RgbImage::from_pixel(w, h, WHITE);
        let (left, top, right, bottom) = (80, 40, w as i32 - right, h as i32 - 50);
        text(
            &mut img,
            (w as i32 - text_width(title, 2)) / 2,
            10,
            title,
            2,
            BLACK,
        );
        text(
            &mut img,
            (left + right - text_width(xlabel, 1)) / 2,
            h as i32 - 18,
            xlabel,
            1,
            BLACK,
        );
        // The y label, written vertically one character per line.
        for (i, ch) in ylabel.chars().enumerate() {
            text(
                &mut img,
                6,
                top + 10 + i as i32 * 10,
                &ch.to_string(),
                1,
                BLACK,
            );
        }
        let mut c = Chart {
            img,
            x,
            y,
            left,
            top,
            right,
            bottom,
        };
        for i in 0..=4 {
            let yv = y.0 + i as f64 / 4.0 * (y.1 - y.0);
            let (_, py) = c.to_px(x.0, yv);
            line(&mut c.img, (left, py), (right, py), GREY, 1);
            let yl = fmt_tick(yv);
            text(
                &mut c.img,
                left - 6 - text_width(&yl, 1),
                py - 4,
                &yl,
                1,
                BLACK,
            );
        }
        line(&mut c.img, (left, bottom), (right, bottom), BLACK, 1);
        line(&mut c.img, (left, top), (left, bottom), BLACK, 1);
        c
    }

    /// A vertical grid line at `x`, labelled below the axis.
    fn x_tick(&mut self, x: f64, label: &str) {
        let (px, _) = self.to_px(x, self.y.0);
        line(
            &mut self.img,
            (px, self.top),
            (px, self.bottom - 1),
            GREY,
            1,
        );
        text(
            &mut self.img,
            px - text_width(label, 1) / 2,
            self.bottom + 6,
            label,
            1,
            BLACK,
        );
    }

    pub fn to_px(&self, x: f64, y: f64) -> (i32, i32) {
        let fx = if self.x.1 > self.x.0 {
            (x - self.x.0) / (self.x.1 - self.x.0)
        } else {
            0.5
        };
        let fy = if self.y.1 > self.y.0 {
            (y - self.y.0) / (self.y.1 - self.y.0)
        } else {
            0.5
        };
        (
            self.left + (fx * (self.right - self.left) as f64).round() as i32,
            self.bottom - (fy * (self.bottom - self.top) as f64).round() as i32,
        )
    }

    pub fn polyline(&mut self, xs: &[f64], ys: &[f64], c: Rgb<u8>) {
        for k in 1..xs.len().min(ys.len()) {
            let a = self.to_px(xs[k - 1], ys[k - 1]);
            let b = self.to_px(xs[k], ys[k]);
            line(&mut self.img, a, b, c, 2);
        }
    }

    /// A filled bar from y = y.0 up to `v` between x0 and x1, outlined.
    pub fn bar(&mut self, x0: f64, x1: f64, v: f64, c: Rgb<u8>) {
        self.bar_from(x0, x1, self.y.0, v, c);
    }

    /// A filled bar between heights `from` and `to` (clipped to the y range).
    pub fn bar_from(&mut self, x0: f64, x1: f64, from: f64, to: f64, c: Rgb<u8>) {
        let (a, b) = (
            self.to_px(x0, self.clip_y(from)),
            self.to_px(x1, self.clip_y(to)),
        );
        rect(&mut self.img, a.0, b.1, b.0 - 1, a.1, c);
    }

    /// A vertical whisker at `x` from `lo` to `hi` with short caps.
    pub fn whisker(&mut self, x: f64, lo: f64, hi: f64, c: Rgb<u8>) {
        let (a, b) = (
            self.to_px(x, self.clip_y(lo)),
            self.to_px(x, self.clip_y(hi)),
        );
        line(&mut self.img, a, b, c, 1);
        line(&mut self.img, (a.0 - 2, a.1), (a.0 + 2, a.1), c, 1);
        line(&mut self.img, (b.0 - 2, b.1), (b.0 + 2, b.1), c, 1);
    }

    /// `v` held inside the y range.
    fn clip_y(&self, v: f64) -> f64 {
        v.clamp(self.y.0.min(self.y.1), self.y.0.max(self.y.1))
    }

    /// A horizontal line across the plot at height `y`.
    pub fn hline(&mut self, y: f64, c: Rgb<u8>) {
        self.hline_between(self.x.0, self.x.1, y, c, 1);
    }

    /// A horizontal line from x0 to x1 at height `y`, `w` pixels thick.
    pub fn hline_between(&mut self, x0: f64, x1: f64, y: f64, c: Rgb<u8>, w: i32) {
        let (a, b) = (self.to_px(x0, y), self.to_px(x1, y));
        line(&mut self.img, a, b, c, w);
    }

    /// Legend entries stacked in the top-right corner.
    pub fn legend(&mut self, entries: &[(&str, Rgb<u8>)]) {
        for (i, (label, c)) in entries.iter().enumerate() {
            self.legend_entry(self.right - 12 - text_width(label, 1) - 16, i, label, *c);
        }
    }

    /// Row `i` of a legend: a colour swatch at `x`, then the label.
    fn legend_entry(&mut self, x: i32, i: usize, label: &str, c: Rgb<u8>) {
        let y = self.top + 8 + i as i32 * 14;
        rect(&mut self.img, x, y, x + 10, y + 8, c);
        text(&mut self.img, x + 16, y, label, 1, BLACK);
    }

    pub fn vline(&mut self, x: f64, c: Rgb<u8>, label: &str) {
        let (px, _) = self.to_px(x, self.y.0);
        line(&mut self.img, (px, self.top), (px, self.bottom), c, 2);
        text(&mut self.img, px + 4, self.top + 2, label, 1, c);
    }
}

/// A vertical colour bar of the turbo map, `h` pixels high, labelled with `lo` and `hi`.
pub fn colorbar(img: &mut RgbImage, x: i32, y: i32, h: i32, lo: &str, hi: &str) {
    for k in 0..h {
        let c = turbo(1.0 - k as f32 / (h - 1).max(1) as f32);
        rect(img, x, y + k, x + 10, y + k, c);
    }
    text(img, x + 14, y, hi, 1, BLACK);
    text(img, x + 14, y + h - 8, lo, 1, BLACK);
}
