// prelude.wgsl: what every kernel shares, compiled in front of each shader file (WGSL has no
// includes). Above it the host puts a block of constants generated from their Rust definitions
// (src/kernels/prelude.rs): the codes of metric, amplification, granularity, activation and GEMM
// mode, the stats slots and SSIM's constants, so that no number is written on both sides.
//
// Group 0, the arenas: one bind group feeds every kernel; each uses the bindings it needs.
//   params [P]   every parameter tensor, laid out from one (name, shape) table
//   grads  [P]   their gradients, same layout
//   acts   [A]   the batch input, every layer's output and output gradient, and scratch
//   stats  [STATS_HEADER + 3 * batch capacity]  the slots STAT_* (running loss statistics and
//                the non-finite flag), then per-sample sections (see loss.wgsl)
//   step         the step uniform below, written by the host before each training step
//   acts4, params4  acts and params seen as vec4s (bindings 5 and 6)

// Mirrors kernels/prelude.rs `StepUniform` (a test compares the two layouts). Read by
// gather.wgsl (the batch's offset in the epoch's order) and optimizer.wgsl (the step's scalars).
struct Step {
    batch_offset: u32,
    t: u32,
    step_size: f32,
    bc2_sqrt: f32,
    beta2: f32,
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    eps: f32,
    weight_decay: f32,
    momentum: f32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> acts: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<uniform> step: Step;
// The activations and parameters again, four floats per element, for the GEMM's vec4 paths
// (gemm.wgsl: grouped layouts, packed weights); the same buffers as bindings 2 and 0.
@group(0) @binding(5) var<storage, read_write> acts4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> params4: array<vec4<f32>>;

// Element e, in memory order, of a grouped [C, H, W] tensor of `hw` pixels that a linear layer
// sees flattened ([C*H*W, 1, 1]): its index in PyTorch's flattening, c * hw + p, which the linear
// layer's weight and bias follow (gemm.wgsl, bias_grad.wgsl; kernels/pack.rs `flat_index`).
// hw = 0: not flattened, e itself.
fn flat(e: u32, hw: u32) -> u32 {
    if (hw == 0u) { return e; }
    let r = e % (4u * hw);
    return ((e / (4u * hw)) * 4u + r % 4u) * hw + r / 4u;
}

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}
