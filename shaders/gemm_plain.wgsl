// gemm_plain.wgsl: entry point of gemm.wgsl for any device. Each invocation loads the TM values of
// A's column k for its own rows.

fn a_slots(base: u32, stride: u32, m0: u32, lane: u32, first: u32) -> array<f32, 8> {
    return array<f32, 8>(
        a_slot(first + 0u, base, stride, m0),
        a_slot(first + 1u, base, stride, m0),
        a_slot(first + 2u, base, stride, m0),
        a_slot(first + 3u, base, stride, m0),
        a_slot(first + 4u, base, stride, m0),
        a_slot(first + 5u, base, stride, m0),
        a_slot(first + 6u, base, stride, m0),
        a_slot(first + 7u, base, stride, m0),
    );
}

// The vec4 paths' values: each invocation loads its own.
fn a_vecs(base: u32, stride: u32, m0: u32, lane: u32, first: u32) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(
        a_vec(first + 0u, base, stride, m0),
        a_vec(first + 1u, base, stride, m0),
        a_vec(first + 2u, base, stride, m0),
        a_vec(first + 3u, base, stride, m0),
        a_vec(first + 4u, base, stride, m0),
        a_vec(first + 5u, base, stride, m0),
        a_vec(first + 6u, base, stride, m0),
        a_vec(first + 7u, base, stride, m0),
    );
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    gemm(wg, nwg, li, 0u);
}
