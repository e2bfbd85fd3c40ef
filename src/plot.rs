//! Small raster charts for reports (ROC, score histogram, loss curve) and colour maps for heat
//! maps, drawn straight into PNG images with an 8×8 bitmap font. No plotting framework: these
//! few figures need axes, lines, bars and labels, nothing more.

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

pub const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
pub const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
pub const GREY: Rgb<u8> = Rgb([200, 200, 200]);
pub const BLUE: Rgb<u8> = Rgb([31, 119, 180]);
pub const ORANGE: Rgb<u8> = Rgb([255, 127, 14]);
pub const RED: Rgb<u8> = Rgb([214, 39, 40]);
pub const GREEN: Rgb<u8> = Rgb([44, 160, 44]);

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
        let mut img = RgbImage::from_pixel(w, h, WHITE);
        let (left, top, right, bottom) = (80, 40, w as i32 - 20, h as i32 - 50);
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
            let f = i as f64 / 4.0;
            let (xv, yv) = (x.0 + f * (x.1 - x.0), y.0 + f * (y.1 - y.0));
            let (px, _) = c.to_px(xv, y.0);
            let (_, py) = c.to_px(x.0, yv);
            line(&mut c.img, (px, top), (px, bottom), GREY, 1);
            line(&mut c.img, (left, py), (right, py), GREY, 1);
            let xl = fmt_tick(xv);
            text(
                &mut c.img,
                px - text_width(&xl, 1) / 2,
                bottom + 6,
                &xl,
                1,
                BLACK,
            );
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
        let (a, b) = (self.to_px(x0, self.y.0), self.to_px(x1, v));
        rect(&mut self.img, a.0, b.1, b.0 - 1, a.1, c);
    }

    /// Legend entries stacked in the top-right corner.
    pub fn legend(&mut self, entries: &[(&str, Rgb<u8>)]) {
        for (i, (label, c)) in entries.iter().enumerate() {
            let y = self.top + 8 + i as i32 * 14;
            let x = self.right - 12 - text_width(label, 1) - 16;
            rect(&mut self.img, x, y, x + 10, y + 8, *c);
            text(&mut self.img, x + 16, y, label, 1, BLACK);
        }
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
