//! Data sets: where they come from (`Source`), the training and test sets they give, the
//! held-out split, and the loaders behind them: Fashion-MNIST IDX files (`idx`), images
//! (`images`, `grey_tiff`), finding them in folders (`listing`), the images a command line names
//! (`inputs`) and a training folder holds (`training_images`), MVTec AD trees (`mvtec`), the
//! demo set built into lamp (`demo`) and tensor files (`tensors`). Every failure names the file
//! and the problem.

pub mod demo;
pub mod grey_tiff;
pub mod idx;
pub mod images;
pub mod inputs;
pub mod listing;
pub mod mvtec;
pub mod shard;
pub mod tensors;
pub mod training_images;

pub use idx::{fashion_mnist, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR};
pub use images::{
    decode_in_parallel, inspect, load_image, load_images, load_images_skipping, ImageShape,
};
pub use listing::{list_images, walk_images};
pub use mvtec::mvtec_test;

use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use std::path::{Path, PathBuf};

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
    /// The samples at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        Dataset {
            samples: idx
                .iter()
                .flat_map(|&i| self.sample(i).iter().copied())
                .collect(),
            shape: self.shape,
            names: idx.iter().map(|&i| self.names[i].clone()).collect(),
            labels: self
                .labels
                .as_ref()
                .map(|l| idx.iter().map(|&i| l[i]).collect()),
        }
    }
}

/// How many of `n` samples `split` holds out for `fraction` (at least one stays for training).
pub fn held_out_count(n: usize, fraction: f64) -> usize {
    ((n as f64 * fraction).round() as usize).min(n.saturating_sub(1))
}

/// The smallest fraction (in hundredths) that holds out `enough` of `n` images, where that
/// leaves at least half of them to train on.
pub fn enough_split(n: usize, enough: usize) -> Option<f64> {
    (1..=50)
        .map(|h| h as f64 / 100.0)
        .find(|&f| held_out_count(n, f) >= enough)
}

/// The default fraction held out of `n` images: `base`, raised up to 0.15 where that holds out
/// `enough` (150 images: 0.13, 20 held out), so that the defaults do not warn about themselves on
/// a set of a few hundred; smaller sets keep `base` (and lamp's warning).
pub fn default_split(n: usize, base: f64, enough: usize) -> f64 {
    if held_out_count(n, base) >= enough {
        return base;
    }
    enough_split(n, enough)
        .filter(|&f| f <= 0.15)
        .unwrap_or(base)
}

/// Splits `d` into (train, held-out) by a seeded shuffle: round(fraction × n) images held out
/// (at least one left to train on), both parts in their original order.
pub fn split(d: &Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Option<Dataset>)> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(Error::setting(
            "val_split",
            format!("must be in [0, 1), got {fraction}"),
        ));
    }
    let n = d.len();
    let held = held_out_count(n, fraction);
    if held == 0 {
        return Ok((d.clone(), None));
    }
    let mut order: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed ^ 0x5EED_5EED).shuffle(&mut order);
    let (val, tr) = order.split_at(held);
    let mut tr = tr.to_vec();
    let mut val = val.to_vec();
    tr.sort_unstable();
    val.sort_unstable();
    Ok((d.subset(&tr), Some(d.subset(&val))))
}

/// Where data comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// `fashion-mnist:C`: class C of Fashion-MNIST (the one-class protocol: docs/design.md).
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

    /// The folder whose images training reads (the folder named, whose subfolders' images it
    /// reads where it holds none itself; an MVTec AD category's `train/good`); none for
    /// Fashion-MNIST.
    pub fn training_folder(&self) -> Option<PathBuf> {
        match self {
            Source::Mvtec(root) => Some(root.join("train").join("good")),
            Source::Folder(dir) => Some(dir.clone()),
            Source::FashionMnist { .. } => None,
        }
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
            idx::one_class_test(fashion_mnist(dir, "t10k")?, *class)
        }
        Source::Mvtec(root) => mvtec_test(root, channels, size),
        Source::Folder(p) if !p.exists() => Err(Error::file(p, "no such file or directory")),
        Source::Folder(p) => Err(Error::file(
            p,
            "not an MVTec AD category (no test/ folder); evaluation needs labelled test images",
        )),
    }
}

fn check_fashion_shape(channels: u32, size: u32) -> Result<()> {
    if channels != 1 || size != 28 {
        return Err(Error::invalid(format!(
            "fashion-mnist images are 1x28x28; the model takes {channels}x{size}x{size} (use `arch` fmnist-ae)"
        )));
    }
    Ok(())
}

/// A source's training images, listed once: the headers (`shape`) and then the pixels (`load`)
/// are read from the same list, so a folder is walked, and its warnings said, once.
pub enum Training {
    FashionMnist {
        class: u8,
        dir: PathBuf,
    },
    /// Image files, with lines on where they came from (`training_images`), if any.
    Files {
        files: Vec<PathBuf>,
        notes: Vec<String>,
    },
}

impl Training {
    /// The channels and sizes of the images (from their headers), or None for Fashion-MNIST
    /// (1×28×28). With `skip_bad`, unreadable images are left out.
    pub fn shape(&self, skip_bad: bool) -> Result<Option<ImageShape>> {
        match self {
            Training::FashionMnist { .. } => Ok(None),
            Training::Files { files, .. } => inspect(files, skip_bad).map(Some),
        }
    }

    /// The images converted to the model's input; with `skip_bad`, unreadable images are
    /// skipped and returned as errors.
    pub fn load(&self, channels: u32, size: u32, skip_bad: bool) -> Result<(Dataset, Vec<Error>)> {
        match self {
            Training::FashionMnist { class, dir } => {
                check_fashion_shape(channels, size)?;
                let d = idx::filter_class(&fashion_mnist(dir, "train")?, *class);
                if d.is_empty() {
                    return Err(Error::file(
                        dir,
                        format!(
                            "the training split holds no images of class {class} ({})",
                            FASHION_MNIST_CLASSES[*class as usize]
                        ),
                    ));
                }
                Ok((d, Vec::new()))
            }
            Training::Files { files, .. } => load_images_skipping(files, channels, size, skip_bad),
        }
    }
}

impl Source {
    /// The training images this source names: Fashion-MNIST's class, a folder's own images
    /// (or, where it holds none, its subfolders': `training_images`) or an MVTec AD category's
    /// `train/good`. With `skip_bad`, a subfolder that cannot be listed is passed over.
    pub fn training(&self, skip_bad: bool) -> Result<Training> {
        match self {
            Source::FashionMnist { class, dir } => Ok(Training::FashionMnist {
                class: *class,
                dir: dir.clone(),
            }),
            Source::Mvtec(root) => {
                let good = root.join("train").join("good");
                if !good.is_dir() {
                    return Err(Error::file(
                        &good,
                        "missing: an MVTec AD category needs train/good",
                    ));
                }
                let files = list_images(&good)?;
                let notes = Vec::new();
                Ok(Training::Files { files, notes })
            }
            Source::Folder(dir) => {
                let (files, notes) = training_images::in_folder(dir, skip_bad)?;
                Ok(Training::Files { files, notes })
            }
        }
    }
}

/// The training set a `Source` names, converted to the model's input.
pub fn load_training(src: &Source, channels: u32, size: u32) -> Result<Dataset> {
    Ok(src.training(false)?.load(channels, size, false)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_split_holds_out_enough_where_it_can() {
        // 150 images: 15 at 10%, 20 at 13%.
        assert_eq!(default_split(150, 0.1, 20), 0.13);
        assert_eq!(held_out_count(150, 0.13), 20);
        // Large sets keep 10%; small ones too (20 would be more than 15% of them).
        assert_eq!(default_split(6000, 0.1, 20), 0.1);
        assert_eq!(default_split(100, 0.1, 20), 0.1);
        assert_eq!(enough_split(40, 20), Some(0.49));
        assert_eq!(enough_split(30, 20), None);
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

    #[test]
    fn split_holds_out_a_seeded_fraction_in_order() {
        let d = Dataset {
            samples: (0..20).map(|v| v as f32).collect(),
            shape: [1, 1, 2],
            names: (0..10).map(|i| i.to_string()).collect(),
            labels: None,
        };
        let (tr, val) = split(&d, 0.3, 7).unwrap();
        let val = val.unwrap();
        assert_eq!((tr.len(), val.len()), (7, 3));
        let mut all: Vec<&String> = tr.names.iter().chain(&val.names).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10, "every image in exactly one part");
        assert!(tr
            .names
            .windows(2)
            .all(|w| w[0].parse::<u32>().unwrap() < w[1].parse().unwrap()));
        assert_eq!(split(&d, 0.3, 7).unwrap().0.names, tr.names, "seeded");
        assert!(split(&d, 0.0, 7).unwrap().1.is_none());
        assert!(split(&d, 1.5, 7)
            .unwrap_err()
            .to_string()
            .contains("`val_split`"));
    }
}
