//! Every kernel against the CPU reference in f64, on random non-zero inputs, at shapes that are
//! not multiples of the tile sizes. Outputs are poisoned with NaN before each launch, so an
//! element the kernel fails to write fails the test.
//!
//! Tolerance: relative L2 error ≤ 1e-5 (f32 accumulation over the sizes used here stays well
//! below it), except where a test says why it needs more.

mod common;
use common::*;
use lamp::kernels::{
    self, Act, Amp, Arenas, GemmCore, Granularity, LossConfig, LossSpec, Metric, Shader,
    StepUniform,
};
use lamp::layers::{self, LayerOffsets};
use lamp::model::{Layer, LayerKind};
use lamp::reference::{self, ConvGeom};

const TOL: f64 = 1e-5;

#[test]
fn shaders_pass_naga_validation() {
    for s in Shader::ALL {
        if let Err(e) = kernels::validate(s) {
            panic!("{} is invalid:\n{e}", s.file());
        }
    }
}

/// A layer's tensors in test arenas: params [weight | bias];
/// acts [input | output | dz | dz_below | split-K partials].
struct LayerCase {
    layer: Layer,
    batch: usize,
    off: LayerOffsets,
    dz_below: usize,
    w: Vec<f32>,
    b: Vec<f32>,
    x: Vec<f32>,
    dz: Vec<f32>,
}

impl LayerCase {
    fn new(layer: Layer, batch: usize, seed: u64) -> LayerCase {
        let wlen: usize = layer.weight_shape().iter().product();
        let blen = layer.output[0] as usize;
        let (inp, out) = (batch * layer.in_len(), batch * layer.out_len());
        let off = LayerOffsets {
            weight: 0,
            bias: wlen as u32,
            input: 0,
            output: inp as u32,
            dz: (inp + out) as u32,
        };
        LayerCase {
            dz_below: inp + 2 * out,
            w: random(wlen, seed, -0.5, 0.5),
            b: random(blen, seed + 1, -0.5, 0.5),
            x: random(inp, seed + 2, -1.0, 1.0),
            dz: random(out, seed + 3, -1.0, 1.0),
            layer,
            batch,
            off,
        }
    }

    fn geom(&self) -> ConvGeom {
        ConvGeom::of(&self.layer, self.batch)
    }

    /// Where split-K's partial sums go in acts (after everything else).
    fn partials(&self) -> u32 {
        (self.dz_below + self.x.len()) as u32
    }

    /// Arenas filled with the case's tensors and NaN everywhere else.
    fn arenas(&self) -> Arenas {
        let (g, k) = gpu();
        let plen = self.w.len() + self.b.len();
        let alen = self.partials() as usize + kernels::SPLIT_K_SCRATCH;
        let a = Arenas::new(&g, &k, plen, alen, 8).unwrap();
        let mut p = self.w.clone();
        p.extend(&self.b);
        g.queue.write_buffer(&a.params, 0, bytemuck::cast_slice(&p));
        g.queue
            .write_buffer(&a.grads, 0, bytemuck::cast_slice(&vec![f32::NAN; plen]));
        let mut acts = vec![f32::NAN; alen];
        acts[..self.x.len()].copy_from_slice(&self.x);
        acts[self.off.dz as usize..][..self.dz.len()].copy_from_slice(&self.dz);
        g.queue
            .write_buffer(&a.acts, 0, bytemuck::cast_slice(&acts));
        a
    }
}

/// The GEMM cores this device can run: the plain one always, the subgroup one where supported.
fn gemm_cores() -> Vec<GemmCore> {
    let (_, k) = gpu();
    let mut cores = vec![GemmCore::Plain];
    if k.gemm_core != GemmCore::Plain {
        cores.push(k.gemm_core);
    }
    cores
}

fn run(a: &Arenas, spec: &kernels::GemmSpec, core: GemmCore) {
    let (g, k) = gpu();
    let d = g
        .checked("gemm", || spec.dispatch_with(&g, &k, core, "test"))
        .unwrap()
        .unwrap();
    g.checked("submit", || a.submit(&g, &[&[d]])).unwrap();
}

fn check_forward(layer: Layer, batch: usize, seed: u64) {
    for core in gemm_cores() {
        check_forward_with(layer.clone(), batch, seed, core);
    }
}

fn check_forward_with(layer: Layer, batch: usize, seed: u64, core: GemmCore) {
    let c = LayerCase::new(layer, batch, seed);
    let a = c.arenas();
    run(&a, &layers::forward(&c.layer, batch as u32, &c.off), core);
    let (g, _) = gpu();
    let got = g
        .read_f32(&a.acts, c.off.output as usize, batch * c.layer.out_len())
        .unwrap();
    let z = reference::layer_forward(
        c.layer.kind,
        &c.geom(),
        &to_f64(&c.x),
        &to_f64(&c.w),
        Some(&to_f64(&c.b)),
    );
    let want: Vec<f64> = z
        .iter()
        .map(|&v| reference::act_forward(c.layer.act, v))
        .collect();
    assert_close(&format!("forward {core:?} {:?}", c.layer), &got, &want, TOL);
}

/// Checks the three gradients with each GEMM core, with the weight gradient both whole and, where
/// `with_split_k` applies, split into parts of the batch.
fn check_backward(layer: Layer, batch: usize, below: Act, seed: u64) {
    for core in gemm_cores() {
        for split in [false, true] {
            check_backward_with(layer.clone(), batch, below, seed, core, split);
        }
    }
}

fn check_backward_with(
    layer: Layer,
    batch: usize,
    below: Act,
    seed: u64,
    core: GemmCore,
    split: bool,
) {
    let c = LayerCase::new(layer, batch, seed);
    let a = c.arenas();
    let b = batch as u32;
    let mut wg = layers::weight_grad(&c.layer, b, &c.off);
    if split {
        wg = wg.with_split_k(c.partials());
        if wg.k_split == 1 {
            return; // too large or too small a batch for split-K: covered by the whole run
        }
    }
    let (g, k) = gpu();
    let ds = g
        .checked("weight grad", || wg.dispatches_with(&g, &k, core, "test"))
        .unwrap()
        .unwrap();
    for d in ds {
        g.checked("submit", || a.submit(&g, &[&[d]])).unwrap();
    }
    run(
        &a,
        &layers::input_grad(&c.layer, b, &c.off, c.dz_below as u32, below),
        core,
    );
    let bg = layers::bias_grad(&c.layer, b, &c.off)
        .dispatch(&g, &k, "bias")
        .unwrap();
    a.submit(&g, &[&[bg]]);
    let grads = g.read_f32(&a.grads, 0, c.w.len() + c.b.len()).unwrap();
    let dzb = g.read_f32(&a.acts, c.dz_below, c.x.len()).unwrap();
    let (dx, dw, db) = reference::layer_backward(
        c.layer.kind,
        &c.geom(),
        &to_f64(&c.x),
        &to_f64(&c.w),
        &to_f64(&c.dz),
    );
    // The input x doubles as the stored output of the layer below (for act').
    let want_dzb: Vec<f64> = dx
        .iter()
        .zip(&c.x)
        .map(|(d, &h)| d * reference::act_backward(below, h as f64))
        .collect();
    let what = format!(
        "{core:?} split-K {} {:?} batch {batch}",
        wg.k_split, c.layer
    );
    assert_close(
        &format!("weight grad {what}"),
        &grads[..c.w.len()],
        &dw,
        TOL,
    );
    assert_close(&format!("bias grad {what}"), &grads[c.w.len()..], &db, TOL);
    assert_close(&format!("input grad {what}"), &dzb, &want_dzb, TOL);
}

fn conv(i: [u32; 3], o: [u32; 3], k: u32, s: u32, p: u32, act: Act) -> Layer {
    Layer::custom(LayerKind::Conv, i, o, k, s, p, act)
}
fn convt(i: [u32; 3], o: [u32; 3], k: u32, s: u32, p: u32, act: Act) -> Layer {
    Layer::custom(LayerKind::ConvTranspose, i, o, k, s, p, act)
}
fn linear(i: u32, o: u32, act: Act) -> Layer {
    Layer::custom(LayerKind::Linear, [i, 1, 1], [o, 1, 1], 1, 1, 0, act)
}

/// Output size of a convolution.
fn co(n: u32, k: u32, s: u32, p: u32) -> u32 {
    (n + 2 * p - k) / s + 1
}

#[test]
fn conv2d_forward_matches_reference() {
    let leaky = Act::LeakyRelu(0.2);
    check_forward(conv([1, 28, 28], [32, 14, 14], 3, 2, 1, leaky), 3, 1);
    check_forward(
        conv(
            [5, 13, 11],
            [7, co(13, 3, 2, 1), co(11, 3, 2, 1)],
            3,
            2,
            1,
            Act::Relu,
        ),
        3,
        2,
    );
    check_forward(
        conv(
            [3, 9, 10],
            [33, co(9, 5, 1, 2), co(10, 5, 1, 2)],
            5,
            1,
            2,
            Act::Sigmoid,
        ),
        2,
        3,
    );
    check_forward(
        conv(
            [2, 12, 12],
            [3, co(12, 4, 3, 0), co(12, 4, 3, 0)],
            4,
            3,
            0,
            Act::Identity,
        ),
        5,
        4,
    );
    // Wide enough for 8 rows per invocation, with a partial 64-row tile.
    check_forward(
        conv([5, 13, 11], [70, 7, 6], 3, 2, 1, Act::LeakyRelu(0.2)),
        4,
        23,
    );
}

#[test]
fn conv_transpose2d_forward_matches_reference() {
    let leaky = Act::LeakyRelu(0.2);
    check_forward(convt([64, 7, 7], [32, 14, 14], 4, 2, 1, leaky), 2, 5);
    check_forward(convt([6, 5, 7], [3, 10, 14], 4, 2, 1, Act::Sigmoid), 3, 6);
    check_forward(convt([4, 7, 6], [35, 9, 8], 3, 1, 0, Act::Relu), 2, 7);
    check_forward(convt([3, 4, 5], [2, 11, 14], 3, 3, 1, Act::Identity), 4, 8);
}

#[test]
fn linear_forward_matches_reference() {
    check_forward(linear(70, 37, Act::Identity), 5, 9);
    check_forward(linear(3136, 32, Act::LeakyRelu(0.2)), 3, 10);
    check_forward(linear(33, 100, Act::Sigmoid), 1, 11);
}

#[test]
fn conv2d_backward_matches_reference() {
    check_backward(
        conv([1, 28, 28], [32, 14, 14], 3, 2, 1, Act::LeakyRelu(0.2)),
        2,
        Act::Identity,
        12,
    );
    check_backward(
        conv(
            [5, 13, 11],
            [7, co(13, 3, 2, 1), co(11, 3, 2, 1)],
            3,
            2,
            1,
            Act::Relu,
        ),
        3,
        Act::LeakyRelu(0.2),
        13,
    );
    check_backward(
        conv(
            [3, 9, 10],
            [33, co(9, 5, 1, 2), co(10, 5, 1, 2)],
            5,
            1,
            2,
            Act::Identity,
        ),
        2,
        Act::Sigmoid,
        14,
    );
    check_backward(
        conv(
            [2, 12, 12],
            [3, co(12, 4, 3, 0), co(12, 4, 3, 0)],
            4,
            3,
            0,
            Act::Identity,
        ),
        5,
        Act::Relu,
        15,
    );
    check_backward(
        conv([40, 9, 9], [70, 5, 5], 3, 2, 1, Act::LeakyRelu(0.2)),
        3,
        Act::LeakyRelu(0.2),
        24,
    );
    // Long bias sums (3 × 900 > 2048): the bias gradient's workgroup-per-channel path; the
    // cases above take its one-invocation-per-channel path.
    check_backward(
        conv([2, 30, 30], [5, 30, 30], 3, 1, 1, Act::Relu),
        3,
        Act::Identity,
        25,
    );
}

#[test]
fn one_channel_weight_gradients_split_k_match_reference() {
    // fmnist-ae's enc1 and dec3 shapes at batches that split unevenly (9 into 4 parts of 3:
    // the last part is empty; 7 into 3 parts of 3, 3 and 1).
    check_backward(
        conv([1, 28, 28], [32, 14, 14], 3, 2, 1, Act::LeakyRelu(0.2)),
        9,
        Act::Identity,
        26,
    );
    check_backward(
        convt([32, 14, 14], [1, 28, 28], 4, 2, 1, Act::Sigmoid),
        7,
        Act::LeakyRelu(0.2),
        27,
    );
}

#[test]
fn conv_transpose2d_backward_matches_reference() {
    check_backward(
        convt([64, 7, 7], [32, 14, 14], 4, 2, 1, Act::LeakyRelu(0.2)),
        2,
        Act::LeakyRelu(0.2),
        16,
    );
    check_backward(
        convt([6, 5, 7], [3, 10, 14], 4, 2, 1, Act::Sigmoid),
        3,
        Act::Sigmoid,
        17,
    );
    check_backward(
        convt([4, 7, 6], [35, 9, 8], 3, 1, 0, Act::Relu),
        2,
        Act::Identity,
        18,
    );
    check_backward(
        convt([3, 4, 5], [2, 11, 14], 3, 3, 1, Act::Identity),
        4,
        Act::Relu,
        19,
    );
}

#[test]
fn linear_backward_matches_reference() {
    check_backward(linear(70, 37, Act::Identity), 5, Act::LeakyRelu(0.2), 20);
    check_backward(linear(32, 3136, Act::LeakyRelu(0.2)), 3, Act::Identity, 21);
    check_backward(linear(33, 100, Act::Sigmoid), 1, Act::Sigmoid, 22);
}

/// Runs the loss kernels on y = sigmoid output, x = input; returns (stats, dz).
fn run_loss(
    cfg: LossConfig,
    shape: [u32; 3],
    batch: usize,
    x: &[f32],
    y: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let (g, k) = gpu();
    let p = shape.iter().product::<u32>() as usize * batch;
    let scratch = LossSpec::scratch_per_sample(shape) * batch;
    let stats_b = batch + 3; // capacity larger than the batch, as in training
    let a = Arenas::new(&g, &k, 1, 3 * p + scratch, kernels::stats_len(stats_b)).unwrap();
    let mut acts = vec![f32::NAN; 3 * p + scratch];
    acts[..p].copy_from_slice(x);
    acts[p..2 * p].copy_from_slice(y);
    g.queue
        .write_buffer(&a.acts, 0, bytemuck::cast_slice(&acts));
    let mut stats = vec![f32::NAN; kernels::stats_len(stats_b)];
    stats[..8].fill(0.0);
    g.queue
        .write_buffer(&a.stats, 0, bytemuck::cast_slice(&stats));
    let spec = LossSpec {
        loss: cfg,
        batch: batch as u32,
        stats_batch: stats_b as u32,
        shape,
        x_off: 0,
        y_off: p as u32,
        dz_off: 2 * p as u32,
        scratch_off: 3 * p as u32,
        grad: true,
    };
    let d = spec.dispatches(&g, &k).unwrap();
    g.checked("loss", || a.submit(&g, &[&d])).unwrap();
    (
        g.read_f32(&a.stats, 0, kernels::stats_len(stats_b))
            .unwrap(),
        g.read_f32(&a.acts, 2 * p, p).unwrap(),
    )
}

fn check_loss(cfg: LossConfig, shape: [u32; 3], batch: usize, x: &[f32], y: &[f32], tol: f64) {
    let (stats, dz) = run_loss(cfg, shape, batch, x, y);
    let want = reference::loss(
        cfg,
        shape.map(|v| v as usize),
        batch,
        &to_f64(x),
        &to_f64(y),
    );
    let want_dz: Vec<f64> = want
        .dy
        .iter()
        .zip(y)
        .map(|(d, &h)| d * h as f64 * (1.0 - h as f64))
        .collect();
    let what = format!("{cfg} {shape:?} batch {batch}");
    assert_close(&format!("loss {what}"), &stats[..1], &[want.loss], tol);
    assert_close(
        &format!("errors {what}"),
        &stats[8..8 + batch],
        &want.errors,
        tol,
    );
    assert_close(&format!("dz {what}"), &dz, &want_dz, tol);
    assert_eq!(
        stats[kernels::STAT_CLAMPS] as f64,
        want.clamps,
        "clamp count {what}"
    );
    assert_eq!(stats[kernels::STAT_STEPS], 1.0, "step count {what}");
}

/// MAE and MSE: f32 sums over a few thousand elements; SSIM: its moments are differences of
/// nearly equal window sums (σ² = E[x²] − μ²) in f32, which costs about two digits, so 2e-4.
fn loss_tol(m: Metric) -> f64 {
    if m == Metric::Ssim {
        1e-5
    } else {
        TOL
    }
}

#[test]
fn loss_matches_reference_for_every_configuration() {
    for (i, cfg) in loss_configs().into_iter().enumerate() {
        for (shape, batch) in [([1u32, 28, 28], 3usize), ([3, 13, 17], 2)] {
            let n = shape.iter().product::<u32>() as usize * batch;
            let x = random(n, 100 + i as u64, 0.0, 1.0);
            // A reconstruction that resembles x (as a trained model's does), so SSIM is not ~0.
            let noise = random(n, 200 + i as u64, -0.2, 0.2);
            let y: Vec<f32> = x
                .iter()
                .zip(&noise)
                .map(|(a, b)| (a + b).clamp(0.01, 0.99))
                .collect();
            check_loss(cfg, shape, batch, &x, &y, loss_tol(cfg.metric));
        }
    }
}

#[test]
fn loss_counts_clamped_elements() {
    // MAE with x = 0 and y = 1 - 1e-9 (as f32, 1.0): e = 1 > 1 - 1e-6 on the marked elements.
    let shape = [1u32, 4, 4];
    let batch = 2;
    let x = vec![0.0f32; 32];
    let mut y = random(32, 5, 0.1, 0.5);
    for i in [0, 3, 17, 30] {
        y[i] = 1.0;
    }
    for granularity in [
        Granularity::Element,
        Granularity::Sample,
        Granularity::Batch,
    ] {
        let cfg = LossConfig {
            metric: Metric::Mae,
            amp: Amp::Lamp,
            granularity,
        };
        let (stats, dz) = run_loss(cfg, shape, batch, &x, &y);
        let want = reference::loss(cfg, [1, 4, 4], batch, &to_f64(&x), &to_f64(&y));
        assert_eq!(stats[kernels::STAT_CLAMPS] as f64, want.clamps);
        assert!(dz.iter().all(|v| v.is_finite()));
        if granularity == Granularity::Element {
            assert_eq!(want.clamps, 4.0);
        }
    }
}

#[test]
fn adam_matches_closed_form_over_several_steps() {
    let (g, k) = gpu();
    let n = 1000 + 37;
    for wd in [0.0, 0.01] {
        let cfg = reference::AdamConfig {
            lr: 3e-3,
            weight_decay: wd,
            ..Default::default()
        };
        let a = Arenas::new(&g, &k, n, 1, 8).unwrap();
        let m = g.storage("m", n);
        let v = g.storage("v", n);
        let p0 = random(n, 31, -1.0, 1.0);
        g.queue
            .write_buffer(&a.params, 0, bytemuck::cast_slice(&p0));
        g.queue
            .write_buffer(&a.stats, 0, bytemuck::cast_slice(&[0f32; 8]));
        let mut d = kernels::adam_dispatch(&g, &k, n as u32).unwrap();
        d.group1 = Some(kernels::optimizer_group(&g, &k, &m, &v));
        let (mut p, mut mm, mut vv) = (to_f64(&p0), vec![0.0; n], vec![0.0; n]);
        for t in 1..=5u32 {
            let grad = random(n, 40 + t as u64, -2.0, 2.0);
            g.queue
                .write_buffer(&a.grads, 0, bytemuck::cast_slice(&grad));
            let u = StepUniform::adam(&cfg, t, 0);
            g.queue.write_buffer(&a.step, 0, bytemuck::bytes_of(&u));
            a.submit(&g, &[std::slice::from_ref(&d)]);
            reference::adam_step(&cfg, t, &mut p, &to_f64(&grad), &mut mm, &mut vv);
        }
        assert_close(
            &format!("adam params wd {wd}"),
            &g.read_f32(&a.params, 0, n).unwrap(),
            &p,
            TOL,
        );
        assert_close("adam exp_avg", &g.read_f32(&m, 0, n).unwrap(), &mm, TOL);
        assert_close("adam exp_avg_sq", &g.read_f32(&v, 0, n).unwrap(), &vv, TOL);
        let flag = g.read_f32(&a.stats, kernels::STAT_NONFINITE, 1).unwrap()[0];
        assert_eq!(flag.to_bits(), 0, "no non-finite gradient was given");
    }
}

#[test]
fn sgd_momentum_matches_closed_form() {
    let (g, k) = gpu();
    let n = 777;
    let a = Arenas::new(&g, &k, n, 1, 8).unwrap();
    let (buf, unused) = (g.storage("momentum", n), g.storage("unused", n));
    let p0 = random(n, 61, -1.0, 1.0);
    g.queue
        .write_buffer(&a.params, 0, bytemuck::cast_slice(&p0));
    g.queue
        .write_buffer(&a.stats, 0, bytemuck::cast_slice(&[0f32; 8]));
    let mut d = kernels::optimizer_dispatch(&g, &k, n as u32, "sgd").unwrap();
    d.group1 = Some(kernels::optimizer_group(&g, &k, &buf, &unused));
    let (lr, momentum, wd) = (0.05, 0.9, 0.01);
    let (mut p, mut b) = (to_f64(&p0), vec![0.0; n]);
    for t in 1..=4u32 {
        let grad = random(n, 70 + t as u64, -1.0, 1.0);
        g.queue
            .write_buffer(&a.grads, 0, bytemuck::cast_slice(&grad));
        g.queue.write_buffer(
            &a.step,
            0,
            bytemuck::bytes_of(&StepUniform::sgd(lr, momentum, wd, t, 0)),
        );
        a.submit(&g, &[std::slice::from_ref(&d)]);
        for i in 0..n {
            let gi = grad[i] as f64 + wd * p[i];
            b[i] = momentum * b[i] + gi;
            p[i] -= lr * b[i];
        }
    }
    assert_close("sgd params", &g.read_f32(&a.params, 0, n).unwrap(), &p, TOL);
    assert_close(
        "sgd momentum buffer",
        &g.read_f32(&buf, 0, n).unwrap(),
        &b,
        TOL,
    );
}

#[test]
fn adam_flags_non_finite_gradients() {
    let (g, k) = gpu();
    let n = 300;
    let a = Arenas::new(&g, &k, n, 1, 8).unwrap();
    let (m, v) = (g.storage("m", n), g.storage("v", n));
    let mut grad = random(n, 3, -1.0, 1.0);
    grad[123] = f32::NAN;
    g.queue
        .write_buffer(&a.grads, 0, bytemuck::cast_slice(&grad));
    g.queue
        .write_buffer(&a.stats, 0, bytemuck::cast_slice(&[0f32; 8]));
    let u = StepUniform::adam(&Default::default(), 1, 0);
    g.queue.write_buffer(&a.step, 0, bytemuck::bytes_of(&u));
    let mut d = kernels::adam_dispatch(&g, &k, n as u32).unwrap();
    d.group1 = Some(kernels::optimizer_group(&g, &k, &m, &v));
    a.submit(&g, &[&[d]]);
    let flag = g.read_f32(&a.stats, kernels::STAT_NONFINITE, 1).unwrap()[0];
    assert_ne!(flag.to_bits(), 0);
}

#[test]
fn gather_builds_batches_from_chunks() {
    let (g, k) = gpu();
    let p = 37; // elements per sample
    let n = 11; // samples, split in chunks of 4
    let data = random(n * p, 9, 0.0, 1.0);
    let order: Vec<u32> = vec![7, 2, 10, 0, 5, 9, 1, 3, 8, 4, 6];
    let batch = 5;
    let offset = 3;
    let a = Arenas::new(&g, &k, 1, batch * p, 8).unwrap();
    g.queue
        .write_buffer(&a.acts, 0, bytemuck::cast_slice(&vec![f32::NAN; batch * p]));
    let indices = g.storage("indices", n);
    g.queue
        .write_buffer(&indices, 0, bytemuck::cast_slice(&order));
    let u = StepUniform {
        batch_offset: offset as u32,
        ..Default::default()
    };
    g.queue.write_buffer(&a.step, 0, bytemuck::bytes_of(&u));
    let mut ds = Vec::new();
    for start in (0..n).step_by(4) {
        let len = 4.min(n - start);
        let buf = g.storage("chunk", len * p);
        g.queue.write_buffer(
            &buf,
            0,
            bytemuck::cast_slice(&data[start * p..(start + len) * p]),
        );
        let mut d = kernels::gather_dispatch(
            &g,
            &k,
            p as u32,
            batch as u32,
            0,
            (start as u32, len as u32),
        )
        .unwrap();
        d.group1 = Some(g.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &k.data,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: buf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: indices.as_entire_binding(),
                },
            ],
        }));
        ds.push(d);
    }
    a.submit(&g, &[&ds]);
    let got = g.read_f32(&a.acts, 0, batch * p).unwrap();
    for b in 0..batch {
        let src = order[offset + b] as usize;
        assert_eq!(
            &got[b * p..(b + 1) * p],
            &data[src * p..(src + 1) * p],
            "sample {b}"
        );
    }
}

#[test]
fn validation_errors_outside_scopes_are_reported() {
    // Its own device: the error it provokes must not reach the other tests' device.
    let g = lamp::gpu::Gpu::new(None).unwrap();
    let k = lamp::kernels::Kernels::new(&g).unwrap();
    let a = Arenas::new(&g, &k, 16, 1, 8).unwrap();
    // Adam without its group-1 bind group: invalid at submission.
    let d = kernels::adam_dispatch(&g, &k, 16).unwrap();
    a.submit(&g, &[&[d]]);
    let e = g
        .wait()
        .expect_err("the missing bind group must surface as an error");
    assert!(!e.to_string().is_empty());
}
