//! Colours (the series palette, the turbo map of heat maps) and the few raster primitives that
//! pictures of images need (lines, rectangles, a colour bar). Charts are drawn by `chart`.

use super::font;
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
/// Greys for series that are baselines, apart from each other and from GREY's grid lines.
pub const GREYS: [Rgb<u8>; 3] = [DARK_GREY, Rgb([150, 150, 150]), Rgb([70, 70, 70])];

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

/// A vertical colour bar of the turbo map, `h` pixels high, labelled with `lo` and `hi`.
pub fn colorbar(img: &mut RgbImage, x: i32, y: i32, h: i32, lo: &str, hi: &str) {
    for k in 0..h {
        let c = turbo(1.0 - k as f32 / (h - 1).max(1) as f32);
        rect(img, x, y + k, x + 10, y + k, c);
    }
    font::label(img, x + 14, y, hi, font::SMALL, BLACK);
    font::label(img, x + 14, y + h - 14, lo, font::SMALL, BLACK);
}
