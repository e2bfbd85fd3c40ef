//! Where the part lies in the image: large images scored by windows (patch mode), and parts
//! that sit a few pixels apart from image to image, aligned before they are scored (`align`).

mod common;
use common::*;
use lamp::detect::{fit_on, Checkpoint, Detector, FitOptions, TrainConfig};
use lamp::model::Arch;
use lamp::rng::SplitMix64;
use std::path::Path;
use std::sync::Mutex;

/// One test at a time on the shared device: each trains and scores a while, and the two side by
/// side on 2 cores only slow each other (readbacks that another thread's poll delivers are
/// handled by the engine, but not what these tests are about).
static DEVICE_TURN: Mutex<()> = Mutex::new(());

/// 512×512 stripes with a random phase and noise, as a grey image in [0, 1].
fn stripes(r: &mut SplitMix64) -> Vec<f32> {
    let phase = r.next_f64() * std::f64::consts::TAU;
    let mut v = Vec::with_capacity(512 * 512);
    for y in 0..512 {
        for x in 0..512 {
            let s = 0.5 + 0.3 * (((x + y) as f64) * 0.3 + phase).sin();
            v.push((s + 0.04 * (r.next_f64() - 0.5)) as f32);
        }
    }
    v
}

/// `n` grey images of side `side`.
fn dataset(samples: Vec<f32>, n: usize, side: u32) -> lamp::data::Dataset {
    lamp::data::Dataset {
        samples,
        shape: [1, side, side],
        names: (0..n).map(|i| i.to_string()).collect(),
        labels: None,
    }
}

/// A small grey 32 px model, trained briefly: both tests' start.
fn options() -> FitOptions {
    FitOptions {
        arch: Arch::for_images(1, 32).unwrap(),
        train: TrainConfig {
            epochs: 1,
            batch: 10,
            lr: 3e-3,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Patch mode: trained on 32×32 windows of 512×512 images, the model scores a 512×512 image by
/// stitched windows, and the map, at full resolution, ranks an 8 px wide defect above the rest.
#[test]
fn patches_find_an_8_px_defect_in_a_512_px_image() {
    let _turn = DEVICE_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut r = SplitMix64::new(8);
    let n = 12;
    let data = dataset((0..n).flat_map(|_| stripes(&mut r)).collect(), n, 512);
    let options = FitOptions {
        min_steps: 400,
        val_split: 0.2,
        ..options()
    };
    let dev = device();
    let (ck, _) = fit_on(dev.clone(), &data, &options, None, None, |_| {}).unwrap();
    assert_eq!(
        ck.image_size(),
        512,
        "the checkpoint knows the images' size"
    );
    // Windows of textures need not line up: no normal map, an edge profile instead, by
    // distances up to a window (32 px).
    assert!(ck.normal_map.is_none());
    assert_eq!(ck.edge_profile.as_ref().map(|p| p.reach), Some(32));
    let raw = Checkpoint {
        edge_profile: None,
        ..ck.clone()
    };
    let mut det = Detector::from_checkpoint(dev.clone(), ck, Path::new("patches"), 64).unwrap();
    assert_eq!(det.image_shape(), [1, 512, 512]);
    // A bright bar 8 px wide and 40 px tall.
    let mut x = stripes(&mut r);
    let mut mask = vec![false; 512 * 512];
    for y in 300..340 {
        for xx in 200..208 {
            x[y * 512 + xx] = 0.98;
            mask[y * 512 + xx] = true;
        }
    }
    let s = det.score_samples(&x, true).unwrap().remove(0);
    let map = s.map.unwrap();
    assert_eq!(map.len(), 512 * 512, "the map has the image's resolution");
    let auroc = lamp::detect::metrics::auroc(&map, &mask).unwrap();
    eprintln!("patch mode: pixel AUROC {auroc:.4} on the 512x512 image");
    assert!(auroc >= 0.95, "pixel AUROC {auroc}");
    // Scoring counts the map against the profile: without it, the map is the raw one.
    let mut raw = Detector::from_checkpoint(dev, raw, Path::new("raw"), 64).unwrap();
    let raw_map = raw.score_samples(&x, true).unwrap().remove(0).map.unwrap();
    assert!(raw_map.iter().zip(&map).all(|(r, m)| r >= m) && raw_map != map);
    let normal = det
        .score_samples(&stripes(&mut r), false)
        .unwrap()
        .remove(0);
    assert!(s.score > normal.score, "{} vs {}", s.score, normal.score);
}

/// A 32×32 grey part: a bright square with stripes and a dark notch on a dark, noisy ground,
/// its content moved by `(dx, dy)` (the image at (x, y) shows the part at (x − dx, y − dy)).
fn part(r: &mut SplitMix64, (dx, dy): (i32, i32)) -> Vec<f32> {
    let mut v = Vec::with_capacity(32 * 32);
    for y in 0..32i32 {
        for x in 0..32i32 {
            let (px, py) = (x - dx, y - dy);
            let on = (8..24).contains(&px) && (8..24).contains(&py);
            let notch = (8..12).contains(&px) && (8..12).contains(&py);
            let value = if on && !notch {
                0.65 + 0.2 * (px as f64 * 0.9).sin()
            } else {
                0.15
            };
            v.push((value + 0.03 * (r.next_f64() - 0.5)) as f32);
        }
    }
    v
}

/// Parts framed up to 3 px apart: trained with `align`, the model keeps the reference it aligns
/// to; a defect on a part framed 3 px off stands out in a map that lies on the image's own
/// pixels, and the checkpoint refuses to lose its reference.
#[test]
fn aligned_parts_show_a_defect_where_it_is() {
    let _turn = DEVICE_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut r = SplitMix64::new(21);
    let shift = |r: &mut SplitMix64| (r.below(7) as i32 - 3, r.below(7) as i32 - 3);
    let n = 40;
    let samples = (0..n)
        .flat_map(|_| {
            let d = shift(&mut r);
            part(&mut r, d)
        })
        .collect();
    let data = dataset(samples, n, 32);
    let options = FitOptions {
        min_steps: 300,
        val_split: 0.25,
        align: 4,
        ..options()
    };
    let dev = device();
    let (ck, _) = fit_on(dev.clone(), &data, &options, None, None, |_| {}).unwrap();
    let reference = ck.reference.clone().expect("a reference to align to");
    assert_eq!(reference.len(), 32 * 32);
    // The reference is a sharp part, not the blur of parts 3 px apart: its notch is dark.
    let notch_mean = |img: &[f32], (dx, dy): (i32, i32)| {
        let at = |x: i32, y: i32| img[((y + dy) * 32 + x + dx) as usize];
        (9..11)
            .flat_map(|y| (9..11).map(move |x| (x, y)))
            .map(|(x, y)| at(x, y))
            .sum::<f32>()
            / 4.0
    };
    let dark = (-3..=3)
        .flat_map(|dy| (-3..=3).map(move |dx| (dx, dy)))
        .map(|d| notch_mean(&reference, d))
        .fold(f32::MAX, f32::min);
    assert!(dark < 0.3, "the reference's notch: {dark}");
    // Through bytes and back, it stays; without it a model that aligns is refused.
    let bytes = ck.to_bytes().unwrap();
    assert_eq!(
        Checkpoint::from_bytes(&bytes, None).unwrap().reference,
        Some(reference)
    );
    let mut lost = ck.clone();
    lost.reference = None;
    let e = Checkpoint::from_bytes(&lost.to_bytes().unwrap(), None).unwrap_err();
    assert!(e.to_string().contains("score.reference"), "{e}");

    // Continued without alignment, the run would train on other images: refused.
    let unaligned = FitOptions {
        align: 0,
        ..options.clone()
    };
    let e = fit_on(dev.clone(), &data, &unaligned, Some(&ck), None, |_| {}).unwrap_err();
    assert!(e.to_string().contains("alignment"), "{e}");

    let mut det = Detector::from_checkpoint(dev, ck, Path::new("aligned"), 16).unwrap();
    // A dark spot 4 px wide on the part's stripes, the part framed 3 px right and 2 px up.
    let d = (3, -2);
    let mut x = part(&mut r, d);
    let mut mask = vec![false; 32 * 32];
    for y in 14..18 {
        for xx in 16..20 {
            let (px, py) = ((xx + d.0) as usize, (y + d.1) as usize);
            x[py * 32 + px] = 0.1;
            mask[py * 32 + px] = true;
        }
    }
    let s = det.score_samples(&x, true).unwrap().remove(0);
    let map = s.map.unwrap();
    let auroc = lamp::detect::metrics::auroc(&map, &mask).unwrap();
    eprintln!("aligned: pixel AUROC {auroc:.4} on a part framed {d:?} off");
    assert!(auroc >= 0.9, "pixel AUROC {auroc}");
    // Each score says how far its part was moved (up to the reference's own frame), with maps
    // or without: parts framed (0, 0) and (-2, 1) were moved 2 px and -1 px apart.
    let mut moved = |det: &mut Detector, d, maps| {
        let s = det.score_samples(&part(&mut r, d), maps).unwrap();
        s[0].shift.expect("an aligned model's score has its shift")
    };
    let (a, b) = (
        moved(&mut det, (0, 0), false),
        moved(&mut det, (-2, 1), true),
    );
    assert_eq!((a.0 - b.0, a.1 - b.1), (2, -1), "{a:?} {b:?}");
    // Normal parts framed up to 3 px off score below the defect.
    for k in 0..4 {
        let d = shift(&mut r);
        let normal = det
            .score_samples(&part(&mut r, d), false)
            .unwrap()
            .remove(0);
        assert!(
            s.score > normal.score,
            "{k}: {} vs {}",
            s.score,
            normal.score
        );
    }
}
