// pack.wgsl: the weights that gemm.wgsl's vec4 path reads, copied out of the parameter arena each
// step (the optimizer has just changed them): acts[DST + e] = params[index[e]] for e < LEN. The
// table `index` (kernels/pack.rs, built once per model) maps each packed element to its weight,
// so one launch packs every layer, whatever its form: [Q_C, G_C/4, KH, KW, 4] of the GEMM that
// reads it (gemm.wgsl, VEC_K).

override LEN: u32;
override DST: u32;   // the packed weights in acts

@group(1) @binding(0) var<storage, read_write> index: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var e = gid.x; e < LEN; e += nwg.x * 256u) {
        acts[DST + e] = params[index[e]];
    }
}
