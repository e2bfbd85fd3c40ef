//! The loss, optimizer and gather kernels against the CPU reference in f64 (or closed forms), on
//! random non-zero inputs; outputs are poisoned with NaN beforehand. The layers' kernels are in
//! tests/layers.rs.
//!
//! Tolerance: relative L2 error ≤ 1e-5, except where a test says why it needs more.

mod common;
use common::*;
use lamp::engine::arenas::{pair_group, Arenas};
use lamp::kernels::{
    stats_len, Dispatch, GatherSpec, LossSpec, OptimizerSpec, Stat, StepUniform, View, STATS_HEADER,
};
use lamp::model::reference;
use lamp::model::{
    Act, AdamConfig, Amp, Granularity, LossConfig, Metric, Optimizer, OptimizerKind, SgdConfig,
};

const TOL: f64 = 1e-5;

/// The optimizer's launch over `n` parameters with state buffers `a` and `b`.
fn optimizer_step(kind: OptimizerKind, n: usize, a: &wgpu::Buffer, b: &wgpu::Buffer) -> Dispatch {
    let g = device();
    OptimizerSpec {
        kind,
        count: n as u32,
    }
    .dispatch(&g, pair_group(&g, &g.registry.optimizer, a, b))
    .unwrap()
}

/// Runs the loss kernels on y = sigmoid output, x = input; returns (stats, dz).
fn run_loss(
    cfg: LossConfig,
    shape: [u32; 3],
    batch: usize,
    x: &[f32],
    y: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let g = device();
    let p = shape.iter().product::<u32>() as usize * batch;
    let scratch = LossSpec::scratch_per_sample(shape) * batch;
    let stats_b = batch + 3; // capacity larger than the batch, as in training
    let a = Arenas::new(&g, 1, 3 * p + scratch, stats_len(stats_b)).unwrap();
    let mut acts = vec![f32::NAN; 3 * p + scratch];
    acts[..p].copy_from_slice(x);
    acts[p..2 * p].copy_from_slice(y);
    g.queue
        .write_buffer(&a.acts, 0, bytemuck::cast_slice(&acts));
    let mut stats = vec![f32::NAN; stats_len(stats_b)];
    stats[..STATS_HEADER].fill(0.0);
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
        output_act: Act::Sigmoid,
    };
    let d = spec.dispatches(&g).unwrap();
    g.checked("loss", || a.submit(&g, &[&d])).unwrap();
    (
        g.read_f32(&a.stats, 0, stats_len(stats_b)).unwrap(),
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
        &stats[STATS_HEADER..STATS_HEADER + batch],
        &want.errors,
        tol,
    );
    assert_close(&format!("dz {what}"), &dz, &want_dz, tol);
    assert_eq!(
        stats[Stat::Clamps.index()] as f64,
        want.clamps,
        "clamp count {what}"
    );
    assert_eq!(stats[Stat::Steps.index()], 1.0, "step count {what}");
}

#[test]
fn loss_matches_reference_for_every_configuration() {
    for (i, cfg) in loss_configs().into_iter().enumerate() {
        // Up to 4,096 elements a sample the loss takes 64 invocations per sample, above it 256.
        for (shape, batch) in [([1u32, 28, 28], 3usize), ([3, 13, 17], 2), ([3, 40, 41], 2)] {
            let n = shape.iter().product::<u32>() as usize * batch;
            let x = random(n, 100 + i as u64, 0.0, 1.0);
            // A reconstruction that resembles x (as a trained model's does), so SSIM is not ~0.
            let noise = random(n, 200 + i as u64, -0.2, 0.2);
            let y: Vec<f32> = x
                .iter()
                .zip(&noise)
                .map(|(a, b)| (a + b).clamp(0.01, 0.99))
                .collect();
            check_loss(cfg, shape, batch, &x, &y, TOL);
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
        assert_eq!(stats[Stat::Clamps.index()] as f64, want.clamps);
        assert!(dz.iter().all(|v| v.is_finite()));
        if granularity == Granularity::Element {
            assert_eq!(want.clamps, 4.0);
        }
    }
}

#[test]
fn adam_matches_closed_form_over_several_steps() {
    let g = device();
    let n = 1000 + 37;
    for wd in [0.0, 0.01] {
        let cfg = AdamConfig {
            lr: 3e-3,
            weight_decay: wd,
            ..Default::default()
        };
        let a = Arenas::new(&g, n, 1, 8).unwrap();
        let m = g.storage("m", n);
        let v = g.storage("v", n);
        let d = optimizer_step(OptimizerKind::Adam, n, &m, &v);
        let p0 = random(n, 31, -1.0, 1.0);
        // The arena ends in a partial quad: what lies past the parameters there (padding in an
        // engine, before the packed weight copies) must stay as it was, whatever the gradients
        // past them hold.
        let past = [7.0f32, -3.0, 0.5];
        let p0_padded: Vec<f32> = p0.iter().chain(&past).copied().collect();
        g.queue
            .write_buffer(&a.params, 0, bytemuck::cast_slice(&p0_padded));
        g.queue
            .write_buffer(&a.stats, 0, bytemuck::cast_slice(&[0f32; 8]));
        let (mut p, mut mm, mut vv) = (to_f64(&p0), vec![0.0; n], vec![0.0; n]);
        for t in 1..=5u32 {
            let grad = random(n, 40 + t as u64, -2.0, 2.0);
            let grad_padded: Vec<f32> =
                grad.iter().chain(&[f32::NAN, 1.0, -1.0]).copied().collect();
            g.queue
                .write_buffer(&a.grads, 0, bytemuck::cast_slice(&grad_padded));
            let u = StepUniform::new(&Optimizer::Adam(cfg), t, 0);
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
        let flag = g.read_f32(&a.stats, Stat::NonFinite.index(), 1).unwrap()[0];
        assert_eq!(flag.to_bits(), 0, "no non-finite gradient was given");
        assert_eq!(
            g.read_f32(&a.params, n, 3).unwrap(),
            past,
            "values past the parameters are left alone"
        );
    }
}

#[test]
fn sgd_momentum_matches_closed_form() {
    let g = device();
    let n = 777;
    let a = Arenas::new(&g, n, 1, 8).unwrap();
    let (buf, unused) = (g.storage("momentum", n), g.storage("unused", n));
    let p0 = random(n, 61, -1.0, 1.0);
    g.queue
        .write_buffer(&a.params, 0, bytemuck::cast_slice(&p0));
    g.queue
        .write_buffer(&a.stats, 0, bytemuck::cast_slice(&[0f32; 8]));
    let d = optimizer_step(OptimizerKind::Sgd, n, &buf, &unused);
    let cfg = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 0.01,
    };
    let (mut p, mut b) = (to_f64(&p0), vec![0.0; n]);
    for t in 1..=4u32 {
        let grad = random(n, 70 + t as u64, -1.0, 1.0);
        g.queue
            .write_buffer(&a.grads, 0, bytemuck::cast_slice(&grad));
        let u = StepUniform::new(&Optimizer::Sgd(cfg), t, 0);
        g.queue.write_buffer(&a.step, 0, bytemuck::bytes_of(&u));
        a.submit(&g, &[std::slice::from_ref(&d)]);
        reference::sgd_step(&cfg, &mut p, &to_f64(&grad), &mut b);
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
    let g = device();
    let n = 300;
    let a = Arenas::new(&g, n, 1, 8).unwrap();
    let (m, v) = (g.storage("m", n), g.storage("v", n));
    let mut grad = random(n, 3, -1.0, 1.0);
    grad[123] = f32::NAN;
    g.queue
        .write_buffer(&a.grads, 0, bytemuck::cast_slice(&grad));
    g.queue
        .write_buffer(&a.stats, 0, bytemuck::cast_slice(&[0f32; 8]));
    let u = StepUniform::new(&Optimizer::default(), 1, 0);
    g.queue.write_buffer(&a.step, 0, bytemuck::bytes_of(&u));
    let d = optimizer_step(OptimizerKind::Adam, n, &m, &v);
    a.submit(&g, &[&[d]]);
    let flag = g.read_f32(&a.stats, Stat::NonFinite.index(), 1).unwrap()[0];
    assert_ne!(flag.to_bits(), 0);
}

/// Batches of views (windows at random positions under the 8 flips and rotations, half with a
/// synthetic defect) of a data set split in chunks — inputs and clean targets — against the
/// views' definition on the host (`View::extract_pair`).
#[test]
fn gather_builds_batches_of_views_from_chunks() {
    let g = device();
    let (c, src, out) = (2u32, 9u32, 5u32);
    let per = (c * src * src) as usize;
    let p = (c * out * out) as usize;
    let n = 11; // images, split in chunks of 4
    let data = random(n * per, 9, 0.0, 1.0);
    let mut r = lamp::rng::SplitMix64::new(4);
    let order: Vec<u32> = vec![7, 2, 10, 0, 5, 9, 1, 3, 8, 4, 6];
    let views: Vec<View> = order
        .iter()
        .enumerate()
        .map(|(i, &image)| {
            let v = View {
                y0: r.below(5) as u32,
                x0: r.below(5) as u32,
                op: i as u32 % 8,
                ..View::whole(image)
            };
            if i % 2 == 0 {
                v.with_defect((1, 4), (0, 2), 0.25)
            } else {
                v
            }
        })
        .collect();
    let (batch, offset) = (8, 3);
    let a = Arenas::new(&g, 1, 2 * batch * p, 8).unwrap();
    g.queue.write_buffer(
        &a.acts,
        0,
        bytemuck::cast_slice(&vec![f32::NAN; 2 * batch * p]),
    );
    let buf_views = g.storage("views", 8 * n);
    g.queue
        .write_buffer(&buf_views, 0, bytemuck::cast_slice(&views));
    let u = StepUniform {
        batch_offset: offset as u32,
        ..Default::default()
    };
    g.queue.write_buffer(&a.step, 0, bytemuck::bytes_of(&u));
    let mut ds = Vec::new();
    for start in (0..n).step_by(4) {
        let len = 4.min(n - start);
        let buf = g.storage("chunk", len * per);
        g.queue.write_buffer(
            &buf,
            0,
            bytemuck::cast_slice(&data[start * per..(start + len) * per]),
        );
        let spec = GatherSpec {
            channels: c,
            src,
            out,
            batch: batch as u32,
            x_off: 0,
            t_off: (batch * p) as u32,
            chunk_start: start as u32,
            chunk_len: len as u32,
        };
        let group = pair_group(&g, &g.registry.data, &buf, &buf_views);
        ds.push(spec.dispatch(&g, group).unwrap());
    }
    a.submit(&g, &[&ds]);
    let got = g.read_f32(&a.acts, 0, 2 * batch * p).unwrap();
    let (inputs, targets) = got.split_at(batch * p);
    for b in 0..batch {
        let v = views[offset + b];
        let (mut input, mut target) = (Vec::new(), Vec::new());
        let image = &data[v.image as usize * per..][..per];
        v.extract_pair(image, (c, src, out), &mut input, Some(&mut target));
        assert_eq!(&inputs[b * p..(b + 1) * p], &input[..], "input {b}: {v:?}");
        assert_eq!(
            &targets[b * p..(b + 1) * p],
            &target[..],
            "target {b}: {v:?}"
        );
    }
}

#[test]
fn validation_errors_outside_scopes_are_reported() {
    // Its own device: the error it provokes must not reach the other tests' device.
    let g = lamp::device::Device::new(None).unwrap();
    let a = Arenas::new(&g, 16, 1, 8).unwrap();
    // The optimizer without its group-1 bind group: invalid at submission.
    let (m, v) = (g.storage("m", 16), g.storage("v", 16));
    let mut d = OptimizerSpec {
        kind: OptimizerKind::Adam,
        count: 16,
    }
    .dispatch(&g, pair_group(&g, &g.registry.optimizer, &m, &v))
    .unwrap();
    d.group1 = None;
    a.submit(&g, &[&[d]]);
    let e = g
        .wait()
        .expect_err("the missing bind group must surface as an error");
    assert!(!e.to_string().is_empty());
}
