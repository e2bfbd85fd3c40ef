// gather.wgsl: builds a training batch in the activation arena from the device-resident data set.
// Sample b of the batch is a view of an image of the data set. The epoch's entry k =
// batch_offset + b is two vec4s, views[2k] = (image, y0, x0, op) and views[2k + 1] =
// (rect rows, rect columns, value, 0): the image, the top-left corner of an OUT×OUT window in it,
// one of the 8 flips and 90° rotations (op bit 0: mirror x, bit 1: mirror y, bit 2: transpose,
// applied to the window's coordinates in that order of undoing), and a synthetic defect, a
// rectangle of the window ([first, end) rows and columns, packed as first | end << 16; empty
// when first = end) filled with one value:
//   t[b, c, oy, ox] = data[image, c, y0 + ty, x0 + tx],  (ty, tx) = op(oy, ox)
//   x[b, c, oy, ox] = value inside the rectangle, t[b, c, oy, ox] elsewhere
// x is the model's input (at X_OFF); t, the clean sample, is the loss's target (at T_OFF; when
// T_OFF = X_OFF there are no defects and x = t). Whole images without augmentation are the case
// SRC = OUT, y0 = x0 = 0, op = 0, an empty rectangle: a copy.
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
override T_OFF: u32;        // batch target in acts (X_OFF: the input is the target)
override CHUNK_START: u32;
override CHUNK_LEN: u32;

@group(1) @binding(0) var<storage, read_write> data: array<f32>;
@group(1) @binding(1) var<storage, read_write> views: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * 256u;
    let per = C * OUT * OUT;
    for (var t = gid.x; t < BATCH * per; t += stride) {
        let k = step.batch_offset + t / per;
        let v = views[2u * k];
        let image = v.x;
        if (image >= CHUNK_START && image - CHUNK_START < CHUNK_LEN) {
            let r = t % per;
            let c = r / (OUT * OUT);
            let oy = (r / OUT) % OUT;
            let ox = r % OUT;
            var y = oy;
            var x = ox;
            if ((v.w & 4u) != 0u) { let s = y; y = x; x = s; }
            if ((v.w & 1u) != 0u) { x = OUT - 1u - x; }
            if ((v.w & 2u) != 0u) { y = OUT - 1u - y; }
            let src = ((image - CHUNK_START) * C + c) * SRC * SRC + (v.y + y) * SRC + v.z + x;
            let clean = data[src];
            let d = views[2u * k + 1u];
            let inside = oy >= (d.x & 0xffffu) && oy < (d.x >> 16u)
                && ox >= (d.y & 0xffffu) && ox < (d.y >> 16u);
            acts[X_OFF + t] = select(clean, bitcast<f32>(d.z), inside);
            if (T_OFF != X_OFF) { acts[T_OFF + t] = clean; }
        }
    }
}
