// bias_grad.wgsl: the gradient of a bias, db[c] = sum over (n, s) of dz[n, c, s], where dz
// [BATCH, C, S] is the gradient with respect to the layer's pre-activation output.
//
// Geometry: one workgroup of 64 per channel c (workgroup x + z * num_workgroups.x); each
// invocation sums a strided slice, then a fixed-order tree reduction (deterministic).
// With PER_LANE (short sums, e.g. a linear layer: BATCH values per channel) one invocation sums
// a whole channel instead, 64 channels per workgroup: thousands of tiny workgroups with barriers
// cost far more than the sums (dec1 of fmnist-ae: 3136 channels).
// Entry `quads` (grouped dz, not PER_LANE): one workgroup per quad of channels, reading dz a
// vec4 at a time, each channel's terms in the same order as `main`'s, so the same bits at a
// quarter of the loads (on lavapipe a load costs a loop over the SIMD lanes whatever its width).
// With PARTS > 1 (GPUs, few channels and long sums: conv-ae 128's last layer has 3 channels of
// 262,144 terms, which 3 workgroups would take 0.8 ms over) workgroup (part, c) sums a run of the
// samples into acts at P_OFF [PARTS, C]; a second launch (PARTS as BATCH, S = 1) adds them up.

override BATCH: u32;
override C: u32;
override S: u32;
override DZ_OFF: u32;   // dz in acts
override DB_OFF: u32;   // db in grads
override PER_LANE: bool;
override PARTS: u32;    // 1, or the parts the samples are split into (not with PER_LANE)
override P_OFF: u32;    // with PARTS > 1: partial sums [PARTS, C] in acts
override GROUPED: bool; // dz grouped [BATCH, C/4, S, 4] (gemm.wgsl's layouts) or plain
override FLAT_HW: u32;  // dz a flattened grouped tensor of FLAT_HW pixels (S = 1): db in
                        // PyTorch's order, db[flat(c)] (gemm.wgsl); 0: not flattened

// `grads` and `acts` are declared in the prelude.

const WG: u32 = 64u;

// dz[n, c, s] in either layout. The terms are added in the same order in both.
fn dz_at(n: u32, c: u32, s: u32) -> f32 {
    if (GROUPED) {
        return acts[DZ_OFF + ((n * (C / 4u) + c / 4u) * S + s) * 4u + c % 4u];
    }
    return acts[DZ_OFF + (n * C + c) * S + s];
}
var<workgroup> partial: array<f32, WG>;

// Split part p's terms t = n * S + s: [first, end) over a run of the samples.
fn part_terms(p: u32) -> vec2<u32> {
    let per_part = (BATCH + PARTS - 1u) / PARTS;
    return vec2<u32>(p * per_part * S, min(BATCH, (p + 1u) * per_part) * S);
}

// Channel c's sum over part p: a partial sum (PARTS > 1) or db itself.
fn write_sum(p: u32, c: u32, v: f32) {
    if (PARTS > 1u) {
        acts[P_OFF + p * C + c] = v;
    } else {
        grads[DB_OFF + flat(c, FLAT_HW)] = v;
    }
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    // Kahan-compensated: the terms are signed and often nearly cancel (a sigmoid output's bias).
    var s = 0.0;
    var comp = 0.0;
    if (PER_LANE) {
        let c = (wg.x + wg.z * nwg.x) * WG + li;
        if (c >= C) { return; }
        for (var t = 0u; t < BATCH * S; t++) {
            let n = t / S;
            let y = dz_at(n, c, t % S) - comp;
            let u = s + y;
            comp = (u - s) - y;
            s = u;
        }
        grads[DB_OFF + flat(c, FLAT_HW)] = s;
        return;
    }
    let c = (wg.x + wg.z * nwg.x) % C;
    let part = (wg.x + wg.z * nwg.x) / C;
    let terms = part_terms(part);
    if (part < PARTS) {
        for (var t = terms.x + li; t < terms.y; t += WG) {
            let n = t / S;
            let y = dz_at(n, c, t % S) - comp;
            let u = s + y;
            comp = (u - s) - y;
            s = u;
        }
    }
    partial[li] = s;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
        if (li < half) { partial[li] += partial[li + half]; }
        workgroupBarrier();
    }
    if (li == 0u && part < PARTS) {
        write_sum(part, c, partial[0]);
    }
}

var<workgroup> partial4: array<vec4<f32>, WG>;

@compute @workgroup_size(64)
fn quads(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let quads = C / 4u;
    let c4 = (wg.x + wg.z * nwg.x) % quads;
    let part = (wg.x + wg.z * nwg.x) / quads;
    let terms = part_terms(part);
    var s = vec4<f32>(0.0);
    var comp = vec4<f32>(0.0);
    if (part < PARTS) {
        for (var t = terms.x + li; t < terms.y; t += WG) {
            let n = t / S;
            let y = acts4[DZ_OFF / 4u + (n * quads + c4) * S + t % S] - comp;
            let u = s + y;
            comp = (u - s) - y;
            s = u;
        }
    }
    partial4[li] = s;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
        if (li < half) { partial4[li] += partial4[li + half]; }
        workgroupBarrier();
    }
    if (li == 0u && part < PARTS) {
        for (var j = 0u; j < 4u; j++) {
            write_sum(part, c4 * 4u + j, partial4[0][j]);
        }
    }
}
