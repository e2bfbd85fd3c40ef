//! Hostile files, built here: images that lie about their size or hold non-finite values, IDX
//! folders, checkpoints with edited metadata or poisoned tensors, FIFOs.

use lamp::data::tensors::write_safetensors;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common::crc32;

pub fn png(path: &Path, w: u32, h: u32, seed: u32) {
    image::GrayImage::from_fn(w, h, |x, y| {
        image::Luma([((x * 7 + y * 3 + seed * 11) % 256) as u8])
    })
    .save(path)
    .unwrap();
}

/// A PNG whose header claims w x h (its pixel data is a few zero bytes): decoding it would need
/// w x h bytes.
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    chunk(&mut v, b"IHDR", &ihdr);
    chunk(&mut v, b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]);
    chunk(&mut v, b"IEND", &[]);
    v
}

/// A float RGB TIFF with one value `bad` (non-finite, or far outside [0, 1]).
pub fn float_tiff(path: &Path, bad: f32) {
    let mut img = image::Rgb32FImage::from_fn(28, 28, |x, y| {
        image::Rgb([x as f32 / 28.0, y as f32 / 28.0, 0.5])
    });
    img.get_pixel_mut(4, 3).0[1] = bad;
    image::DynamicImage::ImageRgb32F(img).save(path).unwrap();
}

/// A one-channel 32-bit float TIFF of 28x28 (a depth or height map), `bad` at x 5, y 2.
pub fn grey_float_tiff(path: &Path, bad: f32) {
    let mut v: Vec<f32> = (0..28 * 28).map(|i| (i % 28) as f32 / 28.0).collect();
    v[2 * 28 + 5] = bad;
    let f = std::fs::File::create(path).unwrap();
    tiff::encoder::TiffEncoder::new(f)
        .unwrap()
        .write_image::<tiff::encoder::colortype::Gray32Float>(28, 28, &v)
        .unwrap();
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(body);
    v
}

/// A Fashion-MNIST folder of IDX files: `train_images` as given, the others small and valid.
pub fn idx_dir(dir: &Path, train_images: &[u8], labels: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let n = labels.len() as u32;
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz(train_images)).unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte.gz"),
        gz(&idx(&[n], labels)),
    )
    .unwrap();
    let test = vec![7u8; 10 * 784];
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte.gz"),
        gz(&idx(&[10, 28, 28], &test)),
    )
    .unwrap();
    let tl: Vec<u8> = (0..10).collect();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), gz(&idx(&[10], &tl))).unwrap();
}

/// The checkpoint at `good` with metadata `key` set to `value` (None: removed) and, with
/// `poison`, one value of tensor `poison.0` replaced by `poison.1`; tensors are copied as they
/// are, so metadata can claim any shape without anything being allocated for it here.
pub fn edited(good: &[u8], key: &str, value: Option<&str>, poison: Option<(&str, f32)>) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(good).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(good).unwrap();
    let mut meta: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .map(|m| m.into_iter().collect())
        .unwrap_or_default();
    match value {
        Some(v) => meta.insert(key.into(), v.into()),
        None => meta.remove(key),
    };
    // Poisoned values as a writer without the checksum (an older lamp) would leave them: what
    // the loader makes of the values themselves, not of a damaged file.
    if poison.is_some() {
        meta.remove("data_crc32");
    }
    let data: Vec<(String, Vec<usize>, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            let mut v: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some((p, x)) = poison {
                if p == name {
                    v[0] = x;
                }
            }
            (name, t.shape().to_vec(), v)
        })
        .collect();
    let mut tensors = BTreeMap::new();
    for (name, shape, v) in &data {
        tensors.insert(name.clone(), (shape.clone(), v.as_slice()));
    }
    write_safetensors(&meta, &tensors)
}

pub fn mkfifo(p: &Path) -> bool {
    Command::new("mkfifo")
        .arg(p)
        .status()
        .is_ok_and(|s| s.success())
}

pub fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// The checkpoint's calibration JSON with `field` set to the JSON value `value`.
pub fn calibration_with(ck: &[u8], field: &str, value: &str) -> String {
    let (_, header) = safetensors::SafeTensors::read_metadata(ck).unwrap();
    let meta = header.metadata().clone().unwrap();
    let mut c: serde_json::Value = serde_json::from_str(&meta["calibration"]).unwrap();
    c[field] = serde_json::from_str(value).unwrap();
    c.to_string()
}
