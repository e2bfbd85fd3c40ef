//! Data sets: Fashion-MNIST IDX files (gzipped or not), folders of images, and the conversion of
//! any image to the model's channels and size. Every failure names the file and the problem.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Debian's `dataset-fashion-mnist` installs the IDX files here.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Samples in [0, 1], NCHW, with where each came from.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub samples: Vec<f32>,
    pub shape: [u32; 3],
    pub names: Vec<String>,
    /// Class labels where the source has them (Fashion-MNIST).
    pub labels: Option<Vec<u8>>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
    pub fn sample_len(&self) -> usize {
        self.shape.iter().product::<u32>() as usize
    }
    pub fn sample(&self, i: usize) -> &[f32] {
        let p = self.sample_len();
        &self.samples[i * p..(i + 1) * p]
    }
}

/// Where data comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// `fashion-mnist:C`: class C of Fashion-MNIST (one-class protocol, DESIGN §5).
    FashionMnist { class: u8, dir: PathBuf },
    /// An MVTec AD category folder (`train/good`, `test/<type>`, `ground_truth/<type>`).
    Mvtec(PathBuf),
    /// A folder of normal images.
    Folder(PathBuf),
}

impl Source {
    pub fn parse(s: &str, idx_dir: Option<&Path>) -> Result<Source> {
        if let Some(c) = s.strip_prefix("fashion-mnist:") {
            let class: u8 = c.parse().ok().filter(|&c: &u8| c < 10).ok_or_else(|| {
                Error::invalid(format!("{s}: the class must be a number from 0 to 9"))
            })?;
            let dir = idx_dir
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(FASHION_MNIST_DIR));
            return Ok(Source::FashionMnist { class, dir });
        }
        let p = PathBuf::from(s);
        if p.join("train").join("good").is_dir() || p.join("test").is_dir() {
            return Ok(Source::Mvtec(p));
        }
        Ok(Source::Folder(p))
    }
}

/// An evaluation set: images, whether each is anomalous, its type, and ground-truth masks
/// (model size, row-major) where the source has them.
#[derive(Clone, Debug)]
pub struct TestSet {
    pub data: Dataset,
    pub anomalous: Vec<bool>,
    pub types: Vec<String>,
    pub masks: Option<Vec<Vec<bool>>>,
}

/// The test split of a source: Fashion-MNIST's 10000 test images with class C normal, or an
/// MVTec category's `test/` with its masks.
pub fn load_test(src: &Source, channels: u32, size: u32) -> Result<TestSet> {
    match src {
        Source::FashionMnist { class, dir } => {
            check_fashion_shape(channels, size)?;
            let d = fashion_mnist(dir, "t10k")?;
            let labels = d.labels.clone().unwrap_or_default();
            Ok(TestSet {
                anomalous: labels.iter().map(|&l| l != *class).collect(),
                types: labels
                    .iter()
                    .map(|&l| FASHION_MNIST_CLASSES[l as usize].to_string())
                    .collect(),
                data: d,
                masks: None,
            })
        }
        Source::Mvtec(root) => mvtec_test(root, channels, size),
        Source::Folder(p) => Err(Error::file(
            p,
            "not an MVTec AD category (no test/ folder); evaluation needs labelled test images",
        )),
    }
}

fn check_fashion_shape(channels: u32, size: u32) -> Result<()> {
    if channels != 1 || size != 28 {
        return Err(Error::invalid(format!(
            "fashion-mnist images are 1x28x28; the model takes {channels}x{size}x{size} (use --arch fmnist-ae)"
        )));
    }
    Ok(())
}

/// Loads a mask image as booleans at size × size (nearest neighbour), checking it matches its
/// image's size.
fn load_mask(path: &Path, image_dims: (u32, u32), size: u32) -> Result<Vec<bool>> {
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::file(path, format!("cannot read mask: {e}")))?
        .with_guessed_format()
        .map_err(|e| Error::file(path, format!("cannot read mask: {e}")))?
        .decode()
        .map_err(|e| Error::file(path, format!("cannot decode mask: {e}")))?;
    let g = img.to_luma8();
    if g.dimensions() != image_dims {
        return Err(Error::file(
            path,
            format!(
                "mask is {}x{} but its image is {}x{}",
                g.width(),
                g.height(),
                image_dims.0,
                image_dims.1
            ),
        ));
    }
    let r = image::imageops::resize(&g, size, size, image::imageops::FilterType::Nearest);
    Ok(r.into_raw().into_iter().map(|v| v >= 128).collect())
}

fn image_dims(path: &Path) -> Result<(u32, u32)> {
    image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?
        .into_dimensions()
        .map_err(|e| Error::file(path, format!("cannot decode image: {e}")))
}

/// MVTec AD `test/<type>/*.png` with `ground_truth/<type>/<name>_mask.png`.
pub fn mvtec_test(root: &Path, channels: u32, size: u32) -> Result<TestSet> {
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
            let mask = if t == "good" {
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
                        format!("missing ground-truth mask for {}", p.display()),
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
        masks: Some(masks),
    })
}

/// An IDX file's dimensions and bytes (u8 data only, as MNIST-style files are).
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let raw = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::file(path, format!("corrupt gzip data: {e}")))?;
        out
    } else {
        raw
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(Error::file(
            path,
            "not an IDX file of unsigned bytes (wrong magic number)",
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || bytes.len() < 4 + 4 * ndim {
        return Err(Error::file(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            u32::from_be_bytes([
                bytes[4 + 4 * i],
                bytes[5 + 4 * i],
                bytes[6 + 4 * i],
                bytes[7 + 4 * i],
            ]) as usize
        })
        .collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let body = &bytes[4 + 4 * ndim..];
    match count {
        Some(c) if c == body.len() => Ok((dims, body.to_vec())),
        Some(c) if c < body.len() => Err(Error::file(
            path,
            format!("{} bytes after the data; expected {c}", body.len()),
        )),
        _ => Err(Error::file(
            path,
            format!(
                "truncated: header promises {dims:?} but holds {} bytes",
                body.len()
            ),
        )),
    }
}

fn idx_path(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::file(
        dir.join(format!("{stem}.gz")),
        "Fashion-MNIST file not found; install it with `apt-get install dataset-fashion-mnist` or \
         point --idx-dir at the folder holding the IDX files",
    ))
}

/// One split of Fashion-MNIST (`train` or `t10k`): images [n, 1, 28, 28] and labels.
pub fn fashion_mnist(dir: &Path, split: &str) -> Result<Dataset> {
    let ip = idx_path(dir, &format!("{split}-images-idx3-ubyte"))?;
    let lp = idx_path(dir, &format!("{split}-labels-idx1-ubyte"))?;
    let (idims, images) = read_idx(&ip)?;
    let (ldims, labels) = read_idx(&lp)?;
    if idims.len() != 3 || idims[1] != 28 || idims[2] != 28 {
        return Err(Error::file(
            &ip,
            format!("expected images of 28x28, got dimensions {idims:?}"),
        ));
    }
    if ldims.len() != 1 || ldims[0] != idims[0] {
        return Err(Error::file(
            &lp,
            format!(
                "{} labels for {} images",
                ldims.first().unwrap_or(&0),
                idims[0]
            ),
        ));
    }
    if let Some(bad) = labels.iter().find(|&&l| l > 9) {
        return Err(Error::file(&lp, format!("label {bad} is outside 0..9")));
    }
    Ok(Dataset {
        samples: images.iter().map(|&b| b as f32 / 255.0).collect(),
        shape: [1, 28, 28],
        names: (0..idims[0]).map(|i| format!("{split}[{i}]")).collect(),
        labels: Some(labels),
    })
}

/// Keeps the samples whose label is `class`.
pub fn filter_class(d: &Dataset, class: u8) -> Dataset {
    let labels = d.labels.as_deref().unwrap_or(&[]);
    let keep: Vec<usize> = (0..d.len())
        .filter(|&i| labels.get(i) == Some(&class))
        .collect();
    Dataset {
        samples: keep
            .iter()
            .flat_map(|&i| d.sample(i).iter().copied())
            .collect(),
        shape: d.shape,
        names: keep.iter().map(|&i| d.names[i].clone()).collect(),
        labels: Some(keep.iter().map(|&i| labels[i]).collect()),
    }
}

const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "gif"];

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_lowercase().as_str()))
}

/// The image files directly in `dir`, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Err(Error::file(dir, "no such file or directory"));
    }
    if !dir.is_dir() {
        return Err(Error::file(dir, "not a directory"));
    }
    let rd = std::fs::read_dir(dir).map_err(|e| Error::file(dir, format!("cannot list: {e}")))?;
    let mut v = Vec::new();
    let mut others = 0;
    for entry in rd {
        let p = entry
            .map_err(|e| Error::file(dir, format!("cannot list: {e}")))?
            .path();
        if p.is_file() && is_image(&p) {
            v.push(p);
        } else {
            others += 1;
        }
    }
    if v.is_empty() {
        let what = if others == 0 {
            "empty directory".to_string()
        } else {
            format!("no images among {others} entries")
        };
        return Err(Error::file(
            dir,
            format!("{what} (looked for {})", IMAGE_EXTENSIONS.join(", ")),
        ));
    }
    v.sort();
    Ok(v)
}

/// Largest image accepted, in pixels (a guard against decompression bombs).
pub const MAX_PIXELS: u64 = 1 << 28;

/// Loads one image as `channels` (1: luma, 3: RGB; alpha dropped) × size × size in [0, 1],
/// resized with a bilinear (triangle) filter.
pub fn load_image(path: &Path, channels: u32, size: u32) -> Result<Vec<f32>> {
    let meta =
        std::fs::metadata(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    if meta.len() == 0 {
        return Err(Error::file(path, "empty file (0 bytes)"));
    }
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?
        .with_guessed_format()
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(1 << 15);
    limits.max_image_height = Some(1 << 15);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| Error::file(path, format!("cannot decode image: {e}")))?;
    Ok(convert(&img, channels, size))
}

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
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(paths.len().max(1));
    let chunk = paths.len().div_ceil(threads).max(1);
    type Part = Vec<(usize, Result<Vec<f32>>)>;
    let parts: Vec<Part> = std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .enumerate()
            .map(|(ci, part)| {
                s.spawn(move || -> Part {
                    let mut v = Vec::new();
                    for (k, p) in part.iter().enumerate() {
                        let r = load_image(p, channels, size);
                        let stop = r.is_err() && !skip_bad;
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
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![(0, Err(Error::invalid("image loader crashed")))])
            })
            .collect()
    });
    let mut samples = Vec::with_capacity(paths.len() * (channels * size * size) as usize);
    let mut names = Vec::with_capacity(paths.len());
    let mut skipped = Vec::new();
    for (i, r) in parts.into_iter().flatten() {
        match r {
            Ok(v) => {
                samples.extend(v);
                names.push(paths[i].display().to_string());
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

/// The training set a `Source` names, converted to the model's input.
pub fn load_training(src: &Source, channels: u32, size: u32) -> Result<Dataset> {
    Ok(load_training_skipping(src, channels, size, false)?.0)
}

/// As `load_training`; with `skip_bad`, unreadable images are skipped and returned as errors.
pub fn load_training_skipping(
    src: &Source,
    channels: u32,
    size: u32,
    skip_bad: bool,
) -> Result<(Dataset, Vec<Error>)> {
    let images = |dir: &Path| load_images_skipping(&list_images(dir)?, channels, size, skip_bad);
    match src {
        Source::FashionMnist { class, dir } => {
            check_fashion_shape(channels, size)?;
            Ok((
                filter_class(&fashion_mnist(dir, "train")?, *class),
                Vec::new(),
            ))
        }
        Source::Mvtec(root) => {
            let good = root.join("train").join("good");
            if !good.is_dir() {
                return Err(Error::file(
                    &good,
                    "missing: an MVTec AD category needs train/good",
                ));
            }
            images(&good)
        }
        Source::Folder(dir) => images(dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_bytes(magic3: u8, dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, magic3];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(body);
        v
    }

    #[test]
    fn idx_reader_checks_magic_and_length() {
        let dir = std::env::temp_dir().join(format!("lamp-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = dir.join("ok");
        std::fs::write(&ok, idx_bytes(3, &[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8])).unwrap();
        let (d, b) = read_idx(&ok).unwrap();
        assert_eq!(d, vec![2, 2, 2]);
        assert_eq!(b.len(), 8);
        let short = dir.join("short");
        std::fs::write(&short, idx_bytes(3, &[2, 2, 2], &[1, 2, 3])).unwrap();
        assert!(read_idx(&short)
            .unwrap_err()
            .to_string()
            .contains("truncated"));
        let magic = dir.join("magic");
        std::fs::write(&magic, [1, 2, 3, 4, 5]).unwrap();
        let e = read_idx(&magic).unwrap_err().to_string();
        assert!(e.contains("magic") && e.contains("magic"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn source_parsing() {
        assert_eq!(
            Source::parse("fashion-mnist:3", None).unwrap(),
            Source::FashionMnist {
                class: 3,
                dir: PathBuf::from(FASHION_MNIST_DIR)
            }
        );
        assert!(Source::parse("fashion-mnist:10", None).is_err());
        assert!(Source::parse("fashion-mnist:x", None).is_err());
        assert_eq!(
            Source::parse("some/dir", None).unwrap(),
            Source::Folder("some/dir".into())
        );
    }
}
