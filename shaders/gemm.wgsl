// gemm.wgsl: one tiled implicit GEMM for conv2d, conv-transpose2d and linear layers, forward and
// backward. Every shape and offset is a pipeline-overridable constant, so each launch is compiled
// for its layer and the indexing below folds to constants.
//
// Two tensors take part besides the weight (all NCHW, batch BATCH):
//   G [BATCH, G_C, G_H, G_W]  the "gathered" tensor, read through the convolution's window
//   Q [BATCH, Q_C, Q_H, Q_W]  the "plain" tensor, one GEMM row per channel
// and the GEMM is C[m, col] = sum_k A[m, k] * B[k, col] with m over Q's channels:
//   MODE 0 (conv):        Q = conv2d(G, W), W [Q_C, G_C, KH, KW]; col = (n, oy, ox),
//                         k = (c, kh, kw), input row iy = oy*STRIDE - PAD + kh
//   MODE 1 (conv-T):      Q = conv_transpose2d(G, W), W [G_C, Q_C, KH, KW]; iy = (oy + PAD - kh)
//                         / STRIDE where that divides exactly. Columns are grouped by output phase
//                         (oy mod STRIDE, ox mod STRIDE): within a phase only the taps kh = kh0 +
//                         th*STRIDE divide, so k = (c, th, tw) runs over those alone (a STRIDE²
//                         saving over skipping zeros), and iy = oy/STRIDE + (phase + PAD)/STRIDE - th
//   MODE 2 (weight grad): dW[Q_C, G_C, KH, KW] = sum over k = (n, y, x) of Q[n, m, y, x] *
//                         G[n, c, y*STRIDE - PAD + kh, x*STRIDE - PAD + kw]; col = (c, kh, kw)
// A linear layer is the 1x1 case (H = W = 1, KH = KW = 1), weight [out, in] = [Q_C, G_C].
// The input gradient of conv2d is MODE 1 with the same weight, that of conv-T is MODE 0, and both
// weight gradients are MODE 2 (for conv-T, Q is the layer input and G the output gradient).
//
// Epilogue, MODE 0/1: forward, Q = act(C + bias); backward (BACKWARD), Q = C * act'(H), where H is
// the stored output of the activation (at H_OFF, same layout as Q). MODE 2 writes dW to `grads`.
//
// Geometry: 64 invocations as LM (along m) x 64/LM (along columns, fastest) lanes; each computes TM rows
// x 4 columns strided by the lane counts, so a workgroup covers TM*LM rows x 4*64/LM columns.
// The host picks LM and TM from Q_C so that small layers do not waste lanes. Column tiles run
// over workgroup x and z (x + z * num_workgroups.x); rows over y.

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
override LM: u32 = 8u;      // lanes along m (1, 2, 4 or 8)
override TM: u32 = 4u;      // rows per invocation (1..4)

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> acts: array<f32>;

const TMAX: u32 = 4u;
const TN: u32 = 4u;

fn ln() -> u32 { return 64u / LM; }
fn g_hw() -> u32 { return G_H * G_W; }
fn q_hw() -> u32 { return Q_H * Q_W; }
// MODE 1 phase grid: outputs with the same (oy mod STRIDE, ox mod STRIDE).
fn ph_h() -> u32 { return (Q_H + STRIDE - 1u) / STRIDE; }
fn ph_w() -> u32 { return (Q_W + STRIDE - 1u) / STRIDE; }
fn gemm_n() -> u32 {
    switch MODE {
        case 1u: { return BATCH * ph_h() * ph_w(); }   // per phase
        case 2u: { return G_C * KH * KW; }
        default: { return BATCH * q_hw(); }
    }
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

fn in_range(v: i32, extent: u32) -> bool {
    return v >= 0 && v < i32(extent);
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let n_cols = gemm_n();
    let col_tiles = (n_cols + TN * ln() - 1u) / (TN * ln());
    var col_tile = wg.x + wg.z * nwg.x;
    // MODE 1: which phase this workgroup's columns belong to.
    var phase_y = 0u;
    var phase_x = 0u;
    if (MODE == 1u) {
        let phase = col_tile / col_tiles;
        if (phase >= STRIDE * STRIDE) { return; }
        phase_y = phase / STRIDE;
        phase_x = phase % STRIDE;
        col_tile = col_tile % col_tiles;
    } else if (col_tile >= col_tiles) {
        return;
    }
    // Consecutive invocations take consecutive columns: on SIMD CPUs (lavapipe) and GPUs alike
    // their loads of G then touch neighbouring addresses.
    let m0 = wg.y * TM * LM + li / ln();
    let c0 = col_tile * TN * ln() + li % ln();

    // Per-column part of the index, decoded once: the base into G (MODE 0/1: sample n; MODE 2:
    // channel c) and the window's fixed coordinate (MODE 0: oy, ox; MODE 1: the phase grid's
    // oy', ox'; MODE 2: kh, kw).
    var col_base: array<u32, TN>;
    var col_y: array<i32, TN>;
    var col_x: array<i32, TN>;
    var col_ok: array<bool, TN>;
    for (var j = 0u; j < TN; j++) {
        let col = c0 + j * ln();
        let cc = min(col, n_cols - 1u);
        col_ok[j] = col < n_cols;
        if (MODE == 2u) {
            col_base[j] = (cc / (KH * KW)) * g_hw();
            col_y[j] = i32((cc % (KH * KW)) / KW);
            col_x[j] = i32(cc % KW);
        } else if (MODE == 1u) {
            let per = ph_h() * ph_w();
            col_base[j] = (cc / per) * G_C * g_hw();
            col_y[j] = i32((cc % per) / ph_w());
            col_x[j] = i32(cc % ph_w());
            col_ok[j] = col_ok[j] && u32(col_y[j]) * STRIDE + phase_y < Q_H && u32(col_x[j]) * STRIDE + phase_x < Q_W;
        } else {
            col_base[j] = (cc / q_hw()) * G_C * g_hw();
            col_y[j] = i32((cc % q_hw()) / Q_W);
            col_x[j] = i32(cc % Q_W);
        }
    }
    var row_ok: array<bool, TMAX>;
    for (var i = 0u; i < TM; i++) { row_ok[i] = m0 + i * LM < Q_C; }

    var acc: array<array<f32, TN>, TMAX>;
    var a: array<f32, TMAX>;
    var b: array<f32, TN>;
    if (MODE == 2u) {
        for (var n = 0u; n < BATCH; n++) {
            for (var y = 0u; y < Q_H; y++) {
                for (var x = 0u; x < Q_W; x++) {
                    let qrow = n * Q_C * q_hw() + y * Q_W + x;
                    for (var i = 0u; i < TM; i++) {
                        if (row_ok[i]) { a[i] = acts[Q_OFF + qrow + (m0 + i * LM) * q_hw()]; }
                    }
                    for (var j = 0u; j < TN; j++) {
                        let iy = i32(y * STRIDE) - i32(PAD) + col_y[j];
                        let ix = i32(x * STRIDE) - i32(PAD) + col_x[j];
                        b[j] = 0.0;
                        if (col_ok[j] && in_range(iy, G_H) && in_range(ix, G_W)) {
                            b[j] = acts[G_OFF + n * G_C * g_hw() + col_base[j] + u32(iy) * G_W + u32(ix)];
                        }
                    }
                    for (var i = 0u; i < TM; i++) {
                        for (var j = 0u; j < TN; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
                    }
                }
            }
        }
    } else {
        // MODE 0 visits every tap; MODE 1 only those of its phase, kh = kh0 + th*STRIDE.
        var kh0 = 0u;
        var kw0 = 0u;
        var kstep = 1u;
        var dy0 = 0i;
        var dx0 = 0i;
        if (MODE == 1u) {
            kh0 = (phase_y + PAD) % STRIDE;
            kw0 = (phase_x + PAD) % STRIDE;
            kstep = STRIDE;
            dy0 = i32((phase_y + PAD) / STRIDE);
            dx0 = i32((phase_x + PAD) / STRIDE);
        }
        for (var c = 0u; c < G_C; c++) {
            for (var kh = kh0; kh < KH; kh += kstep) {
                for (var kw = kw0; kw < KW; kw += kstep) {
                    for (var i = 0u; i < TM; i++) {
                        let m = m0 + i * LM;
                        if (row_ok[i]) {
                            if (MODE == 0u) {
                                a[i] = params[W_OFF + ((m * G_C + c) * KH + kh) * KW + kw];
                            } else {
                                a[i] = params[W_OFF + ((c * Q_C + m) * KH + kh) * KW + kw];
                            }
                        }
                    }
                    for (var j = 0u; j < TN; j++) {
                        var iy: i32;
                        var ix: i32;
                        if (MODE == 0u) {
                            iy = col_y[j] * i32(STRIDE) - i32(PAD) + i32(kh);
                            ix = col_x[j] * i32(STRIDE) - i32(PAD) + i32(kw);
                        } else {
                            iy = col_y[j] + dy0 - i32((kh - kh0) / STRIDE);
                            ix = col_x[j] + dx0 - i32((kw - kw0) / STRIDE);
                        }
                        b[j] = 0.0;
                        if (col_ok[j] && in_range(iy, G_H) && in_range(ix, G_W)) {
                            b[j] = acts[G_OFF + col_base[j] + c * g_hw() + u32(iy) * G_W + u32(ix)];
                        }
                    }
                    for (var i = 0u; i < TM; i++) {
                        for (var j = 0u; j < TN; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
                    }
                }
            }
        }
    }

    for (var i = 0u; i < TM; i++) {
        let m = m0 + i * LM;
        if (!row_ok[i]) { continue; }
        for (var j = 0u; j < TN; j++) {
            if (!col_ok[j]) { continue; }
            let col = c0 + j * ln();
            if (MODE == 2u) {
                grads[W_OFF + m * n_cols + col] = acc[i][j];
                continue;
            }
            var n: u32;
            var pos: u32;
            if (MODE == 1u) {
                n = col / (ph_h() * ph_w());
                pos = (u32(col_y[j]) * STRIDE + phase_y) * Q_W + u32(col_x[j]) * STRIDE + phase_x;
            } else {
                n = col / q_hw();
                pos = col % q_hw();
            }
            let rel = (n * Q_C + m) * q_hw() + pos;
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
