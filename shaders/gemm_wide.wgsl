// gemm_wide.wgsl: 32 rows per invocation (TM = 32) for the subgroup core on CPU devices, where
// more FMAs per load of B pay for GEMMs with many columns (BENCHMARKS.md): row slots 16..31,
// their A values from two more subgroup broadcasts of 8. Only pipelines built with this file
// carry these accumulators.

var<private> acc16: vec4<f32>;
var<private> acc17: vec4<f32>;
var<private> acc18: vec4<f32>;
var<private> acc19: vec4<f32>;
var<private> acc20: vec4<f32>;
var<private> acc21: vec4<f32>;
var<private> acc22: vec4<f32>;
var<private> acc23: vec4<f32>;
var<private> acc24: vec4<f32>;
var<private> acc25: vec4<f32>;
var<private> acc26: vec4<f32>;
var<private> acc27: vec4<f32>;
var<private> acc28: vec4<f32>;
var<private> acc29: vec4<f32>;
var<private> acc30: vec4<f32>;
var<private> acc31: vec4<f32>;

fn accumulate_wide(b: vec4<f32>, base: u32, stride: u32, m0: u32, lane: u32) {
    if (TM > 16u) {
        fma_rows_16(a_slots(base, stride, m0, lane, 16u), b);
        fma_rows_24(a_slots(base, stride, m0, lane, 24u), b);
    }
}

fn fma_rows_16(a: array<f32, 8>, b: vec4<f32>) {
    acc16 = fma(vec4<f32>(a[0]), b, acc16);
    acc17 = fma(vec4<f32>(a[1]), b, acc17);
    acc18 = fma(vec4<f32>(a[2]), b, acc18);
    acc19 = fma(vec4<f32>(a[3]), b, acc19);
    acc20 = fma(vec4<f32>(a[4]), b, acc20);
    acc21 = fma(vec4<f32>(a[5]), b, acc21);
    acc22 = fma(vec4<f32>(a[6]), b, acc22);
    acc23 = fma(vec4<f32>(a[7]), b, acc23);
}

fn fma_rows_24(a: array<f32, 8>, b: vec4<f32>) {
    acc24 = fma(vec4<f32>(a[0]), b, acc24);
    acc25 = fma(vec4<f32>(a[1]), b, acc25);
    acc26 = fma(vec4<f32>(a[2]), b, acc26);
    acc27 = fma(vec4<f32>(a[3]), b, acc27);
    acc28 = fma(vec4<f32>(a[4]), b, acc28);
    acc29 = fma(vec4<f32>(a[5]), b, acc29);
    acc30 = fma(vec4<f32>(a[6]), b, acc30);
    acc31 = fma(vec4<f32>(a[7]), b, acc31);
}

fn store_wide(t: Tile, col_y: vec4<i32>, col_x: vec4<i32>, col_ok: vec4<bool>) {
    if (TM <= 16u) { return; }
    store(16u, t.m0, t.c0, acc16, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(17u, t.m0, t.c0, acc17, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(18u, t.m0, t.c0, acc18, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(19u, t.m0, t.c0, acc19, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(20u, t.m0, t.c0, acc20, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(21u, t.m0, t.c0, acc21, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(22u, t.m0, t.c0, acc22, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(23u, t.m0, t.c0, acc23, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(24u, t.m0, t.c0, acc24, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(25u, t.m0, t.c0, acc25, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(26u, t.m0, t.c0, acc26, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(27u, t.m0, t.c0, acc27, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(28u, t.m0, t.c0, acc28, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(29u, t.m0, t.c0, acc29, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(30u, t.m0, t.c0, acc30, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(31u, t.m0, t.c0, acc31, col_y, col_x, col_ok, t.phase_y, t.phase_x);
}

// VEC_K's row slots 16..31 (see accumulate4).
fn accumulate4_wide(bt: mat4x4<f32>, base: u32, stride: u32, m0: u32, lane: u32) {
    if (TM > 16u) {
        let a = a_vecs(base, stride, m0, lane, 16u);
        acc16 = step4(acc16, bt, a[0]);
        acc17 = step4(acc17, bt, a[1]);
        acc18 = step4(acc18, bt, a[2]);
        acc19 = step4(acc19, bt, a[3]);
        acc20 = step4(acc20, bt, a[4]);
        acc21 = step4(acc21, bt, a[5]);
        acc22 = step4(acc22, bt, a[6]);
        acc23 = step4(acc23, bt, a[7]);
        let a2 = a_vecs(base, stride, m0, lane, 24u);
        acc24 = step4(acc24, bt, a2[0]);
        acc25 = step4(acc25, bt, a2[1]);
        acc26 = step4(acc26, bt, a2[2]);
        acc27 = step4(acc27, bt, a2[3]);
        acc28 = step4(acc28, bt, a2[4]);
        acc29 = step4(acc29, bt, a2[5]);
        acc30 = step4(acc30, bt, a2[6]);
        acc31 = step4(acc31, bt, a2[7]);
    }
}

// VEC_ROWS's quads 4..7, rows 16..31 (see accumulate_quads).
fn fma_quads_wide(a: array<vec4<f32>, 8>, b: vec4<f32>) {
    if (TM > 16u) {
        acc16 = fma(vec4<f32>(a[4].x), b, acc16);
        acc17 = fma(vec4<f32>(a[4].y), b, acc17);
        acc18 = fma(vec4<f32>(a[4].z), b, acc18);
        acc19 = fma(vec4<f32>(a[4].w), b, acc19);
        acc20 = fma(vec4<f32>(a[5].x), b, acc20);
        acc21 = fma(vec4<f32>(a[5].y), b, acc21);
        acc22 = fma(vec4<f32>(a[5].z), b, acc22);
        acc23 = fma(vec4<f32>(a[5].w), b, acc23);
        acc24 = fma(vec4<f32>(a[6].x), b, acc24);
        acc25 = fma(vec4<f32>(a[6].y), b, acc25);
        acc26 = fma(vec4<f32>(a[6].z), b, acc26);
        acc27 = fma(vec4<f32>(a[6].w), b, acc27);
        acc28 = fma(vec4<f32>(a[7].x), b, acc28);
        acc29 = fma(vec4<f32>(a[7].y), b, acc29);
        acc30 = fma(vec4<f32>(a[7].z), b, acc30);
        acc31 = fma(vec4<f32>(a[7].w), b, acc31);
    }
}
