//! The texture benchmark: crops of real texture photographs with synthetic defects and their exact
//! masks, in the MVTec AD layout. Deterministic (lamp's SplitMix64 and plain loops, no resampling
//! library), so the same photographs give the same bytes on every machine.
//!
//!     cargo run --release --example make_textures -- PHOTOS_DIR OUT_DIR
//!
//! PHOTOS_DIR holds brick.png, grass.png and gravel.png: 512×512 grey photographs that
//! scikit-image ships in its wheel (skimage/data; each CC0, see scripts/make_textures.sh, which
//! fetches them). For each photograph, OUT_DIR/<name>/ gets:
//!
//! - `train/good`: 120 crops of 128×128 from the left 60% of the photograph;
//! - `test/good`: 30 crops from the right 40% (never seen in training);
//! - `test/<defect>` and `ground_truth/<defect>/<name>_mask.png` (255 on the defect): 20 crops
//!   each from the right 40%, with one defect of the kind:
//!   - `spot`: a filled ellipse of one grey level, 40–80 levels darker or brighter than the
//!     crop's mean;
//!   - `scratch`: a straight line 1–3 px wide, 24–64 px long, of such a grey level;
//!   - `foreign`: a square of 14–28 px cut from another of the photographs.

use image::{GrayImage, Luma};
use lamp::rng::SplitMix64;
use std::path::{Path, PathBuf};

const PHOTOS: [&str; 3] = ["brick", "grass", "gravel"];
const CROP: u32 = 128;
const TRAIN: usize = 120;
const TEST_GOOD: usize = 30;
const PER_DEFECT: usize = 20;

fn main() {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [photos, out] = args.as_slice() else {
        eprintln!("usage: make_textures PHOTOS_DIR OUT_DIR");
        std::process::exit(2);
    };
    let images: Vec<GrayImage> = PHOTOS
        .iter()
        .map(|n| {
            let p = photos.join(format!("{n}.png"));
            image::open(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .to_luma8()
        })
        .collect();
    for (i, name) in PHOTOS.iter().enumerate() {
        let mut rng = SplitMix64::new(0x7E47 + i as u64);
        let root = out.join(name);
        let photo = &images[i];
        let (w, h) = photo.dimensions();
        let split = w * 3 / 5;
        let train_region = (0, split);
        let test_region = (split + 8, w);
        for k in 0..TRAIN {
            let c = crop(photo, train_region, h, &mut rng);
            save(&c, &root.join("train/good"), k);
        }
        for k in 0..TEST_GOOD {
            let c = crop(photo, test_region, h, &mut rng);
            save(&c, &root.join("test/good"), k);
        }
        for defect in ["spot", "scratch", "foreign"] {
            for k in 0..PER_DEFECT {
                let mut c = crop(photo, test_region, h, &mut rng);
                let other = &images[(i + 1 + rng.below(2) as usize) % images.len()];
                let mask = match defect {
                    "spot" => spot(&mut c, &mut rng),
                    "scratch" => scratch(&mut c, &mut rng),
                    _ => foreign(&mut c, other, &mut rng),
                };
                save(&c, &root.join("test").join(defect), k);
                let gt = root.join("ground_truth").join(defect);
                std::fs::create_dir_all(&gt).unwrap();
                mask.save(gt.join(format!("{k:03}_mask.png"))).unwrap();
            }
        }
        println!(
            "{}: {} images",
            root.display(),
            TRAIN + TEST_GOOD + 3 * PER_DEFECT
        );
    }
}

/// A CROP×CROP crop whose left edge lies in [x0, x1 − CROP].
fn crop(photo: &GrayImage, (x0, x1): (u32, u32), h: u32, rng: &mut SplitMix64) -> GrayImage {
    let x = x0 + rng.below((x1 - x0 - CROP + 1) as u64) as u32;
    let y = rng.below((h - CROP + 1) as u64) as u32;
    image::imageops::crop_imm(photo, x, y, CROP, CROP).to_image()
}

fn save(img: &GrayImage, dir: &Path, k: usize) {
    std::fs::create_dir_all(dir).unwrap();
    img.save(dir.join(format!("{k:03}.png"))).unwrap();
}

/// A grey level 40 to 80 levels (of 255) below or above `img`'s mean: inside the texture's own
/// range, as real stains are, rather than black or white.
fn contrasting(img: &GrayImage, rng: &mut SplitMix64) -> u8 {
    let mean = img.pixels().map(|p| p[0] as f64).sum::<f64>() / (CROP * CROP) as f64;
    let shift = 40.0 + 40.0 * rng.next_f64();
    let sign = if rng.next_f64() < 0.5 { -1.0 } else { 1.0 };
    (mean + sign * shift).clamp(0.0, 255.0) as u8
}

fn new_mask() -> GrayImage {
    GrayImage::new(CROP, CROP)
}

/// Position of a defect of half-size `r` away from the border.
fn centre(r: f64, rng: &mut SplitMix64) -> (f64, f64) {
    let span = CROP as f64 - 2.0 * (r + 4.0);
    (
        r + 4.0 + rng.next_f64() * span,
        r + 4.0 + rng.next_f64() * span,
    )
}

fn spot(img: &mut GrayImage, rng: &mut SplitMix64) -> GrayImage {
    let (rx, ry) = (4.0 + rng.next_f64() * 8.0, 4.0 + rng.next_f64() * 8.0);
    let (cx, cy) = centre(rx.max(ry), rng);
    let v = contrasting(img, rng);
    let mut mask = new_mask();
    for y in 0..CROP {
        for x in 0..CROP {
            let (dx, dy) = ((x as f64 - cx) / rx, (y as f64 - cy) / ry);
            if dx * dx + dy * dy <= 1.0 {
                img.put_pixel(x, y, Luma([v]));
                mask.put_pixel(x, y, Luma([255]));
            }
        }
    }
    mask
}

fn scratch(img: &mut GrayImage, rng: &mut SplitMix64) -> GrayImage {
    let len = 24.0 + rng.next_f64() * 40.0;
    let width = 1.0 + rng.below(3) as f64;
    let angle = rng.next_f64() * std::f64::consts::PI;
    let (cx, cy) = centre(len / 2.0, rng);
    let (ux, uy) = (angle.cos(), angle.sin());
    let v = contrasting(img, rng);
    let mut mask = new_mask();
    for y in 0..CROP {
        for x in 0..CROP {
            let (dx, dy) = (x as f64 - cx, y as f64 - cy);
            let along = dx * ux + dy * uy;
            let across = (-dx * uy + dy * ux).abs();
            if along.abs() <= len / 2.0 && across <= width / 2.0 {
                img.put_pixel(x, y, Luma([v]));
                mask.put_pixel(x, y, Luma([255]));
            }
        }
    }
    mask
}

fn foreign(img: &mut GrayImage, other: &GrayImage, rng: &mut SplitMix64) -> GrayImage {
    let side = 14 + rng.below(15) as u32;
    let (cx, cy) = centre(side as f64 / 2.0, rng);
    let (x0, y0) = (
        (cx - side as f64 / 2.0) as u32,
        (cy - side as f64 / 2.0) as u32,
    );
    let (ow, oh) = other.dimensions();
    let (sx, sy) = (
        rng.below((ow - side) as u64) as u32,
        rng.below((oh - side) as u64) as u32,
    );
    let mut mask = new_mask();
    for y in 0..side {
        for x in 0..side {
            img.put_pixel(x0 + x, y0 + y, *other.get_pixel(sx + x, sy + y));
            mask.put_pixel(x0 + x, y0 + y, Luma([255]));
        }
    }
    mask
}
