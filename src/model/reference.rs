//! Plain CPU loops in f64 for everything the kernels compute: the oracle of the tests and of the
//! benches' validation. Written from the definitions (each backward as the scatter of its
//! forward's multiply-adds), not from the GPU's implicit-GEMM indexings, so the two are
//! independent. Production code never calls it (tests/architecture.rs checks).

use super::arch::Arch;
use super::layer::{Act, Layer, LayerKind};
use super::loss::{Amp, Granularity, LossConfig, Metric, CLAMP_MAX};
use super::optimizer::{AdamConfig, SgdConfig};
use super::ssim::{gauss11, map_side, ssim_window, SsimWindow, WINDOW};

/// Geometry of one convolution-like layer on one batch.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeom {
    pub batch: usize,
    pub input: [usize; 3],
    pub output: [usize; 3],
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeom {
    pub fn of(l: &Layer, batch: usize) -> ConvGeom {
        ConvGeom {
            batch,
            input: l.input.map(|v| v as usize),
            output: l.output.map(|v| v as usize),
            kernel: l.kernel as usize,
            stride: l.stride as usize,
            pad: l.pad as usize,
        }
    }

    /// Calls f(n, ci, iy, ix, co, oy, ox, weight index) for every multiply-add of the layer.
    /// Conv: w [co, ci, kh, kw], input tap iy = oy*s - p + kh.
    /// ConvTranspose: w [ci, co, kh, kw], output oy = iy*s - p + kh.
    fn for_each_tap(&self, transposed: bool, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
        let [ci_n, ih_n, iw_n] = self.input;
        let [co_n, oh_n, ow_n] = self.output;
        let k = self.kernel;
        for n in 0..self.batch {
            for co in 0..co_n {
                for ci in 0..ci_n {
                    for kh in 0..k {
                        for kw in 0..k {
                            let widx = if transposed {
                                ((ci * co_n + co) * k + kh) * k + kw
                            } else {
                                ((co * ci_n + ci) * k + kh) * k + kw
                            };
                            if transposed {
                                for iy in 0..ih_n {
                                    let oy = (iy * self.stride + kh) as isize - self.pad as isize;
                                    if oy < 0 || oy >= oh_n as isize {
                                        continue;
                                    }
                                    for ix in 0..iw_n {
                                        let ox =
                                            (ix * self.stride + kw) as isize - self.pad as isize;
                                        if ox < 0 || ox >= ow_n as isize {
                                            continue;
                                        }
                                        let i = ((n * ci_n + ci) * ih_n + iy) * iw_n + ix;
                                        let o = ((n * co_n + co) * oh_n + oy as usize) * ow_n
                                            + ox as usize;
                                        f(i, o, widx, co, 0);
                                    }
                                }
                            } else {
                                for oy in 0..oh_n {
                                    let iy = (oy * self.stride + kh) as isize - self.pad as isize;
                                    if iy < 0 || iy >= ih_n as isize {
                                        continue;
                                    }
                                    for ox in 0..ow_n {
                                        let ix =
                                            (ox * self.stride + kw) as isize - self.pad as isize;
                                        if ix < 0 || ix >= iw_n as isize {
                                            continue;
                                        }
                                        let i = ((n * ci_n + ci) * ih_n + iy as usize) * iw_n
                                            + ix as usize;
                                        let o = ((n * co_n + co) * oh_n + oy) * ow_n + ox;
                                        f(i, o, widx, co, 0);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn is_transposed(kind: LayerKind) -> bool {
    kind == LayerKind::ConvTranspose
}

/// Pre-activation output z = layer(x) + b.
pub fn layer_forward(
    kind: LayerKind,
    g: &ConvGeom,
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
) -> Vec<f64> {
    let [co_n, oh, ow] = g.output;
    let mut z = vec![0.0; g.batch * co_n * oh * ow];
    g.for_each_tap(is_transposed(kind), |i, o, widx, _, _| {
        z[o] += w[widx] * x[i]
    });
    if let Some(b) = b {
        for (o, v) in z.iter_mut().enumerate() {
            *v += b[(o / (oh * ow)) % co_n];
        }
    }
    z
}

/// Gradients of a layer from dz (gradient of its pre-activation output): (dx, dw, db).
pub fn layer_backward(
    kind: LayerKind,
    g: &ConvGeom,
    x: &[f64],
    w: &[f64],
    dz: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let [co_n, oh, ow] = g.output;
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    g.for_each_tap(is_transposed(kind), |i, o, widx, _, _| {
        dx[i] += w[widx] * dz[o];
        dw[widx] += x[i] * dz[o];
    });
    let mut db = vec![0.0; co_n];
    for (o, v) in dz.iter().enumerate() {
        db[(o / (oh * ow)) % co_n] += v;
    }
    (dx, dw, db)
}

pub fn act_forward(act: Act, z: f64) -> f64 {
    match act {
        Act::Identity => z,
        Act::LeakyRelu(a) => {
            if z > 0.0 {
                z
            } else {
                a as f64 * z
            }
        }
        Act::Relu => z.max(0.0),
        Act::Sigmoid => 1.0 / (1.0 + (-z).exp()),
    }
}

/// Derivative of the activation from its output h (what the GPU has at hand).
pub fn act_backward(act: Act, h: f64) -> f64 {
    match act {
        Act::Identity => 1.0,
        Act::LeakyRelu(a) => {
            if h > 0.0 {
                1.0
            } else {
                a as f64
            }
        }
        Act::Relu => {
            if h > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Act::Sigmoid => h * (1.0 - h),
    }
}

pub fn amp_value(amp: Amp, e: f64) -> f64 {
    match amp {
        Amp::None => e,
        Amp::Lamp => -(1.0 - e.clamp(0.0, CLAMP_MAX)).ln(),
    }
}

pub fn amp_grad(amp: Amp, e: f64) -> f64 {
    match amp {
        Amp::None => 1.0,
        Amp::Lamp if (0.0..=CLAMP_MAX).contains(&e) => 1.0 / (1.0 - e),
        Amp::Lamp => 0.0,
    }
}

/// What the loss produces: the loss, each sample's plain error, the clamp count and dL/dy.
#[derive(Clone, Debug)]
pub struct LossOut {
    pub loss: f64,
    pub errors: Vec<f64>,
    pub clamps: f64,
    pub dy: Vec<f64>,
}

/// Per-element errors of one sample and de/dy as a sparse Jacobian-vector product helper:
/// returns (e, backprop) where backprop(de) gives dL/dy for the sample from dL/de.
fn sample_errors(metric: Metric, shape: [usize; 3], x: &[f64], y: &[f64]) -> (Vec<f64>, SampleJac) {
    match metric {
        Metric::Mae | Metric::Mse => {
            let mut e = Vec::with_capacity(x.len());
            let mut d = Vec::with_capacity(x.len());
            for (xv, yv) in x.iter().zip(y) {
                let diff = yv - xv;
                if metric == Metric::Mae {
                    e.push(diff.abs());
                    d.push(if diff > 0.0 {
                        1.0
                    } else if diff < 0.0 {
                        -1.0
                    } else {
                        0.0
                    });
                } else {
                    e.push(diff * diff);
                    d.push(2.0 * diff);
                }
            }
            (e, SampleJac::Diagonal(d))
        }
        Metric::Ssim => {
            let [c_n, h, w] = shape;
            let (mh, mw) = (map_side(h), map_side(w));
            let mut e = Vec::with_capacity(c_n * mh * mw);
            let mut coef = Vec::with_capacity(c_n * mh * mw);
            for c in 0..c_n {
                for py in 0..mh {
                    for px in 0..mw {
                        let base = (c * h + py) * w + px;
                        let SsimWindow {
                            s,
                            mx,
                            my,
                            a1,
                            a2,
                            b1,
                            b2,
                        } = ssim_window(|q| x[q], |q| y[q], w, base);
                        e.push((1.0 - s) / 2.0);
                        let ds_dmy = 2.0 * mx * a2 / (b1 * b2) - s * 2.0 * my / b1;
                        let ds_dvy = -s / b2;
                        let ds_dcxy = 2.0 * a1 / (b1 * b2);
                        // dS/dy_q = w(q-p) (ds_dmy + ds_dvy (2 y_q - 2 my) + ds_dcxy (x_q - mx))
                        coef.push([ds_dmy, ds_dvy, ds_dcxy, mx, my]);
                    }
                }
            }
            (e, SampleJac::Ssim { coef, shape })
        }
    }
}

enum SampleJac {
    Diagonal(Vec<f64>),
    Ssim {
        coef: Vec<[f64; 5]>,
        shape: [usize; 3],
    },
}

impl SampleJac {
    fn backprop(&self, de: &[f64], x: &[f64], y: &[f64]) -> Vec<f64> {
        match self {
            SampleJac::Diagonal(d) => d.iter().zip(de).map(|(a, b)| a * b).collect(),
            SampleJac::Ssim { coef, shape } => {
                let [c_n, h, w] = *shape;
                let (mh, mw) = (map_side(h), map_side(w));
                let g = gauss11();
                let mut dy = vec![0.0; x.len()];
                for c in 0..c_n {
                    for py in 0..mh {
                        for px in 0..mw {
                            let p = (c * mh + py) * mw + px;
                            // e = (1 - S)/2, so dL/dS = -dL/de / 2.
                            let ds = -0.5 * de[p];
                            let [dmy, dvy, dcxy, mx, my] = coef[p];
                            for a in 0..WINDOW {
                                for b in 0..WINDOW {
                                    let q = (c * h + py + a) * w + px + b;
                                    let wt = g[a] * g[b];
                                    dy[q] += ds
                                        * wt
                                        * (dmy
                                            + dvy * (2.0 * y[q] - 2.0 * my)
                                            + dcxy * (x[q] - mx));
                                }
                            }
                        }
                    }
                }
                dy
            }
        }
    }
}

/// The amplified loss of a batch and its gradient with respect to the reconstruction y.
pub fn loss(cfg: LossConfig, shape: [usize; 3], batch: usize, x: &[f64], y: &[f64]) -> LossOut {
    let p = shape.iter().product::<usize>();
    let per: Vec<(Vec<f64>, SampleJac)> = (0..batch)
        .map(|i| sample_errors(cfg.metric, shape, &x[i * p..][..p], &y[i * p..][..p]))
        .collect();
    let errors: Vec<f64> = per
        .iter()
        .map(|(e, _)| e.iter().sum::<f64>() / e.len() as f64)
        .collect();
    let mean_l = errors.iter().sum::<f64>() / batch as f64;
    let (loss, clamps) = match (cfg.amp, cfg.granularity) {
        (Amp::None, _) => (mean_l, 0.0),
        (Amp::Lamp, Granularity::Element) => {
            let s: f64 = per
                .iter()
                .map(|(e, _)| {
                    e.iter().map(|&v| amp_value(cfg.amp, v)).sum::<f64>() / e.len() as f64
                })
                .sum();
            let c = per
                .iter()
                .flat_map(|(e, _)| e.iter())
                .filter(|&&v| v > CLAMP_MAX)
                .count();
            (s / batch as f64, c as f64)
        }
        (Amp::Lamp, Granularity::Sample) => {
            let s: f64 = errors.iter().map(|&l| amp_value(cfg.amp, l)).sum();
            (
                s / batch as f64,
                errors.iter().filter(|&&l| l > CLAMP_MAX).count() as f64,
            )
        }
        (Amp::Lamp, Granularity::Batch) => (
            amp_value(cfg.amp, mean_l),
            if mean_l > CLAMP_MAX { 1.0 } else { 0.0 },
        ),
    };
    let mut dy = Vec::with_capacity(batch * p);
    for (i, (e, jac)) in per.iter().enumerate() {
        let pe = e.len() as f64;
        let base = 1.0 / (batch as f64 * pe);
        let de: Vec<f64> = e
            .iter()
            .map(|&v| match (cfg.amp, cfg.granularity) {
                (Amp::None, _) => base,
                (Amp::Lamp, Granularity::Element) => base * amp_grad(cfg.amp, v),
                (Amp::Lamp, Granularity::Sample) => base * amp_grad(cfg.amp, errors[i]),
                (Amp::Lamp, Granularity::Batch) => base * amp_grad(cfg.amp, mean_l),
            })
            .collect();
        dy.extend(jac.backprop(&de, &x[i * p..][..p], &y[i * p..][..p]));
    }
    LossOut {
        loss,
        errors,
        clamps,
        dy,
    }
}

/// Every activation of a forward pass: `acts[0]` is the input, `acts[l + 1]` the output of layer l.
pub fn model_forward(arch: &Arch, params: &[f64], x: &[f64], batch: usize) -> Vec<Vec<f64>> {
    let table = arch.param_table();
    let mut acts = vec![x.to_vec()];
    for l in arch.layers() {
        let (w, b) = table.layer(&l.name).expect("weight and bias");
        let z = layer_forward(
            l.kind,
            &ConvGeom::of(&l, batch),
            acts.last().expect("input"),
            &params[w.offset..][..w.len()],
            Some(&params[b.offset..][..b.len()]),
        );
        acts.push(z.into_iter().map(|v| act_forward(l.act, v)).collect());
    }
    acts
}

/// The whole model's loss and gradient (in the arena's layout) for one batch.
pub fn model_grad(
    arch: &Arch,
    cfg: LossConfig,
    params: &[f64],
    x: &[f64],
    batch: usize,
) -> (LossOut, Vec<f64>) {
    let table = arch.param_table();
    let layers = arch.layers();
    let acts = model_forward(arch, params, x, batch);
    let shape = arch.input_shape().map(|v| v as usize);
    let recon = acts.last().expect("output");
    let out = loss(cfg, shape, batch, x, recon);
    let mut grads = vec![0.0; params.len()];
    // dz of the last layer: dL/dy through its activation.
    let last = layers.last().expect("layers");
    let mut dz: Vec<f64> = out
        .dy
        .iter()
        .zip(recon)
        .map(|(d, h)| d * act_backward(last.act, *h))
        .collect();
    for (li, l) in layers.iter().enumerate().rev() {
        let (w, b) = table.layer(&l.name).expect("weight and bias");
        let (dx, dw, db) = layer_backward(
            l.kind,
            &ConvGeom::of(l, batch),
            &acts[li],
            &params[w.offset..][..w.len()],
            &dz,
        );
        grads[w.offset..][..w.len()].copy_from_slice(&dw);
        grads[b.offset..][..b.len()].copy_from_slice(&db);
        if li > 0 {
            let prev = &layers[li - 1];
            dz = dx
                .iter()
                .zip(&acts[li])
                .map(|(d, h)| d * act_backward(prev.act, *h))
                .collect();
        }
    }
    (out, grads)
}

/// One Adam step t (1-based) in closed form, PyTorch semantics.
pub fn adam_step(cfg: &AdamConfig, t: u32, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
    let bc1 = 1.0 - cfg.beta1.powi(t as i32);
    let bc2 = 1.0 - cfg.beta2.powi(t as i32);
    for i in 0..p.len() {
        let gi = g[i] + cfg.weight_decay * p[i];
        m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * gi;
        v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * gi * gi;
        let m_hat = m[i] / bc1;
        let v_hat = v[i] / bc2;
        p[i] -= cfg.lr * m_hat / (v_hat.sqrt() + cfg.eps);
    }
}

/// One step of SGD with momentum in closed form, PyTorch semantics (dampening 0, not Nesterov);
/// `buf` is the momentum buffer.
pub fn sgd_step(cfg: &SgdConfig, p: &mut [f64], g: &[f64], buf: &mut [f64]) {
    for i in 0..p.len() {
        let gi = g[i] + cfg.weight_decay * p[i];
        buf[i] = cfg.momentum * buf[i] + gi;
        p[i] -= cfg.lr * buf[i];
    }
}
