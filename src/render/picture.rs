//! Pictures of images and their anomaly maps: the image as RGB, a map through the turbo colour
//! map, outlines of predicted regions, overlays, 16-bit raw maps and eval's panels.

use super::{font, plot};
use crate::detect::Calibration;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use image::{Rgb, RgbImage};
use std::path::Path;

/// The image (CHW in [0, 1]) as RGB, scaled up by an integer factor (nearest).
pub fn to_rgb(x: &[f32], shape: [u32; 3], scale: u32) -> RgbImage {
    let [c, h, w] = shape;
    let n = (h * w) as usize;
    RgbImage::from_fn(w * scale, h * scale, |xx, yy| {
        let i = ((yy / scale) * w + xx / scale) as usize;
        let v = |ch: usize| (x[ch * n + i].clamp(0.0, 1.0) * 255.0).round() as u8;
        if c == 1 {
            Rgb([v(0), v(0), v(0)])
        } else {
            Rgb([v(0), v(1), v(2)])
        }
    })
}

/// The map through the turbo colour map, 0 ↦ near black (then blue) and `vmax` ↦ dark red,
/// scaled up.
pub fn heat(map: &[f32], w: u32, h: u32, vmax: f32, scale: u32) -> RgbImage {
    RgbImage::from_fn(w * scale, h * scale, |xx, yy| {
        plot::turbo(map[((yy / scale) * w + xx / scale) as usize] / vmax.max(f32::EPSILON))
    })
}

/// Outlines the region where `mask` is set (its border pixels) in `c`, or, where a quarter of the
/// border or more would not stand out from the pixels underneath (a red outline on a red part)
/// and `c`'s complement would hide less of it, all of it in the complement: one colour per
/// picture, not a mix along one outline.
pub fn outline(img: &mut RgbImage, mask: &[bool], w: u32, h: u32, scale: u32, c: Rgb<u8>) {
    let at = |x: i64, y: i64| {
        x >= 0 && y >= 0 && x < w as i64 && y < h as i64 && mask[(y as u32 * w + x as u32) as usize]
    };
    // Two pixels wide where the image is scaled up 4 times or more: one is lost on a dark defect.
    let width: i64 = if scale >= 4 { 2 } else { 1 };
    let mut border = Vec::new();
    for y in 0..(h * scale) as i64 {
        for x in 0..(w * scale) as i64 {
            if !at(x / scale as i64, y / scale as i64) {
                continue;
            }
            // Border of the upscaled region: a pixel outside it within `width` (upscaled pixels).
            let outside = (1..=width).any(|d| {
                [(-d, 0), (d, 0), (0, -d), (0, d)].iter().any(|(dx, dy)| {
                    !at(
                        (x + dx).div_euclid(scale as i64),
                        (y + dy).div_euclid(scale as i64),
                    )
                })
            });
            if outside {
                border.push((x as u32, y as u32));
            }
        }
    }
    let hidden = |c: Rgb<u8>| {
        border
            .iter()
            .filter(|&&(x, y)| {
                let under = img.get_pixel(x, y);
                (0..3).map(|i| under[i].abs_diff(c[i]) as u32).sum::<u32>() < 150
            })
            .count()
    };
    let complement = Rgb(c.0.map(|v| 255 - v));
    let colour = match hidden(c) {
        n if 4 * n >= border.len() && hidden(complement) < n => complement,
        _ => c,
    };
    for (x, y) in border {
        img.put_pixel(x, y, colour);
    }
}

/// The heat map's weight in an overlay at the top of its scale (and above).
const OVERLAY_ALPHA: f32 = 0.7;

/// Heat-map overlay: the image blended with the coloured map (more of it where it is higher), the predicted region outlined in
/// white, and a colour bar with its scale at the right.
pub fn overlay(
    x: &[f32],
    shape: [u32; 3],
    map: &[f32],
    vmax: f32,
    pixel_threshold: f32,
) -> RgbImage {
    let [_, h, w] = shape;
    let scale = (256 / h.max(w)).max(1);
    let base = to_rgb(x, shape, scale);
    let hm = heat(map, w, h, vmax, scale);
    let (iw, ih) = (w * scale, h * scale);
    let top = format!("≥ {vmax:.3}");
    let bar_w = 30 + font::text_width(&top, font::SMALL);
    let mut out = RgbImage::from_pixel(iw + bar_w, ih.max(120), plot::WHITE);
    for (xx, yy, p) in base.enumerate_pixels() {
        let q = hm.get_pixel(xx, yy);
        // The heat map's weight grows with the value: where the map is 0 (most of an image
        // above its normal map) the photograph shows as it is, not tinted blue.
        let v = map[((yy / scale) * w + xx / scale) as usize];
        let t = (v / vmax.max(f32::EPSILON)).clamp(0.0, 1.0);
        let alpha = if t.is_nan() {
            0.0
        } else {
            OVERLAY_ALPHA * t.sqrt()
        };
        let mix = |a: u8, b: u8| (a as f32 * (1.0 - alpha) + b as f32 * alpha).round() as u8;
        out.put_pixel(
            xx,
            yy,
            Rgb([mix(p[0], q[0]), mix(p[1], q[1]), mix(p[2], q[2])]),
        );
    }
    let mask: Vec<bool> = map.iter().map(|&v| v > pixel_threshold).collect();
    outline(&mut out, &mask, w, h, scale, plot::WHITE);
    plot::colorbar(
        &mut out,
        iw as i32 + 8,
        8,
        ih.min(240) as i32 - 16,
        "0",
        &top,
    );
    out
}

/// The raw map as a 16-bit grayscale PNG buffer: value v ↦ round(v · 65535), v clipped to [0, 1].
pub fn map_u16(map: &[f32], w: u32, h: u32) -> image::ImageBuffer<image::Luma<u16>, Vec<u16>> {
    image::ImageBuffer::from_fn(w, h, |x, y| {
        image::Luma([(map[(y * w + x) as usize].clamp(0.0, 1.0) * 65535.0).round() as u16])
    })
}

/// Encodes an image as PNG bytes (for atomic writes).
pub fn png_bytes<P: image::PixelWithColorType, C: std::ops::Deref<Target = [P::Subpixel]>>(
    img: &image::ImageBuffer<P, C>,
) -> Result<Vec<u8>>
where
    [P::Subpixel]: image::EncodableLayout,
{
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::invalid(format!("cannot encode PNG: {e}")))?;
    Ok(out.into_inner())
}

/// What a panel says about its image above the pictures.
pub struct Caption<'a> {
    /// The image's name (its path) and its type (a defect type, "good", or a class).
    pub name: &'a str,
    pub kind: &'a str,
    pub score: f32,
    pub normalised: f32,
    pub anomalous: bool,
}

impl Caption<'_> {
    /// The two lines: "NAME (TYPE)" and "score S, normalised N: " with the verdict after it.
    fn lines(&self) -> (String, String, &'static str) {
        let name = match self.kind {
            "" => self.name.to_string(),
            kind => format!("{} ({kind})", self.name),
        };
        let score = format!(
            "score {:.5}, normalised {:.3}: ",
            self.score, self.normalised
        );
        let verdict = if self.anomalous {
            "anomalous"
        } else {
            "normal"
        };
        (name, score, verdict)
    }

    fn width(&self, size: f64) -> u32 {
        let (name, score, verdict) = self.lines();
        font::text_width(&name, size)
            .max(font::text_width(&score, size) + font::text_width(verdict, size))
    }

    /// Draws the lines at (x, y), `line` pixels apart, the verdict red or green.
    fn draw(&self, img: &mut RgbImage, x: i32, y: i32, size: f64, line: i32) {
        let (name, score, verdict) = self.lines();
        font::label(img, x, y, &name, size, plot::BLACK);
        font::label(img, x, y + line, &score, size, plot::BLACK);
        let colour = if self.anomalous {
            plot::RED
        } else {
            plot::GREEN
        };
        let vx = x + font::text_width(&score, size) as i32;
        font::label(img, vx, y + line, verdict, size, colour);
    }
}

/// A panel: a header (name, type, score, normalised score, verdict), then image | ground truth |
/// heat map | predicted region, each scaled to ~192 px and labelled. The heat map uses the
/// colour scale 0 … `vmax` (one for every panel of a report; larger values are drawn at the top
/// colour), shown by its colour bar.
pub fn panel(
    x: &[f32],
    shape: [u32; 3],
    gt: Option<&[bool]>,
    map: &[f32],
    vmax: f32,
    pixel_threshold: f32,
    caption: &Caption,
) -> RgbImage {
    let [_, h, w] = shape;
    // Tiles of about 192 px, so that a 96 px image's outlines stay visible (nearest-neighbour
    // blocks: the pixels as they are).
    let side = h.max(w);
    let scale = ((192 + side / 2) / side).max(1);
    let (pw, ph) = (w * scale, h * scale);
    let mut tiles: Vec<(&str, RgbImage)> = vec![("image", to_rgb(x, shape, scale))];
    if let Some(gt) = gt {
        let g: Vec<f32> = gt.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
        tiles.push(("ground truth", to_rgb(&g, [1, h, w], scale)));
    }
    let heat = heat(map, w, h, vmax, scale);
    let top = format!("≥ {vmax:.3}");
    let mut hm = RgbImage::from_pixel(
        pw + 24 + font::text_width(&top, font::SMALL),
        ph,
        plot::WHITE,
    );
    image::imageops::overlay(&mut hm, &heat, 0, 0);
    plot::colorbar(&mut hm, pw as i32 + 4, 0, ph as i32, "0", &top);
    tiles.push(("heat map", hm));
    let mask: Vec<bool> = map.iter().map(|&v| v > pixel_threshold).collect();
    let mut pred = to_rgb(x, shape, scale);
    outline(&mut pred, &mask, w, h, scale, plot::RED);
    tiles.push(("predicted region", pred));

    let gap = 10;
    let tiles_w: u32 = tiles.iter().map(|(_, t)| t.width() + gap).sum::<u32>() + gap;
    let header = 48;
    let header_w = caption.width(font::NORMAL) + 2 * gap;
    let mut out = RgbImage::from_pixel(tiles_w.max(header_w), ph + header + 24, plot::WHITE);
    caption.draw(&mut out, gap as i32, 4, font::NORMAL, 20);
    let mut x0 = gap;
    for (label, t) in &tiles {
        font::label(
            &mut out,
            x0 as i32,
            header as i32 + 2,
            label,
            font::SMALL,
            plot::DARK_GREY,
        );
        image::imageops::overlay(&mut out, t, x0 as i64, (header + 22) as i64);
        x0 += t.width() + gap;
    }
    out
}

/// The colour scale's top for maps of normal-looking images: the calibration's largest pixel
/// value, at least twice the pixel threshold.
pub fn map_vmax(cal: &Calibration) -> f32 {
    cal.pixel_max.max(cal.pixel_threshold * 2.0).max(1e-6)
}

/// The files `write_maps` writes for an image named NAME: NAME followed by each of these.
pub const MAP_SUFFIXES: [&str; 3] = ["_overlay.png", "_map.png", "_region.png"];

/// `lamp score --maps`: `NAME_overlay.png` (the image blended with the heat map, predicted region
/// outlined, colour bar), `NAME_map.png` (the raw map, 16-bit, value × 65535) and
/// `NAME_region.png` (the image with the predicted region outlined), for one image `x` of `shape`
/// and its smoothed map; the overlay under the `caption` (the image's path, score and verdict),
/// so that it says what it shows wherever it is copied.
pub fn write_maps(
    dir: &Path,
    name: &str,
    x: &[f32],
    shape: [u32; 3],
    map: &[f32],
    cal: &Calibration,
    caption: &Caption,
) -> Result<()> {
    let [_, h, w] = shape;
    let ov = overlay(x, shape, map, map_vmax(cal), cal.pixel_threshold);
    let (gap, header) = (6, 40);
    let mut captioned = RgbImage::from_pixel(
        ov.width().max(caption.width(font::SMALL) + 2 * gap),
        ov.height() + header,
        plot::WHITE,
    );
    caption.draw(&mut captioned, gap as i32, 3, font::SMALL, 18);
    image::imageops::overlay(&mut captioned, &ov, 0, header as i64);
    write_atomic(
        &dir.join(format!("{name}{}", MAP_SUFFIXES[0])),
        &png_bytes(&captioned)?,
    )?;
    write_atomic(
        &dir.join(format!("{name}{}", MAP_SUFFIXES[1])),
        &png_bytes(&map_u16(map, w, h))?,
    )?;
    let mask: Vec<bool> = map.iter().map(|&v| v > cal.pixel_threshold).collect();
    let scale = (256 / h).max(1);
    let mut region = to_rgb(x, shape, scale);
    outline(&mut region, &mask, w, h, scale, plot::RED);
    write_atomic(
        &dir.join(format!("{name}{}", MAP_SUFFIXES[2])),
        &png_bytes(&region)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_shows_the_image_where_the_map_is_zero() {
        // 4x4 grey image; the map 0 everywhere but one pixel at the top of the scale.
        let x = vec![0.5; 16];
        let mut map = vec![0.0; 16];
        map[5] = 2.0;
        let img = overlay(&x, [1, 4, 4], &map, 2.0, 10.0);
        let scale = 256 / 4;
        assert_eq!(*img.get_pixel(0, 0), Rgb([128, 128, 128]));
        let hot = plot::turbo(1.0);
        let want = Rgb(hot.0.map(|q| (128.0 * 0.3 + q as f32 * 0.7).round() as u8));
        assert_eq!(*img.get_pixel(scale + 1, scale + 1), want);
    }

    #[test]
    fn an_outline_stands_out_from_what_it_is_drawn_on() {
        // A 4x4 region in the middle of 8x8: its border is outlined, its inside left alone.
        let mask: Vec<bool> = (0..64)
            .map(|i| (2..6).contains(&(i % 8)) && (2..6).contains(&(i / 8)))
            .collect();
        let mut grey = RgbImage::from_pixel(8, 8, Rgb([128, 128, 128]));
        outline(&mut grey, &mask, 8, 8, 1, plot::RED);
        assert_eq!(*grey.get_pixel(2, 2), plot::RED);
        assert_eq!(*grey.get_pixel(3, 3), Rgb([128, 128, 128]));
        assert_eq!(*grey.get_pixel(0, 0), Rgb([128, 128, 128]));
        // On a red stain a red outline would vanish: it takes the complement.
        let mut red = RgbImage::from_pixel(8, 8, Rgb([220, 30, 30]));
        outline(&mut red, &mask, 8, 8, 1, plot::RED);
        let cyan = Rgb(plot::RED.0.map(|v| 255 - v));
        assert_eq!(*red.get_pixel(5, 5), cyan);
        // Scaled up 4 times: two pixels wide (the region spans 8..24 in upscaled pixels).
        let mut big = RgbImage::from_pixel(32, 32, Rgb([128, 128, 128]));
        outline(&mut big, &mask, 8, 8, 4, plot::RED);
        let row: Vec<bool> = (6..12)
            .map(|x| *big.get_pixel(x, 16) == plot::RED)
            .collect();
        assert_eq!(row, [false, false, true, true, false, false]);
        // None, a third, then two thirds of the border on red: one colour for the whole
        // outline, never a mix, and the complement once a quarter of the red would be lost.
        for left_red in [1, 3, 5] {
            let mut half = RgbImage::from_fn(8, 8, |x, _| {
                if x < left_red {
                    Rgb([220, 30, 30])
                } else {
                    Rgb([128, 128, 128])
                }
            });
            outline(&mut half, &mask, 8, 8, 1, plot::RED);
            let colours: std::collections::BTreeSet<_> = [(2, 2), (5, 2), (2, 5), (5, 5)]
                .iter()
                .map(|&(x, y)| half.get_pixel(x, y).0)
                .collect();
            assert_eq!(colours.len(), 1, "{left_red}: {colours:?}");
            let want = if left_red >= 3 { cyan } else { plot::RED };
            assert_eq!(*half.get_pixel(2, 2), want, "{left_red}");
        }
    }
}
