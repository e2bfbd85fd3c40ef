// gemm_tiled.wgsl: entry point of gemm.wgsl for GPUs. The workgroup stages its tile of A (TM*LM
// rows x BK) and of B (BK x 4*64/LM columns) in workgroup memory, each value loaded from the
// arenas once by one invocation, then every invocation multiplies its TM x 4 register block out
// of that memory: per k, one vec4 of B and TM values of A, against TM + 4 storage loads per k
// invocation in the plain core. The standard shape of a GEMM on a discrete or integrated GPU,
// whose workgroup memory is fast; on lavapipe it is slower than the subgroup core (BENCHMARKS.md).
//
// The reduction index k of this workgroup (its split-K part) runs over units times steps:
//   MODE 0/1: channels c of the part, times the taps (kh, kw) (MODE 1: those of the phase)
//   MODE 2:   rows (n, y) of the part, times x
// and A(m, k), B(k, col) are the same values gemm.wgsl's `gemm` reads, in the same order of k,
// so the cores agree to rounding of the summation order within a k step (none: one FMA per k).

const BK: u32 = 8u;

// A's tile, row slot i of row lane r at step kk: ((kk * LM + r) * 16 + i) (TM <= 16, LM <= 8).
var<workgroup> a_tile: array<f32, 1024>;
// B's tile as the vec4 of column lane l's 4 columns at step kk: kk * (64/LM) + l.
var<workgroup> b_tile: array<vec4<f32>, 512>;

// The shared body's `gemm` wants this (the plain loads); this entry does not call it.
fn a_slots(base: u32, stride: u32, m0: u32, lane: u32, first: u32) -> array<f32, 8> {
    var a: array<f32, 8>;
    for (var i = 0u; i < 8u; i++) {
        a[i] = a_slot(first + i, base, stride, m0);
    }
    return a;
}

// The vec4 loads are the other cores': this one stages scalars, and takes from VEC_K only its
// order of the reduction (channel quads, below), so that all cores add the same terms in the
// same order. The shared body still needs the function.
fn a_vecs(base: u32, stride: u32, m0: u32, lane: u32, first: u32) -> array<vec4<f32>, 8> {
    var a: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        a[i] = a_vec(first + i, base, stride, m0);
    }
    return a;
}

fn taps_h() -> u32 { return select(KH, (KH + STRIDE - 1u) / STRIDE, MODE == MODE_CONV_T); }
fn taps_w() -> u32 { return select(KW, (KW + STRIDE - 1u) / STRIDE, MODE == MODE_CONV_T); }

// Steps of k per unit: taps (MODE 0/1; with VEC_K four channels per tap) or x (MODE 2).
fn per_unit() -> u32 {
    return select(taps_h() * taps_w() * select(1u, 4u, VEC_K), Q_W, MODE == MODE_WEIGHT_GRAD);
}

// The units [begin, end) of split-K part p: rows (n, y) for MODE 2, channels otherwise (quads
// of channels with VEC_K, as the other cores run the reduction).
fn unit_range(p: u32) -> vec2<u32> {
    var units = select(G_C, G_C / 4u, VEC_K);
    if (MODE == MODE_WEIGHT_GRAD) {
        units = BATCH * Q_H;
    } else if (KSPLIT == 1u) {
        return vec2<u32>(0u, units);
    }
    let per_part = (units + KSPLIT - 1u) / KSPLIT;
    let begin = min(units, p * per_part);
    return vec2<u32>(begin, min(units, begin + per_part));
}

// What k means: a unit and a step within it, and for MODE 0/1 the tap (kh, kw), `valid` false for
// a phase's missing taps.
struct KStep {
    unit: u32,
    c: u32,    // MODE 0/1: G's channel
    kh: u32,
    kw: u32,
    th: u32,
    tw: u32,
    x: u32,
    valid: bool,
}

fn k_step(k: u32, begin: u32, t: Tile) -> KStep {
    var s: KStep;
    s.unit = begin + k / per_unit();
    let within = k % per_unit();
    s.valid = true;
    if (MODE == MODE_WEIGHT_GRAD) {
        s.x = within;
        return s;
    }
    // With VEC_K the order is (quad, tap, channel in the quad), as gemm_vec4.wgsl adds them.
    let tap = select(within, within / 4u, VEC_K);
    s.c = select(s.unit, s.unit * 4u + within % 4u, VEC_K);
    s.th = tap / taps_w();
    s.tw = tap % taps_w();
    if (MODE == MODE_CONV_T) {
        s.kh = (t.phase_y + PAD) % STRIDE + s.th * STRIDE;
        s.kw = (t.phase_x + PAD) % STRIDE + s.tw * STRIDE;
    } else {
        s.kh = s.th;
        s.kw = s.tw;
    }
    s.valid = s.kh < KH && s.kw < KW;
    return s;
}

// A(m, k): the weight (MODE 0 [Q_C, G_C, KH, KW], MODE 1 [G_C, Q_C, KH, KW]) or Q (MODE 2).
fn a_value(m: u32, s: KStep) -> f32 {
    if (MODE == MODE_WEIGHT_GRAD) {
        let n = s.unit / Q_H;
        let y = s.unit % Q_H;
        return acts[Q_OFF + q_elem(n, m, y * Q_W + s.x)];
    }
    // A flattened operand's channels index the weight in PyTorch's order (prelude.wgsl `flat`).
    let c = flat(s.c, G_FLAT_HW);
    let mt = flat(m, Q_FLAT_HW);
    let row = select(c * Q_C + mt, mt * G_C + c, MODE == MODE_CONV);
    let kh = select(0u, s.kh, s.valid);
    let kw = select(0u, s.kw, s.valid);
    return select(0.0, params[W_OFF + row * KH * KW + kh * KW + kw], s.valid);
}

// B(k, col): G through the window, 0 outside it, for a dead column or a missing tap.
fn b_value(s: KStep, col: Column, t: Tile) -> f32 {
    if (MODE == MODE_WEIGHT_GRAD) {
        let n = s.unit / Q_H;
        let y = s.unit % Q_H;
        let iy = i32(y * STRIDE) - i32(PAD) + col.y;
        let ix = i32(s.x * STRIDE) - i32(PAD) + col.x;
        return gathered(col.ok, n * G_C * g_hw() + col.base, iy, ix);
    }
    let cb = col.base + g_chan(s.c);
    if (MODE == MODE_CONV) {
        let iy = col.y * i32(STRIDE) + i32(s.kh) - i32(PAD);
        let ix = col.x * i32(STRIDE) + i32(s.kw) - i32(PAD);
        return gathered(col.ok && s.valid, cb, iy, ix);
    }
    let iy = col.y + i32((t.phase_y + PAD) / STRIDE) - i32(s.th);
    let ix = col.x + i32((t.phase_x + PAD) / STRIDE) - i32(s.tw);
    return gathered(col.ok && s.valid, cb, iy, ix);
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let n_cols = gemm_n();
    // Computed from the workgroup id alone, so that the barriers below stay in uniform control
    // flow (the private `part` that `tile_of` sets is the same value).
    let p = part_of(wg, nwg);
    if (p >= KSPLIT) { return; }
    let t = tile_of(wg, nwg, li);
    let units = unit_range(p);
    let k_total = (units.y - units.x) * per_unit();
    let bm = TM * LM;
    let bn = TN * ln();
    let row0 = wg.y * bm;
    let col0 = t.c0 - li % ln();

    // The invocation's own columns, for the epilogue.
    var col_y: vec4<i32>;
    var col_x: vec4<i32>;
    var col_ok: vec4<bool>;
    for (var j = 0u; j < TN; j++) {
        let c = column(t.c0 + j * ln(), n_cols, t.phase_y, t.phase_x);
        col_y[j] = c.y;
        col_x[j] = c.x;
        col_ok[j] = c.ok;
    }

    let lr = li / ln();
    let lc = li % ln();
    for (var k0 = 0u; k0 < k_total; k0 += BK) {
        workgroupBarrier();
        // A: consecutive invocations on consecutive k (contiguous in the weight and in Q).
        for (var e = li; e < BK * bm; e += 64u) {
            let kk = e % BK;
            let ml = e / BK;
            let m = row0 + ml;
            let k = k0 + kk;
            var v = 0.0;
            if (m < Q_C && k < k_total) {
                v = a_value(m, k_step(k, units.x, t));
            }
            a_tile[(kk * LM + ml % LM) * 16u + ml / LM] = v;
        }
        // B: consecutive invocations on consecutive columns (neighbouring addresses of G).
        for (var e = li; e < BK * bn; e += 64u) {
            let kk = e / bn;
            let cl = e % bn;
            let k = k0 + kk;
            var v = 0.0;
            if (k < k_total) {
                let col = column(col0 + cl, n_cols, t.phase_y, t.phase_x);
                v = b_value(k_step(k, units.x, t), col, t);
            }
            b_tile[kk * ln() + cl % ln()][cl / ln()] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let b = b_tile[kk * ln() + lc];
            let base = (kk * LM + lr) * 16u;
            fma_rows(array<f32, 8>(
                a_tile[base], a_tile[base + 1u], a_tile[base + 2u], a_tile[base + 3u],
                a_tile[base + 4u], a_tile[base + 5u], a_tile[base + 6u], a_tile[base + 7u],
            ), b);
            if (TM > 8u) {
                fma_rows_high(array<f32, 8>(
                    a_tile[base + 8u], a_tile[base + 9u], a_tile[base + 10u], a_tile[base + 11u],
                    a_tile[base + 12u], a_tile[base + 13u], a_tile[base + 14u], a_tile[base + 15u],
                ), b);
            }
        }
    }
    store_block(t, col_y, col_x, col_ok);
}
