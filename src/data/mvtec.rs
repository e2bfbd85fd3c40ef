//! The MVTec AD layout: `<category>/train/good`, `<category>/test/<type>` and
//! `<category>/ground_truth/<type>/<name>_mask.png`.

use super::images::{load_images, reader};
use super::listing::list_images;
use super::TestSet;
use crate::error::{Error, Result};
use std::path::Path;

/// Loads a mask image as booleans at size × size (nearest neighbour), checking it matches its
/// image's size. Any non-zero value is a defect: masks are stored as 0/255 and as 0/1.
fn load_mask(path: &Path, image_dims: (u32, u32), size: u32) -> Result<Vec<bool>> {
    let img = reader(path)?
        .decode()
        .map_err(|e| Error::file(path, format!("cannot decode mask: {e}")))?;
    // 16 bits, not 8: a 16-bit mask of 0/1 would round to all zeros in 8 bits.
    let g = img.to_luma16();
    if g.dimensions() != image_dims {
        return Err(Error::file(
            path,
            format!(
                "mask is {}x{} but its image is {}x{}: a mask marks its image's pixels, at \
                 its width and height",
                g.width(),
                g.height(),
                image_dims.0,
                image_dims.1
            ),
        ));
    }
    let r = image::imageops::resize(&g, size, size, image::imageops::FilterType::Nearest);
    Ok(r.into_raw().into_iter().map(|v| v > 0).collect())
}

fn image_dims(path: &Path) -> Result<(u32, u32)> {
    reader(path)?
        .into_dimensions()
        .map_err(|e| Error::file(path, format!("cannot decode image: {e}")))
}

/// MVTec AD `test/<type>/*.png` with `ground_truth/<type>/<name>_mask.png`; a tree without
/// `ground_truth/` is a test set without masks (image metrics only).
pub fn mvtec_test(root: &Path, channels: u32, size: u32) -> Result<TestSet> {
    let with_masks = root.join("ground_truth").is_dir();
    let test = root.join("test");
    let rd =
        std::fs::read_dir(&test).map_err(|e| Error::file(&test, format!("cannot list: {e}")))?;
    let mut types: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    types.sort();
    if types.is_empty() {
        return Err(Error::file(
            &test,
            "no defect-type folders (expected test/good and test/<defect>)",
        ));
    }
    let mut paths = Vec::new();
    let mut kinds = Vec::new();
    let mut masks = Vec::new();
    for t in &types {
        let imgs = list_images(&test.join(t))?;
        let gt_dir = root.join("ground_truth").join(t);
        if t != "good" && gt_dir.is_dir() {
            // Masks with no image are a broken tree, not something to ignore.
            for m in std::fs::read_dir(&gt_dir)
                .map_err(|e| Error::file(&gt_dir, format!("cannot list: {e}")))?
            {
                let m = m
                    .map_err(|e| Error::file(&gt_dir, format!("cannot list: {e}")))?
                    .path();
                let name = m
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let Some(stem) = name.strip_suffix("_mask.png") {
                    if !imgs
                        .iter()
                        .any(|p| p.file_stem().is_some_and(|s| s.to_string_lossy() == stem))
                    {
                        return Err(Error::file(
                            &m,
                            format!("mask has no image test/{t}/{stem}.*"),
                        ));
                    }
                }
            }
        }
        for p in imgs {
            let mask = if !with_masks {
                Vec::new()
            } else if t == "good" {
                vec![false; (size * size) as usize]
            } else {
                let stem = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mp = gt_dir.join(format!("{stem}_mask.png"));
                if !mp.is_file() {
                    return Err(Error::file(
                        &mp,
                        format!(
                            "missing ground-truth mask for {}: each image of a defect folder \
                             needs one (white where the defect is), or, with no ground_truth/ \
                             folder at all, eval reports image metrics only",
                            p.display()
                        ),
                    ));
                }
                load_mask(&mp, image_dims(&p)?, size)?
            };
            masks.push(mask);
            kinds.push(t.clone());
            paths.push(p);
        }
    }
    let data = load_images(&paths, channels, size)?;
    Ok(TestSet {
        anomalous: kinds.iter().map(|k| k != "good").collect(),
        types: kinds,
        data,
        masks: with_masks.then_some(masks),
    })
}

/// The MVTec AD categories under `root`: its folders that hold `train/good`, sorted.
pub fn categories(root: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(root).map_err(|e| Error::file(root, format!("cannot list: {e}")))?;
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("train").join("good").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(Error::file(
            root,
            "no MVTec AD categories (folders with train/good)",
        ));
    }
    Ok(v)
}
