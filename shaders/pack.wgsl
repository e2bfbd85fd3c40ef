// pack.wgsl: the weights that gemm.wgsl's vec4 path reads, copied within the parameter arena each
// step (the optimizer has just changed them), to past the parameters:
// params[DST + e] = params[index[e]] for e < LEN. The
// table `index` (kernels/pack.rs, built once per model) maps each packed element to its weight,
// so one launch packs every layer, whatever its form: [Q_C, G_C/4, KH, KW, 4] of the GEMM that
// reads it (gemm.wgsl, VEC_K). A quad per step, four indices and the four values as vec4s: a
// storage access costs lavapipe the same at any width (twice as fast as one float at a time).

override LEN: u32;   // floats, a multiple of 4
override DST: u32;   // the packed weights in params, past the parameters; a multiple of 4

@group(1) @binding(0) var<storage, read_write> index: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var q = gid.x; q < LEN / 4u; q += nwg.x * 256u) {
        let i = index[q];
        params4[DST / 4u + q] = vec4<f32>(params[i.x], params[i.y], params[i.z], params[i.w]);
    }
}
