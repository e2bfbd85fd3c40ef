// gemm_subgroup.wgsl: entry point of gemm.wgsl for devices with subgroups of at least 8 lanes.
// The lanes of a subgroup share their rows (the host keeps 64/LM column lanes per row group, a
// multiple of the subgroup size), so for the slots first..first+7 lane l loads slot
// first + l % (slots left, at most 8) and every lane takes all of them by broadcast: one storage
// load per k and 8 rows instead of 8.

fn a_slots(base: u32, stride: u32, m0: u32, lane: u32, first: u32) -> array<f32, 8> {
    let v = a_slot(first + lane % min(TM - first, 8u), base, stride, m0);
    return array<f32, 8>(
        subgroupBroadcast(v, 0u),
        subgroupBroadcast(v, 1u),
        subgroupBroadcast(v, 2u),
        subgroupBroadcast(v, 3u),
        subgroupBroadcast(v, 4u),
        subgroupBroadcast(v, 5u),
        subgroupBroadcast(v, 6u),
        subgroupBroadcast(v, 7u),
    );
}

// The vec4 paths' values the same way: lane l loads slot first + l % (slots left), a vec4.
fn a_vecs(base: u32, stride: u32, m0: u32, lane: u32, first: u32) -> array<vec4<f32>, 8> {
    let v = a_vec(first + lane % vec_slots(first), base, stride, m0);
    return array<vec4<f32>, 8>(
        subgroupBroadcast(v, 0u),
        subgroupBroadcast(v, 1u),
        subgroupBroadcast(v, 2u),
        subgroupBroadcast(v, 3u),
        subgroupBroadcast(v, 4u),
        subgroupBroadcast(v, 5u),
        subgroupBroadcast(v, 6u),
        subgroupBroadcast(v, 7u),
    );
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    gemm(wg, nwg, li, lane);
}
