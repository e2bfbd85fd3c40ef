// optimizer.wgsl: one optimizer step over the whole parameter arena in one dispatch: Adam
// (entry `main`) or SGD with momentum (entry `sgd`).
//
// Adam (PyTorch semantics):
//   g = grad + weight_decay * p            (L2 penalty, as torch.optim.Adam)
//   m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
//   p = p - step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),  step_size = lr / (1 - beta1^t)
// The bias corrections and 1 - beta are computed on the host in f64 and passed in the step
// uniform (as PyTorch does in Python floats; 1 - 0.999 in f32 would be off by 1e-5), in the same
// order of operations as PyTorch's single-tensor Adam. A non-finite gradient sets the
// non-finite flag (stats[STAT_NONFINITE]) so the host stops training at the next readback.
//
// Geometry: 256 invocations per workgroup, grid-stride over the COUNT elements four at a time:
// parameters and moments are read and written as vec4s (params4, and the state buffers declared
// as vec4 arrays; every buffer is allocated in whole vec4s). On lavapipe each storage access costs
// a loop over the SIMD lanes whatever its width, so a quad per access is ~3x faster (BENCHMARKS.md).
// The operations are PyTorch's per element, component by component; a last, partial quad keeps
// the values past COUNT as they were (padding; further on lie the packed weight copies,
// kernels/pack.rs).
// `params4`, `grads`, `stats` and `step` are declared in the prelude.

override COUNT: u32;            // parameters in the arena

@group(1) @binding(0) var<storage, read_write> exp_avg: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read_write> exp_avg_sq: array<vec4<f32>>;

// Which of quad q's four elements are parameters.
fn live(q: u32) -> vec4<bool> {
    return vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(COUNT);
}

// Quad q's gradients with the L2 penalty added; a non-finite gradient raises the flag.
fn decayed_grad(q: u32, p: vec4<f32>, ok: vec4<bool>) -> vec4<f32> {
    let i = 4u * q;
    // grads is a scalar array (binding 1); a quad's last elements are read only where they exist.
    var g = vec4<f32>(grads[i], grads[min(i + 1u, COUNT - 1u)], grads[min(i + 2u, COUNT - 1u)], grads[min(i + 3u, COUNT - 1u)]);
    g = select(vec4<f32>(0.0), g, ok);
    let bits = bitcast<vec4<u32>>(g) & vec4<u32>(0x7f800000u);
    if (any(bits == vec4<u32>(0x7f800000u))) { stats[STAT_NONFINITE] = 1.0; }
    if (step.weight_decay != 0.0) { g = g + step.weight_decay * p; }
    return g;
}

fn quads() -> u32 { return (COUNT + 3u) / 4u; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * 256u;
    for (var q = gid.x; q < quads(); q += stride) {
        let ok = live(q);
        let p = params4[q];
        let g = decayed_grad(q, p, ok);
        let m0 = exp_avg[q];
        let v0 = exp_avg_sq[q];
        let m = m0 + step.one_minus_beta1 * (g - m0);
        let v = v0 * step.beta2 + step.one_minus_beta2 * g * g;
        exp_avg[q] = select(m0, m, ok);
        exp_avg_sq[q] = select(v0, v, ok);
        let denom = sqrt(v) / step.bc2_sqrt + step.eps;
        params4[q] = select(p, p - step.step_size * (m / denom), ok);
    }
}

// SGD with momentum (PyTorch semantics, dampening 0, not Nesterov), for the experiment runner:
//   g = grad + weight_decay * p;  buf = momentum * buf + g;  p = p - lr * buf
// with lr in step.step_size; buf lives in exp_avg.
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * 256u;
    for (var q = gid.x; q < quads(); q += stride) {
        let ok = live(q);
        let p = params4[q];
        let g = decayed_grad(q, p, ok);
        let b0 = exp_avg[q];
        let buf = step.momentum * b0 + g;
        exp_avg[q] = select(b0, buf, ok);
        params4[q] = select(p, p - step.step_size * buf, ok);
    }
}
