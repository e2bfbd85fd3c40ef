// gemm.wgsl: one tiled implicit GEMM for conv2d, conv-transpose2d and linear layers, forward and
// backward. Every shape and offset is a pipeline-overridable constant, so each launch is compiled
// for its layer and the indexing below folds to constants.
//
// Two tensors take part besides the weight (all NCHW, batch BATCH):
//   G [BATCH, G_C, G_H, G_W]  the "gathered" tensor, read through the convolution's window
//   Q [BATCH, Q_C, Q_H, Q_W]  the "plain" tensor, one row per channel
// and the GEMM is C[m, col] = sum_k A[m, k] * B[k, col] with m over Q's channels:
//   MODE 0 (conv):       Q = conv2d(G, W),            W [Q_C, G_C, KH, KW]; col = (n, oy, ox),
//                        k = (c, kh, kw), input row iy = oy*STRIDE - PAD + kh
//   MODE 1 (conv-T):     Q = conv_transpose2d(G, W),  W [G_C, Q_C, KH, KW]; same col and k,
//                        iy = (oy + PAD - kh) / STRIDE where that divides exactly
//   MODE 2 (weight grad): dW[Q_C, G_C, KH, KW] = sum over (n, y, x) of Q[n, m, y, x] *
//                        G[n, c, y*STRIDE - PAD + kh, x*STRIDE - PAD + kw]; col = (c, kh, kw)
// A linear layer is the 1x1 case (H = W = 1, KH = KW = 1), weight [out, in] = [Q_C, G_C].
// The input gradient of conv2d is MODE 1 with the same weight, that of conv-T is MODE 0, and both
// weight gradients are MODE 2 (for conv-T, Q is the layer input and G the output gradient).
//
// Epilogue, MODE 0/1: forward, Q = act(C + bias); backward (BACKWARD), Q = C * act'(H), where H is
// the stored output of the activation (at H_OFF, same layout as Q). MODE 2 writes dW to `grads`.
//
// Geometry: 64 invocations, each a 4x4 block of C strided by 8, so a workgroup covers 32 rows (m)
// x 32 columns. Column tiles run over workgroup x and z (x + z * num_workgroups.x), rows over y.

override MODE: u32 = 0u;
override BATCH: u32 = 1u;
override G_C: u32 = 1u;
override G_H: u32 = 1u;
override G_W: u32 = 1u;
override Q_C: u32 = 1u;
override Q_H: u32 = 1u;
override Q_W: u32 = 1u;
override KH: u32 = 1u;
override KW: u32 = 1u;
override STRIDE: u32 = 1u;
override PAD: u32 = 0u;
override W_OFF: u32 = 0u;   // weight in params (MODE 0/1) or dW in grads (MODE 2)
override G_OFF: u32 = 0u;   // G in acts
override Q_OFF: u32 = 0u;   // Q in acts
override B_OFF: u32 = 0u;   // bias in params
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;     // 0 identity, 1 leaky ReLU, 2 ReLU, 3 sigmoid
override ALPHA: f32 = 0.2;
override BACKWARD: bool = false;
override H_OFF: u32 = 0u;

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> acts: array<f32>;

const TM: u32 = 4u;
const TN: u32 = 4u;
const LANES: u32 = 8u;          // invocations along each side of the 8x8 grid
const TILE: u32 = 32u;          // TM * LANES = TN * LANES

fn khw() -> u32 { return KH * KW; }
fn g_hw() -> u32 { return G_H * G_W; }
fn q_hw() -> u32 { return Q_H * Q_W; }
fn gemm_n() -> u32 { return select(BATCH * q_hw(), G_C * khw(), MODE == 2u); }
fn gemm_k() -> u32 { return select(G_C * khw(), BATCH * q_hw(), MODE == 2u); }

// Row (or column) of G read for window offset `b` at output position `a`, or -1 if outside.
fn window(a: u32, b: u32, extent: u32) -> i32 {
    var t: i32;
    if (MODE == 1u) {
        let u = i32(a) + i32(PAD) - i32(b);
        if (u < 0 || (u % i32(STRIDE)) != 0) { return -1; }
        t = u / i32(STRIDE);
    } else {
        t = i32(a * STRIDE + b) - i32(PAD);
    }
    if (t < 0 || t >= i32(extent)) { return -1; }
    return t;
}

fn act_forward(z: f32) -> f32 {
    switch ACT {
        case 1u: { return select(ALPHA * z, z, z > 0.0); }
        case 2u: { return max(z, 0.0); }
        case 3u: { return 1.0 / (1.0 + exp(-z)); }
        default: { return z; }
    }
}

// Derivative of the activation, from its stored output h.
fn act_backward(h: f32) -> f32 {
    switch ACT {
        case 1u: { return select(ALPHA, 1.0, h > 0.0); }
        case 2u: { return select(0.0, 1.0, h > 0.0); }
        case 3u: { return h * (1.0 - h); }
        default: { return 1.0; }
    }
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let n_cols = gemm_n();
    let n_k = gemm_k();
    let col_tile = wg.x + wg.z * nwg.x;
    let m0 = wg.y * TILE + li / LANES;
    let c0 = col_tile * TILE + li % LANES;

    // Per-column part of the index, decoded once: the batch/channel base into G (MODE 0/1: n;
    // MODE 2: c), and the window's fixed coordinate (MODE 0/1: oy, ox; MODE 2: kh, kw).
    var col_base: array<u32, TN>;
    var col_y: array<u32, TN>;
    var col_x: array<u32, TN>;
    var col_ok: array<bool, TN>;
    for (var j = 0u; j < TN; j++) {
        let col = c0 + j * LANES;
        col_ok[j] = col < n_cols;
        let cc = min(col, n_cols - 1u);
        if (MODE == 2u) {
            let c = cc / khw();
            let r = cc % khw();
            col_base[j] = c * g_hw();
            col_y[j] = r / KW;
            col_x[j] = r % KW;
        } else {
            let n = cc / q_hw();
            let r = cc % q_hw();
            col_base[j] = n * G_C * g_hw();
            col_y[j] = r / Q_W;
            col_x[j] = r % Q_W;
        }
    }
    var row_ok: array<bool, TM>;
    for (var i = 0u; i < TM; i++) { row_ok[i] = m0 + i * LANES < Q_C; }

    var acc: array<array<f32, TN>, TM>;
    for (var k = 0u; k < n_k; k++) {
        // Decode k: MODE 0/1 -> (c, kh, kw); MODE 2 -> (n, y, x).
        var k_base: u32;
        var k_y: u32;
        var k_x: u32;
        var a: array<f32, TM>;
        if (MODE == 2u) {
            let n = k / q_hw();
            let yx = k % q_hw();
            k_base = n * G_C * g_hw();
            k_y = yx / Q_W;
            k_x = yx % Q_W;
            for (var i = 0u; i < TM; i++) {
                let m = m0 + i * LANES;
                if (row_ok[i]) { a[i] = acts[Q_OFF + (n * Q_C + m) * q_hw() + yx]; }
            }
        } else {
            let c = k / khw();
            let r = k % khw();
            k_base = c * g_hw();
            k_y = r / KW;
            k_x = r % KW;
            for (var i = 0u; i < TM; i++) {
                let m = m0 + i * LANES;
                if (row_ok[i]) {
                    if (MODE == 0u) {
                        a[i] = params[W_OFF + m * n_k + k];
                    } else {
                        a[i] = params[W_OFF + (c * Q_C + m) * khw() + r];
                    }
                }
            }
        }
        var b: array<f32, TN>;
        for (var j = 0u; j < TN; j++) {
            var iy: i32;
            var ix: i32;
            if (MODE == 2u) {
                iy = window(k_y, col_y[j], G_H);
                ix = window(k_x, col_x[j], G_W);
            } else {
                iy = window(col_y[j], k_y, G_H);
                ix = window(col_x[j], k_x, G_W);
            }
            if (col_ok[j] && iy >= 0 && ix >= 0) {
                b[j] = acts[G_OFF + col_base[j] + k_base + u32(iy) * G_W + u32(ix)];
            } else {
                b[j] = 0.0;
            }
        }
        for (var i = 0u; i < TM; i++) {
            for (var j = 0u; j < TN; j++) {
                acc[i][j] = fma(a[i], b[j], acc[i][j]);
            }
        }
    }

    for (var i = 0u; i < TM; i++) {
        let m = m0 + i * LANES;
        if (!row_ok[i]) { continue; }
        for (var j = 0u; j < TN; j++) {
            let col = c0 + j * LANES;
            if (!col_ok[j]) { continue; }
            if (MODE == 2u) {
                grads[W_OFF + m * n_cols + col] = acc[i][j];
            } else {
                let n = col / q_hw();
                let rel = (n * Q_C + m) * q_hw() + col % q_hw();
                var v = acc[i][j];
                if (BACKWARD) {
                    v = v * act_backward(acts[H_OFF + rel]);
                } else {
                    if (HAS_BIAS) { v = v + params[B_OFF + m]; }
                    v = act_forward(v);
                }
                acts[Q_OFF + rel] = v;
            }
        }
    }
}
