//! A trained checkpoint as an ONNX model: the autoencoder and, after it, the image's score as
//! lamp computes it for that checkpoint (its metric; the plain error, or the maximum or top-k
//! mean of the Gaussian-smoothed pixel map).
//!
//! The contract (also in the model's doc string and metadata):
//! - input `image`: float32 [N, C, S, S], pixel values in [0, 1] as lamp loads them (8-bit
//!   values / 255, channels RGB or grey, resized to S × S). lamp applies no other normalisation,
//!   so the graph applies none.
//! - output `reconstruction`: float32 [N, C, S, S], the autoencoder's output.
//! - output `score`: float32 [N], the image's anomaly score; anomalous above the calibrated
//!   threshold (metadata `lamp.threshold`).
//!
//! For a model trained on patches the graph is the network at its input size (one window), and
//! `score` is the score of that window alone, not of a whole image.
//!
//! Precision: the network and the maps run in float32 as in lamp; the SSIM map is computed in
//! float64 (lamp computes its maps in f64: in f32, E[x²] − μ² cancels in flat windows and the
//! map would be off by more than 1e-5), and means are taken in float64.

use super::graph::{self, float, int, ints, string, Builder, Dim};
use super::proto::{data_type, ModelProto, OperatorSetIdProto, StringStringEntryProto};
use crate::detect::checkpoint::{to_json, Checkpoint, Patches};
use crate::detect::score::{smoothing_kernel, top_count, Aggregate, ScoreConfig};
use crate::error::{Error, Result};
use crate::model::ssim;
use crate::model::{Act, Choice, LayerKind, Metric};
use std::path::Path;

/// The operator set the graph uses, and the IR version that goes with it.
pub const OPSET: i64 = 17;
pub const IR_VERSION: i64 = 8;
/// Names of the graph's input and outputs, and of its batch dimension.
pub const INPUT: &str = "image";
pub const RECONSTRUCTION: &str = "reconstruction";
pub const SCORE: &str = "score";
pub const BATCH: &str = "N";

/// The ONNX model of the trained checkpoint `ck` (read from `path`, which errors name).
pub fn model(ck: &Checkpoint, path: &Path) -> Result<ModelProto> {
    let (loss, cal) = ck.trained(path)?;
    let score: ScoreConfig = ck.meta("score").unwrap_or_default();
    let [c, s, _] = ck.arch.input_shape().map(|v| v as usize);
    if score.align > 0 {
        return Err(Error::file(
            path,
            format!(
                "the model aligns images (by up to {} px) before scoring them, which an ONNX \
                 graph of the network cannot do: its scores would not be lamp's",
                score.align
            ),
        ));
    }
    if loss.metric == Metric::Ssim && ssim::map_side(s) == 0 {
        return Err(Error::file(
            path,
            format!(
                "an SSIM model of {s}-pixel inputs has no {}x{} window to score",
                ssim::WINDOW,
                ssim::WINDOW
            ),
        ));
    }
    let mut b = Builder::default();
    let recon = network(&mut b, ck)?;
    let normal = ck.normal_map.as_deref();
    if normal.is_some_and(|n| n.len() != s * s) {
        return Err(Error::file(
            path,
            format!(
                "its normal map does not match its {s}x{s} input (a model trained on patches?)"
            ),
        ));
    }
    score_graph(&mut b, loss.metric, score, normal, [c, s, s], &recon);

    let patches: Option<Patches> = ck.meta("patch");
    let doc = contract(ck, loss.metric, score, patches);
    let image = [
        Dim::Named(BATCH),
        Dim::Fixed(c),
        Dim::Fixed(s),
        Dim::Fixed(s),
    ];
    let inputs = vec![graph::value_info(
        INPUT,
        data_type::FLOAT,
        &image,
        "pixels in [0, 1], N x C x S x S (channels first)",
    )];
    let outputs = vec![
        graph::value_info(
            RECONSTRUCTION,
            data_type::FLOAT,
            &image,
            "the autoencoder's reconstruction of the image",
        ),
        graph::value_info(
            SCORE,
            data_type::FLOAT,
            &[Dim::Named(BATCH)],
            "the image's anomaly score, as `lamp score` gives it",
        ),
    ];
    let graph = b.finish("lamp", &doc, inputs, outputs);

    let entry = |k: &str, v: String| StringStringEntryProto {
        key: Some(format!("lamp.{k}")),
        value: Some(v),
    };
    let mut meta = vec![
        entry(
            "version",
            ck.metadata
                .get("lamp_version")
                .cloned()
                .unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
        ),
        entry("arch", to_json(&ck.arch)?),
        entry("loss", to_json(&loss)?),
        entry("score", to_json(&score)?),
        entry("threshold", cal.threshold.to_string()),
        entry("calibration", to_json(&cal)?),
    ];
    if let Some(p) = patches {
        meta.push(entry("patch", to_json(&p)?));
    }
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        producer_name: Some("lamp".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(doc),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        metadata_props: meta,
    })
}

/// The model's bytes (protobuf).
pub fn to_bytes(m: &ModelProto) -> Vec<u8> {
    prost::Message::encode_to_vec(m)
}

/// The contract in words, for the model's doc string and the command line.
pub fn contract(
    ck: &Checkpoint,
    metric: Metric,
    score: ScoreConfig,
    patches: Option<Patches>,
) -> String {
    let [c, s, _] = ck.arch.input_shape();
    let what = match score.aggregate {
        Aggregate::Mean => format!("the mean {} error", metric.name()),
        Aggregate::Max => format!(
            "the maximum of the {} pixel map smoothed with sigma {} px",
            metric.name(),
            score.sigma
        ),
        Aggregate::Topk => format!(
            "the mean of the top {}% pixels of the {} pixel map smoothed with sigma {} px",
            score.top_k * 100.0,
            metric.name(),
            score.sigma
        ),
    };
    let what = match (&ck.normal_map, score.aggregate) {
        (Some(_), Aggregate::Max | Aggregate::Topk) => {
            format!(
                "{what}, taken above the normal map (a constant of the graph: the map less it, \
                 0 where below)"
            )
        }
        _ => what,
    };
    let mut t = format!(
        "lamp {}. Input `{INPUT}`: float32 [{BATCH}, {c}, {s}, {s}], pixel values in [0, 1] \
         (8-bit values / 255; {}), no other normalisation. Outputs: `{RECONSTRUCTION}` float32 \
         [{BATCH}, {c}, {s}, {s}]; `{SCORE}` float32 [{BATCH}], {what}; an image is anomalous \
         when its score is above metadata `lamp.threshold`.",
        ck.arch.describe(),
        if c == 3 { "RGB" } else { "grey" },
    );
    if let Some(p) = patches {
        t += &format!(
            " Trained on {s}x{s} patches of {0}x{0} images: the graph scores one {s}x{s} window; \
             `{SCORE}` is that window's score, not the whole image's (lamp scores an image by \
             windows every {1} px and stitches their maps).",
            p.image, p.stride
        );
        if ck.edge_profile.is_some() {
            t += " lamp counts the stitched map against the model's edge profile (how normal \
                  images' maps run near the image's edges); the graph, of one window, does not.";
        }
    }
    t
}

/// The autoencoder, layer by layer as `Arch::layers` lists them; returns its output's name.
fn network(b: &mut Builder, ck: &Checkpoint) -> Result<String> {
    let table = ck.arch.param_table();
    let layers = ck.arch.layers();
    let mut h = INPUT.to_string();
    let mut flat = false;
    for (i, l) in layers.iter().enumerate() {
        let (w, bias) = table
            .layer(&l.name)
            .ok_or_else(|| Error::invalid(format!("no parameters for layer {}", l.name)))?;
        let w = b.initializer(&w.name, &w.shape, &ck.params[w.offset..][..w.len()]);
        let bias = b.initializer(
            &bias.name,
            &bias.shape,
            &ck.params[bias.offset..][..bias.len()],
        );
        let (k, st, p) = (l.kernel as i64, l.stride as i64, l.pad as i64);
        let geometry = vec![
            ints("kernel_shape", &[k, k]),
            ints("strides", &[st, st]),
            ints("pads", &[p, p, p, p]),
        ];
        let out = if i + 1 == layers.len() {
            RECONSTRUCTION.to_string()
        } else {
            l.name.clone()
        };
        // The layer's output is named after it (the activation's, where it has one).
        let pre = match l.act {
            Act::Identity => out.clone(),
            _ => format!("{}_pre", l.name),
        };
        let z = match l.kind {
            LayerKind::Linear => {
                if !flat {
                    // C, H, W order, as lamp flattens.
                    h = b.op("Flatten", &[&h], vec![int("axis", 1)]);
                    flat = true;
                }
                b.op_to(&pre, "Gemm", &[&h, &w, &bias], vec![int("transB", 1)])
            }
            LayerKind::Conv | LayerKind::ConvTranspose => {
                if flat {
                    let [c, y, x] = l.input.map(i64::from);
                    let shape = b.const_i64(&[4], &[-1, c, y, x]);
                    h = b.op("Reshape", &[&h, &shape], vec![]);
                    flat = false;
                }
                let op = if l.kind == LayerKind::Conv {
                    "Conv"
                } else {
                    "ConvTranspose"
                };
                b.op_to(&pre, op, &[&h, &w, &bias], geometry)
            }
        };
        h = match l.act {
            Act::Identity => z,
            Act::LeakyRelu(a) => b.op_to(&out, "LeakyRelu", &[&z], vec![float("alpha", a)]),
            Act::Relu => b.op_to(&out, "Relu", &[&z], vec![]),
            Act::Sigmoid => b.op_to(&out, "Sigmoid", &[&z], vec![]),
        };
    }
    Ok(h)
}

/// The `score` output from the input and its reconstruction `y` (images of `shape` [C, H, W]).
fn score_graph(
    b: &mut Builder,
    metric: Metric,
    cfg: ScoreConfig,
    normal: Option<&[f32]>,
    shape: [usize; 3],
    y: &str,
) {
    let [_, h, w] = shape;
    if cfg.aggregate == Aggregate::Mean {
        let e = element_error(b, metric, y, shape);
        mean_score(b, &e, &[1, 2, 3]);
        return;
    }
    let map = pixel_map(b, metric, y, shape);
    let mut map = smooth(b, &map, cfg.sigma);
    // `score::above_normal`: the map above the normal map, 0 where it is not.
    if let Some(n) = normal {
        let n = b.const_f32(&[1, 1, h, w], n);
        let zero = b.const_f32(&[], &[0.0]);
        let d = b.op("Sub", &[&map, &n], vec![]);
        map = b.op("Max", &[&d, &zero], vec![]);
    }
    if cfg.aggregate == Aggregate::Max {
        b.op_to(
            SCORE,
            "ReduceMax",
            &[&map],
            vec![ints("axes", &[1, 2, 3]), int("keepdims", 0)],
        );
    } else {
        let flat = b.op("Flatten", &[&map], vec![int("axis", 1)]);
        let k = b.const_i64(&[1], &[top_count(h * w, cfg.top_k) as i64]);
        let top = b.op_n(
            "TopK",
            &[&flat, &k],
            vec![int("axis", -1), int("largest", 1), int("sorted", 1)],
            2,
        );
        let top = b.op(
            "Cast",
            &[&top[0]],
            vec![int("to", data_type::DOUBLE as i64)],
        );
        mean_score(b, &top, &[1]);
    }
}

/// The per-element error of the reconstruction `y`, float64: |d| or d² [N, C, H, W], or the
/// SSIM error of each valid window [N, C, H − 10, W − 10]. Its mean is lamp's plain error.
fn element_error(b: &mut Builder, metric: Metric, y: &str, shape: [usize; 3]) -> String {
    match metric {
        Metric::Mae | Metric::Mse => {
            let e = difference_error(b, metric, y);
            b.op("Cast", &[&e], vec![int("to", data_type::DOUBLE as i64)])
        }
        Metric::Ssim => ssim_error(b, INPUT, y, shape),
    }
}

/// |y − x| or (y − x)², float32 [N, C, H, W].
fn difference_error(b: &mut Builder, metric: Metric, y: &str) -> String {
    let d = b.op("Sub", &[y, INPUT], vec![]);
    if metric == Metric::Mae {
        b.op("Abs", &[&d], vec![])
    } else {
        b.op("Mul", &[&d, &d], vec![])
    }
}

/// `score::pixel_map`: the error averaged over channels, float32 [N, 1, H, W].
fn pixel_map(b: &mut Builder, metric: Metric, y: &str, shape: [usize; 3]) -> String {
    let channel_mean = vec![ints("axes", &[1]), int("keepdims", 1)];
    match metric {
        Metric::Mae | Metric::Mse => {
            let e = difference_error(b, metric, y);
            b.op("ReduceMean", &[&e], channel_mean)
        }
        Metric::Ssim => {
            let e = ssim_error(b, INPUT, y, shape);
            let m = b.op("ReduceMean", &[&e], channel_mean);
            let m = b.op("Cast", &[&m], vec![int("to", data_type::FLOAT as i64)]);
            // The valid windows' map, placed at the windows' centres and extended to the border
            // by the nearest valid value: edge padding by half a window on every side.
            let half = ssim::HALF as i64;
            let pads = b.const_i64(&[8], &[0, 0, half, half, 0, 0, half, half]);
            b.op("Pad", &[&m, &pads], vec![string("mode", "edge")])
        }
    }
}

/// `score`: the float64 mean of `e` over `axes`, as float32.
fn mean_score(b: &mut Builder, e: &str, axes: &[i64]) {
    let m = b.op(
        "ReduceMean",
        &[e],
        vec![ints("axes", axes), int("keepdims", 0)],
    );
    b.op_to(
        SCORE,
        "Cast",
        &[&m],
        vec![int("to", data_type::FLOAT as i64)],
    );
}

/// The per-window SSIM error (1 − SSIM) / 2, float64 [N, C, H − 10, W − 10]: `ssim_window`'s
/// formula over the valid 11×11 Gaussian windows, the window sums taken separably.
fn ssim_error(b: &mut Builder, x: &str, y: &str, shape: [usize; 3]) -> String {
    let [c, h, w] = shape;
    let to_f64 = || vec![int("to", data_type::DOUBLE as i64)];
    let xd = b.op("Cast", &[x], to_f64());
    let yd = b.op("Cast", &[y], to_f64());
    let xx = b.op("Mul", &[&xd, &xd], vec![]);
    let yy = b.op("Mul", &[&yd, &yd], vec![]);
    let xy = b.op("Mul", &[&xd, &yd], vec![]);
    // The five moments side by side on the channel axis: one pass of window sums for all.
    let moments = b.op("Concat", &[&xd, &yd, &xx, &yy, &xy], vec![int("axis", 1)]);
    let g = ssim::gauss11();
    let rows = window_sum(b, &moments, 3, &g, ssim::map_side(w));
    let sums = window_sum(b, &rows, 2, &g, ssim::map_side(h));
    let split = b.const_i64(&[5], &[c as i64; 5]);
    let m = b.op_n("Split", &[&sums, &split], vec![int("axis", 1)], 5);
    let (mx, my, sxx, syy, sxy) = (&m[0], &m[1], &m[2], &m[3], &m[4]);
    let mx2 = b.op("Mul", &[mx, mx], vec![]);
    let my2 = b.op("Mul", &[my, my], vec![]);
    let mxy = b.op("Mul", &[mx, my], vec![]);
    let vx = b.op("Sub", &[sxx, &mx2], vec![]);
    let vy = b.op("Sub", &[syy, &my2], vec![]);
    let cxy = b.op("Sub", &[sxy, &mxy], vec![]);
    let two = b.const_f64(&[], &[2.0]);
    let one = b.const_f64(&[], &[1.0]);
    let c1 = b.const_f64(&[], &[ssim::C1]);
    let c2 = b.const_f64(&[], &[ssim::C2]);
    let t = b.op("Mul", &[&two, &mxy], vec![]);
    let a1 = b.op("Add", &[&t, &c1], vec![]);
    let t = b.op("Mul", &[&two, &cxy], vec![]);
    let a2 = b.op("Add", &[&t, &c2], vec![]);
    let t = b.op("Add", &[&mx2, &my2], vec![]);
    let b1 = b.op("Add", &[&t, &c1], vec![]);
    let t = b.op("Add", &[&vx, &vy], vec![]);
    let b2 = b.op("Add", &[&t, &c2], vec![]);
    let num = b.op("Mul", &[&a1, &a2], vec![]);
    let den = b.op("Mul", &[&b1, &b2], vec![]);
    let s = b.op("Div", &[&num, &den], vec![]);
    let d = b.op("Sub", &[&one, &s], vec![]);
    b.op("Div", &[&d, &two], vec![])
}

/// Σ_i taps[i] · input shifted by i along `axis`, for `len` positions: a valid 1-D correlation
/// from slices (onnxruntime has no float64 Conv).
fn window_sum(b: &mut Builder, input: &str, axis: i64, taps: &[f64], len: usize) -> String {
    let axes = b.const_i64(&[1], &[axis]);
    let mut acc: Option<String> = None;
    for (i, &g) in taps.iter().enumerate() {
        let starts = b.const_i64(&[1], &[i as i64]);
        let ends = b.const_i64(&[1], &[(i + len) as i64]);
        let part = b.op("Slice", &[input, &starts, &ends, &axes], vec![]);
        let g = b.const_f64(&[], &[g]);
        let term = b.op("Mul", &[&part, &g], vec![]);
        acc = Some(match acc {
            None => term,
            Some(a) => b.op("Add", &[&a, &term], vec![]),
        });
    }
    acc.unwrap_or_else(|| input.to_string())
}

/// `score::smooth` on maps [N, 1, H, W]: each pass an edge-padded (clamped borders) valid
/// convolution with the same taps, divided by their sum.
fn smooth(b: &mut Builder, map: &str, sigma: f32) -> String {
    if sigma <= 0.0 {
        return map.to_string();
    }
    let (k, ks) = smoothing_kernel(sigma);
    let (n, r) = (k.len(), (k.len() / 2) as i64);
    let sum = b.const_f32(&[], &[ks]);
    let mut h = map.to_string();
    for (kernel, pads) in [
        ([1, 1, 1, n], [0, 0, 0, r, 0, 0, 0, r]),
        ([1, 1, n, 1], [0, 0, r, 0, 0, 0, r, 0]),
    ] {
        let w = b.const_f32(&kernel, &k);
        let pads = b.const_i64(&[8], &pads);
        let p = b.op("Pad", &[&h, &pads], vec![string("mode", "edge")]);
        let conv = b.op("Conv", &[&p, &w], vec![]);
        h = b.op("Div", &[&conv, &sum], vec![]);
    }
    h
}
