// load_probe.wgsl: one 1024^3 GEMM, C = A B (row-major, f32), with B (and A) read in the form
// FORM names, to learn what a load costs on a device (lavapipe: a storage load is a loop over the
// SIMD lanes). Every form has the same register block (32 rows x 4 columns per invocation, 64
// invocations along the columns) and takes A's rows by subgroup broadcast (lane l loads row slot
// l of each 8). FORM (a pipeline constant, so the other forms' code folds away):
//   0 scalar:     B's 4 columns c0 + j*64, one f32 storage load each (lamp's gemm.wgsl today)
//   1 vec4:       B's 4 consecutive columns as one vec4<f32> storage load
//   2 texture:    B's 4 consecutive columns as one rgba32float texel (textureLoad)
//   3 texture_a4: as 2, and A's 4 consecutive k of a row as one vec4<f32> storage load (k in
//                 steps of 4): both operands four at a time
//   4 vec4_a4:    as 3 with B as vec4<f32> storage loads (no texture)

override FORM: u32;
const N: u32 = 1024u;

@group(0) @binding(0) var<storage, read> a_mat: array<f32>;
@group(0) @binding(1) var<storage, read> b_mat: array<f32>;
@group(0) @binding(2) var<storage, read> b_vec: array<vec4<f32>>;
@group(0) @binding(3) var b_tex: texture_2d<f32>;
@group(0) @binding(4) var<storage, read_write> c_mat: array<f32>;
@group(0) @binding(5) var<storage, read> a_vec: array<vec4<f32>>;

var<private> acc0: vec4<f32>;
var<private> acc1: vec4<f32>;
var<private> acc2: vec4<f32>;
var<private> acc3: vec4<f32>;
var<private> acc4: vec4<f32>;
var<private> acc5: vec4<f32>;
var<private> acc6: vec4<f32>;
var<private> acc7: vec4<f32>;
var<private> acc8: vec4<f32>;
var<private> acc9: vec4<f32>;
var<private> acc10: vec4<f32>;
var<private> acc11: vec4<f32>;
var<private> acc12: vec4<f32>;
var<private> acc13: vec4<f32>;
var<private> acc14: vec4<f32>;
var<private> acc15: vec4<f32>;
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

fn fma_group0(a: f32, b: vec4<f32>) {
    acc0 = fma(vec4<f32>(subgroupBroadcast(a, 0u)), b, acc0);
    acc1 = fma(vec4<f32>(subgroupBroadcast(a, 1u)), b, acc1);
    acc2 = fma(vec4<f32>(subgroupBroadcast(a, 2u)), b, acc2);
    acc3 = fma(vec4<f32>(subgroupBroadcast(a, 3u)), b, acc3);
    acc4 = fma(vec4<f32>(subgroupBroadcast(a, 4u)), b, acc4);
    acc5 = fma(vec4<f32>(subgroupBroadcast(a, 5u)), b, acc5);
    acc6 = fma(vec4<f32>(subgroupBroadcast(a, 6u)), b, acc6);
    acc7 = fma(vec4<f32>(subgroupBroadcast(a, 7u)), b, acc7);
}
fn fma_group1(a: f32, b: vec4<f32>) {
    acc8 = fma(vec4<f32>(subgroupBroadcast(a, 0u)), b, acc8);
    acc9 = fma(vec4<f32>(subgroupBroadcast(a, 1u)), b, acc9);
    acc10 = fma(vec4<f32>(subgroupBroadcast(a, 2u)), b, acc10);
    acc11 = fma(vec4<f32>(subgroupBroadcast(a, 3u)), b, acc11);
    acc12 = fma(vec4<f32>(subgroupBroadcast(a, 4u)), b, acc12);
    acc13 = fma(vec4<f32>(subgroupBroadcast(a, 5u)), b, acc13);
    acc14 = fma(vec4<f32>(subgroupBroadcast(a, 6u)), b, acc14);
    acc15 = fma(vec4<f32>(subgroupBroadcast(a, 7u)), b, acc15);
}
fn fma_group2(a: f32, b: vec4<f32>) {
    acc16 = fma(vec4<f32>(subgroupBroadcast(a, 0u)), b, acc16);
    acc17 = fma(vec4<f32>(subgroupBroadcast(a, 1u)), b, acc17);
    acc18 = fma(vec4<f32>(subgroupBroadcast(a, 2u)), b, acc18);
    acc19 = fma(vec4<f32>(subgroupBroadcast(a, 3u)), b, acc19);
    acc20 = fma(vec4<f32>(subgroupBroadcast(a, 4u)), b, acc20);
    acc21 = fma(vec4<f32>(subgroupBroadcast(a, 5u)), b, acc21);
    acc22 = fma(vec4<f32>(subgroupBroadcast(a, 6u)), b, acc22);
    acc23 = fma(vec4<f32>(subgroupBroadcast(a, 7u)), b, acc23);
}
fn fma_group3(a: f32, b: vec4<f32>) {
    acc24 = fma(vec4<f32>(subgroupBroadcast(a, 0u)), b, acc24);
    acc25 = fma(vec4<f32>(subgroupBroadcast(a, 1u)), b, acc25);
    acc26 = fma(vec4<f32>(subgroupBroadcast(a, 2u)), b, acc26);
    acc27 = fma(vec4<f32>(subgroupBroadcast(a, 3u)), b, acc27);
    acc28 = fma(vec4<f32>(subgroupBroadcast(a, 4u)), b, acc28);
    acc29 = fma(vec4<f32>(subgroupBroadcast(a, 5u)), b, acc29);
    acc30 = fma(vec4<f32>(subgroupBroadcast(a, 6u)), b, acc30);
    acc31 = fma(vec4<f32>(subgroupBroadcast(a, 7u)), b, acc31);
}

// B's row k at the invocation's 4 columns (first column c0).
fn b_row(k: u32, c0: u32) -> vec4<f32> {
    switch FORM {
        case 0u: {
            let r = k * N + c0;
            return vec4<f32>(b_mat[r], b_mat[r + 64u], b_mat[r + 128u], b_mat[r + 192u]);
        }
        case 1u, 4u: { return b_vec[(k * N + c0) / 4u]; }
        default: { return textureLoad(b_tex, vec2<u32>(c0 / 4u, k), 0); }
    }
}

// The block += A's column k (row slots by broadcast) times B's row k.
fn accumulate(m0: u32, k: u32, lane: u32, c0: u32) {
    let b = b_row(k, c0);
    fma_group0(a_mat[(m0 + lane) * N + k], b);
    fma_group1(a_mat[(m0 + 8u + lane) * N + k], b);
    fma_group2(a_mat[(m0 + 16u + lane) * N + k], b);
    fma_group3(a_mat[(m0 + 24u + lane) * N + k], b);
}

// The block += A's columns k..k+3, each row slot's four read as one vec4, times B's rows k..k+3.
fn accumulate4(m0: u32, k: u32, lane: u32, c0: u32) {
    let a0 = a_vec[((m0 + lane) * N + k) / 4u];
    let a1 = a_vec[((m0 + 8u + lane) * N + k) / 4u];
    let a2 = a_vec[((m0 + 16u + lane) * N + k) / 4u];
    let a3 = a_vec[((m0 + 24u + lane) * N + k) / 4u];
    for (var i = 0u; i < 4u; i++) {
        let b = b_row(k + i, c0);
        fma_group0(a0[i], b);
        fma_group1(a1[i], b);
        fma_group2(a2[i], b);
        fma_group3(a3[i], b);
    }
}

// Row m's 4 columns: c.x, c.y, c.z, c.w.
fn store_row(m: u32, c: vec4<u32>, v: vec4<f32>) {
    c_mat[m * N + c.x] = v.x;
    c_mat[m * N + c.y] = v.y;
    c_mat[m * N + c.z] = v.z;
    c_mat[m * N + c.w] = v.w;
}

fn store_all(m0: u32, c: vec4<u32>) {
    store_row(m0 + 0u, c, acc0);
    store_row(m0 + 1u, c, acc1);
    store_row(m0 + 2u, c, acc2);
    store_row(m0 + 3u, c, acc3);
    store_row(m0 + 4u, c, acc4);
    store_row(m0 + 5u, c, acc5);
    store_row(m0 + 6u, c, acc6);
    store_row(m0 + 7u, c, acc7);
    store_row(m0 + 8u, c, acc8);
    store_row(m0 + 9u, c, acc9);
    store_row(m0 + 10u, c, acc10);
    store_row(m0 + 11u, c, acc11);
    store_row(m0 + 12u, c, acc12);
    store_row(m0 + 13u, c, acc13);
    store_row(m0 + 14u, c, acc14);
    store_row(m0 + 15u, c, acc15);
    store_row(m0 + 16u, c, acc16);
    store_row(m0 + 17u, c, acc17);
    store_row(m0 + 18u, c, acc18);
    store_row(m0 + 19u, c, acc19);
    store_row(m0 + 20u, c, acc20);
    store_row(m0 + 21u, c, acc21);
    store_row(m0 + 22u, c, acc22);
    store_row(m0 + 23u, c, acc23);
    store_row(m0 + 24u, c, acc24);
    store_row(m0 + 25u, c, acc25);
    store_row(m0 + 26u, c, acc26);
    store_row(m0 + 27u, c, acc27);
    store_row(m0 + 28u, c, acc28);
    store_row(m0 + 29u, c, acc29);
    store_row(m0 + 30u, c, acc30);
    store_row(m0 + 31u, c, acc31);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
    let m0 = wg.y * 32u;
    // The scalar form strides its columns by 64 (as gemm.wgsl does); the others take 4 in a row.
    let c0 = select(wg.x * 256u + li * 4u, wg.x * 256u + li, FORM == 0u);
    let step = select(1u, 64u, FORM == 0u);
    if (FORM >= 3u) {
        for (var k = 0u; k < N; k += 4u) {
            accumulate4(m0, k, lane, c0);
        }
    } else {
        for (var k = 0u; k < N; k++) {
            accumulate(m0, k, lane, c0);
        }
    }
    store_all(m0, vec4<u32>(c0, c0 + step, c0 + 2u * step, c0 + 3u * step));
}
