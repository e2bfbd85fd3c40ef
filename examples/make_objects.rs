//! The object benchmark: photographs of one object each, re-framed a little for every image as a
//! part on a conveyor would be, with small local defects and their exact masks, in the MVTec AD
//! layout. It measures what the texture benchmark cannot: an aligned object whose defects cover a
//! few per cent of the image, the common case of inspection. Deterministic (lamp's SplitMix64 and
//! plain loops, no resampling library), so the same photographs give the same bytes on every
//! machine.
//!
//!     cargo run --release --example make_objects -- PHOTOS_DIR OUT_DIR [REACH]
//!
//! PHOTOS_DIR holds coffee.png, rocket.jpg, camera.png and chelsea.png from scikit-image's wheel
//! (skimage/data; CC0 or public domain, see scripts/make_objects.sh, which fetches them). For each
//! object (`cup`: the coffee cup on its saucer, RGB; `rocket`: the rocket on its pad, RGB;
//! `camera`: the cameraman, grey), OUT_DIR/<object>/ gets 64×64 images:
//!
//! - `train/good`: 200 framings of the object: shifted by up to REACH px (default 2, at 64 px;
//!   finer than a pixel in the photograph), brightness ×0.94–1.06, sensor noise σ = 2 levels;
//! - `test/good`: 30 more framings;
//! - `test/<defect>` and `ground_truth/<defect>/<name>_mask.png` (255 on the defect): 20 framings
//!   each with one defect of the kind:
//!   - `spot`: a filled ellipse of 2–5 px half-axes, 40–80 levels darker or brighter than the
//!     colour beneath it;
//!   - `scratch`: a straight line 1–2 px wide, 10–24 px long, of such a colour;
//!   - `foreign`: a square of 6–12 px cut from the photograph of a cat (chelsea.png);
//! - `calib/good`: 30 more framings, normal images for `lamp calibrate` that no model trained on.

use image::{Rgb, RgbImage};
use lamp::rng::SplitMix64;
use std::path::{Path, PathBuf};

const SIZE: u32 = 64;
const TRAIN: usize = 200;
const TEST_GOOD: usize = 30;
const PER_DEFECT: usize = 20;
const CALIB: usize = 30;

/// An object: its photograph, the square of it that frames the object (left, top, side; side a
/// multiple of SIZE) and whether the images are saved grey.
struct Object {
    name: &'static str,
    photo: &'static str,
    frame: (u32, u32, u32),
    grey: bool,
}

const OBJECTS: [Object; 3] = [
    Object {
        name: "cup",
        photo: "coffee.png",
        frame: (88, 8, 384),
        grey: false,
    },
    Object {
        name: "rocket",
        photo: "rocket.jpg",
        frame: (194, 150, 256),
        grey: false,
    },
    Object {
        name: "camera",
        photo: "camera.png",
        frame: (64, 64, 384),
        grey: true,
    },
];

fn main() {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let usage = || -> ! {
        eprintln!("usage: make_objects PHOTOS_DIR OUT_DIR [REACH]");
        std::process::exit(2);
    };
    let (photos, out, reach) = match args.as_slice() {
        [p, o] => (p, o, 2),
        [p, o, r] => match r.to_str().and_then(|r| r.parse::<u32>().ok()) {
            Some(r) => (p, o, r),
            None => usage(),
        },
        _ => usage(),
    };
    let open = |name: &str| {
        let p = photos.join(name);
        image::open(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .to_rgb8()
    };
    let cat = open("chelsea.png");
    for (i, object) in OBJECTS.iter().enumerate() {
        let photo = open(object.photo);
        let mut rng = SplitMix64::new(0x0B1E + i as u64);
        let root = out.join(object.name);
        let mut frame = || framing(&photo, object.frame, reach, &mut rng);
        let goods: Vec<RgbImage> = (0..TRAIN + TEST_GOOD).map(|_| frame()).collect();
        for (k, img) in goods.iter().enumerate() {
            let (dir, k) = if k < TRAIN {
                ("train/good", k)
            } else {
                ("test/good", k - TRAIN)
            };
            save(img, object.grey, &root.join(dir), k);
        }
        for defect in ["spot", "scratch", "foreign"] {
            for k in 0..PER_DEFECT {
                let mut img = framing(&photo, object.frame, reach, &mut rng);
                let mask = match defect {
                    "spot" => spot(&mut img, &mut rng),
                    "scratch" => scratch(&mut img, &mut rng),
                    _ => foreign(&mut img, &cat, &mut rng),
                };
                save(&img, object.grey, &root.join("test").join(defect), k);
                let gt = root.join("ground_truth").join(defect);
                std::fs::create_dir_all(&gt).unwrap();
                mask.save(gt.join(format!("{k:03}_mask.png"))).unwrap();
            }
        }
        // More normal framings, for `lamp calibrate` (images no model has trained on); drawn
        // last, so that the sets above stay as they were.
        for k in 0..CALIB {
            let img = framing(&photo, object.frame, reach, &mut rng);
            save(&img, object.grey, &root.join("calib/good"), k);
        }
        println!(
            "{}: {} images",
            root.display(),
            TRAIN + TEST_GOOD + 3 * PER_DEFECT + CALIB
        );
    }
}

/// One SIZE×SIZE image of the object: the frame shifted by up to `reach` output pixels (any
/// whole number of photograph pixels), each output pixel the mean of its block of the
/// photograph, then a brightness gain and Gaussian sensor noise.
fn framing(
    photo: &RgbImage,
    (left, top, side): (u32, u32, u32),
    reach: u32,
    rng: &mut SplitMix64,
) -> RgbImage {
    let f = side / SIZE;
    let reach = (reach * f) as i64;
    let mut shift = || rng.below(2 * reach as u64 + 1) as i64 - reach;
    let (x0, y0) = (left as i64 + shift(), top as i64 + shift());
    let gain = 0.94 + 0.12 * rng.next_f64();
    let (w, h) = photo.dimensions();
    let mut out = RgbImage::new(SIZE, SIZE);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let mut sum = [0.0f64; 3];
            for dy in 0..f {
                for dx in 0..f {
                    let px = (x0 + (x * f + dx) as i64).clamp(0, w as i64 - 1) as u32;
                    let py = (y0 + (y * f + dy) as i64).clamp(0, h as i64 - 1) as u32;
                    let p = photo.get_pixel(px, py);
                    for c in 0..3 {
                        sum[c] += p[c] as f64;
                    }
                }
            }
            let mut v = [0u8; 3];
            for c in 0..3 {
                let mean = sum[c] / (f * f) as f64;
                v[c] = (mean * gain + 2.0 * gaussian(rng))
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
            out.put_pixel(x, y, Rgb(v));
        }
    }
    out
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut SplitMix64) -> f64 {
    let u = rng.next_f64().max(1e-12);
    let v = rng.next_f64();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn save(img: &RgbImage, grey: bool, dir: &Path, k: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{k:03}.png"));
    if grey {
        image::DynamicImage::ImageRgb8(img.clone())
            .to_luma8()
            .save(path)
            .unwrap();
    } else {
        img.save(path).unwrap();
    }
}

/// A colour 40 to 80 levels (of 255) below or above the mean colour of `img` around (cx, cy):
/// a stain of the part's own hue, darker or brighter, rather than black or white.
fn contrasting(img: &RgbImage, (cx, cy): (f64, f64), rng: &mut SplitMix64) -> Rgb<u8> {
    let (mut sum, mut n) = ([0.0f64; 3], 0.0);
    for y in (cy as i64 - 6).max(0)..(cy as i64 + 7).min(SIZE as i64) {
        for x in (cx as i64 - 6).max(0)..(cx as i64 + 7).min(SIZE as i64) {
            let p = img.get_pixel(x as u32, y as u32);
            for c in 0..3 {
                sum[c] += p[c] as f64;
            }
            n += 1.0;
        }
    }
    let shift = 40.0 + 40.0 * rng.next_f64();
    // Brighter where the colour is dark, darker where it is bright, at random in between, so
    // that the shift is not lost to clamping.
    let mean = (sum[0] + sum[1] + sum[2]) / (3.0 * n);
    let sign = if mean < 80.0 || (mean < 175.0 && rng.next_f64() < 0.5) {
        1.0
    } else {
        -1.0
    };
    Rgb(sum.map(|s| (s / n + sign * shift).round().clamp(0.0, 255.0) as u8))
}

/// Position of a defect of half-size `r` at least 3 px from the border.
fn centre(r: f64, rng: &mut SplitMix64) -> (f64, f64) {
    let span = SIZE as f64 - 2.0 * (r + 3.0);
    (
        r + 3.0 + rng.next_f64() * span,
        r + 3.0 + rng.next_f64() * span,
    )
}

/// Paints `colour` wherever `inside(x, y)` holds and returns the mask of those pixels.
fn paint(
    img: &mut RgbImage,
    colour: Rgb<u8>,
    inside: impl Fn(f64, f64) -> bool,
) -> image::GrayImage {
    let mut mask = image::GrayImage::new(SIZE, SIZE);
    for y in 0..SIZE {
        for x in 0..SIZE {
            if inside(x as f64, y as f64) {
                img.put_pixel(x, y, colour);
                mask.put_pixel(x, y, image::Luma([255]));
            }
        }
    }
    mask
}

fn spot(img: &mut RgbImage, rng: &mut SplitMix64) -> image::GrayImage {
    let (rx, ry) = (2.0 + rng.next_f64() * 3.0, 2.0 + rng.next_f64() * 3.0);
    let (cx, cy) = centre(rx.max(ry), rng);
    let colour = contrasting(img, (cx, cy), rng);
    paint(img, colour, |x, y| {
        let (dx, dy) = ((x - cx) / rx, (y - cy) / ry);
        dx * dx + dy * dy <= 1.0
    })
}

fn scratch(img: &mut RgbImage, rng: &mut SplitMix64) -> image::GrayImage {
    let len = 10.0 + rng.next_f64() * 14.0;
    let width = 1.0 + rng.below(2) as f64;
    let angle = rng.next_f64() * std::f64::consts::PI;
    let (cx, cy) = centre(len / 2.0, rng);
    let (ux, uy) = (angle.cos(), angle.sin());
    let colour = contrasting(img, (cx, cy), rng);
    paint(img, colour, |x, y| {
        let (dx, dy) = (x - cx, y - cy);
        let along = dx * ux + dy * uy;
        let across = (-dx * uy + dy * ux).abs();
        along.abs() <= len / 2.0 && across <= width / 2.0
    })
}

fn foreign(img: &mut RgbImage, other: &RgbImage, rng: &mut SplitMix64) -> image::GrayImage {
    let side = 6 + rng.below(7) as u32;
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
    let mut mask = image::GrayImage::new(SIZE, SIZE);
    for y in 0..side {
        for x in 0..side {
            img.put_pixel(x0 + x, y0 + y, *other.get_pixel(sx + x, sy + y));
            mask.put_pixel(x0 + x, y0 + y, image::Luma([255]));
        }
    }
    mask
}
