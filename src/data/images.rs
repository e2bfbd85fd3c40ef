//! Images from disk: decoding any supported file with limits against decompression bombs, and
//! converting it to the model's channels and size (finding them in folders: `listing`).

use super::Dataset;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Largest image accepted, in pixels (8192 x 8192), checked from the header before anything is
/// decoded: a guard against decompression bombs (a 0.5 MB PNG can claim 32768 x 16384).
pub const MAX_PIXELS: u64 = 1 << 26;

fn check_pixels(path: &Path, w: u32, h: u32) -> Result<()> {
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(Error::file(
            path,
            format!("{w}x{h} pixels is more than lamp decodes ({MAX_PIXELS} pixels, 8192x8192); shrink it first"),
        ));
    }
    Ok(())
}

/// A JPEG cut short still decodes (the decoder fills the rest with grey), so a file whose end
/// lacks the end-of-image marker (FF D9) is reported as truncated instead of scored.
fn check_jpeg_end(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let read_err = |e: std::io::Error| Error::file(path, format!("cannot read: {e}"));
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    let len = f.seek(SeekFrom::End(0)).map_err(read_err)?;
    // Some writers pad after the marker; 4 KiB of tail is plenty.
    let tail = len.min(4096);
    f.seek(SeekFrom::Start(len - tail)).map_err(read_err)?;
    let mut buf = Vec::with_capacity(tail as usize);
    f.take(tail).read_to_end(&mut buf).map_err(read_err)?;
    if buf.windows(2).any(|w| w == [0xFF, 0xD9]) {
        Ok(())
    } else {
        Err(Error::file(
            path,
            "truncated JPEG (no end-of-image marker): the file was cut short",
        ))
    }
}

/// What a set of image files holds, read from their headers only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageShape {
    pub count: usize,
    /// 3 when any image has colour, else 1.
    pub channels: u32,
    /// The smallest side of any image, and the largest.
    pub min_side: u32,
    pub max_side: u32,
    /// The median of the images' smaller sides: the size the model is made for.
    pub median_side: u32,
    /// Images whose width and height differ: the model sees them stretched to a square.
    pub not_square: usize,
    /// The first of those, and its width and height (for a warning that names it).
    pub first_not_square: Option<(PathBuf, u32, u32)>,
    /// Images without colour (among colour ones they are trained on as RGB: grey on all three).
    pub grey: usize,
}

impl ImageShape {
    /// "150 RGB images of 128x128", "12 grey images of 64 to 300 pixels" or "150 RGB (3 of them
    /// grey, read as RGB) images of 96x96".
    pub fn describe(&self) -> String {
        let colour = match (self.channels, self.grey) {
            (3, 0) => "RGB".to_string(),
            (3, g) => format!("RGB ({g} of them grey, read as RGB)"),
            _ => "grey".to_string(),
        };
        let size = if self.min_side == self.max_side {
            format!("{0}x{0}", self.min_side)
        } else {
            format!(
                "{} to {} pixels a side (median {})",
                self.min_side, self.max_side, self.median_side
            )
        };
        let images = if self.count == 1 { "image" } else { "images" };
        format!("{} {colour} {images} of {size}", self.count)
    }
}

/// The channels and sizes of `paths`, from the files' headers (nothing is decoded). With
/// `skip_bad`, files that cannot be read are left out (their loading reports them).
pub fn inspect(paths: &[PathBuf], skip_bad: bool) -> Result<ImageShape> {
    use image::ImageDecoder;
    let mut shape = ImageShape {
        count: 0,
        channels: 1,
        min_side: u32::MAX,
        max_side: 0,
        median_side: 0,
        not_square: 0,
        first_not_square: None,
        grey: 0,
    };
    let mut sides = Vec::with_capacity(paths.len());
    for p in paths {
        let mut tiff = false;
        let d = reader(p).and_then(|r| {
            tiff = r.format() == Some(image::ImageFormat::Tiff);
            r.into_decoder()
                .map_err(|e| Error::file(p, format!("cannot decode image: {e}")))
        });
        // A one-channel TIFF of 32- or 64-bit samples, which the image library does not read
        // (only a file the reader opened as TIFF: never a FIFO, which would block).
        let grey_tiff = match (&d, tiff) {
            (Err(_), true) => super::grey_tiff::dimensions(p),
            _ => None,
        };
        let (w, h, colour) = match (d, grey_tiff) {
            (Ok(d), _) => (
                d.dimensions().0,
                d.dimensions().1,
                d.color_type().has_color(),
            ),
            (Err(_), Some((w, h))) => (w, h, false),
            (Err(_), None) if skip_bad => continue,
            (Err(e), None) => return Err(e),
        };
        match check_pixels(p, w, h) {
            Ok(()) => {}
            Err(_) if skip_bad => continue,
            Err(e) => return Err(e),
        }
        if colour {
            shape.channels = 3;
        } else {
            shape.grey += 1;
        }
        shape.count += 1;
        shape.not_square += usize::from(w != h);
        if w != h && shape.first_not_square.is_none() {
            shape.first_not_square = Some((p.clone(), w, h));
        }
        sides.push(w.min(h));
        shape.min_side = shape.min_side.min(w.min(h));
        shape.max_side = shape.max_side.max(w.max(h));
    }
    if shape.count == 0 {
        return Err(Error::invalid(format!(
            "none of the {} images could be read",
            paths.len()
        )));
    }
    sides.sort_unstable();
    shape.median_side = sides[sides.len() / 2];
    Ok(shape)
}

/// A reader of the image at `path` with lamp's limits, its format guessed from its bytes.
pub(super) fn reader(path: &Path) -> Result<image::ImageReader<std::io::BufReader<std::fs::File>>> {
    let meta = crate::fsutil::regular_file(path)?;
    if meta.len() == 0 {
        return Err(Error::file(path, "empty file (0 bytes)"));
    }
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?
        .with_guessed_format()
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    // Neither the first bytes nor the name say which format: the image crate's own message
    // for that quotes the extension oddly (`."txt"`).
    if reader.format().is_none() {
        return Err(Error::file(
            path,
            "not an image lamp reads: neither its first bytes nor its name say PNG, JPEG, BMP, \
             TIFF, GIF or WebP",
        ));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(1 << 15);
    limits.max_image_height = Some(1 << 15);
    limits.max_alloc = Some(MAX_PIXELS * 16);
    reader.limits(limits);
    Ok(reader)
}

/// Loads one image as `channels` (1: luma, 3: RGB; alpha dropped) × size × size in [0, 1],
/// resized with a bilinear (triangle) filter.
pub fn load_image(path: &Path, channels: u32, size: u32) -> Result<Vec<f32>> {
    Ok(load_image_sized(path, channels, size)?.0)
}

/// As `load_image`, with the image's own width and height.
pub fn load_image_sized(path: &Path, channels: u32, size: u32) -> Result<(Vec<f32>, (u32, u32))> {
    use image::ImageDecoder;
    let r = reader(path)?;
    if r.format() == Some(image::ImageFormat::Jpeg) {
        check_jpeg_end(path)?;
    }
    let decode_err = |e: image::ImageError| Error::file(path, format!("cannot decode image: {e}"));
    let tiff = r.format() == Some(image::ImageFormat::Tiff);
    let img = match r.into_decoder() {
        Ok(d) => {
            let (w, h) = d.dimensions();
            check_pixels(path, w, h)?;
            image::DynamicImage::from_decoder(d).map_err(decode_err)?
        }
        // A one-channel TIFF of 32- or 64-bit samples, which the image library does not read.
        Err(e) => match tiff.then(|| super::grey_tiff::open(path)).flatten() {
            Some(t) => {
                check_pixels(path, t.dimensions.0, t.dimensions.1)?;
                super::grey_tiff::decode(path, t)?
            }
            None => return Err(decode_err(e)),
        },
    };
    let (w, h) = (img.width(), img.height());
    check_float_values(&img).map_err(|m| Error::file(path, m))?;
    Ok((convert(&img, channels, size), (w, h)))
}

/// Float images (TIFF, OpenEXR) can hold NaN or infinity, which would poison training or make a
/// score that no threshold compares with: refused by position. lamp reads their values as
/// intensities from 0 to 1; values far outside are other units (a depth in millimetres, a
/// temperature), which clamping would flatten: refused, with their range.
pub fn check_float_values(img: &image::DynamicImage) -> std::result::Result<(), String> {
    use image::DynamicImage::{ImageRgb32F, ImageRgba32F};
    let (w, values, per_pixel): (u32, &[f32], u32) = match img {
        ImageRgb32F(b) => (b.width(), b.as_raw(), 3),
        ImageRgba32F(b) => (b.width(), b.as_raw(), 4),
        _ => return Ok(()),
    };
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => {
            let p = i as u32 / per_pixel;
            Err(format!(
                "a pixel value is not finite ({}) at x {}, y {}: the image cannot be scored",
                values[i],
                p % w,
                p / w
            ))
        }
        None => {
            let (lo, hi) = values
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            if lo < -FLOAT_SLACK || hi > 1.0 + FLOAT_SLACK {
                return Err(format!(
                    "its float pixel values run from {lo} to {hi}, where lamp reads float \
                     images as intensities from 0 to 1 (values up to {FLOAT_SLACK} outside are \
                     clamped): scale it to [0, 1] first (a depth, height or temperature map in \
                     its own units?)"
                ));
            }
            Ok(())
        }
    }
}

/// How far outside [0, 1] a float image's values may lie (rounding, a filter's overshoot) and
/// still be read, clamped.
pub const FLOAT_SLACK: f32 = 0.01;

/// Converts a decoded image to `channels` × size × size f32 in [0, 1] (CHW).
pub fn convert(img: &image::DynamicImage, channels: u32, size: u32) -> Vec<f32> {
    use image::imageops::{resize, FilterType};
    let n = (size * size) as usize;
    if channels == 1 {
        let g = img.to_luma32f();
        let g = if g.dimensions() == (size, size) {
            g
        } else {
            resize(&g, size, size, FilterType::Triangle)
        };
        g.into_raw()
            .into_iter()
            .map(|v| v.clamp(0.0, 1.0))
            .collect()
    } else {
        let rgb = img.to_rgb32f();
        let rgb = if rgb.dimensions() == (size, size) {
            rgb
        } else {
            resize(&rgb, size, size, FilterType::Triangle)
        };
        let raw = rgb.into_raw();
        let mut out = vec![0f32; 3 * n];
        for (i, px) in raw.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * n + i] = px[c].clamp(0.0, 1.0);
            }
        }
        out
    }
}

/// Loads many images in parallel (all cores), keeping their order.
pub fn load_images(paths: &[PathBuf], channels: u32, size: u32) -> Result<Dataset> {
    Ok(load_images_skipping(paths, channels, size, false)?.0)
}

/// As `load_images`; with `skip_bad`, unreadable images are left out and returned as errors
/// instead of stopping the load.
pub fn load_images_skipping(
    paths: &[PathBuf],
    channels: u32,
    size: u32,
    skip_bad: bool,
) -> Result<(Dataset, Vec<Error>)> {
    let parts = decode_in_parallel(paths, channels, size, !skip_bad);
    let mut samples = Vec::with_capacity(paths.len() * (channels * size * size) as usize);
    let mut names = Vec::with_capacity(paths.len());
    let mut skipped = Vec::new();
    for (i, r) in parts {
        match r {
            Ok((v, _)) => {
                samples.extend(v);
                names.push(crate::fsutil::path_text(&paths[i]));
            }
            Err(e) if skip_bad => skipped.push(e),
            Err(e) => return Err(e),
        }
    }
    if names.is_empty() && !paths.is_empty() {
        return Err(Error::invalid(format!(
            "none of the {} images could be read",
            paths.len()
        )));
    }
    Ok((
        Dataset {
            samples,
            shape: [channels, size, size],
            names,
            labels: None,
        },
        skipped,
    ))
}

/// Whether a decoded colour image ([3, S, S], planes in order) has no colour: its three planes
/// equal, as a grey file's become.
pub fn colourless(rgb: &[f32]) -> bool {
    let n = rgb.len() / 3;
    n > 0 && rgb[..n] == rgb[n..2 * n] && rgb[..n] == rgb[2 * n..]
}

/// One image decoded by `load_image_sized`: its values, and its own width and height.
pub type Decoded = Result<(Vec<f32>, (u32, u32))>;

/// Decodes `paths` on all cores as `load_image_sized` does, each result beside its index, in
/// order.
/// With `stop_at_error`, a thread stops at its first unreadable image (the caller stops at the
/// first error in order, so nothing after it is needed).
pub fn decode_in_parallel(
    paths: &[PathBuf],
    channels: u32,
    size: u32,
    stop_at_error: bool,
) -> Vec<(usize, Decoded)> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(paths.len().max(1));
    let chunk = paths.len().div_ceil(threads).max(1);
    type Part = Vec<(usize, Decoded)>;
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .enumerate()
            .map(|(ci, part)| {
                s.spawn(move || -> Part {
                    let mut v = Vec::new();
                    for (k, p) in part.iter().enumerate() {
                        let r = load_image_sized(p, channels, size);
                        let stop = r.is_err() && stop_at_error;
                        v.push((ci * chunk + k, r));
                        if stop {
                            break;
                        }
                    }
                    v
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![(0, Err(Error::invalid("image loader crashed")))])
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_says_what_lamp_makes_of_the_images() {
        let mut s = ImageShape {
            count: 150,
            channels: 3,
            min_side: 96,
            max_side: 96,
            median_side: 96,
            not_square: 0,
            first_not_square: None,
            grey: 0,
        };
        assert_eq!(s.describe(), "150 RGB images of 96x96");
        s.grey = 3;
        assert_eq!(
            s.describe(),
            "150 RGB (3 of them grey, read as RGB) images of 96x96"
        );
        s.channels = 1;
        s.grey = 150;
        s.max_side = 300;
        assert_eq!(
            s.describe(),
            "150 grey images of 96 to 300 pixels a side (median 96)"
        );
        s.count = 1;
        s.max_side = 96;
        assert_eq!(s.describe(), "1 grey image of 96x96");
    }
}
