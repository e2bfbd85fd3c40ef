// bias_grad.wgsl: the gradient of a bias, db[c] = sum over (n, s) of dz[n, c, s], where dz
// [BATCH, C, S] is the gradient with respect to the layer's pre-activation output.
//
// Geometry: one workgroup of 64 per channel c (workgroup x + z * num_workgroups.x); each
// invocation sums a strided slice, then a fixed-order tree reduction (deterministic).
// With PER_LANE (short sums, e.g. a linear layer: BATCH values per channel) one invocation sums
// a whole channel instead, 64 channels per workgroup: thousands of tiny workgroups with barriers
// cost far more than the sums (dec1 of fmnist-ae: 3136 channels).

override BATCH: u32;
override C: u32;
override S: u32;
override DZ_OFF: u32;   // dz in acts
override DB_OFF: u32;   // db in grads
override PER_LANE: bool;

// `grads` and `acts` are declared in the prelude.

const WG: u32 = 64u;
var<workgroup> partial: array<f32, WG>;

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
            let y = acts[DZ_OFF + (n * C + c) * S + t % S] - comp;
            let u = s + y;
            comp = (u - s) - y;
            s = u;
        }
        grads[DB_OFF + c] = s;
        return;
    }
    let c = wg.x + wg.z * nwg.x;
    if (c < C) {
        for (var t = li; t < BATCH * S; t += WG) {
            let n = t / S;
            let y = acts[DZ_OFF + (n * C + c) * S + t % S] - comp;
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
    if (li == 0u && c < C) { grads[DB_OFF + c] = partial[0]; }
}
