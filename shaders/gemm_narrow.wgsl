// gemm_narrow.wgsl: up to 16 rows per invocation (every core but the subgroup core's wide
// variant): gemm.wgsl's hooks for row slots 16..31 do nothing.

fn accumulate_wide(b: vec4<f32>, base: u32, stride: u32, m0: u32, lane: u32) {}

fn store_wide(t: Tile, col_y: vec4<i32>, col_x: vec4<i32>, col_ok: vec4<bool>) {}

fn accumulate4_wide(bt: mat4x4<f32>, base: u32, stride: u32, m0: u32, lane: u32) {}

fn fma_quads_wide(a: array<vec4<f32>, 8>, b: vec4<f32>) {}
