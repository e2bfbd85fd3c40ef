//! One-channel TIFFs of 32- or 64-bit samples (height, depth and thermal maps, scientific
//! images), which the image library does not decode: read with the tiff crate it is built on and
//! handed on as a float RGB image of three equal planes, so that the loader treats them as it
//! treats float RGB TIFFs (checked for finiteness and range, converted to the model's channels,
//! counted as grey).

use crate::error::{Error, Result};
use std::io::BufReader;
use std::path::Path;
use tiff::decoder::{Decoder, DecodingResult};

/// A one-channel TIFF of 32- or 64-bit samples, opened, its header read.
pub struct GreyTiff {
    decoder: Decoder<BufReader<std::fs::File>>,
    /// Width and height.
    pub dimensions: (u32, u32),
}

/// The image at `path` where it is such a TIFF; `None` otherwise (the image library's own error
/// then says what it is).
pub fn open(path: &Path) -> Option<GreyTiff> {
    // (Opening a FIFO would wait for a writer.)
    crate::fsutil::regular_file(path).ok()?;
    let file = std::fs::File::open(path).ok()?;
    let mut decoder = Decoder::new(BufReader::new(file)).ok()?;
    if !matches!(decoder.colortype().ok()?, tiff::ColorType::Gray(32 | 64)) {
        return None;
    }
    let dimensions = decoder.dimensions().ok()?;
    Some(GreyTiff {
        decoder,
        dimensions,
    })
}

/// The width and height of the image at `path` where it is such a TIFF; `None` otherwise.
pub fn dimensions(path: &Path) -> Option<(u32, u32)> {
    open(path).map(|t| t.dimensions)
}

/// Decodes such a TIFF (once its size has passed lamp's limits): floats as they are, unsigned
/// integers over their full range (0 → 0, the largest → 1).
pub fn decode(path: &Path, tiff: GreyTiff) -> Result<image::DynamicImage> {
    let bad = |why: String| Error::file(path, format!("cannot decode image: {why}"));
    let (mut d, (w, h)) = (tiff.decoder, tiff.dimensions);
    let values: Vec<f32> = match d.read_image().map_err(|e| bad(e.to_string()))? {
        DecodingResult::F32(v) => v,
        DecodingResult::F64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::U32(v) => v
            .into_iter()
            .map(|x| (x as f64 / u32::MAX as f64) as f32)
            .collect(),
        DecodingResult::U64(v) => v
            .into_iter()
            .map(|x| (x as f64 / u64::MAX as f64) as f32)
            .collect(),
        _ => {
            return Err(bad(
                "a one-channel TIFF of signed integers, which lamp does not read: save it as \
                 32-bit float or 16-bit unsigned"
                    .into(),
            ))
        }
    };
    if values.len() != w as usize * h as usize {
        return Err(bad(format!(
            "{} samples for an image of {w}x{h} (planes or pages lamp does not read)",
            values.len()
        )));
    }
    let rgb: Vec<f32> = values.iter().flat_map(|&v| [v, v, v]).collect();
    image::Rgb32FImage::from_raw(w, h, rgb)
        .map(image::DynamicImage::ImageRgb32F)
        .ok_or_else(|| bad(format!("its samples do not fill {w}x{h}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write<C: tiff::encoder::colortype::ColorType>(path: &Path, w: u32, h: u32, v: &[C::Inner])
    where
        [C::Inner]: tiff::encoder::TiffValue,
    {
        let f = std::fs::File::create(path).unwrap();
        let mut e = tiff::encoder::TiffEncoder::new(f).unwrap();
        e.write_image::<C>(w, h, v).unwrap();
    }

    /// A one-channel float TIFF reads as the 16-bit PNG of the same values does (to the PNG's
    /// rounding), at the image's size and resized; 64-bit floats and 32-bit integers too; values
    /// outside [0, 1] and non-finite ones are refused by the loader, naming the file.
    #[test]
    fn one_channel_tiffs_read_as_their_png() {
        use crate::data::images::load_image;
        let d = std::env::temp_dir().join(format!("lamp-grey-tiff-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let (w, h) = (24u32, 20u32);
        let value = |i: usize| ((i * 37 % 101) as f32 / 100.0).clamp(0.0, 1.0);
        let v: Vec<f32> = (0..(w * h) as usize).map(value).collect();
        let png = d.join("a.png");
        image::ImageBuffer::<image::Luma<u16>, _>::from_fn(w, h, |x, y| {
            image::Luma([(v[(y * w + x) as usize] * 65535.0).round() as u16])
        })
        .save(&png)
        .unwrap();
        let f32_tif = d.join("a32.tif");
        write::<tiff::encoder::colortype::Gray32Float>(&f32_tif, w, h, &v);
        let f64_tif = d.join("a64.tif");
        let v64: Vec<f64> = v.iter().map(|&x| x as f64).collect();
        write::<tiff::encoder::colortype::Gray64Float>(&f64_tif, w, h, &v64);
        let u32_tif = d.join("u32.tif");
        let vu: Vec<u32> = v
            .iter()
            .map(|&x| (x as f64 * u32::MAX as f64) as u32)
            .collect();
        write::<tiff::encoder::colortype::Gray32>(&u32_tif, w, h, &vu);
        assert_eq!(dimensions(&f32_tif), Some((w, h)));
        assert_eq!(dimensions(&png), None);
        for size in [w, 16] {
            let want = load_image(&png, 1, size).unwrap();
            for tif in [&f32_tif, &f64_tif, &u32_tif] {
                let got = load_image(tif, 1, size).unwrap();
                let worst = want
                    .iter()
                    .zip(&got)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                // The PNG rounds to 1/65535; the rest is f32 rounding in the resize.
                assert!(worst < 2e-5, "{}: {worst} at size {size}", tif.display());
            }
            // As colour: three equal planes.
            let rgb = load_image(&f32_tif, 3, size).unwrap();
            assert!(crate::data::images::colourless(&rgb));
        }
        let mut far = v.clone();
        far[7] = 812.5;
        let far_tif = d.join("depth.tif");
        write::<tiff::encoder::colortype::Gray32Float>(&far_tif, w, h, &far);
        let e = load_image(&far_tif, 1, 16).unwrap_err().to_string();
        assert!(e.contains("depth.tif") && e.contains("812.5"), "{e}");
        let mut nan = v;
        nan[w as usize + 3] = f32::NAN;
        let nan_tif = d.join("nan.tif");
        write::<tiff::encoder::colortype::Gray32Float>(&nan_tif, w, h, &nan);
        let e = load_image(&nan_tif, 1, 16).unwrap_err().to_string();
        assert!(e.contains("nan.tif") && e.contains("x 3, y 1"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
