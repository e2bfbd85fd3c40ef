//! The layer tests' cases (tests/layers.rs): named tables, a row per shape that matters, and
//! the layouts each case runs in.

use lamp::kernels::Layout;
use lamp::model::{Act, Layer, LayerKind};

pub const LEAKY: Act = Act::LeakyRelu(0.2);

/// One row of a table: a named layer on a batch; `below` is the activation of the layer under
/// it (whose derivative the input gradient applies).
pub struct Case {
    pub name: &'static str,
    pub layer: Layer,
    pub batch: usize,
    pub below: Act,
    pub seed: u64,
    /// A linear layer's input and output as flattened maps of this many pixels (0: none).
    pub flat: (u32, u32),
}

pub fn conv(i: [u32; 3], o: [u32; 3], k: u32, s: u32, p: u32, act: Act) -> Layer {
    Layer::custom(LayerKind::Conv, i, o, k, s, p, act)
}
pub fn convt(i: [u32; 3], o: [u32; 3], k: u32, s: u32, p: u32, act: Act) -> Layer {
    Layer::custom(LayerKind::ConvTranspose, i, o, k, s, p, act)
}
pub fn linear(i: u32, o: u32, act: Act) -> Layer {
    Layer::custom(LayerKind::Linear, [i, 1, 1], [o, 1, 1], 1, 1, 0, act)
}
/// Output size of a convolution.
pub fn co(n: u32, k: u32, s: u32, p: u32) -> u32 {
    (n + 2 * p - k) / s + 1
}
pub fn case(name: &'static str, layer: Layer, batch: usize, below: Act, seed: u64) -> Case {
    Case {
        name,
        layer,
        batch,
        below,
        seed,
        flat: (0, 0),
    }
}

/// A linear case whose input and output are flattened maps of `hw` pixels (0: not).
pub fn flat(c: Case, input_hw: u32, output_hw: u32) -> Case {
    Case {
        flat: (input_hw, output_hw),
        ..c
    }
}

/// The layouts a case runs in: plain, then grouped (flattened for a linear layer) wherever a
/// side's channels divide by 4 and it is a map.
pub fn layouts(c: &Case) -> Vec<(Layout, Layout)> {
    let l = &c.layer;
    let side = |shape: [u32; 3], hw: u32| match l.kind {
        LayerKind::Linear if hw > 0 && (shape[0] / hw).is_multiple_of(4) => Layout::Flat { hw },
        LayerKind::Linear => Layout::Plain,
        _ if shape[0].is_multiple_of(4) && shape[1] * shape[2] > 1 => Layout::Grouped,
        _ => Layout::Plain,
    };
    let other = (side(l.input, c.flat.0), side(l.output, c.flat.1));
    let mut v = vec![(Layout::Plain, Layout::Plain)];
    if other != v[0] {
        v.push(other);
    }
    v
}

pub fn conv_cases() -> Vec<Case> {
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
        // The same over 8 channels: a grouped dz's long bias sums, and stride 1 into quads.
        case(
            "long bias sums, grouped",
            conv([2, 30, 30], [8, 30, 30], 3, 1, 1, Act::Relu),
            3,
            Act::Identity,
            31,
        ),
        // Channel quads both sides at stride 3 without padding (VEC_K's window arithmetic).
        case(
            "k4 s3 p0, quads",
            conv(
                [4, 12, 12],
                [8, co(12, 4, 3, 0), co(12, 4, 3, 0)],
                4,
                3,
                0,
                LEAKY,
            ),
            5,
            Act::Relu,
            32,
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
        // fmnist-ae's enc1 at a batch that splits unevenly: 9 x 14 rows (n, y); on a CPU 64 parts of
        // 2 rows, 8 side by side (the last empty); the GPU policy's parts cross samples.
        case(
            "enc1, split-K 9",
            conv([1, 28, 28], [32, 14, 14], 3, 2, 1, LEAKY),
            9,
            Act::Identity,
            26,
        ),
        // Parts side by side (CPU policy) whose runs of three rows cross samples of 7 rows,
        // with a short last part and an empty one.
        case(
            "lane parts across samples",
            conv([1, 13, 13], [8, 7, 7], 3, 2, 1, LEAKY),
            20,
            Act::Identity,
            33,
        ),
    ]
}

pub fn conv_t_cases() -> Vec<Case> {
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
        // fmnist-ae's dec3 at a batch that splits unevenly: 7 x 14 rows (n, y); on a CPU 56 parts of
        // 2 rows, 8 side by side (7 empty); the GPU policy's parts cross samples.
        case(
            "dec3, split-K 7",
            convt([32, 14, 14], [1, 28, 28], 4, 2, 1, Act::Sigmoid),
            7,
            LEAKY,
            27,
        ),
    ]
}

pub fn linear_cases() -> Vec<Case> {
    vec![
        case("70 to 37", linear(70, 37, Act::Identity), 5, LEAKY, 9),
        // fmnist-ae's linear layers, whose other sides are 64 x 7 x 7 maps: flattened when
        // grouped.
        flat(
            case("fmnist enc3", linear(3136, 32, LEAKY), 3, Act::Identity, 10),
            49,
            0,
        ),
        flat(
            case(
                "fmnist dec1 shape",
                linear(32, 3136, LEAKY),
                3,
                Act::Identity,
                21,
            ),
            0,
            49,
        ),
        case(
            "batch 1, sigmoid",
            linear(33, 100, Act::Sigmoid),
            1,
            Act::Sigmoid,
            11,
        ),
        // A flattened output of 64 channels x 4 pixels from 512 inputs: the GPU policy splits
        // the forward into parts (sum_parts maps the bias back to PyTorch's order).
        flat(
            case("512 to a flat 256", linear(512, 256, LEAKY), 2, LEAKY, 33),
            0,
            4,
        ),
        // At batch 512 the weight gradient's reduction splits too (parts in PyTorch's order).
        flat(
            case(
                "8 to a flat 16, batch 512",
                linear(8, 16, LEAKY),
                512,
                LEAKY,
                34,
            ),
            0,
            4,
        ),
    ]
}
