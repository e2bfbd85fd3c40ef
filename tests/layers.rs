//! Each layer's kernels — forward, input gradient, weight gradient (whole and split-K) and bias
//! gradient, with every GEMM core the device has, in every layout the tensors can take (plain;
//! grouped where channels divide by 4; a linear layer's flattened grouped maps), the weights
//! packed as the vec4 paths read them — against the f64 reference (lamp::model::reference), on
//! random non-zero inputs at shapes that are not multiples of the tile sizes. Outputs are
//! poisoned with NaN before each launch, so an element a kernel fails to write fails the test.
//! The cases are named tables: a row per shape that matters.
//!
//! Tolerance: relative L2 error ≤ 1e-5 (f32 accumulation over the sizes used here stays well
//! below it).

mod common;
use common::cases::*;
use common::layouts::{from_memory, to_memory};
use common::*;
use lamp::engine::Arenas;
use lamp::kernels::{layer, split_k, GemmCore, GemmSpec, LayerOffsets, Layout, Packing, SplitK};
use lamp::model::reference::{self, ConvGeom};
use lamp::model::Act;

const TOL: f64 = 1e-5;

/// A layer's tensors in test arenas, each region at a multiple of 4 floats (the vec4 paths):
/// params [weight | bias | packed weights]; acts [input | output | dz | dz_below | split-K
/// partials]. `x` and `dz` are in PyTorch's order; the arenas hold them in `layouts`.
struct Tensors {
    off: LayerOffsets,
    dz_below: usize,
    w: Vec<f32>,
    b: Vec<f32>,
    x: Vec<f32>,
    dz: Vec<f32>,
    packing: Packing,
    packed: usize,
    shapes: ([u32; 3], [u32; 3]),
    batch: usize,
}

impl Tensors {
    fn new(c: &Case, (input_layout, output_layout): (Layout, Layout)) -> Tensors {
        let l = &c.layer;
        let wlen: usize = l.weight_shape().iter().product();
        let blen = l.output[0] as usize;
        let (inp, out) = (c.batch * l.in_len(), c.batch * l.out_len());
        let (inp4, out4) = (inp.next_multiple_of(4), out.next_multiple_of(4));
        let dz_below = inp4 + 2 * out4;
        let packed = (wlen + blen).next_multiple_of(4);
        let packing = Packing::new(
            std::slice::from_ref(l),
            &[0],
            &[(input_layout, output_layout)],
            packed,
            true,
        );
        let (packed_forward, packed_input_grad) = packing.forms[0];
        // The map a flattened side stands for, for the layouts' arithmetic: [C, HW, 1].
        let map = |shape: [u32; 3], layout: Layout| match layout {
            Layout::Flat { hw } => [shape[0] / hw, hw, 1],
            _ => shape,
        };
        Tensors {
            off: LayerOffsets {
                weight: 0,
                bias: wlen as u32,
                input: 0,
                output: inp4 as u32,
                dz: (inp4 + out4) as u32,
                input_layout,
                output_layout,
                packed_forward,
                packed_input_grad,
            },
            dz_below,
            w: random(wlen, c.seed, -0.5, 0.5),
            b: random(blen, c.seed + 1, -0.5, 0.5),
            x: random(inp, c.seed + 2, -1.0, 1.0),
            dz: random(out, c.seed + 3, -1.0, 1.0),
            packing,
            packed,
            shapes: (map(l.input, input_layout), map(l.output, output_layout)),
            batch: c.batch,
        }
    }

    /// Where split-K's partial sums go in acts.
    fn partials(&self) -> u32 {
        (self.dz_below + self.x.len().next_multiple_of(4)) as u32
    }

    /// The input's and the output's layout as grouped maps (a flattened side is one too).
    fn memory_layouts(&self) -> (Layout, Layout) {
        let grouped = |l: Layout| match l {
            Layout::Plain => Layout::Plain,
            _ => Layout::Grouped,
        };
        (
            grouped(self.off.input_layout),
            grouped(self.off.output_layout),
        )
    }

    /// A tensor shaped like the input (the input gradient), read back in PyTorch's order.
    fn read_input_like(&self, a: &Arenas, at: usize) -> Vec<f32> {
        let m = device().read_f32(&a.acts, at, self.x.len()).unwrap();
        from_memory(&m, self.batch, self.shapes.0, self.memory_layouts().0)
    }

    /// A tensor shaped like the output, read back in PyTorch's order.
    fn read_output_like(&self, a: &Arenas, at: usize) -> Vec<f32> {
        let m = device().read_f32(&a.acts, at, self.dz.len()).unwrap();
        from_memory(&m, self.batch, self.shapes.1, self.memory_layouts().1)
    }

    /// Arenas filled with the tensors (in their layouts), NaN everywhere else, and the weights
    /// packed for the vec4 paths.
    fn arenas(&self) -> Arenas {
        let dev = device();
        let plen = self.w.len() + self.b.len();
        let alen = self.partials() as usize + split_k::SPLIT_K_SCRATCH_GPU;
        let a = Arenas::with_packed(&dev, plen, self.packing.len(), alen, 8).unwrap();
        let mut p = self.w.clone();
        p.extend(&self.b);
        dev.queue
            .write_buffer(&a.params, 0, bytemuck::cast_slice(&p));
        dev.queue
            .write_buffer(&a.grads, 0, bytemuck::cast_slice(&vec![f32::NAN; plen]));
        let mut acts = vec![f32::NAN; alen];
        let (il, ol) = self.memory_layouts();
        let x = to_memory(&self.x, self.batch, self.shapes.0, il);
        let dz = to_memory(&self.dz, self.batch, self.shapes.1, ol);
        acts[..x.len()].copy_from_slice(&x);
        acts[self.off.dz as usize..][..dz.len()].copy_from_slice(&dz);
        dev.queue
            .write_buffer(&a.acts, 0, bytemuck::cast_slice(&acts));
        if let Some(d) = self.packing.dispatch(&dev, self.packed).unwrap() {
            dev.checked("pack", || a.submit(&dev, &[&[d]])).unwrap();
        }
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

/// Every core the device has, in every layout of the case it runs.
fn cores_and_layouts(c: &Case) -> Vec<(GemmCore, (Layout, Layout))> {
    let mut v = Vec::new();
    for core in GemmCore::available(&device()) {
        for lay in layouts(c) {
            v.push((core, lay));
        }
    }
    v
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
    for (core, lay) in cores_and_layouts(c) {
        let t = Tensors::new(c, lay);
        let spec = layer::forward(&c.layer, c.batch as u32, &t.off);
        for spec in variants(spec, t.partials(), core) {
            let a = t.arenas();
            run(&a, &spec, core);
            let got = t.read_output_like(&a, t.off.output as usize);
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
            let what = format!(
                "{} ({core:?}, {lay:?}, vec4 paths {:?}, split-K parts {})",
                c.name,
                spec.vec_paths(core),
                spec.k_split
            );
            assert_close(&format!("forward {what}"), &got, &want, TOL);
        }
    }
}

/// The three gradients with each GEMM core, the weight gradient both whole and, where
/// `with_split_k` applies, split into parts of the batch.
fn check_backward(c: &Case) {
    let dev = device();
    let b = c.batch as u32;
    for (core, lay) in cores_and_layouts(c) {
        let t = Tensors::new(c, lay);
        let whole = layer::weight_grad(&c.layer, b, &t.off);
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
            let dzb = t.read_input_like(&a, t.dz_below);
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
                "{} ({core:?}, {lay:?}, vec4 paths {:?} and {:?}, split-K parts {}, {} and {})",
                c.name,
                wg.vec_paths(core),
                ig.vec_paths(core),
                wg.k_split,
                ig.k_split,
                bg.parts
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
        input_layout: Layout::Plain,
        output_layout: Layout::Plain,
        packed_forward: None,
        packed_input_grad: None,
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
    // Few columns (9 and 16: 32 rows x 4 column lanes of 4 columns a part, 8 parts side by side
    // in a workgroup; 8 rows: 16 parts): about 64 parts of ceil(rows / 64) rows (n, y) each, a
    // multiple of KL (batch 3: 42 rows of one, 48 parts; batch 20 of 7 rows: 140 rows of three,
    // runs across samples, 48 parts). The tiled core takes the same parts, one per workgroup, so
    // that the cores agree bit for bit.
    let sides = |c: &Case, core: GemmCore| {
        let s = layer::weight_grad(&c.layer, c.batch as u32, &off).with_split_k(
            0,
            SplitK::FewOutputs,
            core,
        );
        let kl = s
            .constants(core)
            .iter()
            .find(|(k, _)| *k == "KL")
            .map(|(_, v)| *v as u32)
            .unwrap();
        (s.k_split, kl)
    };
    let subgroup = GemmCore::Subgroup {
        max_size: 8,
        wide_rows: 32,
    };
    for (name, parts, kl) in [
        ("enc1, split-K 9", 64, 8),
        ("dec3, split-K 7", 56, 8),
        ("fmnist enc1", 48, 8),
        ("lane parts across samples", 48, 16),
    ] {
        let c = by_name(name);
        assert_eq!(sides(c, subgroup), (parts, kl), "{name}");
        assert_eq!(sides(c, GemmCore::Plain), (parts, kl), "{name}");
        assert_eq!(sides(c, GemmCore::Tiled), (parts, 1), "{name}");
    }
    assert_eq!(
        parts(by_name("fmnist dec2")),
        1,
        "64x32x4x4 outputs: no split"
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
        input_layout: Layout::Plain,
        output_layout: Layout::Plain,
        packed_forward: None,
        packed_input_grad: None,
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
    // On CPU devices many columns are enough, however short the reduction (a 1-channel input:
    // 9 and 16 terms); GPUs keep 8 rows there.
    let enc1 = by_name("fmnist enc1");
    assert_eq!(rows(fwd(enc1), 32), 32, "588 columns, 9 terms");
    assert_eq!(rows(fwd(enc1), 16), 8);
    let dec3 = by_name("dec3, split-K 7");
    assert_eq!(rows(input_grad(dec3), 32), 32, "1,372 columns, 16 terms");
    assert_eq!(rows(input_grad(dec3), 16), 8);
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
