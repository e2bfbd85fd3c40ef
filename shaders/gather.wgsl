// gather.wgsl: builds a training batch in the activation arena from the device-resident data set,
// x[b, :] = data[indices[batch_offset + b], :], where `indices` is the epoch's shuffled order and
// batch_offset comes from the step uniform. A data set larger than one binding is split in chunks;
// one dispatch per chunk copies the samples that fall in [CHUNK_START, CHUNK_START + CHUNK_LEN).
//
// Geometry: 256 invocations per workgroup, grid-stride over BATCH * P elements.
// `step` (binding 4) is declared in step.wgsl, which is compiled in front of this file.

override P: u32 = 1u;            // elements per sample
override BATCH: u32 = 1u;
override X_OFF: u32 = 0u;        // batch input in acts
override CHUNK_START: u32 = 0u;
override CHUNK_LEN: u32 = 0u;

@group(0) @binding(2) var<storage, read_write> acts: array<f32>;
@group(1) @binding(0) var<storage, read_write> data: array<f32>;
@group(1) @binding(1) var<storage, read_write> indices: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * 256u;
    for (var t = gid.x; t < BATCH * P; t += stride) {
        let idx = indices[step.batch_offset + t / P];
        if (idx >= CHUNK_START && idx - CHUNK_START < CHUNK_LEN) {
            acts[X_OFF + t] = data[(idx - CHUNK_START) * P + t % P];
        }
    }
}
