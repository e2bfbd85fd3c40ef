// gather.wgsl: builds a training batch in the activation arena from the device-resident data set.
// Sample b of the batch is a view of an image of the data set: the epoch's entry
// views[batch_offset + b] = (image, y0, x0, op) names the image, the top-left corner of an
// OUT×OUT window in it, and one of the 8 flips and 90° rotations (op bit 0: mirror x, bit 1:
// mirror y, bit 2: transpose, applied to the window's coordinates in that order of undoing):
//   x[b, c, oy, ox] = data[image, c, y0 + ty, x0 + tx],  (ty, tx) = op(oy, ox)
// Whole images without augmentation are the case SRC = OUT, y0 = x0 = 0, op = 0: a copy.
// batch_offset comes from the step uniform. A data set larger than one binding is split in
// chunks; one dispatch per chunk copies the samples whose image is in
// [CHUNK_START, CHUNK_START + CHUNK_LEN).
//
// Geometry: 256 invocations per workgroup, grid-stride over BATCH * C * OUT * OUT elements.
// `acts` and `step` are declared in the prelude.

override C: u32;            // channels
override SRC: u32;          // side of the data set's images
override OUT: u32;          // side of the model's input (the window)
override BATCH: u32;
override X_OFF: u32;        // batch input in acts
override CHUNK_START: u32;
override CHUNK_LEN: u32;

@group(1) @binding(0) var<storage, read_write> data: array<f32>;
@group(1) @binding(1) var<storage, read_write> views: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * 256u;
    let per = C * OUT * OUT;
    for (var t = gid.x; t < BATCH * per; t += stride) {
        let v = views[step.batch_offset + t / per];
        let image = v.x;
        if (image >= CHUNK_START && image - CHUNK_START < CHUNK_LEN) {
            let r = t % per;
            let c = r / (OUT * OUT);
            var y = (r / OUT) % OUT;
            var x = r % OUT;
            if ((v.w & 4u) != 0u) { let s = y; y = x; x = s; }
            if ((v.w & 1u) != 0u) { x = OUT - 1u - x; }
            if ((v.w & 2u) != 0u) { y = OUT - 1u - y; }
            let src = ((image - CHUNK_START) * C + c) * SRC * SRC + (v.y + y) * SRC + v.z + x;
            acts[X_OFF + t] = data[src];
        }
    }
}
