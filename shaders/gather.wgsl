// gather.wgsl: builds a training batch in the activation arena from the device-resident data set,
// x[b, :] = data[indices[batch_offset + b], :], where `indices` is the epoch's shuffled order and
// batch_offset comes from the step uniform. A data set larger than one binding is split in chunks;
// one dispatch per chunk copies the samples that fall in [CHUNK_START, CHUNK_START + CHUNK_LEN).
//
// Geometry: 256 invocations per workgroup, grid-stride over BATCH * P elements.
// `acts` and `step` are declared in the prelude.

override P: u32;            // elements per sample
override BATCH: u32;
override X_OFF: u32;        // batch input in acts
override CHUNK_START: u32;
override CHUNK_LEN: u32;

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
