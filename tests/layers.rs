//! Each layer's kernels — forward, input gradient, weight gradient (whole and split-K) and bias
//! gradient, with every GEMM core the device has — against the f64 reference
//! (lamp::model::reference), on random non-zero inputs at shapes that are not multiples of the
//! tile sizes. Outputs are poisoned with NaN before each launch, so an element a kernel fails to
//! write fails the test. The cases are named tables: a row per shape that matters.
//!
//! Tolerance: relative L2 error ≤ 1e-5 (f32 accumulation over the sizes used here stays well
//! below it).

mod common;
use common::*;
use lamp::engine::Arenas;
use lamp::kernels::{layer, split_k, GemmCore, GemmSpec, LayerOffsets, SplitK};
use lamp::model::reference::{self, ConvGeom};
use lamp::model::{Act, Layer, LayerKind};

const TOL: f64 = 1e-5;
const LEAKY: Act = Act::LeakyRelu(0.2);

/// One row of a table: a named layer on a batch; `below` is the activation of the layer under
/// it (whose derivative the input gradient applies).
struct Case {
    name: &'static str,
    layer: Layer,
    batch: usize,
    below: Act,
    seed: u64,
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
fn case(name: &'static str, layer: Layer, batch: usize, below: Act, seed: u64) -> Case {
    Case {
        name,
        layer,
        batch,
        below,
        seed,
    }
}

fn conv_cases() -> Vec<Case> {
    vec![
        case(
            "fmnist enc1",
            conv([1, 28, 28], [32, 14, 14], 3, 2, 1, LEAKY),
            3,
            Act::Identity,
            1,
        ),
        case(
            "odd 13x11, relu",
            conv(
                [5, 13, 11],
                [7, co(13, 3, 2, 1), co(11, 3, 2, 1)],
                3,
                2,
                1,
                Act::Relu,
            ),
            3,
            LEAKY,
            2,
        ),
        case(
            "k5 s1 p2, 33 out",
            conv(
                [3, 9, 10],
                [33, co(9, 5, 1, 2), co(10, 5, 1, 2)],
                5,
                1,
                2,
                Act::Sigmoid,
            ),
            2,
            Act::Sigmoid,
            3,
        ),
        case(
            "k4 s3 p0",
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
            4,
        ),
        // Wide enough for 8 or 16 rows per invocation, with a partial 64-row tile.
        case(
            "70 out, partial tile",
            conv([5, 13, 11], [70, 7, 6], 3, 2, 1, LEAKY),
            4,
            LEAKY,
            23,
        ),
        case(
            "40 in, 70 out",
            conv([40, 9, 9], [70, 5, 5], 3, 2, 1, LEAKY),
            3,
            LEAKY,
            24,
        ),
        // Long bias sums (3 × 900 > 2048): bias_grad's workgroup-per-channel path; the other
        // rows take its one-invocation-per-channel path.
        case(
            "long bias sums",
            conv([2, 30, 30], [5, 30, 30], 3, 1, 1, Act::Relu),
            3,
            Act::Identity,
            25,
        ),
        // Its input gradient (conv-T phases: 36 rows, k = 360, 768 columns) takes 32 rows per
        // invocation with the wide entry, 16 without, with a partial row tile.
        case(
            "wide input gradient",
            conv([36, 16, 16], [40, 8, 8], 3, 2, 1, LEAKY),
            3,
            LEAKY,
            28,
        ),
        // fmnist-ae's enc1 at a batch that splits unevenly: 9 x 14 rows (n, y) into 4 parts of 32, 32,
        // 32 and 30, across samples.
        case(
            "enc1, split-K 9",
            conv([1, 28, 28], [32, 14, 14], 3, 2, 1, LEAKY),
            9,
            Act::Identity,
            26,
        ),
    ]
}

fn conv_t_cases() -> Vec<Case> {
    vec![
        case(
            "fmnist dec2",
            convt([64, 7, 7], [32, 14, 14], 4, 2, 1, LEAKY),
            2,
            LEAKY,
            5,
        ),
        case(
            "odd 5x7 to 3 sigmoid",
            convt([6, 5, 7], [3, 10, 14], 4, 2, 1, Act::Sigmoid),
            3,
            Act::Sigmoid,
            6,
        ),
        case(
            "k3 s1, 35 out",
            convt([4, 7, 6], [35, 9, 8], 3, 1, 0, Act::Relu),
            2,
            Act::Identity,
            7,
        ),
        case(
            "k3 s3 p1",
            convt([3, 4, 5], [2, 11, 14], 3, 3, 1, Act::Identity),
            4,
            Act::Relu,
            8,
        ),
        // Wide conv-T phases (36 rows, k = 640, 768 columns): 32 rows per invocation with the
        // wide entry, 16 without, with a partial row tile.
        case(
            "wide phases",
            convt([40, 8, 8], [36, 16, 16], 4, 2, 1, LEAKY),
            3,
            LEAKY,
            29,
        ),
        // Wide both ways at stride 1: the forward (k = 360) and the input gradient (a conv, 40
        // rows, k = 324), each over 768 columns.
        case(
            "wide k3 s1",
            convt([40, 16, 16], [36, 16, 16], 3, 1, 1, Act::Relu),
            3,
            LEAKY,
            30,
        ),
        // fmnist-ae's dec3 at a batch that splits unevenly: 7 x 14 rows (n, y) into 3 parts of 33, 33
        // and 32, across samples.
        case(
            "dec3, split-K 7",
            convt([32, 14, 14], [1, 28, 28], 4, 2, 1, Act::Sigmoid),
            7,
            LEAKY,
            27,
        ),
    ]
}

fn linear_cases() -> Vec<Case> {
    vec![
        case("70 to 37", linear(70, 37, Act::Identity), 5, LEAKY, 9),
        case("fmnist enc3", linear(3136, 32, LEAKY), 3, Act::Identity, 10),
        case(
            "fmnist dec1 shape",
            linear(32, 3136, LEAKY),
            3,
            Act::Identity,
            21,
        ),
        case(
            "batch 1, sigmoid",
            linear(33, 100, Act::Sigmoid),
            1,
            Act::Sigmoid,
            11,
        ),
    ]
}

/// A layer's tensors in test arenas: params [weight | bias];
/// acts [input | output | dz | dz_below | split-K partials].
struct Tensors {
    off: LayerOffsets,
    dz_below: usize,
    w: Vec<f32>,
    b: Vec<f32>,
    x: Vec<f32>,
    dz: Vec<f32>,
}

impl Tensors {
    fn new(c: &Case) -> Tensors {
        let l = &c.layer;
        let wlen: usize = l.weight_shape().iter().product();
        let blen = l.output[0] as usize;
        let (inp, out) = (c.batch * l.in_len(), c.batch * l.out_len());
        Tensors {
            off: LayerOffsets {
                weight: 0,
                bias: wlen as u32,
                input: 0,
                output: inp as u32,
                dz: (inp + out) as u32,
            },
            dz_below: inp + 2 * out,
            w: random(wlen, c.seed, -0.5, 0.5),
            b: random(blen, c.seed + 1, -0.5, 0.5),
            x: random(inp, c.seed + 2, -1.0, 1.0),
            dz: random(out, c.seed + 3, -1.0, 1.0),
        }
    }

    /// Where split-K's partial sums go in acts (after everything else).
    fn partials(&self) -> u32 {
        (self.dz_below + self.x.len()) as u32
    }

    /// Arenas filled with the tensors and NaN everywhere else.
    fn arenas(&self) -> Arenas {
        let dev = device();
        let plen = self.w.len() + self.b.len();
        let alen = self.partials() as usize + split_k::SPLIT_K_SCRATCH_GPU;
        let a = Arenas::new(&dev, plen, alen, 8).unwrap();
        let mut p = self.w.clone();
        p.extend(&self.b);
        dev.queue
            .write_buffer(&a.params, 0, bytemuck::cast_slice(&p));
        dev.queue
            .write_buffer(&a.grads, 0, bytemuck::cast_slice(&vec![f32::NAN; plen]));
        let mut acts = vec![f32::NAN; alen];
        acts[..self.x.len()].copy_from_slice(&self.x);
        acts[self.off.dz as usize..][..self.dz.len()].copy_from_slice(&self.dz);
        dev.queue
            .write_buffer(&a.acts, 0, bytemuck::cast_slice(&acts));
        a
    }
}

/// The launches of `spec` (with split-K, both) one after the other.
fn run(a: &Arenas, spec: &GemmSpec, core: GemmCore) {
    let dev = device();
    let ds = dev
        .checked("gemm", || spec.dispatches_with(&dev, core, "test"))
        .unwrap()
        .unwrap();
    for d in ds {
        dev.checked("submit", || a.submit(&dev, &[&[d]])).unwrap();
    }
}

/// `spec` whole, and split as each policy would split it on `core` (the GPU's too: its split is
/// checked here on any device), where that differs.
fn variants(spec: GemmSpec, partials: u32, core: GemmCore) -> Vec<GemmSpec> {
    let mut v = vec![spec.clone()];
    for policy in [SplitK::FewOutputs, SplitK::Occupancy { target: 1024 }] {
        let split = spec.clone().with_split_k(partials, policy, core);
        if split.k_split > 1 && v.iter().all(|s| s.k_split != split.k_split) {
            v.push(split);
        }
    }
    v
}

fn check_forward(c: &Case) {
    for core in GemmCore::available(&device()) {
        let t = Tensors::new(c);
        let spec = layer::forward(&c.layer, c.batch as u32, &t.off);
        for spec in variants(spec, t.partials(), core) {
            let a = t.arenas();
            run(&a, &spec, core);
            let got = device()
                .read_f32(&a.acts, t.off.output as usize, c.batch * c.layer.out_len())
                .unwrap();
            let z = reference::layer_forward(
                c.layer.kind,
                &ConvGeom::of(&c.layer, c.batch),
                &to_f64(&t.x),
                &to_f64(&t.w),
                Some(&to_f64(&t.b)),
            );
            let want: Vec<f64> = z
                .iter()
                .map(|&v| reference::act_forward(c.layer.act, v))
                .collect();
            let what = format!("{} ({core:?}, split-K parts {})", c.name, spec.k_split);
            assert_close(&format!("forward {what}"), &got, &want, TOL);
        }
    }
}

/// The three gradients with each GEMM core, the weight gradient both whole and, where
/// `with_split_k` applies, split into parts of the batch.
fn check_backward(c: &Case) {
    let dev = device();
    let t = Tensors::new(c);
    let b = c.batch as u32;
    let whole = layer::weight_grad(&c.layer, b, &t.off);
    for core in GemmCore::available(&dev) {
        let ig_whole = layer::input_grad(&c.layer, b, &t.off, t.dz_below as u32, c.below);
        let igs = variants(ig_whole, t.partials(), core);
        let wgs = variants(whole.clone(), t.partials(), core);
        // Every split of either gradient, each with the other whole and split alike.
        for i in 0..wgs.len().max(igs.len()).max(2) {
            let wg = &wgs[i.min(wgs.len() - 1)];
            let ig = &igs[i.min(igs.len() - 1)];
            let a = t.arenas();
            let ds = dev
                .checked("weight grad", || wg.dispatches_with(&dev, core, "test"))
                .unwrap()
                .unwrap();
            for d in ds {
                dev.checked("submit", || a.submit(&dev, &[&[d]])).unwrap();
            }
            run(&a, ig, core);
            // The bias gradient whole in the first variant, split (the GPU's way) in the others.
            let bg = layer::bias_grad(&c.layer, b, &t.off);
            let bg = if i == 0 {
                bg
            } else {
                bg.with_split(t.partials(), SplitK::Occupancy { target: 1024 })
            };
            for d in bg.dispatches(&dev, "bias").unwrap() {
                a.submit(&dev, &[&[d]]);
            }
            let grads = dev.read_f32(&a.grads, 0, t.w.len() + t.b.len()).unwrap();
            let dzb = dev.read_f32(&a.acts, t.dz_below, t.x.len()).unwrap();
            let (dx, dw, db) = reference::layer_backward(
                c.layer.kind,
                &ConvGeom::of(&c.layer, c.batch),
                &to_f64(&t.x),
                &to_f64(&t.w),
                &to_f64(&t.dz),
            );
            // The input x doubles as the stored output of the layer below (for act').
            let want_dzb: Vec<f64> = dx
                .iter()
                .zip(&t.x)
                .map(|(d, &h)| d * reference::act_backward(c.below, h as f64))
                .collect();
            let what = format!(
                "{} ({core:?}, split-K parts {}, {} and {})",
                c.name, wg.k_split, ig.k_split, bg.parts
            );
            assert_close(
                &format!("weight grad {what}"),
                &grads[..t.w.len()],
                &dw,
                TOL,
            );
            assert_close(&format!("bias grad {what}"), &grads[t.w.len()..], &db, TOL);
            assert_close(&format!("input grad {what}"), &dzb, &want_dzb, TOL);
        }
    }
}

#[test]
fn conv2d_forward_matches_reference() {
    conv_cases().iter().for_each(check_forward);
}

#[test]
fn conv2d_backward_matches_reference() {
    conv_cases().iter().for_each(check_backward);
}

#[test]
fn conv_transpose2d_forward_matches_reference() {
    conv_t_cases().iter().for_each(check_forward);
}

#[test]
fn conv_transpose2d_backward_matches_reference() {
    conv_t_cases().iter().for_each(check_backward);
}

#[test]
fn linear_forward_matches_reference() {
    linear_cases().iter().for_each(check_forward);
}

#[test]
fn linear_backward_matches_reference() {
    linear_cases().iter().for_each(check_backward);
}

#[test]
fn split_k_policies_split_where_they_should() {
    let off = LayerOffsets {
        weight: 0,
        bias: 0,
        input: 0,
        output: 0,
        dz: 0,
    };
    let split = |c: &Case, policy: SplitK| {
        layer::weight_grad(&c.layer, c.batch as u32, &off)
            .with_split_k(
                0,
                policy,
                GemmCore::Subgroup {
                    max_size: 32,
                    wide_rows: 16,
                },
            )
            .k_split
    };
    let parts = |c: &Case| split(c, SplitK::FewOutputs);
    let all: Vec<Case> = conv_cases().into_iter().chain(conv_t_cases()).collect();
    let by_name = |n: &str| all.iter().find(|c| c.name == n).unwrap();
    assert_eq!(parts(by_name("enc1, split-K 9")), 4);
    assert_eq!(parts(by_name("dec3, split-K 7")), 3);
    assert_eq!(
        parts(by_name("fmnist dec2")),
        1,
        "64x32x4x4 outputs: no split"
    );
    assert_eq!(
        parts(by_name("fmnist enc1")),
        1,
        "batch 3: too small to split"
    );
    // The GPU policy: as many parts as the reduction's length allows (256 terms each) up to
    // about 1024 workgroups; a short reduction stays whole.
    let gpu = SplitK::Occupancy { target: 1024 };
    assert_eq!(split(by_name("enc1, split-K 9"), gpu), 9 * 14 * 14 / 256);
    assert_eq!(split(by_name("long bias sums"), gpu), 3 * 30 * 30 / 256);
    assert_eq!(split(by_name("fmnist dec2"), gpu), 1, "98 terms: no split");
    // Linear layers split their channels on a GPU (forward and input gradient), never on a CPU;
    // convolutions' forward passes stay whole.
    let lin = linear_cases();
    let enc3 = lin.iter().find(|c| c.name == "fmnist enc3").unwrap();
    let dec1 = lin.iter().find(|c| c.name == "fmnist dec1 shape").unwrap();
    let core = GemmCore::Subgroup {
        max_size: 32,
        wide_rows: 16,
    };
    let fwd = |c: &Case, policy| {
        layer::forward(&c.layer, c.batch as u32, &off)
            .with_split_k(0, policy, core)
            .k_split
    };
    let input_grad = |c: &Case, policy| {
        layer::input_grad(&c.layer, c.batch as u32, &off, 0, Act::Identity)
            .with_split_k(0, policy, core)
            .k_split
    };
    assert_eq!(fwd(enc3, gpu), 3136 / 256);
    assert_eq!(input_grad(dec1, gpu), 3136 / 256);
    assert_eq!(fwd(enc3, SplitK::FewOutputs), 1);
    assert_eq!(input_grad(dec1, SplitK::FewOutputs), 1);
    assert_eq!(fwd(by_name("long bias sums"), gpu), 1);
}

#[test]
fn row_blocks_follow_the_gemm_shape() {
    let off = LayerOffsets {
        weight: 0,
        bias: 0,
        input: 0,
        output: 0,
        dz: 0,
    };
    let rows = |spec: GemmSpec, wide_rows: u32| {
        let core = GemmCore::Subgroup {
            max_size: 8,
            wide_rows,
        };
        spec.constants(core)
            .iter()
            .find(|(k, _)| *k == "TM")
            .map(|(_, v)| *v as u32)
            .unwrap()
    };
    let all: Vec<Case> = conv_cases().into_iter().chain(conv_t_cases()).collect();
    let by_name = |n: &str| all.iter().find(|c| c.name == n).unwrap();
    let fwd = |c: &Case| layer::forward(&c.layer, c.batch as u32, &off);
    let input_grad = |c: &Case| layer::input_grad(&c.layer, c.batch as u32, &off, 0, LEAKY);
    // Conv-T phases and input gradients with a long reduction over many columns take the wide
    // blocks (32 rows on CPU devices, 16 on GPUs); short or narrow ones keep 8.
    let wide = by_name("wide input gradient");
    assert_eq!(rows(input_grad(wide), 32), 32);
    assert_eq!(rows(input_grad(wide), 16), 16);
    assert_eq!(rows(fwd(by_name("wide phases")), 32), 32);
    let s1 = by_name("wide k3 s1");
    assert_eq!(rows(fwd(s1), 32), 32);
    assert_eq!(rows(input_grad(s1), 32), 32);
    let dec2 = by_name("fmnist dec2");
    assert_eq!(rows(fwd(dec2), 32), 8, "392 columns: narrow");
    assert_eq!(rows(input_grad(by_name("40 in, 70 out")), 32), 8);
    // Weight gradients take 16 or 32 rows, except over few columns (a 1-channel input: 9).
    let wgrad = |c: &Case| layer::weight_grad(&c.layer, c.batch as u32, &off);
    assert_eq!(rows(wgrad(by_name("40 in, 70 out")), 32), 16, "360 columns");
    assert_eq!(rows(wgrad(by_name("fmnist enc1")), 32), 8, "9 columns");
    // A linear layer at batch 4 with 128 outputs: 16 rows would make one workgroup (one busy
    // core), 8 make two.
    let lin = linear(256, 128, LEAKY);
    assert_eq!(rows(layer::forward(&lin, 4, &off), 32), 8);
    assert_eq!(
        rows(layer::forward(&linear(256, 256, LEAKY), 4, &off), 32),
        16
    );
}
