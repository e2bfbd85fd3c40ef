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
// Geometry: 256 invocations per workgroup, grid-stride over COUNT elements.
// `params`, `grads`, `stats` and `step` are declared in the prelude.

override COUNT: u32;            // parameters in the arena

@group(1) @binding(0) var<storage, read_write> exp_avg: array<f32>;
@group(1) @binding(1) var<storage, read_write> exp_avg_sq: array<f32>;

// The gradient with the L2 penalty added; a non-finite gradient raises the flag.
fn decayed_grad(i: u32, p: f32) -> f32 {
    var g = grads[i];
    if (!is_finite(g)) { stats[STAT_NONFINITE] = 1.0; }
    if (step.weight_decay != 0.0) { g = g + step.weight_decay * p; }
    return g;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < COUNT; i += stride) {
        let p = params[i];
        let g = decayed_grad(i, p);
        let m = exp_avg[i] + step.one_minus_beta1 * (g - exp_avg[i]);
        let v = exp_avg_sq[i] * step.beta2 + step.one_minus_beta2 * g * g;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        let denom = sqrt(v) / step.bc2_sqrt + step.eps;
        params[i] = p - step.step_size * (m / denom);
    }
}

// SGD with momentum (PyTorch semantics, dampening 0, not Nesterov), for the experiment runner:
//   g = grad + weight_decay * p;  buf = momentum * buf + g;  p = p - lr * buf
// with lr in step.step_size; buf lives in exp_avg.
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < COUNT; i += stride) {
        let p = params[i];
        let g = decayed_grad(i, p);
        let buf = step.momentum * exp_avg[i] + g;
        exp_avg[i] = buf;
        params[i] = p - step.step_size * buf;
    }
}
