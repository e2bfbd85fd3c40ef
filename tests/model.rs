//! The whole model: the CPU reference's gradients against central finite differences, then the
//! GPU engine's loss, errors, reconstruction and every parameter's gradient against the
//! reference, for every metric × amplification × granularity. Also: Adam steps through the
//! engine against the reference, and determinism.

mod common;
use common::*;
use lamp::engine::Engine;
use lamp::model::reference;
use lamp::model::{AdamConfig, Amp, Arch, Granularity, LossConfig, Metric};

/// Inputs in (0, 1), never zero.
fn batch_x(arch: &Arch, batch: usize, seed: u64) -> Vec<f32> {
    random(batch * arch.input_len(), seed, 0.02, 0.98)
}

#[test]
fn reference_gradients_match_finite_differences() {
    // Small enough that every parameter can be perturbed; 12x12 keeps a 2x2 SSIM map.
    let arch = Arch::conv_ae(3, 12, vec![3, 4], 5).unwrap();
    let batch = 2;
    let x = to_f64(&batch_x(&arch, batch, 1));
    for (ci, cfg) in loss_configs().into_iter().enumerate() {
        // Larger weights than the default init so the errors are not tiny and A'(e) varies.
        let params: Vec<f64> = to_f64(&random(arch.param_table().len(), 50 + ci as u64, -0.6, 0.6));
        let (_, grads) = reference::model_grad(&arch, cfg, &params, &x, batch);
        let h = 1e-6;
        let mut num = Vec::with_capacity(params.len());
        let mut p = params.clone();
        for i in 0..params.len() {
            p[i] = params[i] + h;
            let up = reference::model_grad(&arch, cfg, &p, &x, batch).0.loss;
            p[i] = params[i] - h;
            let down = reference::model_grad(&arch, cfg, &p, &x, batch).0.loss;
            p[i] = params[i];
            num.push((up - down) / (2.0 * h));
        }
        let err = rel_l2(&grads.iter().map(|&v| v as f32).collect::<Vec<_>>(), &num);
        // f64 central differences with h = 1e-6: truncation ~h², rounding ~1e-16/h; the analytic
        // gradient rounded to f32 for the comparison adds ~1e-7.
        assert!(
            err < 1e-5,
            "{cfg}: reference gradient vs finite differences: rel L2 {err:.3e}"
        );
    }
}

/// The GPU's f32 arithmetic against the f64 reference, through six layers. Bias gradients are
/// sums of thousands of signed terms that nearly cancel, which magnifies the f32 rounding of
/// each term (seen: 1.6e-5). With SSIM on an untrained model (a nearly flat reconstruction) the
/// per-element gradients carry ~1e-6 relative error from the window moments, and the sigmoid
/// layer's single bias, their nearly cancelling sum, magnifies it (seen: 5.3e-4).
fn tol(cfg: LossConfig) -> f64 {
    if cfg.metric == Metric::Ssim {
        1e-3
    } else {
        5e-5
    }
}

fn check_engine(arch: &Arch, cfg: LossConfig, batch: usize, seed: u64) {
    let params = arch.init(seed);
    let x = batch_x(arch, batch, seed + 1);
    let mut e = Engine::new(device(), arch.clone(), cfg, batch + 2, &params).unwrap();
    e.upload_batch(&x, batch).unwrap();
    e.grad_step(batch, false).unwrap();
    let (want, want_grads) = reference::model_grad(arch, cfg, &to_f64(&params), &to_f64(&x), batch);
    let what = format!("{} {cfg} batch {batch}", arch.name);
    let stats = e.wait_stats().unwrap();
    assert_close(
        &format!("loss {what}"),
        &[stats.loss],
        &[want.loss],
        tol(cfg),
    );
    assert_close(
        &format!("errors {what}"),
        &e.errors(batch).unwrap(),
        &want.errors,
        tol(cfg),
    );
    let acts = reference::model_forward(arch, &to_f64(&params), &to_f64(&x), batch);
    assert_close(
        &format!("recon {what}"),
        &e.recon(batch).unwrap(),
        acts.last().unwrap(),
        1e-5,
    );
    let grads = e.read_grads().unwrap();
    for t in &e.table.entries {
        let r = t.offset..t.offset + t.len();
        assert_close(
            &format!("grad.{} {what}", t.name),
            &grads[r.clone()],
            &want_grads[r],
            tol(cfg),
        );
    }
}

#[test]
fn engine_gradients_match_reference_fmnist_ae() {
    let arch = Arch::fmnist_ae();
    for (i, cfg) in loss_configs().into_iter().enumerate() {
        check_engine(&arch, cfg, 3, 10 + i as u64);
    }
}

#[test]
fn engine_gradients_match_reference_rgb_conv_ae() {
    let arch = Arch::conv_ae(3, 16, vec![4, 6, 8], 7).unwrap();
    for (i, cfg) in loss_configs().into_iter().enumerate() {
        check_engine(&arch, cfg, 2, 40 + i as u64);
    }
}

#[test]
fn engine_adam_steps_match_reference() {
    let arch = Arch::fmnist_ae();
    let cfg = LossConfig::lamp();
    let batch = 4;
    let params = arch.init(3);
    let x = batch_x(&arch, batch, 4);
    let mut e = Engine::new(device(), arch.clone(), cfg, batch, &params).unwrap();
    e.upload_batch(&x, batch).unwrap();
    let adam = AdamConfig::default();
    let mut p = to_f64(&params);
    let (mut m, mut v) = (vec![0.0; p.len()], vec![0.0; p.len()]);
    for t in 1..=3 {
        e.grad_step(batch, true).unwrap();
        let (_, grads) = reference::model_grad(&arch, cfg, &p, &to_f64(&x), batch);
        reference::adam_step(&adam, t, &mut p, &grads, &mut m, &mut v);
    }
    // Adam normalises each step to ~lr, so compare the displacement from the start.
    let got = e.read_params().unwrap();
    let moved: Vec<f32> = got.iter().zip(&params).map(|(a, b)| a - b).collect();
    let want: Vec<f64> = p.iter().zip(&params).map(|(a, &b)| a - b as f64).collect();
    assert_close("Adam displacement over 3 steps", &moved, &want, 1e-3);
    assert_close("parameters after 3 Adam steps", &got, &p, 1e-5);
}

#[test]
fn training_steps_are_deterministic() {
    let arch = Arch::fmnist_ae();
    let cfg = LossConfig {
        metric: Metric::Ssim,
        amp: Amp::Lamp,
        granularity: Granularity::Sample,
    };
    let data = batch_x(&arch, 20, 8);
    let run = || {
        let mut e = Engine::new(device(), arch.clone(), cfg, 8, &arch.init(1)).unwrap();
        e.upload_dataset(&data, 20).unwrap();
        let order: Vec<u32> = (0..20).rev().collect();
        e.set_order(&order).unwrap();
        for s in 0..3 {
            e.train_step(s * 8, 8.min(20 - s * 8)).unwrap();
        }
        e.read_params().unwrap()
    };
    let a = run();
    assert_eq!(
        a,
        run(),
        "same seed, data and device give identical parameters"
    );
    assert_ne!(a, arch.init(1), "training moved the parameters");
}

/// The training set streamed from host memory (batches assembled on the host) trains to the same
/// bytes as the resident one (batches gathered on the device), over two epochs whose last batch
/// is partial (20 samples, batch 8), with both optimizers, whole images and patches, flips and
/// rotations, synthetic defects, a learning-rate schedule and the held-out images scored after
/// each epoch.
#[test]
fn streamed_data_trains_to_the_same_bytes_as_resident() {
    use lamp::detect::fit::{engine_for, FitOptions};
    use lamp::detect::train::{train, TrainConfig};
    use lamp::model::{OptimizerKind, Schedule};
    let arch = Arch::conv_ae(1, 16, vec![4, 8], 6).unwrap();
    let images = |side: u32| lamp::data::Dataset {
        samples: random(20 * (side * side) as usize, 9, 0.02, 0.98),
        shape: [1, side, side],
        names: (0..20).map(|i| format!("{i}")).collect(),
        labels: None,
    };
    // Whole images with Adam; windows of larger images (patches) with SGD.
    for (optimizer, data) in [
        (OptimizerKind::Adam, images(16)),
        (OptimizerKind::Sgd, images(23)),
    ] {
        let cfg = TrainConfig {
            epochs: 2,
            batch: 8,
            lr: 3e-3,
            seed: 5,
            optimizer,
            schedule: Schedule::Cosine,
            augment: true,
            denoise: true,
            init: None,
        };
        let run = |device_data_limit: u64| {
            let options = FitOptions {
                arch: arch.clone(),
                train: cfg.clone(),
                device_data_limit,
                ..Default::default()
            };
            let mut e = engine_for(device(), &options, &arch.init(2), None, &data).unwrap();
            let held_out = Some(&data.samples[..4 * arch.input_len()]);
            let reports =
                train(&mut e, &cfg, Vec::new(), 0, held_out, |_| {}, |_, _| Ok(())).unwrap();
            assert!(reports.iter().all(|r| r.held_out_error.is_some()));
            let (m, v) = e.read_moments().unwrap();
            (
                e.read_params().unwrap(),
                m,
                v,
                reports.last().unwrap().mean_loss,
            )
        };
        let resident = run(u64::MAX);
        let streamed = run(0);
        assert!(resident.0 != arch.init(2), "training moved the parameters");
        assert!(
            resident == streamed,
            "{optimizer:?}: streamed and resident runs differ (loss {} vs {})",
            resident.3,
            streamed.3
        );
    }
}

/// Several training steps recorded into one submit (each step's uniform copied into place between
/// its passes from a table written once) train to the same bytes as one step per submit: groups
/// of 2 and 8 against 1, over two epochs of 5 steps whose last batch is partial, a cosine
/// schedule (a learning rate per step) and a log every 3 steps (which ends a group early).
#[test]
fn grouped_steps_train_to_the_same_bytes_as_single_steps() {
    use lamp::detect::train::{train, TrainConfig};
    use lamp::model::Schedule;
    let arch = Arch::conv_ae(1, 16, vec![4, 8], 6).unwrap();
    let data = random(18 * arch.input_len(), 12, 0.02, 0.98);
    let cfg = TrainConfig {
        epochs: 2,
        batch: 4,
        lr: 3e-3,
        seed: 5,
        schedule: Schedule::Cosine,
        ..Default::default()
    };
    let run = |per_submit: usize| {
        let mut e =
            Engine::new(device(), arch.clone(), LossConfig::lamp(), 4, &arch.init(2)).unwrap();
        e.upload_dataset(&data, 18).unwrap();
        e.set_steps_per_submit(per_submit);
        let reports = train(&mut e, &cfg, Vec::new(), 3, None, |_| {}, |_, _| Ok(())).unwrap();
        let (m, v) = e.read_moments().unwrap();
        (
            e.read_params().unwrap(),
            m,
            v,
            reports.last().unwrap().mean_loss,
            e.t,
        )
    };
    let single = run(1);
    assert_eq!(single.4, 10, "two epochs of 5 steps");
    assert!(single.0 != arch.init(2), "training moved the parameters");
    for k in [2, 8] {
        assert!(run(k) == single, "{k} steps per submit differ from one");
    }
}

/// The host's plain error (the mean-image baseline's score) is the reference's per-sample error.
#[test]
fn host_sample_error_equals_the_reference() {
    let shape = [3usize, 13, 12];
    let n = shape.iter().product::<usize>();
    let x = to_f64(&random(n, 70, 0.0, 1.0));
    let y = to_f64(&random(n, 71, 0.0, 1.0));
    for metric in [Metric::Mae, Metric::Mse, Metric::Ssim] {
        let cfg = LossConfig {
            metric,
            amp: Amp::None,
            granularity: Granularity::Element,
        };
        let want = reference::loss(cfg, shape, 1, &x, &y).errors[0];
        let got = lamp::model::loss::sample_error(metric, shape, &x, &y);
        assert!(
            (got - want).abs() <= 1e-15 * want.abs(),
            "{metric:?}: {got} vs {want}"
        );
    }
}

/// Scoring runs its batches back to back (the next is submitted before this one's results are
/// read, two readback buffers taking turns): its errors and reconstructions must be, bit for bit,
/// those of the same batches run one at a time and read back after each, and must agree with
/// the reference. 23 samples in batches of 5: four full batches and a partial one, so both
/// buffers are reused.
#[test]
fn back_to_back_scoring_equals_one_batch_at_a_time() {
    let arch = Arch::conv_ae(1, 16, vec![4, 6], 8).unwrap();
    let cfg = LossConfig::default();
    let params = arch.init(7);
    let (n, batch, p) = (23, 5, arch.input_len());
    let x = batch_x(&arch, n, 8);
    let mut e = Engine::new(device(), arch.clone(), cfg, batch, &params).unwrap();
    let (scores, recon) = e.score_with_recon(&x).unwrap();
    assert_eq!((scores.len(), recon.len()), (n, n * p));

    let mut one = Engine::new(device(), arch.clone(), cfg, batch, &params).unwrap();
    let (mut want_scores, mut want_recon) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(batch) {
        // The last, partial batch padded to the full one, as scoring does (on a GPU another
        // batch size may split a reduction otherwise).
        let b = batch.min(n - start);
        let mut chunk = x[start * p..(start + b) * p].to_vec();
        chunk.resize(batch * p, 0.0);
        one.upload_batch(&chunk, batch).unwrap();
        one.score_step(batch).unwrap();
        want_scores.extend(one.errors(batch).unwrap().into_iter().take(b));
        want_recon.extend(one.recon(batch).unwrap().into_iter().take(b * p));
    }
    assert!(scores
        .iter()
        .zip(&want_scores)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(recon
        .iter()
        .zip(&want_recon)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    // Not a shuffle of right values: each sample against the reference's own.
    let (want, _) = reference::model_grad(&arch, cfg, &to_f64(&params), &to_f64(&x), n);
    assert_close("back-to-back scoring, errors", &scores, &want.errors, 5e-5);
    for (i, (&got, &w)) in scores.iter().zip(&want.errors).enumerate() {
        assert!(
            (got as f64 - w).abs() <= 1e-4 * w.abs(),
            "sample {i}: {got} vs {w}"
        );
    }
    assert_eq!(e.score(&x).unwrap(), scores);
}

/// A training step of the models the speed figures are for stays within 60 dispatches (one
/// compute pass): fmnist-ae, and the conv-ae `lamp train` picks for 128-pixel RGB photos, with
/// the pack launch and, on CPU devices, the per-phase launches of its k3 s2 input gradients.
#[test]
fn a_training_step_stays_within_60_dispatches() {
    for arch in [Arch::fmnist_ae(), Arch::for_images(3, 128).unwrap()] {
        let mut e =
            Engine::new(device(), arch.clone(), LossConfig::lamp(), 2, &arch.init(0)).unwrap();
        let n = e.step_dispatches(2).unwrap();
        assert!(n <= 60, "{}: {n} dispatches a step", arch.describe());
    }
}
