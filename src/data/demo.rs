//! The demo data set, built into the binary: a subset of Fashion-MNIST (assets/fashion-mnist-mini,
//! © Zalando SE, MIT licence) in the IDX layout, 100 test images per class.

use super::{idx, Dataset, TestSet};
use crate::error::Result;
use crate::fsutil::write_atomic;
use std::path::Path;

/// The IDX files (gzipped), by the names Fashion-MNIST gives them.
pub const FILES: [(&str, &[u8]); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        include_bytes!("../../assets/fashion-mnist-mini/train-images-idx3-ubyte.gz"),
    ),
    (
        "train-labels-idx1-ubyte.gz",
        include_bytes!("../../assets/fashion-mnist-mini/train-labels-idx1-ubyte.gz"),
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        include_bytes!("../../assets/fashion-mnist-mini/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        include_bytes!("../../assets/fashion-mnist-mini/t10k-labels-idx1-ubyte.gz"),
    ),
];

/// Writes the IDX files into `dir`, so that `fashion-mnist:C` with that folder reads them.
pub fn write_files(dir: &Path) -> Result<()> {
    for (name, bytes) in FILES {
        write_atomic(&dir.join(name), bytes)?;
    }
    Ok(())
}

/// The built-in file whose name starts with `stem`.
fn file(stem: &str) -> &'static [u8] {
    FILES
        .iter()
        .find(|(n, _)| n.starts_with(stem))
        .map(|(_, b)| *b)
        .expect("the demo files are built in")
}

fn split(name: &str) -> Result<Dataset> {
    let (is, ls) = (format!("{name}-images"), format!("{name}-labels"));
    let (ip, lp) = (Path::new(&is), Path::new(&ls));
    let images = idx::parse_idx(file(&is), ip)?;
    let labels = idx::parse_idx(file(&ls), lp)?;
    idx::from_idx(name, images, labels, ip, lp)
}

/// Class `class`'s training images (the normal ones of the one-class protocol), from memory.
pub fn training_set(class: u8) -> Result<Dataset> {
    Ok(idx::filter_class(&split("train")?, class))
}

/// All test images, class `class` normal and the rest anomalous, from memory.
pub fn test_set(class: u8) -> Result<TestSet> {
    idx::one_class_test(split("t10k")?, class)
}
