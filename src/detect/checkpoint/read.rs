//! Reading a checkpoint's parts, each checked: its tensors into an arena, the edge profile and
//! the alignment reference of the models that have them, and what a file that is no
//! checkpoint is instead.

use super::*;

/// What a file that is not a safetensors file is: an image named where the model goes (the
/// model comes first on lamp's command lines), or something else.
pub(super) fn not_a_checkpoint(bytes: &[u8], e: safetensors::SafeTensorError) -> String {
    match image::guess_format(bytes) {
        Ok(f) => format!(
            "a{} image, not a lamp checkpoint (lamp's commands take the model first: lamp score \
             MODEL IMAGES…, lamp eval MODEL DATA)",
            f.extensions_str()
                .first()
                .map_or(String::new(), |x| format!(" {}", x.to_uppercase()))
        ),
        Err(_) => format!("not a lamp checkpoint (not a valid safetensors file: {e})"),
    }
}

/// The edge profile of a patch model, checked: its reach is the one the model's windows and
/// images make (edges.rs); refused in a model of whole images.
pub(super) fn read_edge_profile(
    st: &safetensors::SafeTensors,
    ck: &Checkpoint,
) -> Result<Option<EdgeProfile>> {
    let t = match st.tensor(EDGE_PROFILE) {
        Err(_) => return Ok(None),
        Ok(t) => t,
    };
    let damaged =
        |why: String| Error::invalid(format!("tensor {EDGE_PROFILE}: {why}; the file is damaged"));
    if t.dtype() != safetensors::Dtype::F32 {
        return Err(damaged(format!("{:?}, not F32", t.dtype())));
    }
    let values: Vec<f32> = le_f32(t.data()).collect();
    let p = EdgeProfile::from_tensor(t.shape(), &values).map_err(|e| damaged(e.to_string()))?;
    ck.check_edge_profile(&p)
        .map_err(|e| damaged(e.to_string()))?;
    Ok(Some(p))
}

/// The reference image of a checkpoint that aligns images (its `score` says how far), checked:
/// the model's input shape, pixel values in [0, 1]; refused where the one needs the other.
pub(super) fn read_reference(
    st: &safetensors::SafeTensors,
    ck: &Checkpoint,
) -> Result<Option<Vec<f32>>> {
    let reach = ck.meta::<ScoreConfig>("score").map_or(0, |s| s.align);
    let t = match (st.tensor(REFERENCE), reach) {
        (Err(_), 0) => return Ok(None),
        (Err(_), _) => {
            return Err(Error::invalid(format!(
                "the model aligns images (by up to {reach} px) but has no tensor {REFERENCE} to \
                 align them to; the file is damaged (train the model again)"
            )))
        }
        (Ok(_), 0) => {
            return Err(Error::invalid(format!(
                "tensor {REFERENCE} in a model that does not align images: the file is damaged"
            )))
        }
        (Ok(_), _) if ck.metadata.contains_key("patch") => {
            return Err(Error::invalid(format!(
                "tensor {REFERENCE} in a model trained on patches, which lamp does not align: \
                 the file is damaged"
            )))
        }
        (Ok(t), _) => t,
    };
    let shape: Vec<usize> = ck.arch.input_shape().iter().map(|&v| v as usize).collect();
    if t.dtype() != safetensors::Dtype::F32 || t.shape() != shape.as_slice() {
        return Err(Error::invalid(format!(
            "tensor {REFERENCE} is {:?} {:?}, expected F32 {shape:?}",
            t.dtype(),
            t.shape()
        )));
    }
    let r: Vec<f32> = le_f32(t.data()).collect();
    if let Some(v) = r.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::invalid(format!(
            "tensor {REFERENCE} holds {v}: pixel values lie in [0, 1]; the file is damaged"
        )));
    }
    Ok(Some(r))
}

/// Reads every tensor of `table` (prefixed) into one arena, checking dtype and shape.
pub(super) fn read_arena(
    st: &safetensors::SafeTensors,
    table: &ParamTable,
    prefix: &str,
) -> Result<Vec<f32>> {
    let mut arena = vec![0f32; table.len()];
    for e in &table.entries {
        let name = format!("{prefix}{}", e.name);
        let t = st
            .tensor(&name)
            .map_err(|_| Error::invalid(format!("missing tensor {name}")))?;
        if t.dtype() != safetensors::Dtype::F32 {
            return Err(Error::invalid(format!(
                "tensor {name} is {:?}, expected F32",
                t.dtype()
            )));
        }
        if t.shape() != e.shape.as_slice() {
            return Err(Error::invalid(format!(
                "tensor {name} has shape {:?}, expected {:?}",
                t.shape(),
                e.shape
            )));
        }
        for (dst, src) in arena[e.offset..e.offset + e.len()]
            .iter_mut()
            .zip(le_f32(t.data()))
        {
            *dst = src;
        }
        let values = &arena[e.offset..e.offset + e.len()];
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "tensor {name} holds a non-finite value ({}) at element {i}: the model is \
                 broken; train it again",
                values[i]
            )));
        }
    }
    Ok(arena)
}
