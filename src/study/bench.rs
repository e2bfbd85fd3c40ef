//! `lamp bench`: the figures a user runs on their own machine. A device probe (lamp's own GEMM
//! kernel at 1024³ and buffer-copy bandwidth), every kernel of a training step at the models'
//! real shapes, whole training steps, and scoring. Each measurement is validated first, then
//! timed with synchronised host clocks (submit, wait) after a warm-up: the median of the runs and
//! their spread (min–max) are reported.

use crate::device::Device;
use crate::engine::{fitting_batch, Arenas, Engine, TrainStep};
use crate::error::{Error, Result};
use crate::kernels::{GemmCore, GemmMode, GemmSpec, Layout, View};
use crate::model::{Act, Arch, LossConfig};
use crate::rng::SplitMix64;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

#[derive(Serialize, Clone, Debug)]
pub struct Timing {
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

fn time(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    let mut t = time_alternately(reps, 1, |_| f())?;
    Ok(t.remove(0))
}

/// `n` variants of a measurement timed in turn (0, 1, .., n−1, 0, 1, ..), so that a comparison
/// between them is not a comparison between two moments of a noisy machine.
fn time_alternately(
    reps: usize,
    n: usize,
    mut f: impl FnMut(usize) -> Result<()>,
) -> Result<Vec<Timing>> {
    for i in 0..n {
        f(i)?; // warm-up
    }
    let mut t = vec![Vec::with_capacity(reps); n];
    for _ in 0..reps.max(1) {
        for (i, ti) in t.iter_mut().enumerate() {
            let t0 = Instant::now();
            f(i)?;
            ti.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(t.into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            Timing {
                median_ms: t[t.len() / 2],
                min_ms: t[0],
                max_ms: t[t.len() - 1],
            }
        })
        .collect())
}

#[derive(Serialize, Debug)]
pub struct Probe {
    pub gemm_gflops: f64,
    pub gemm: Timing,
    pub copy_gbps: f64,
}

#[derive(Serialize, Debug)]
pub struct KernelRow {
    pub model: String,
    pub batch: usize,
    pub kernel: String,
    pub ms: f64,
    pub gflops: f64,
    pub pct_of_probe: f64,
}

#[derive(Serialize, Debug)]
pub struct StepRow {
    pub model: String,
    pub batch: usize,
    /// The samples: "whole images", or "flipped and rotated" (augmentation's views).
    pub views: &'static str,
    pub step: Timing,
    pub images_per_s: f64,
    /// Dispatches of one step.
    pub dispatches: usize,
    /// Steps recorded into one command buffer (one submit).
    pub steps_per_submit: usize,
    pub gflops: f64,
    pub pct_of_probe: f64,
}

#[derive(Serialize, Debug)]
pub struct ScoreRow {
    pub model: String,
    pub batch: usize,
    pub images_per_s: f64,
    pub latency_one_ms: f64,
    /// A process's first image: a fresh device (nothing compiled yet; the driver's own caches
    /// may hold machine code), the engine and one score — `lamp score MODEL one.png` less
    /// reading the files.
    pub first_image_ms: f64,
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub device: String,
    /// The GEMM core used (kernels::gemm::GemmCore): "plain", "subgroup" or "tiled".
    pub gemm_core: String,
    /// The activations' layout ("grouped" or "plain", `LAMP_LAYOUT`).
    pub layout: String,
    pub timing: &'static str,
    pub kernel_timing: &'static str,
    pub probe: Probe,
    pub kernels: Vec<KernelRow>,
    pub steps: Vec<StepRow>,
    pub scoring: Vec<ScoreRow>,
}

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut r = SplitMix64::new(seed);
    (0..n).map(|_| r.next_f64() as f32).collect()
}

/// lamp's GEMM kernel as a 1024×1024×1024 matrix product (the linear-layer indexing), validated
/// on sampled elements against f64 dot products, then timed.
fn probe(g: &Device, reps: usize) -> Result<Probe> {
    let n = 1024u32;
    let spec = GemmSpec {
        mode: GemmMode::Conv,
        batch: n,
        g: [n, 1, 1],
        q: [n, 1, 1],
        kernel: [1, 1],
        stride: 1,
        pad: 0,
        w_off: 0,
        g_off: 0,
        q_off: n * n,
        bias_off: None,
        act: Act::Identity,
        backward_h_off: None,
        k_split: 1,
        lane_parts: 1,
        partial_off: 0,
        // The scalar path, as the probe always measured (a yardstick of the machine's speed
        // across runs); the layers' vec4 paths are timed in the steps and kernels.
        g_layout: Layout::Plain,
        q_layout: Layout::Plain,
        packed: None,
        phase: None,
    };
    let nn = (n * n) as usize;
    let a = Arenas::new(g, nn, 2 * nn, 8)?;
    let (w, x) = (random(nn, 1), random(nn, 2));
    g.queue.write_buffer(&a.params, 0, bytemuck::cast_slice(&w));
    g.queue.write_buffer(&a.acts, 0, bytemuck::cast_slice(&x));
    let d = [spec.dispatch(g, "probe gemm")?];
    a.submit(g, &[&d]);
    let out = g.read_f32(&a.acts, nn, nn)?;
    // out[b, m] = sum_i w[m, i] * x[b, i]
    for (b, m) in [(0usize, 0usize), (17, 1000), (1023, 511), (512, 3)] {
        let want: f64 = (0..n as usize)
            .map(|i| w[m * n as usize + i] as f64 * x[b * n as usize + i] as f64)
            .sum();
        let got = out[b * n as usize + m] as f64;
        if ((got - want) / want).abs() > 1e-4 {
            return Err(Error::Device(format!(
                "probe GEMM wrong at ({b}, {m}): {got} vs {want}"
            )));
        }
    }
    let gemm = time(reps, || {
        a.submit(g, &[&d]);
        g.wait()
    })?;
    let gemm_gflops = spec.flops() / gemm.median_ms / 1e6;
    // Copy bandwidth: 64 MiB buffer to buffer (read + write counted).
    let bytes = 64u64 << 20;
    let src = g.storage("copy src", (bytes / 4) as usize);
    let dst = g.storage("copy dst", (bytes / 4) as usize);
    let copy = time(reps, || {
        let mut enc = g.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes);
        g.queue.submit([enc.finish()]);
        g.wait()
    })?;
    Ok(Probe {
        gemm_gflops,
        gemm,
        copy_gbps: 2.0 * bytes as f64 / copy.median_ms / 1e6,
    })
}

/// What to measure.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Fewer repetitions, batch 16 only (a smoke test).
    pub quick: bool,
    /// Only fmnist-ae (skip the conv-ae kernels at 128 and 256 pixels).
    pub fmnist_only: bool,
}

/// Runs every measurement.
pub fn run(g: Arc<Device>, opt: Options) -> Result<Report> {
    let quick = opt.quick;
    let reps = if quick { 2 } else { 5 };
    let probe = probe(&g, reps)?;
    let peak = probe.gemm_gflops;
    // The amplified loss: what lamp's kernels exist for.
    let loss = LossConfig::lamp();
    let mut models = vec![(Arch::fmnist_ae(), 64usize)];
    if !quick && !opt.fmnist_only {
        models.push((Arch::conv_ae(3, 128, vec![32, 64, 128, 128], 128)?, 16));
        models.push((Arch::conv_ae(3, 256, vec![32, 64, 128, 128, 128], 128)?, 4));
    }
    let mut kernels = Vec::new();
    let mut kernel_timing = "host clock around submit + wait, median";
    for (arch, batch) in &models {
        let label = label(arch);
        let mut e = Engine::new(g.clone(), arch.clone(), loss, *batch, &arch.init(0))?;
        let n = *batch;
        e.upload_dataset(&random(n * arch.input_len(), 3), n)?;
        e.set_order(&(0..n as u32).collect::<Vec<_>>())?;
        e.train_step(0, n)?;
        let st = e.wait_stats()?;
        if !st.loss.is_finite() {
            return Err(Error::Device(format!(
                "{label}: training step gave a non-finite loss"
            )));
        }
        if e.has_timestamps() {
            kernel_timing = "GPU timestamps at the compute pass's beginning and end, median";
        }
        for (name, secs, flops) in e.profile_step(n, reps)? {
            let gflops = flops / secs / 1e9;
            kernels.push(KernelRow {
                model: label.clone(),
                batch: n,
                kernel: name,
                ms: secs * 1e3,
                gflops,
                pct_of_probe: 100.0 * gflops / peak,
            });
        }
    }
    let fmnist = Arch::fmnist_ae();
    let batches: &[usize] = if quick { &[16] } else { &[16, 64, 256] };
    let mut steps = train_steps(&g, &fmnist, batches, 1024, quick, reps, peak)?;
    let mut scoring = vec![score_row(
        &g,
        &fmnist,
        256,
        if quick { 256 } else { 1024 },
        reps,
    )?];
    if !quick && !opt.fmnist_only {
        // The size users train at (conv-ae 128, batch 16), fewer repetitions: a step is slow on a CPU.
        let big = Arch::conv_ae(3, 128, vec![32, 64, 128, 128], 128)?;
        steps.extend(train_steps(&g, &big, &[16], 64, true, 3, peak)?);
        // Scoring at the largest batch up to 64 that the device binds (30 on lavapipe's 128 MiB).
        let b = fitting_batch(&g, &big, LossConfig::lamp(), 64).max(1);
        scoring.push(score_row(&g, &big, b, 2 * b, 3)?);
    }
    Ok(Report {
        device: g.describe(),
        gemm_core: GemmCore::best(&g).name().to_string(),
        layout: crate::engine::layout::layout_name().to_string(),
        timing: "host clock around submit + wait (median of runs after a warm-up)",
        kernel_timing,
        probe,
        kernels,
        steps,
        scoring,
    })
}

fn label(arch: &Arch) -> String {
    format!(
        "{} {}x{}x{}",
        arch.name, arch.channels, arch.size, arch.size
    )
}

const WHOLE: &str = "whole images";
const AUGMENTED: &str = "flipped and rotated";

/// Whole training steps of `arch` at each batch size on `n_data` random resident images, grouped
/// as training groups them (`LAMP_STEPS_PER_SUBMIT`); at batch 64 also on flipped and rotated
/// views (augmentation) and one step per submit. `few`: 2 steps per timing instead of 8.
fn train_steps(
    g: &Arc<Device>,
    arch: &Arch,
    batches: &[usize],
    n_data: usize,
    few: bool,
    reps: usize,
    peak: f64,
) -> Result<Vec<StepRow>> {
    let loss = LossConfig::lamp();
    let whole: Vec<View> = (0..n_data as u32).map(View::whole).collect();
    let mut rng = SplitMix64::new(6);
    let augmented: Vec<View> = whole
        .iter()
        .map(|v| View {
            op: rng.below(8) as u32,
            ..*v
        })
        .collect();
    let mut steps = Vec::new();
    // One timing = `per` steps, then one wait.
    let per = if few { 2 } else { 8 };
    for &b in batches {
        let mut e = Engine::new(g.clone(), arch.clone(), loss, b, &arch.init(0))?;
        e.upload_dataset(&random(n_data * arch.input_len(), 4), n_data)?;
        let grouped = crate::engine::steps_per_submit_from_env()?.min(per);
        let mut variants = vec![(WHOLE, &whole[..], grouped)];
        if b == 64 {
            // Augmentation's views, and the same steps submitted one by one.
            variants.push((AUGMENTED, &augmented[..], grouped));
            if grouped > 1 {
                variants.push((WHOLE, &whole[..], 1));
            }
        }
        let mut off = 0;
        // The variants take turns, so that each is read against steps of the same moment.
        let timings = time_alternately(reps, variants.len(), |i| {
            let (_, views, per_submit) = variants[i];
            e.set_epoch(views)?;
            e.set_steps_per_submit(per_submit);
            let lr = e.optimizer.lr();
            let group: Vec<TrainStep> = (0..per)
                .map(|_| {
                    let offset = off;
                    off = (off + b) % (n_data - b + 1);
                    TrainStep {
                        offset,
                        batch: b,
                        lr,
                    }
                })
                .collect();
            e.train_steps(&group)?;
            e.device.wait()
        })?;
        for (&(views, _, steps_per_submit), t) in variants.iter().zip(timings) {
            let step_ms = t.median_ms / per as f64;
            let gflops = e.step_flops(b) / step_ms / 1e6;
            steps.push(StepRow {
                model: label(arch),
                batch: b,
                views,
                images_per_s: b as f64 / step_ms * 1e3,
                dispatches: e.step_dispatches(b)?,
                steps_per_submit,
                gflops,
                pct_of_probe: 100.0 * gflops / peak,
                step: Timing {
                    median_ms: step_ms,
                    min_ms: t.min_ms / per as f64,
                    max_ms: t.max_ms / per as f64,
                },
            });
        }
    }
    Ok(steps)
}

/// Scoring `n` random images at batch `b`, and the latency of one image alone.
fn score_row(g: &Arc<Device>, arch: &Arch, b: usize, n: usize, reps: usize) -> Result<ScoreRow> {
    let loss = LossConfig::lamp();
    let x = random(n * arch.input_len(), 5);
    let mut e = Engine::new(g.clone(), arch.clone(), loss, b, &arch.init(0))?;
    let t = time(reps, || e.score(&x).map(|_| ()))?;
    let mut one = Engine::new(g.clone(), arch.clone(), loss, 1, &arch.init(0))?;
    let x1 = &x[..arch.input_len()];
    let t1 = time(reps * 2, || one.score(x1).map(|_| ()))?;
    let t0 = std::time::Instant::now();
    let fresh = Arc::new(Device::new(Some(&g.info.name))?);
    let mut cold = Engine::new(fresh, arch.clone(), loss, 1, &arch.init(0))?;
    cold.score(x1)?;
    let first_image_ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(ScoreRow {
        model: label(arch),
        batch: b,
        images_per_s: n as f64 / t.median_ms * 1e3,
        latency_one_ms: t1.median_ms,
        first_image_ms,
    })
}

/// The report as readable text.
pub fn text(r: &Report) -> String {
    let mut s = format!(
        "device: {}\nGEMM core: {}, activation layout: {}\ntiming: {}\n\n",
        r.device, r.gemm_core, r.layout, r.timing
    );
    s += &format!(
        "probe: GEMM 1024^3 {:.2} GFLOP/s (median {:.1} ms, {:.1}-{:.1}); copy {:.2} GB/s\n\n",
        r.probe.gemm_gflops,
        r.probe.gemm.median_ms,
        r.probe.gemm.min_ms,
        r.probe.gemm.max_ms,
        r.probe.copy_gbps
    );
    s += &format!(
        "kernels of one training step (each alone; {}; %probe: the kernel's rate against the \
         probe's, above 100% where its shape suits this device better than 1024^3 does):\n",
        r.kernel_timing
    );
    s += &format!(
        "  {:28} {:>5} {:32} {:>9} {:>8} {:>7}\n",
        "model", "batch", "kernel", "ms", "GFLOP/s", "%probe"
    );
    for k in &r.kernels {
        // Kernels that do no multiply-adds (gather, loss, Adam, sums) have no rate to show.
        let (rate, pct) = if k.gflops > 0.0 {
            (
                format!("{:.2}", k.gflops),
                format!("{:.1}%", k.pct_of_probe),
            )
        } else {
            ("-".into(), "-".into())
        };
        s += &format!(
            "  {:28} {:>5} {:32} {:>9.2} {:>8} {:>7}\n",
            k.model, k.batch, k.kernel, k.ms, rate, pct
        );
    }
    s += "\ntraining steps (gather, forward, loss, backward, Adam; several recorded into one \
          submit):\n";
    for t in &r.steps {
        s += &format!(
            "  {} batch {:>3}, {}, {} per submit: {:8.1} img/s, {:.2} ms/step ({:.2}-{:.2}), {} dispatches, {:.2} GFLOP/s = {:.1}% of probe\n",
            t.model, t.batch, t.views, match t.steps_per_submit {
                1 => "1 step".to_string(),
                k => format!("{k} steps"),
            }, t.images_per_s, t.step.median_ms, t.step.min_ms, t.step.max_ms, t.dispatches, t.gflops, t.pct_of_probe
        );
        // Each variant against the default row it differs from (timed in alternating runs).
        let base = r.steps.iter().find(|w| {
            w.model == t.model
                && w.batch == t.batch
                && w.views == WHOLE
                && if t.views != WHOLE {
                    w.steps_per_submit == t.steps_per_submit
                } else {
                    t.steps_per_submit == 1 && w.steps_per_submit > 1
                }
        });
        let Some(w) = base else {
            continue;
        };
        let what = if t.views != WHOLE {
            "augmentation's cost"
        } else {
            "one step per submit"
        };
        // A difference smaller than either's spread (fastest to slowest run) is this machine's
        // noise.
        let diff = t.step.median_ms - w.step.median_ms;
        let spread = (t.step.max_ms - t.step.min_ms).max(w.step.max_ms - w.step.min_ms);
        s += &format!(
            "    {what}: {:+.1}% time per step against {}{}\n",
            100.0 * diff / w.step.median_ms,
            if t.views != WHOLE {
                "the same steps without it"
            } else {
                "the steps grouped"
            },
            if diff.abs() < spread {
                ", within the runs' spread"
            } else {
                ""
            }
        );
    }
    for sc in &r.scoring {
        s += &format!(
            "\nscoring {} batch {}: {:.1} img/s; one image: {:.2} ms; a process's first image \
             (fresh device, pipelines compiled): {:.0} ms\n",
            sc.model, sc.batch, sc.images_per_s, sc.latency_one_ms, sc.first_image_ms
        );
    }
    s
}
