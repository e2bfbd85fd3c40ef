// step.wgsl: the step uniform (binding 4 of the arenas group), written by the host before each
// training step and read by gather.wgsl (the batch's offset in the epoch's order) and adam.wgsl
// (the optimizer's scalars). Mirrors kernels.rs `StepUniform`; it is put in front of those two
// files when they are compiled (WGSL has no includes).

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
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(4) var<uniform> step: Step;

