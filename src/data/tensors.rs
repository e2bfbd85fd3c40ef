//! Tensor files in the safetensors layout: writing them canonically (checkpoints, `lamp grad`'s
//! output), reading them back whole, and reading a batch `x` [B, C, H, W] for `lamp grad`.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Named f32 tensors: name → (shape, values).
pub type Tensors<'a> = BTreeMap<String, (Vec<usize>, &'a [f32])>;

/// Named f32 tensors that own their values, as `read_safetensors` returns them.
pub type OwnedTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// The safetensors layout: u64 header length, JSON header (padded with spaces to 8 bytes),
/// then the tensors' little-endian bytes in header order.
pub fn write_safetensors(meta: &BTreeMap<String, String>, tensors: &Tensors) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !meta.is_empty() {
        header.insert(
            "__metadata__".into(),
            serde_json::to_value(meta).unwrap_or_default(),
        );
    }
    let mut at = 0usize;
    for (name, (shape, data)) in tensors {
        let end = at + data.len() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [at, end] }),
        );
        at = end;
    }
    // serde_json's Map is ordered by key (no preserve_order feature): canonical output.
    let mut h = serde_json::Value::Object(header).to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + at);
    out.extend((h.len() as u64).to_le_bytes());
    out.extend(h);
    for (_, data) in tensors.values() {
        for v in data.iter() {
            out.extend(v.to_le_bytes());
        }
    }
    out
}

/// Little-endian f32 values.
pub fn le_f32(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Every tensor of safetensors `bytes`, which must all be F32 (a checkpoint's, `lamp grad`'s).
pub fn read_safetensors(bytes: &[u8]) -> Result<OwnedTensors> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| Error::invalid(format!("not a valid safetensors file ({e})")))?;
    st.tensors()
        .into_iter()
        .map(|(name, t)| match t.dtype() {
            safetensors::Dtype::F32 => {
                let values = le_f32(t.data()).collect();
                Ok((name, (t.shape().to_vec(), values)))
            }
            d => Err(Error::invalid(format!("{name} is {d:?}, expected F32"))),
        })
        .collect()
}

/// Reads `x` [B, C, H, W] (F32 or F64, values in [0, 1]) from a safetensors file.
pub fn read_batch(path: &Path) -> Result<(Vec<f32>, [usize; 4])> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::file(path, format!("not a valid safetensors file ({e})")))?;
    let t = st
        .tensor("x")
        .map_err(|_| Error::file(path, "no tensor named x"))?;
    let shape: [usize; 4] = t.shape().try_into().map_err(|_| {
        Error::file(
            path,
            format!("x has shape {:?}, expected [B, C, H, W]", t.shape()),
        )
    })?;
    let x: Vec<f32> = match t.dtype() {
        safetensors::Dtype::F32 => le_f32(t.data()).collect(),
        safetensors::Dtype::F64 => t
            .data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        d => return Err(Error::file(path, format!("x is {d:?}, expected F32"))),
    };
    if let Some(v) = x.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::file(path, format!("x holds {v}, outside [0, 1]")));
    }
    Ok((x, shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn written_tensors_read_back_bit_for_bit() {
        let mut r = SplitMix64::new(5);
        let a: Vec<f32> = (0..24).map(|_| r.next_f64() as f32 - 0.5).collect();
        let b: Vec<f32> = (0..3).map(|_| r.next_f64() as f32 * 1e-30).collect();
        let mut t = Tensors::new();
        t.insert("a".into(), (vec![2, 3, 4], &a));
        t.insert("b".into(), (vec![3], &b));
        let back = read_safetensors(&write_safetensors(&BTreeMap::new(), &t)).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back["a"], (vec![2, 3, 4], a.clone()));
        assert_eq!(back["b"], (vec![3], b));
        let e = read_safetensors(b"\x08\0\0\0\0\0\0\0{}").unwrap_err();
        assert!(e.to_string().contains("not a valid safetensors"), "{e}");
    }
}
