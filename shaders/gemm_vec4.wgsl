// gemm_vec4.wgsl: gemm.wgsl's vec4 paths (see its header: VEC_K, VEC_ROWS, VEC_COLS), compiled
// with it into every GEMM pipeline: A's and G's values four at a time, and the steps of the
// reduction that take them. The entry files supply `a_vecs` (gemm_subgroup.wgsl shares the loads
// across a subgroup, the others load their own).

// A's vec4 at `index`: the packed weight (VEC_K) or four rows of Q (VEC_ROWS).
fn a4_at(index: u32) -> vec4<f32> {
    if (MODE == MODE_WEIGHT_GRAD) {
        return acts4[index];
    }
    return params4[index];
}

// Slot i's vec4 of A, 0 past the tile's rows or Q_C: with VEC_K row slot i's four terms of the
// reduction (the packed weight at base + m * stride); with VEC_ROWS quad i, the rows
// row(m0, 4i).. + 3 of Q (at base + m/4 * stride).
fn a_vec(i: u32, base: u32, stride: u32, m0: u32) -> vec4<f32> {
    let slot = select(i, 4u * i, VEC_ROWS);
    let m = row(m0, slot);
    let inside = (slot < TM) & (m < Q_C);
    // The weight read in place (A4_IN_PLACE) keeps PyTorch's order of a flattened Q's rows.
    let row_of_a = select(m, flat(m, Q_FLAT_HW), A4_IN_PLACE && !VEC_ROWS);
    let at = select(row_of_a * stride, (m / 4u) * stride, VEC_ROWS);
    return select(vec4<f32>(0.0), a4_at(base + select(0u, at, inside)), inside);
}

// How many slots a_vecs fills from `first`: row slots (VEC_K) or quads (VEC_ROWS), at most 8.
fn vec_slots(first: u32) -> u32 {
    return select(min(TM - first, 8u), min(TM / 4u, 8u), VEC_ROWS);
}

// Four channels of G at (iy, ix) past `base` (in vec4s: grouped G, or 1x1), as `gathered`.
fn gathered4(ok: bool, base: u32, iy: i32, ix: i32) -> vec4<f32> {
    let inside = ok & (iy >= 0) & (iy < i32(G_H)) & (ix >= 0) & (ix < i32(G_W));
    let v = acts4[G_OFF / 4u + select(0u, base + u32(iy) * G_W + u32(ix), inside)];
    return select(vec4<f32>(0.0), v, inside);
}

// VEC_K's step of the reduction: four terms at once. `bt` holds B's four rows (k) of the
// invocation's 4 columns, bt[k][j]; each row slot's block += bt * (its four values of A).
fn accumulate4(bt: mat4x4<f32>, base: u32, stride: u32, m0: u32, lane: u32) {
    fma4_rows(a_vecs(base, stride, m0, lane, 0u), bt);
    if (TM > 8u) {
        fma4_rows_high(a_vecs(base, stride, m0, lane, 8u), bt);
    }
    accumulate4_wide(bt, base, stride, m0, lane);
}

// acc + the four terms a[k] * bt[k], one FMA after the other. The reduction's order is (quad,
// tap, channel in the quad), not the scalar path's (channel, tap): the tiled core follows it
// where VEC_K is set, so the cores agree bit for bit; the plain layout differs in rounding.
fn step4(acc: vec4<f32>, bt: mat4x4<f32>, a: vec4<f32>) -> vec4<f32> {
    return fma(vec4<f32>(a.w), bt[3], fma(vec4<f32>(a.z), bt[2], fma(vec4<f32>(a.y), bt[1], fma(vec4<f32>(a.x), bt[0], acc))));
}

fn fma4_rows(a: array<vec4<f32>, 8>, bt: mat4x4<f32>) {
    acc0 = step4(acc0, bt, a[0]);
    acc1 = step4(acc1, bt, a[1]);
    acc2 = step4(acc2, bt, a[2]);
    acc3 = step4(acc3, bt, a[3]);
    if (TM > 4u) {
        acc4 = step4(acc4, bt, a[4]);
        acc5 = step4(acc5, bt, a[5]);
        acc6 = step4(acc6, bt, a[6]);
        acc7 = step4(acc7, bt, a[7]);
    }
}

fn fma4_rows_high(a: array<vec4<f32>, 8>, bt: mat4x4<f32>) {
    acc8 = step4(acc8, bt, a[0]);
    acc9 = step4(acc9, bt, a[1]);
    acc10 = step4(acc10, bt, a[2]);
    acc11 = step4(acc11, bt, a[3]);
    acc12 = step4(acc12, bt, a[4]);
    acc13 = step4(acc13, bt, a[5]);
    acc14 = step4(acc14, bt, a[6]);
    acc15 = step4(acc15, bt, a[7]);
}

// VEC_ROWS's step: the quads of A's column k (one vec4 of Q per four rows) times B's row `b`.
fn accumulate_quads(b: vec4<f32>, base: u32, stride: u32, m0: u32, lane: u32) {
    let a = a_vecs(base, stride, m0, lane, 0u);
    acc0 = fma(vec4<f32>(a[0].x), b, acc0);
    acc1 = fma(vec4<f32>(a[0].y), b, acc1);
    acc2 = fma(vec4<f32>(a[0].z), b, acc2);
    acc3 = fma(vec4<f32>(a[0].w), b, acc3);
    if (TM > 4u) {
        acc4 = fma(vec4<f32>(a[1].x), b, acc4);
        acc5 = fma(vec4<f32>(a[1].y), b, acc5);
        acc6 = fma(vec4<f32>(a[1].z), b, acc6);
        acc7 = fma(vec4<f32>(a[1].w), b, acc7);
    }
    if (TM > 8u) {
        acc8 = fma(vec4<f32>(a[2].x), b, acc8);
        acc9 = fma(vec4<f32>(a[2].y), b, acc9);
        acc10 = fma(vec4<f32>(a[2].z), b, acc10);
        acc11 = fma(vec4<f32>(a[2].w), b, acc11);
        acc12 = fma(vec4<f32>(a[3].x), b, acc12);
        acc13 = fma(vec4<f32>(a[3].y), b, acc13);
        acc14 = fma(vec4<f32>(a[3].z), b, acc14);
        acc15 = fma(vec4<f32>(a[3].w), b, acc15);
    }
    fma_quads_wide(a, b);
}
