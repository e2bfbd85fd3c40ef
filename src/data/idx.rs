//! Fashion-MNIST's IDX files (gzipped or not): reading, the one-class protocol's classes.

use super::{Dataset, TestSet};
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

/// An IDX file's dimensions and bytes (u8 data only, as MNIST-style files are).
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    crate::fsutil::regular_file(path)?;
    let raw = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    parse_idx(&raw, path)
}

/// Largest IDX body lamp reads (Fashion-MNIST's training images are 47 MB).
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// An IDX file's dimensions and bytes from its contents (`path` names it in errors). Gzip is
/// inflated as a stream and only as far as the header promises: a small file claiming a huge
/// body is refused from its header, and no more than the body (+1 byte) is ever inflated.
pub fn parse_idx(raw: &[u8], path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let mut r: Box<dyn Read + '_> = if raw.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let gz_err = |e: std::io::Error| Error::file(path, format!("corrupt gzip data: {e}"));
    let mut head = Vec::with_capacity(4 + 4 * 255);
    (&mut r).take(4).read_to_end(&mut head).map_err(gz_err)?;
    if head.len() < 4 || head[0] != 0 || head[1] != 0 || head[2] != 0x08 {
        return Err(Error::file(
            path,
            "not an IDX file of unsigned bytes (wrong magic number)",
        ));
    }
    let ndim = head[3] as usize;
    (&mut r)
        .take(4 * ndim as u64)
        .read_to_end(&mut head)
        .map_err(gz_err)?;
    if ndim == 0 || head.len() < 4 + 4 * ndim {
        return Err(Error::file(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            u32::from_be_bytes([
                head[4 + 4 * i],
                head[5 + 4 * i],
                head[6 + 4 * i],
                head[7 + 4 * i],
            ]) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .filter(|&c| c <= MAX_IDX_BYTES)
        .ok_or_else(|| {
            Error::file(
                path,
                format!("header promises {dims:?}: more than lamp reads ({MAX_IDX_BYTES} bytes)"),
            )
        })?;
    let mut body = Vec::new();
    r.take(count + 1).read_to_end(&mut body).map_err(gz_err)?;
    match body.len() as u64 {
        n if n == count => Ok((dims, body)),
        n if n > count => Err(Error::file(
            path,
            format!("bytes after the data; expected {count}"),
        )),
        n => Err(Error::file(
            path,
            format!("truncated: header promises {dims:?} but holds {n} bytes"),
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
         give the folder that holds the IDX files (`idx_dir`)",
    ))
}

/// One split of Fashion-MNIST (`train` or `t10k`): images [n, 1, 28, 28] and labels.
pub fn fashion_mnist(dir: &Path, split: &str) -> Result<Dataset> {
    let ip = idx_path(dir, &format!("{split}-images-idx3-ubyte"))?;
    let lp = idx_path(dir, &format!("{split}-labels-idx1-ubyte"))?;
    from_idx(split, read_idx(&ip)?, read_idx(&lp)?, &ip, &lp)
}

/// A split from its parsed image and label files (named in errors by `ip` and `lp`).
pub fn from_idx(
    split: &str,
    (idims, images): (Vec<usize>, Vec<u8>),
    (ldims, labels): (Vec<usize>, Vec<u8>),
    ip: &Path,
    lp: &Path,
) -> Result<Dataset> {
    if idims.len() != 3 || idims[1] != 28 || idims[2] != 28 {
        return Err(Error::file(
            ip,
            format!("expected images of 28x28, got dimensions {idims:?}"),
        ));
    }
    if ldims.len() != 1 || ldims[0] != idims[0] {
        return Err(Error::file(
            lp,
            format!(
                "{} labels for {} images",
                ldims.first().unwrap_or(&0),
                idims[0]
            ),
        ));
    }
    if let Some(bad) = labels.iter().find(|&&l| l > 9) {
        return Err(Error::file(lp, format!("label {bad} is outside 0..9")));
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
    d.subset(&keep)
}

/// The one-class protocol's test set: every image of the split, class `class` normal and the
/// others anomalous, each typed by its class name.
pub fn one_class_test(d: Dataset, class: u8) -> Result<TestSet> {
    let labels = d.labels.clone().unwrap_or_default();
    Ok(TestSet {
        anomalous: labels.iter().map(|&l| l != class).collect(),
        types: labels
            .iter()
            .map(|&l| FASHION_MNIST_CLASSES[l as usize].to_string())
            .collect(),
        data: d,
        masks: None,
    })
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
        let p = Path::new("test.idx");
        let (d, b) = parse_idx(&idx_bytes(3, &[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8]), p).unwrap();
        assert_eq!(d, vec![2, 2, 2]);
        assert_eq!(b.len(), 8);
        let e = parse_idx(&idx_bytes(3, &[2, 2, 2], &[1, 2, 3]), p).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = parse_idx(&[1, 2, 3, 4, 5], p).unwrap_err().to_string();
        assert!(e.contains("magic") && e.contains("test.idx"), "{e}");
    }
}
