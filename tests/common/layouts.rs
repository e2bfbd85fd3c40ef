//! Tensors in the kernels' layouts (kernels::pack::Layout) and back, for the tests that upload
//! data in PyTorch's order and read results back.

use lamp::kernels::pack::flat_index;
use lamp::kernels::Layout;

/// `v`, `batch` tensors of `shape` in PyTorch's order, laid out as `layout` in memory.
pub fn to_memory(v: &[f32], batch: usize, shape: [u32; 3], layout: Layout) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for (e, t) in memory_order(batch, shape, layout).into_iter().enumerate() {
        out[e] = v[t];
    }
    out
}

/// The inverse: memory in `layout` back to PyTorch's order.
pub fn from_memory(m: &[f32], batch: usize, shape: [u32; 3], layout: Layout) -> Vec<f32> {
    let mut out = vec![0f32; m.len()];
    for (e, t) in memory_order(batch, shape, layout).into_iter().enumerate() {
        out[t] = m[e];
    }
    out
}

/// For each memory position, the PyTorch index of the element stored there.
pub fn memory_order(batch: usize, shape: [u32; 3], layout: Layout) -> Vec<usize> {
    let (c, hw) = (shape[0] as usize, (shape[1] * shape[2]) as usize);
    let per = c * hw;
    (0..batch * per)
        .map(|e| {
            let (n, r) = (e / per, e % per);
            n * per
                + match layout {
                    Layout::Plain => r,
                    // (c/4, p, c%4) -> (c, p): the same map as a flattened grouped tensor's
                    Layout::Grouped => flat_index(r, hw),
                    Layout::Flat { hw } => flat_index(r, hw as usize),
                }
        })
        .collect()
}
