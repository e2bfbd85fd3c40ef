//! A/B timing of a gemm.wgsl change on this device, interleaved in one process so that a noisy
//! machine (a VM's CPU speed drifts by ±30% over seconds) slows both sides alike:
//!
//!   LAMP_AB_GEMM=/path/to/other/gemm.wgsl \
//!     cargo run --release --example gemm_ab [CHANNELS SIZE BATCH [ROUNDS]]
//!
//! For every GEMM of the model's training step (forward, weight and input gradients; the
//! device's core and tiles; plain layouts and unpacked weights, so the scalar paths — the
//! grouped layouts are compared by the profile example) it launches the built-in gemm.wgsl ("A") and the file's ("B") in
//! turns, each submitted alone and waited for, and prints each side's minimum and median and the
//! ratio of the minimums. Without arguments: fmnist-ae at batch 64.

use lamp::device::{Device, Group1, ShaderSource};
use lamp::engine::Arenas;
use lamp::kernels::prelude::wgsl;
use lamp::kernels::{layer, Dispatch, GemmCore, GemmSpec, LayerOffsets};
use lamp::model::Arch;
use std::time::Instant;

fn other_gemm() -> String {
    let path = std::env::var("LAMP_AB_GEMM").unwrap_or_default();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("LAMP_AB_GEMM={path:?}: {e}"))
}

/// What the B side adds after gemm_narrow.wgsl or gemm_wide.wgsl: the file `LAMP_AB_GEMM.narrow`
/// or `.wide` where there is one.
fn extra(which: &str) -> String {
    let path = std::env::var("LAMP_AB_GEMM").unwrap_or_default();
    std::fs::read_to_string(format!("{path}.{which}")).unwrap_or_default()
}

static B_NARROW: ShaderSource = ShaderSource {
    files: "B: LAMP_AB_GEMM + gemm_vec4.wgsl + gemm_subgroup.wgsl + gemm_narrow.wgsl",
    text: || {
        wgsl(&[
            &other_gemm(),
            include_str!("../shaders/gemm_vec4.wgsl"),
            include_str!("../shaders/gemm_subgroup.wgsl"),
            include_str!("../shaders/gemm_narrow.wgsl"),
            &extra("narrow"),
        ])
    },
    group1: Group1::None,
};

static B_WIDE: ShaderSource = ShaderSource {
    files: "B: LAMP_AB_GEMM + gemm_vec4.wgsl + gemm_subgroup.wgsl + gemm_wide.wgsl",
    text: || {
        wgsl(&[
            &other_gemm(),
            include_str!("../shaders/gemm_vec4.wgsl"),
            include_str!("../shaders/gemm_subgroup.wgsl"),
            include_str!("../shaders/gemm_wide.wgsl"),
            &extra("wide"),
        ])
    },
    group1: Group1::None,
};

fn time(dev: &Device, arenas: &Arenas, d: &Dispatch) -> lamp::Result<f64> {
    let t0 = Instant::now();
    arenas.submit(dev, &[std::slice::from_ref(d)]);
    dev.wait()?;
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

fn main() -> lamp::Result<()> {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .map_err(|_| lamp::Error::invalid(format!("{a:?} is not a number")))
        })
        .collect::<lamp::Result<_>>()?;
    let (arch, batch, rounds) = match args[..] {
        [] => (Arch::fmnist_ae(), 64, 9),
        [c, s, b] => (Arch::for_images(c, s)?, b, 9),
        [c, s, b, r] => (Arch::for_images(c, s)?, b, r),
        _ => {
            return Err(lamp::Error::invalid(
                "usage: gemm_ab [CHANNELS SIZE BATCH [ROUNDS]]",
            ))
        }
    };
    let dev = Device::shared(None)?;
    let core = GemmCore::best(&dev);
    if !matches!(core, GemmCore::Subgroup { .. }) {
        return Err(lamp::Error::invalid(
            "gemm_ab compares the subgroup core only",
        ));
    }
    println!(
        "{} batch {batch}, {rounds} rounds; A = built-in gemm.wgsl, B = LAMP_AB_GEMM",
        arch.describe()
    );
    // Every layer's tensors side by side at fixed offsets: input, output, dz, dz below.
    let layers = arch.layers();
    let b = batch as usize;
    let largest_in = layers.iter().map(|l| l.in_len()).max().unwrap_or(0) * b;
    let largest_out = layers.iter().map(|l| l.out_len()).max().unwrap_or(0) * b;
    let largest_w = layers
        .iter()
        .map(|l| l.weight_shape().iter().product::<usize>())
        .max()
        .unwrap_or(0);
    let o = LayerOffsets {
        weight: 0,
        bias: largest_w as u32,
        input: 0,
        output: largest_in as u32,
        dz: (largest_in + largest_out) as u32,
        input_layout: lamp::kernels::Layout::Plain,
        output_layout: lamp::kernels::Layout::Plain,
        packed_forward: None,
        packed_input_grad: None,
    };
    let dz_below = (largest_in + 2 * largest_out) as u32;
    let acts_len = 2 * largest_in + 2 * largest_out;
    let arenas = Arenas::new(&dev, largest_w + 4096, acts_len, 64)?;
    // Random values in [-0.5, 0.5): timing only, but never zeros.
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    };
    dev.queue
        .write_buffer(&arenas.acts, 0, bytemuck::cast_slice(&random(acts_len)));
    dev.queue.write_buffer(
        &arenas.params,
        0,
        bytemuck::cast_slice(&random(largest_w + 4096)),
    );
    let mut specs: Vec<(String, GemmSpec)> = Vec::new();
    for (li, l) in layers.iter().enumerate() {
        specs.push((format!("{} forward", l.name), layer::forward(l, batch, &o)));
        specs.push((
            format!("{} weight grad", l.name),
            layer::weight_grad(l, batch, &o),
        ));
        if li > 0 {
            let below = layers[li - 1].act;
            specs.push((
                format!("{} input grad", l.name),
                layer::input_grad(l, batch, &o, dz_below, below),
            ));
        }
    }
    let (mut sum_a, mut sum_b) = (0.0, 0.0);
    for (label, spec) in &specs {
        let constants = spec.constants(core);
        let wide = constants.iter().any(|&(k, v)| k == "TM" && v > 16.0);
        let a = spec.dispatch_with(&dev, core, label.clone())?;
        let bsrc = if wide { &B_WIDE } else { &B_NARROW };
        let bd = Dispatch {
            pipeline: dev.pipeline(bsrc, "main", &constants)?,
            ..a.clone()
        };
        time(&dev, &arenas, &a)?;
        time(&dev, &arenas, &bd)?;
        let (mut ta, mut tb) = (Vec::new(), Vec::new());
        for _ in 0..rounds.max(1) {
            ta.push(time(&dev, &arenas, &a)?);
            tb.push(time(&dev, &arenas, &bd)?);
        }
        ta.sort_by(f64::total_cmp);
        tb.sort_by(f64::total_cmp);
        sum_a += ta[0];
        sum_b += tb[0];
        println!(
            "{label:24} A min {:8.2} med {:8.2} | B min {:8.2} med {:8.2} ms | B/A {:.3}",
            ta[0],
            ta[ta.len() / 2],
            tb[0],
            tb[tb.len() / 2],
            tb[0] / ta[0]
        );
    }
    println!(
        "sum of minimums: A {sum_a:.1} ms, B {sum_b:.1} ms, B/A {:.3}",
        sum_b / sum_a
    );
    Ok(())
}
