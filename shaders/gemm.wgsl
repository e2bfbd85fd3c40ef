// gemm.wgsl: one tiled implicit GEMM for conv2d, conv-transpose2d and linear layers, forward and
// backward. Every shape and offset is a pipeline-overridable constant, so each launch is compiled
// for its layer and the indexing below folds to constants.
//
// Two tensors take part besides the weight (batch BATCH; NCHW or grouped, see Layouts below):
//   G [BATCH, G_C, G_H, G_W]  the "gathered" tensor, read through the convolution's window
//   Q [BATCH, Q_C, Q_H, Q_W]  the "plain" tensor, one GEMM row per channel
// and the GEMM is C[m, col] = sum_k A[m, k] * B[k, col] with m over Q's channels:
//   MODE 0 (conv):        Q = conv2d(G, W), W [Q_C, G_C, KH, KW]; col = (n, oy, ox),
//                         k = (c, kh, kw), input row iy = oy*STRIDE - PAD + kh
//   MODE 1 (conv-T):      Q = conv_transpose2d(G, W), W [G_C, Q_C, KH, KW]; iy = (oy + PAD - kh)
//                         / STRIDE where that divides exactly. Columns are grouped by output phase
//                         (oy mod STRIDE, ox mod STRIDE): within a phase only the taps kh = kh0 +
//                         th*STRIDE divide, so k = (c, th, tw) runs over those alone (a STRIDE²
//                         saving over skipping zeros), and iy = oy/STRIDE + (phase + PAD)/STRIDE - th.
//                         Where STRIDE does not divide KH (a k3 s2 conv's input gradient: 1, 2,
//                         2 or 4 taps) the host launches each phase alone (PHASE_SPLIT): with
//                         the phase a constant, its missing taps fold away when compiling, where
//                         lavapipe would otherwise run them under a mask.
//   MODE 2 (weight grad): dW[Q_C, G_C, KH, KW] = sum over k = (n, y, x) of Q[n, m, y, x] *
//                         G[n, c, y*STRIDE - PAD + kh, x*STRIDE - PAD + kw]; col = (c, kh, kw)
// A linear layer is the 1x1 case (H = W = 1, KH = KW = 1), weight [out, in] = [Q_C, G_C].
// The input gradient of conv2d is MODE 1 with the same weight, that of conv-T is MODE 0, and both
// weight gradients are MODE 2 (for conv-T, Q is the layer input and G the output gradient).
//
// Split-K (KSPLIT > 1): for GEMMs with few outputs and a long reduction, whose tiles would leave
// cores idle. MODE 2 (on a CPU the 1- and 3-channel layers: 9 to 48 columns, K = batch x H x W;
// on a GPU any such gradient) cuts the reduction's rows (n, y) into KSPLIT runs; MODE 0/1 (GPU only, 1x1
// outputs: the linear layers, K = G_C up to thousands) cuts the channels c. Part p goes to column
// tiles p * col_tiles + t (times the phases) and writes its partial C, before any epilogue, to
// P_OFF as [KSPLIT, Q_C, N]. A second launch sums the parts in a fixed order: bias_grad.wgsl into
// dW for MODE 2, `sum_parts` below (through the epilogue) for MODE 0/1.
// Parts side by side (KL > 1; MODE 2 with few columns, on CPUs): a one-tile gradient of 9 to 48
// columns would leave most column lanes idle, so the workgroup's invocations are KL blocks of
// 64/KL, each running part (workgroup's group) * KL + block over a tile of LM x 64/(LM*KL)
// lanes. The parts and their order are those of KL = 1, so every core gives the same bits.
//
// Epilogue, MODE 0/1: forward, Q = act(C + bias); backward (BACKWARD), Q = C * act'(H), where H is
// the stored output of the activation (at H_OFF, same layout as Q). MODE 2 writes dW to `grads`.
//
// Geometry: 64 invocations as LM (along m) x 64/LM (along columns, fastest) lanes (with KL > 1,
// KL blocks of LM x 64/(LM*KL), one per part); each computes TM rows x 4 columns strided by the
// lane counts, so a workgroup (a block) covers TM*LM rows x 4*ln() columns.
// The host picks LM and TM from Q_C so that small layers do not waste lanes. Column tiles run
// over workgroup x and z (x + z * num_workgroups.x); rows over y.
//
// Layouts: G and Q are each either plain (NCHW) or grouped, [BATCH, C/4, H, W, 4]: four
// consecutive channels of a pixel side by side, so that one vec4 load reads four terms of the
// reduction (MODE 0/1: k runs over channels) or four rows or columns (MODE 2: rows are Q's
// channels, columns G's). On lavapipe a storage load costs a loop over the SIMD lanes whatever
// its width, so four values per load halve these GEMMs' time (BENCHMARKS.md, "Four values per
// load"). The host groups every hidden map whose channels divide by 4 (src/engine/layout.rs,
// `grouping`); a 1x1 tensor reads
// the same in both layouts. The vec4 paths, each chosen by the host where its operand allows:
//   VEC_K (MODE 0/1): B is G four channels at a time, A the weight packed as
//       [Q_C, G_C/4, KH, KW, 4] (A4_OFF, in vec4s of params4: the weight itself where it is in
//       that order already, a 1x1 [Q_C, G_C] weight whose G is not flattened (A4_IN_PLACE),
//       otherwise a copy that pack.wgsl writes past the parameters each step);
//       the reduction runs over channel quads and each step is four rank-1 updates.
//   VEC_ROWS (MODE 2): A is Q four rows at a time: an invocation's rows come in quads of
//       consecutive channels (slot i is row m0 + (i/4)*4*LM + i%4).
//   VEC_COLS (MODE 2): B is G four columns at a time: an invocation's 4 columns are the four
//       channels of one quad (c4, kh, kw) instead of columns 64/LM apart.
// The scalar paths read either layout too (gathered, a_slot), so the choice is the host's.
//
// This file is the body; it is compiled with one of the entry files that supply
// `a_slots(.., first)`: A's column k at the invocation's row slots first..first+7, and
// `a_vecs(.., first)`, the same for the vec4 paths (row slots of VEC_K, quads of VEC_ROWS; see
// kernels/gemm_core.rs, `GemmCore`), and with gemm_narrow.wgsl (up to 16 rows per invocation) or
// gemm_wide.wgsl (32: the subgroup core on CPU devices, for GEMMs with many columns):
//   gemm_plain.wgsl     each invocation loads its TM values itself;
//   gemm_subgroup.wgsl  the lanes of a subgroup, which share their rows, load one value each and
//                       exchange them by broadcast: one load per 8 rows. On lavapipe a storage
//                       load costs a scalar loop over the SIMD lanes, so this is most of the gain.

override MODE: u32;       // MODE_CONV, MODE_CONV_T or MODE_WEIGHT_GRAD
override BATCH: u32;
override G_C: u32;
override G_H: u32;
override G_W: u32;
override Q_C: u32;
override Q_H: u32;
override Q_W: u32;
override KH: u32;
override KW: u32;
override STRIDE: u32;
override PAD: u32;
override W_OFF: u32;   // weight in params (MODE 0/1) or dW in grads (MODE 2)
override G_OFF: u32;   // G in acts
override Q_OFF: u32;   // Q in acts
override B_OFF: u32;   // bias in params
override HAS_BIAS: bool;
override ACT: u32;        // ACT_IDENTITY, ACT_LEAKY_RELU, ACT_RELU or ACT_SIGMOID
override ALPHA: f32;       // leaky ReLU slope
override BACKWARD: bool;
override H_OFF: u32;
override LM: u32;      // lanes along m (a power of two, LM * KL <= 32)
override KSPLIT: u32;  // parts the reduction is split into (split-K), see above
override KL: u32;      // parts side by side in one workgroup (1, or a divisor of KSPLIT)
override P_OFF: u32;   // with KSPLIT > 1: partial sums [KSPLIT, Q_C, N] in acts
override TM: u32;      // rows per invocation (1..16; 32 with the wide entry)
override G_GROUPED: bool;  // G's layout: grouped (see above) or plain
override Q_GROUPED: bool;  // Q's (and H's) layout
override VEC_K: bool;      // MODE 0/1: G and the packed weight four channels at a time
override A4_OFF: u32;      // with VEC_K: the packed weight, in vec4s of params4
override A4_IN_PLACE: bool; // ... the weight itself rather than a copy past the parameters
override VEC_ROWS: bool;   // MODE 2: Q four rows at a time (TM a multiple of 4)
override VEC_COLS: bool;   // MODE 2: G four columns at a time
override PHASE_SPLIT: bool; // MODE 1: this launch computes one phase only, PHASE (py*STRIDE+px),
override PHASE: u32;        // a constant, so that its taps are known when compiling (below)
override G_FLAT_HW: u32;   // G (Q) a grouped tensor that this linear layer sees flattened, of
override Q_FLAT_HW: u32;   // this many pixels (prelude.wgsl `flat`); 0: not flattened

// `params`, `grads` and `acts` are declared in the prelude, as are the codes MODE_* and ACT_*.

// Split-K: this invocation's part of the reduction (its workgroup's, unless KL > 1).
var<private> part: u32;

const TN: u32 = 4u;

// Column lanes: of a part's block of 64/KL invocations, LM rows of them.
fn ln() -> u32 { return 64u / (LM * KL); }
fn g_hw() -> u32 { return G_H * G_W; }
fn q_hw() -> u32 { return Q_H * Q_W; }
// A pixel's stride in G and Q: 4 floats when grouped.
fn g_px() -> u32 { return select(1u, 4u, G_GROUPED); }
fn q_px() -> u32 { return select(1u, 4u, Q_GROUPED); }
// Channel c's offset within a sample of G, at pixel 0.
fn g_chan(c: u32) -> u32 {
    return select(c * g_hw(), (c / 4u) * g_hw() * 4u + c % 4u, G_GROUPED);
}
// Element (n, m, pos) of Q (or H), pos = y * Q_W + x.
fn q_elem(n: u32, m: u32, pos: u32) -> u32 {
    return n * Q_C * q_hw() + select(m * q_hw(), (m / 4u) * q_hw() * 4u + m % 4u, Q_GROUPED)
        + pos * q_px();
}
// Row slot i's row: m0 + i*LM, or in quads of consecutive rows with VEC_ROWS.
fn row(m0: u32, i: u32) -> u32 {
    return select(m0 + i * LM, m0 + (i / 4u) * 4u * LM + i % 4u, VEC_ROWS);
}
// MODE 1 phase grid: outputs with the same (oy mod STRIDE, ox mod STRIDE).
fn ph_h() -> u32 { return (Q_H + STRIDE - 1u) / STRIDE; }
fn ph_w() -> u32 { return (Q_W + STRIDE - 1u) / STRIDE; }
fn gemm_n() -> u32 {
    switch MODE {
        case MODE_CONV_T: { return BATCH * ph_h() * ph_w(); }   // per phase
        case MODE_WEIGHT_GRAD: { return G_C * KH * KW; }
        default: { return BATCH * q_hw(); }
    }
}

fn act_forward(z: f32) -> f32 {
    switch ACT {
        case ACT_LEAKY_RELU: { return select(ALPHA * z, z, z > 0.0); }
        case ACT_RELU: { return max(z, 0.0); }
        case ACT_SIGMOID: { return 1.0 / (1.0 + exp(-z)); }
        default: { return z; }
    }
}

// Derivative of the activation, from its stored output h.
fn act_backward(h: f32) -> f32 {
    switch ACT {
        case ACT_LEAKY_RELU: { return select(ALPHA, 1.0, h > 0.0); }
        case ACT_RELU: { return select(0.0, 1.0, h > 0.0); }
        case ACT_SIGMOID: { return h * (1.0 - h); }
        default: { return 1.0; }
    }
}

// A[m, k] is a_at(base(k) + offset of row m): the weight (MODE 0/1: m * stride(k)) or Q (MODE 2:
// m * stride(k) plain, or by quads of rows grouped; see a_slot).
fn a_at(index: u32) -> f32 {
    if (MODE == MODE_WEIGHT_GRAD) {
        return acts[index];
    }
    return params[index];
}

// Row slot i's value of A at (base, stride), 0 past the tile's rows or Q_C. Branch-free like
// `gathered` (row 0 stands in for a missing row).
fn a_slot(i: u32, base: u32, stride: u32, m0: u32) -> f32 {
    let inside = (i < TM) & (row(m0, i) < Q_C);
    let m = select(0u, row(m0, i), inside);
    // MODE 2 reads Q, whose rows are channels: grouped, four to a pixel.
    let grouped_rows = (MODE == MODE_WEIGHT_GRAD) & Q_GROUPED;
    let at = select(m * stride, (m / 4u) * stride * 4u + m % 4u, grouped_rows);
    return select(0.0, a_at(base + at), inside);
}

// An element of G at (iy, ix) past `base`, or 0 outside the tensor or for a dead column.
// Branch-free: the load always happens (at G's first element when outside) and `select` zeroes
// it, so SIMD lanes never diverge around a load (BENCHMARKS.md, v8).
fn gathered(ok: bool, base: u32, iy: i32, ix: i32) -> f32 {
    let inside = ok & (iy >= 0) & (iy < i32(G_H)) & (ix >= 0) & (ix < i32(G_W));
    let v = acts[G_OFF + select(0u, base + (u32(iy) * G_W + u32(ix)) * g_px(), inside)];
    return select(0.0, v, inside);
}

// Writes row slot i of the tile (4 columns).
fn store(i: u32, m0: u32, c0: u32, v: vec4<f32>, cy: vec4<i32>, cx: vec4<i32>, ok: vec4<bool>, py: u32, px: u32) {
    let m = row(m0, i);
    if (i >= TM || m >= Q_C) { return; }
    let n_cols = gemm_n();
    for (var j = 0u; j < TN; j++) {
        if (!ok[j]) { continue; }
        // VEC_COLS: c0 is the quad (c4, kh, kw) and j its channel; dW keeps PyTorch's order.
        let kk = KH * KW;
        let col = select(c0 + j * ln(), ((c0 / kk) * 4u + j) * kk + c0 % kk, VEC_COLS);
        // dW's row and column in PyTorch's order (a flattened operand's channels map back).
        let w_at = flat(m, Q_FLAT_HW) * n_cols + flat(col, G_FLAT_HW);
        if (KSPLIT > 1u) {
            acts[P_OFF + part * Q_C * n_cols + select(m * n_cols + col, w_at, MODE == MODE_WEIGHT_GRAD)] = v[j];
            continue;
        }
        if (MODE == MODE_WEIGHT_GRAD) {
            grads[W_OFF + w_at] = v[j];
            continue;
        }
        var n: u32;
        var pos: u32;
        if (MODE == MODE_CONV_T) {
            n = col / (ph_h() * ph_w());
            pos = (u32(cy[j]) * STRIDE + py) * Q_W + u32(cx[j]) * STRIDE + px;
        } else {
            n = col / q_hw();
            pos = col % q_hw();
        }
        let rel = q_elem(n, m, pos);
        var r = v[j];
        if (BACKWARD) {
            r = r * act_backward(acts[H_OFF + rel]);
        } else {
            if (HAS_BIAS) { r = r + params[B_OFF + flat(m, Q_FLAT_HW)]; }
            r = act_forward(r);
        }
        acts[Q_OFF + rel] = r;
    }
}

// The TM x 4 block of C: one vec4 of columns per row slot, named so that nothing is indexed
// dynamically (private, zero at the start of each invocation). Slots 8..15 take their A values
// from a second a_slots (subgroups of 8).
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

// One step of the reduction: the block += A's column k (at base, stride) times B's row k, `b`.
fn accumulate(b: vec4<f32>, base: u32, stride: u32, m0: u32, lane: u32) {
    fma_rows(a_slots(base, stride, m0, lane, 0u), b);
    if (TM > 8u) {
        fma_rows_high(a_slots(base, stride, m0, lane, 8u), b);
    }
    // Row slots 16..31: only the wide entry (gemm_wide.wgsl) has them; elsewhere this is empty
    // (gemm_narrow.wgsl), so other pipelines carry no accumulators they never use.
    accumulate_wide(b, base, stride, m0, lane);
}

// The block's row slots 0..7 += a[i] * b (slots from TM on stay zero and are never stored).
fn fma_rows(a: array<f32, 8>, b: vec4<f32>) {
    acc0 = fma(vec4<f32>(a[0]), b, acc0);
    acc1 = fma(vec4<f32>(a[1]), b, acc1);
    acc2 = fma(vec4<f32>(a[2]), b, acc2);
    acc3 = fma(vec4<f32>(a[3]), b, acc3);
    if (TM > 4u) {
        acc4 = fma(vec4<f32>(a[4]), b, acc4);
        acc5 = fma(vec4<f32>(a[5]), b, acc5);
        acc6 = fma(vec4<f32>(a[6]), b, acc6);
        acc7 = fma(vec4<f32>(a[7]), b, acc7);
    }
}

// Row slots 8..15 += a[i - 8] * b.
fn fma_rows_high(a: array<f32, 8>, b: vec4<f32>) {
    acc8 = fma(vec4<f32>(a[0]), b, acc8);
    acc9 = fma(vec4<f32>(a[1]), b, acc9);
    acc10 = fma(vec4<f32>(a[2]), b, acc10);
    acc11 = fma(vec4<f32>(a[3]), b, acc11);
    acc12 = fma(vec4<f32>(a[4]), b, acc12);
    acc13 = fma(vec4<f32>(a[5]), b, acc13);
    acc14 = fma(vec4<f32>(a[6]), b, acc14);
    acc15 = fma(vec4<f32>(a[7]), b, acc15);
}

// A GEMM column's part of the index, decoded once: the base into G (MODE 0/1: sample n; MODE 2:
// channel c), the window's fixed coordinate (MODE 0: oy, ox; MODE 1: the phase grid's oy', ox';
// MODE 2: kh, kw), and whether the column exists.
struct Column {
    base: u32,
    y: i32,
    x: i32,
    ok: bool,
}

fn column(col: u32, n_cols: u32, phase_y: u32, phase_x: u32) -> Column {
    let cc = min(col, n_cols - 1u);
    var c: Column;
    c.ok = col < n_cols;
    if (MODE == MODE_WEIGHT_GRAD && VEC_COLS) {
        // A quad (c4, kh, kw): base in vec4s within a sample.
        let quads = n_cols / 4u;
        let cq = min(col, quads - 1u);
        c.ok = col < quads;
        c.base = (cq / (KH * KW)) * g_hw();
        c.y = i32((cq % (KH * KW)) / KW);
        c.x = i32(cq % KW);
    } else if (MODE == MODE_WEIGHT_GRAD) {
        c.base = g_chan(cc / (KH * KW));
        c.y = i32((cc % (KH * KW)) / KW);
        c.x = i32(cc % KW);
    } else if (MODE == MODE_CONV_T) {
        let per = ph_h() * ph_w();
        c.base = (cc / per) * G_C * g_hw();
        c.y = i32((cc % per) / ph_w());
        c.x = i32(cc % ph_w());
        c.ok = c.ok && u32(c.y) * STRIDE + phase_y < Q_H && u32(c.x) * STRIDE + phase_x < Q_W;
    } else {
        c.base = (cc / q_hw()) * G_C * g_hw();
        c.y = i32((cc % q_hw()) / Q_W);
        c.x = i32(cc % Q_W);
    }
    return c;
}

// This workgroup's tile: its split-K part (in the private `part`), the conv-T phase, and the
// first row and column of the invocation `li` (rows m0 + i*LM, columns c0 + j*64/LM).
struct Tile {
    phase_y: u32,
    phase_x: u32,
    m0: u32,
    c0: u32,
}

// The workgroup's (first) split-K part: column tiles come in groups, one per part, or KL parts
// side by side (times the STRIDE² phases for MODE 1, the part above the phase).
fn part_of(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    let col_tiles = (gemm_n() + TN * ln() - 1u) / (TN * ln());
    let group = (wg.x + wg.z * nwg.x) / col_tiles;
    return select(group, group / (STRIDE * STRIDE), MODE == MODE_CONV_T && !PHASE_SPLIT);
}

fn tile_of(wg: vec3<u32>, nwg: vec3<u32>, li: u32) -> Tile {
    let n_cols = gemm_n();
    let col_tiles = (n_cols + TN * ln() - 1u) / (TN * ln());
    let tile = wg.x + wg.z * nwg.x;
    let group = tile / col_tiles;
    let col_tile = tile % col_tiles;
    var t: Tile;
    // With KL > 1, invocation li is lane li % (64/KL) of the block for part ... * KL + li / (64/KL).
    let block = 64u / KL;
    part = part_of(wg, nwg) * KL + li / block;
    let lb = li % block;
    // MODE 1: which phase this workgroup's columns belong to.
    if (MODE == MODE_CONV_T) {
        let phase = select(group % (STRIDE * STRIDE), PHASE, PHASE_SPLIT);
        t.phase_y = phase / STRIDE;
        t.phase_x = phase % STRIDE;
    }
    // Consecutive invocations take consecutive columns: on SIMD CPUs (lavapipe) and GPUs alike
    // their loads of G then touch neighbouring addresses.
    t.m0 = wg.y * TM * LM + (lb / ln()) * select(1u, 4u, VEC_ROWS);
    // VEC_COLS: c0 is the invocation's quad of columns (the tile covers as many columns).
    t.c0 = col_tile * select(TN, 1u, VEC_COLS) * ln() + lb % ln();
    return t;
}

// Writes the whole TM x 4 block.
fn store_block(t: Tile, col_y: vec4<i32>, col_x: vec4<i32>, col_ok: vec4<bool>) {
    store(0u, t.m0, t.c0, acc0, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(1u, t.m0, t.c0, acc1, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(2u, t.m0, t.c0, acc2, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(3u, t.m0, t.c0, acc3, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(4u, t.m0, t.c0, acc4, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(5u, t.m0, t.c0, acc5, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(6u, t.m0, t.c0, acc6, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(7u, t.m0, t.c0, acc7, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(8u, t.m0, t.c0, acc8, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(9u, t.m0, t.c0, acc9, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(10u, t.m0, t.c0, acc10, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(11u, t.m0, t.c0, acc11, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(12u, t.m0, t.c0, acc12, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(13u, t.m0, t.c0, acc13, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(14u, t.m0, t.c0, acc14, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store(15u, t.m0, t.c0, acc15, col_y, col_x, col_ok, t.phase_y, t.phase_x);
    store_wide(t, col_y, col_x, col_ok);
}

// MODE 0/1: the input rows (or columns) that tap k (the phase's t-th) reads for the
// invocation's columns at output coordinate c: c*STRIDE + k - PAD, or (MODE 1) c + d0 - t.
fn window(c: vec4<i32>, k: u32, t: u32, d0: i32) -> vec4<i32> {
    if (MODE == MODE_CONV) {
        return c * i32(STRIDE) + vec4<i32>(i32(k) - i32(PAD));
    }
    return c + vec4<i32>(d0 - i32(t));
}

// The kernel body; `lane` is the invocation's index within its subgroup (0 where unused).
fn gemm(wg: vec3<u32>, nwg: vec3<u32>, li: u32, lane: u32) {
    let n_cols = gemm_n();
    let t = tile_of(wg, nwg, li);
    if (part >= KSPLIT) { return; }
    let phase_y = t.phase_y;
    let phase_x = t.phase_x;
    let m0 = t.m0;
    let c0 = t.c0;
    // The invocation's 4 columns, held in vectors so they stay in registers.
    var col_base: vec4<u32>;
    var col_y: vec4<i32>;
    var col_x: vec4<i32>;
    var col_ok: vec4<bool>;
    for (var j = 0u; j < TN; j++) {
        // VEC_COLS: the four columns are the channels of the quad c0.
        let c = column(select(c0 + j * ln(), c0, VEC_COLS), n_cols, phase_y, phase_x);
        col_base[j] = c.base;
        col_y[j] = c.y;
        col_x[j] = c.x;
        col_ok[j] = c.ok;
    }

    if (MODE == MODE_WEIGHT_GRAD) {
        // The reduction's rows (n, y) in order; split-K part p takes a run of them.
        let rows = BATCH * Q_H;
        let per_part = (rows + KSPLIT - 1u) / KSPLIT;
        let r_end = min(rows, (part + 1u) * per_part);
        for (var r = part * per_part; r < r_end; r++) {
            let n = r / Q_H;
            let y = r % Q_H;
            let nb = n * G_C * g_hw();
            {
                for (var x = 0u; x < Q_W; x++) {
                    let iy = vec4<i32>(i32(y * STRIDE) - i32(PAD)) + col_y;
                    let ix = vec4<i32>(i32(x * STRIDE) - i32(PAD)) + col_x;
                    var b: vec4<f32>;
                    if (VEC_COLS) {
                        b = gathered4(col_ok[0], nb / 4u + col_base[0], iy[0], ix[0]);
                    } else {
                        b = vec4<f32>(
                            gathered(col_ok[0], nb + col_base[0], iy[0], ix[0]),
                            gathered(col_ok[1], nb + col_base[1], iy[1], ix[1]),
                            gathered(col_ok[2], nb + col_base[2], iy[2], ix[2]),
                            gathered(col_ok[3], nb + col_base[3], iy[3], ix[3]),
                        );
                    }
                    if (VEC_ROWS) {
                        let quad0 = (Q_OFF / 4u + n * (Q_C / 4u) * q_hw()) + y * Q_W + x;
                        accumulate_quads(b, quad0, q_hw(), m0, lane);
                    } else {
                        let qrow = n * Q_C * q_hw() + (y * Q_W + x) * q_px();
                        accumulate(b, Q_OFF + qrow, q_hw(), m0, lane);
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
        if (MODE == MODE_CONV_T) {
            kh0 = (phase_y + PAD) % STRIDE;
            kw0 = (phase_x + PAD) % STRIDE;
            kstep = STRIDE;
            dy0 = i32((phase_y + PAD) / STRIDE);
            dx0 = i32((phase_x + PAD) / STRIDE);
        }
        // Constant trip counts (KH, or taps per phase) so the compiler can unroll; a phase
        // with fewer taps skips the missing ones (a uniform branch).
        let taps_h = select(KH, (KH + STRIDE - 1u) / STRIDE, MODE == MODE_CONV_T);
        let taps_w = select(KW, (KW + STRIDE - 1u) / STRIDE, MODE == MODE_CONV_T);
        // The weight: MODE 0 [Q_C, G_C, KH, KW], MODE 1 [G_C, Q_C, KH, KW].
        let a_stride = select(KH * KW, G_C * KH * KW, MODE == MODE_CONV);
        // The reduction's units: channels, or with VEC_K channel quads (the packed weight is
        // [Q_C, G_C/4, KH, KW, 4]). Split-K: a run of units. Whole, the loop keeps its constant
        // trip count (a branch on the constant KSPLIT folds away; a select did not, and lavapipe
        // ran dec2 forward 50% slower).
        let units = select(G_C, G_C / 4u, VEC_K);
        var u_begin = 0u;
        var u_end = units;
        if (KSPLIT > 1u) {
            let per_part = (units + KSPLIT - 1u) / KSPLIT;
            u_begin = min(units, part * per_part);
            u_end = min(units, u_begin + per_part);
        }
        for (var u = u_begin; u < u_end; u++) {
            // G's channel (quad) u in each column's sample, and A's column for tap (0, 0).
            var cb: vec4<u32>;
            var a_base: u32;
            if (VEC_K) {
                cb = col_base / vec4<u32>(4u) + vec4<u32>(u * g_hw());
                a_base = A4_OFF + u * KH * KW;
            } else {
                cb = col_base + vec4<u32>(g_chan(u));
                a_base = W_OFF + select(u * Q_C, u, MODE == MODE_CONV) * KH * KW;
            }
            for (var th = 0u; th < taps_h; th++) {
                let kh = kh0 + th * kstep;
                if (kh >= KH) { continue; }
                let iy = window(col_y, kh, th, dy0);
                for (var tw = 0u; tw < taps_w; tw++) {
                    let kw = kw0 + tw * kstep;
                    if (kw >= KW) { continue; }
                    let ix = window(col_x, kw, tw, dx0);
                    if (VEC_K) {
                        let bt = transpose(mat4x4<f32>(
                            gathered4(col_ok[0], cb[0], iy[0], ix[0]),
                            gathered4(col_ok[1], cb[1], iy[1], ix[1]),
                            gathered4(col_ok[2], cb[2], iy[2], ix[2]),
                            gathered4(col_ok[3], cb[3], iy[3], ix[3]),
                        ));
                        accumulate4(bt, a_base + kh * KW + kw, units * KH * KW, m0, lane);
                    } else {
                        let b = vec4<f32>(
                            gathered(col_ok[0], cb[0], iy[0], ix[0]),
                            gathered(col_ok[1], cb[1], iy[1], ix[1]),
                            gathered(col_ok[2], cb[2], iy[2], ix[2]),
                            gathered(col_ok[3], cb[3], iy[3], ix[3]),
                        );
                        accumulate(b, a_base + kh * KW + kw, a_stride, m0, lane);
                    }
                }
            }
        }
    }

    store_block(t, col_y, col_x, col_ok);
}

// Split-K's second launch for MODE 0/1 (1x1 outputs, so a column is a sample): each output's
// parts summed in order, then the epilogue that `store` would have applied. One invocation per
// output (m, col), consecutive invocations on consecutive columns; workgroups x + z * nwg.x.
@compute @workgroup_size(64)
fn sum_parts(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let n_cols = gemm_n();
    let i = (wg.x + wg.z * nwg.x) * 64u + li;
    if (i >= Q_C * n_cols) { return; }
    let m = i / n_cols;
    let col = i % n_cols;
    var s = 0.0;
    for (var p = 0u; p < KSPLIT; p++) {
        s += acts[P_OFF + (p * Q_C + m) * n_cols + col];
    }
    let rel = col * Q_C + m;
    if (BACKWARD) {
        s = s * act_backward(acts[H_OFF + rel]);
    } else {
        if (HAS_BIAS) { s = s + params[B_OFF + flat(m, Q_FLAT_HW)]; }
        s = act_forward(s);
    }
    acts[Q_OFF + rel] = s;
}
