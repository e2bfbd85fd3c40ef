//! `lamp export --format onnx`, checked without a runtime: the file decodes (prost) to the
//! contract's input and outputs, the parameters as initializers byte for byte, the network's
//! operators in order, and a well-formed graph (every value defined before it is used) with the
//! scoring the checkpoint asks for. That onnxruntime reproduces lamp's numbers is checked by
//! scripts/onnx_check.py (results/onnx_check.txt).

mod common;
use common::*;
use lamp::detect::checkpoint::to_json;
use lamp::detect::score::{smoothing_kernel, top_count};
use lamp::detect::{Aggregate, Calibration, Checkpoint, ScoreConfig, ThresholdMethod};
use lamp::export::onnx;
use lamp::export::proto::{data_type, ModelProto, NodeProto, ValueInfoProto};
use lamp::model::{Arch, LossConfig, Metric};
use prost::Message;
use std::collections::HashSet;
use std::path::Path;

/// A checkpoint as training leaves it: parameters, loss, calibration and scoring.
fn trained(arch: &Arch, metric: Metric, score: ScoreConfig) -> Checkpoint {
    let loss = LossConfig {
        metric,
        ..Default::default()
    };
    let mut ck = Checkpoint::new(arch.clone(), Some(loss), arch.init(5));
    let cal = Calibration {
        method: ThresholdMethod::Quantile,
        contamination: 0.01,
        k: 3.0,
        threshold: 0.0125,
        min: 0.001,
        max: 0.02,
        mean: 0.01,
        std: 0.002,
        pixel_threshold: 0.03,
        pixel_max: 0.1,
        count: 40,
        source: "held-out".into(),
    };
    ck.metadata
        .insert("calibration".into(), to_json(&cal).unwrap());
    ck.metadata.insert("score".into(), to_json(&score).unwrap());
    ck
}

fn scoring(aggregate: Aggregate, top_k: f64, sigma: f32) -> ScoreConfig {
    ScoreConfig {
        aggregate,
        top_k,
        sigma,
        align: 0,
    }
}

/// (element type, dims; a named dimension as -1) of a graph input or output.
fn signature(v: &ValueInfoProto) -> (i32, Vec<i64>) {
    let t = v.r#type.as_ref().unwrap().tensor_type.as_ref().unwrap();
    let dims = t.shape.as_ref().unwrap().dim.iter();
    let dims = dims
        .map(|d| match (&d.dim_param, d.dim_value) {
            (Some(p), None) => {
                assert_eq!(p, onnx::BATCH);
                -1
            }
            (None, Some(v)) => v,
            other => panic!("a dimension sets one of value and name: {other:?}"),
        })
        .collect();
    (t.elem_type.unwrap(), dims)
}

fn op(n: &NodeProto) -> &str {
    n.op_type.as_deref().unwrap()
}

/// Checks the graph is well formed (every input defined before its node, every name defined
/// once, both outputs produced) and returns its op types in order, without the constants.
fn checked_ops(m: &ModelProto) -> Vec<String> {
    let g = m.graph.as_ref().unwrap();
    let mut defined: HashSet<&str> = HashSet::new();
    defined.insert(onnx::INPUT);
    for t in &g.initializer {
        assert!(
            defined.insert(t.name.as_deref().unwrap()),
            "{:?} twice",
            t.name
        );
    }
    for n in &g.node {
        for i in &n.input {
            assert!(
                defined.contains(i.as_str()),
                "{} reads {i} before it is made",
                op(n)
            );
        }
        for o in &n.output {
            assert!(defined.insert(o), "{o} is made twice");
        }
    }
    for out in [onnx::RECONSTRUCTION, onnx::SCORE] {
        assert!(defined.contains(out), "no node makes {out}");
    }
    g.node
        .iter()
        .map(|n| op(n).to_string())
        .filter(|o| o != "Constant")
        .collect()
}

/// The float32 values of the constant named `name`.
fn constant_f32(m: &ModelProto, name: &str) -> Vec<f32> {
    let g = m.graph.as_ref().unwrap();
    let n = g.node.iter().find(|n| n.output == [name]).unwrap();
    assert_eq!(op(n), "Constant");
    let t = n.attribute[0].t.as_ref().unwrap();
    assert_eq!(t.data_type, Some(data_type::FLOAT));
    let raw = t.raw_data.as_ref().unwrap();
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn constant_i64(m: &ModelProto, name: &str) -> Vec<i64> {
    let g = m.graph.as_ref().unwrap();
    let n = g.node.iter().find(|n| n.output == [name]).unwrap();
    let t = n.attribute[0].t.as_ref().unwrap();
    assert_eq!(t.data_type, Some(data_type::INT64));
    let raw = t.raw_data.as_ref().unwrap();
    raw.chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn exported_file_holds_the_contract_the_parameters_and_the_network() {
    let d = tmpdir("export");
    let arch = Arch::fmnist_ae();
    let ck = trained(&arch, Metric::Mse, scoring(Aggregate::Mean, 0.01, 1.0));
    let model = d.join("tshirt.safetensors");
    ck.save(&model).unwrap();
    let out = d.join("sub").join("tshirt.onnx");
    // A missing folder is refused (more often a typo than a wish), not created.
    let o = lamp()
        .arg("export")
        .arg(&model)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("does not exist; create it first"),
        "{err}"
    );
    std::fs::create_dir_all(d.join("sub")).unwrap();
    let (run, m) = export(&model, &out, &["--format", "onnx", "-o"]);
    assert!(String::from_utf8_lossy(&run.stdout).contains("opset 17"));

    assert_eq!(m.ir_version, Some(onnx::IR_VERSION));
    assert_eq!(m.opset_import.len(), 1);
    assert_eq!(m.opset_import[0].domain.as_deref(), Some(""));
    assert_eq!(m.opset_import[0].version, Some(onnx::OPSET));
    let meta: Vec<(&str, &str)> = m
        .metadata_props
        .iter()
        .map(|e| (e.key.as_deref().unwrap(), e.value.as_deref().unwrap()))
        .collect();
    assert!(meta.contains(&("lamp.threshold", "0.0125")), "{meta:?}");

    let g = m.graph.as_ref().unwrap();
    let image = (data_type::FLOAT, vec![-1, 1, 28, 28]);
    assert_eq!(g.input.len(), 1);
    assert_eq!(g.input[0].name.as_deref(), Some(onnx::INPUT));
    assert_eq!(signature(&g.input[0]), image);
    let outputs: Vec<_> = g
        .output
        .iter()
        .map(|o| o.name.as_deref().unwrap())
        .collect();
    assert_eq!(outputs, [onnx::RECONSTRUCTION, onnx::SCORE]);
    assert_eq!(signature(&g.output[0]), image);
    assert_eq!(signature(&g.output[1]), (data_type::FLOAT, vec![-1]));

    // The parameters: PyTorch's names and shapes, every value as the checkpoint holds it.
    let table = arch.param_table();
    assert_eq!(g.initializer.len(), table.entries.len());
    let mut count = 0;
    for (t, e) in g.initializer.iter().zip(&table.entries) {
        assert_eq!(t.name.as_deref(), Some(e.name.as_str()));
        let dims: Vec<i64> = e.shape.iter().map(|&v| v as i64).collect();
        assert_eq!(t.dims, dims, "{}", e.name);
        assert_eq!(t.data_type, Some(data_type::FLOAT));
        let want: Vec<u8> = ck.params[e.offset..][..e.len()]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert!(t.raw_data.as_ref() == Some(&want), "{} differs", e.name);
        count += t.dims.iter().product::<i64>() as usize;
    }
    assert_eq!(count, ck.params.len());

    // The network (up to `reconstruction`), then the plain MSE's mean in float64.
    let ops = checked_ops(&m);
    let net = [
        "Conv",
        "LeakyRelu",
        "Conv",
        "LeakyRelu",
        "Flatten",
        "Gemm",
        "Gemm",
        "LeakyRelu",
        "Reshape",
        "ConvTranspose",
        "LeakyRelu",
        "ConvTranspose",
        "Sigmoid",
    ];
    assert_eq!(ops[..net.len()], net);
    assert_eq!(
        ops[net.len()..],
        ["Sub", "Mul", "Cast", "ReduceMean", "Cast"]
    );
    let last = g.node.iter().find(|n| n.output == [onnx::RECONSTRUCTION]);
    assert_eq!(last.map(op), Some("Sigmoid"));
    let convs = g.node.iter().filter(|n| op(n).starts_with("Conv"));
    for n in convs {
        let attr = |name: &str| n.attribute.iter().find(|a| a.name.as_deref() == Some(name));
        assert_eq!(attr("strides").unwrap().ints, [2, 2]);
        assert_eq!(attr("pads").unwrap().ints, [1, 1, 1, 1]);
    }
    let reshape = g.node.iter().find(|n| op(n) == "Reshape").unwrap();
    assert_eq!(constant_i64(&m, &reshape.input[1]), [-1, 64, 7, 7]);
}

#[test]
fn each_metric_and_aggregate_builds_its_score() {
    let arch = Arch::conv_ae(3, 32, vec![8, 16], 8).unwrap();
    let path = Path::new("model.safetensors");
    for metric in [Metric::Mae, Metric::Mse, Metric::Ssim] {
        for (aggregate, top_k, sigma) in [
            (Aggregate::Mean, 0.01, 1.0),
            (Aggregate::Max, 0.01, 1.5),
            (Aggregate::Topk, 0.05, 8.0),
            (Aggregate::Max, 0.01, 0.0),
        ] {
            let what = format!("{metric:?} {aggregate:?} sigma {sigma}");
            let ck = trained(&arch, metric, scoring(aggregate, top_k, sigma));
            let m = onnx::model(&ck, path).unwrap();
            let ops = checked_ops(&m);
            let score = &ops[ops.iter().rposition(|o| o == "Sigmoid").unwrap() + 1..];
            let has = |o: &str| score.iter().any(|s| s == o);
            let count = |o: &str| score.iter().filter(|s| *s == o).count();
            // SSIM: 11 slices per axis over the five moments, in float64.
            assert_eq!(
                count("Slice"),
                if metric == Metric::Ssim { 22 } else { 0 },
                "{what}"
            );
            assert_eq!(has("Split"), metric == Metric::Ssim, "{what}");
            let maps = aggregate != Aggregate::Mean;
            let smoothed = maps && sigma > 0.0;
            assert_eq!(count("Conv"), if smoothed { 2 } else { 0 }, "{what}");
            let pads = usize::from(maps && metric == Metric::Ssim) + 2 * usize::from(smoothed);
            assert_eq!(count("Pad"), pads, "{what}");
            assert_eq!(has("ReduceMax"), aggregate == Aggregate::Max, "{what}");
            assert_eq!(has("TopK"), aggregate == Aggregate::Topk, "{what}");
            let g = m.graph.as_ref().unwrap();
            if smoothed {
                // The smoothing's taps are lamp's, and each pass divides by their sum.
                let (k, ks) = smoothing_kernel(sigma);
                let conv = g.node.iter().rfind(|n| op(n) == "Conv").unwrap();
                assert_eq!(constant_f32(&m, &conv.input[1]), k, "{what}");
                let div = g.node.iter().rfind(|n| op(n) == "Div").unwrap();
                assert_eq!(constant_f32(&m, &div.input[1]), [ks], "{what}");
            }
            if aggregate == Aggregate::Topk {
                let topk = g.node.iter().find(|n| op(n) == "TopK").unwrap();
                let k = constant_i64(&m, &topk.input[1]);
                assert_eq!(k, [top_count(32 * 32, top_k) as i64], "{what}");
            }
        }
    }
}

#[test]
fn patch_models_export_one_window_and_say_so() {
    let d = tmpdir("export-patch");
    let arch = Arch::conv_ae(1, 16, vec![8, 16], 8).unwrap();
    let mut ck = trained(&arch, Metric::Mae, scoring(Aggregate::Topk, 0.01, 1.0));
    ck.metadata
        .insert("patch".into(), r#"{"image":64,"stride":8}"#.into());
    let model = d.join("carpet.safetensors");
    ck.save(&model).unwrap();
    let out = d.join("carpet.onnx");
    let (run, m) = export(&model, &out, &["--out"]);
    assert!(String::from_utf8_lossy(&run.stderr).contains("a window's score"));
    let g = m.graph.as_ref().unwrap();
    assert_eq!(signature(&g.input[0]).1, [-1, 1, 16, 16]);
    assert!(m.doc_string.unwrap().contains("that window's score"));
    let props = &m.metadata_props;
    assert!(props.iter().any(|e| e.key.as_deref() == Some("lamp.patch")));
}

/// Runs `lamp export MODEL FLAGS OUT`, which must succeed, and decodes the file it wrote.
fn export(model: &Path, out: &Path, flags: &[&str]) -> (std::process::Output, ModelProto) {
    let run = lamp()
        .arg("export")
        .arg(model)
        .args(flags)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let m = ModelProto::decode(std::fs::read(out).unwrap().as_slice()).unwrap();
    (run, m)
}

#[test]
fn bad_exports_end_in_one_line_errors() {
    let d = tmpdir("export-bad");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let out = s(&d.join("m.onnx"));
    let missing = d.join("missing.safetensors");
    fails(
        &["export", &s(&missing), "-o", &out],
        &["missing.safetensors"],
    );
    let corrupt = d.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"not a checkpoint").unwrap();
    fails(
        &["export", &s(&corrupt), "-o", &out],
        &["corrupt.safetensors", "safetensors"],
    );
    // Untrained (`lamp init`'s): no loss, so no score to export.
    let arch = Arch::fmnist_ae();
    let init = d.join("init.safetensors");
    Checkpoint::new(arch.clone(), None, arch.init(1))
        .save(&init)
        .unwrap();
    fails(
        &["export", &s(&init), "-o", &out],
        &["init.safetensors", "lamp train"],
    );

    let good = d.join("good.safetensors");
    trained(&arch, Metric::Mae, ScoreConfig::default())
        .save(&good)
        .unwrap();
    let file = d.join("file.txt");
    std::fs::write(&file, b"x").unwrap();
    fails(
        &["export", &s(&good), "-o", &s(&file.join("m.onnx"))],
        &["m.onnx"],
    );
    fails(&["export", &s(&good), "-o", &s(&d)], &["directory"]);
    fails(
        &["export", &s(&good), "-o", &s(&good)],
        &["good.safetensors"],
    );
    assert!(
        Checkpoint::load(&good, None).is_ok(),
        "the checkpoint survives"
    );
    let tiny = Arch::conv_ae(1, 8, vec![8, 16], 8).unwrap();
    let small = d.join("small.safetensors");
    trained(&tiny, Metric::Ssim, ScoreConfig::default())
        .save(&small)
        .unwrap();
    fails(
        &["export", &s(&small), "-o", &out],
        &["small.safetensors", "SSIM"],
    );

    let run = lamp()
        .args(["export", &s(&good), "--format", "tflite", "-o", &out])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("onnx"));
    assert!(!Path::new(&out).exists(), "no export after errors");
}

#[test]
fn a_normal_map_is_subtracted_in_the_graph() {
    let arch = Arch::conv_ae(1, 16, vec![8, 16], 8).unwrap();
    let path = Path::new("model.safetensors");
    let normal: Vec<f32> = (0..16 * 16).map(|i| i as f32 * 1e-4).collect();
    for aggregate in [Aggregate::Mean, Aggregate::Max, Aggregate::Topk] {
        let mut ck = trained(&arch, Metric::Mse, scoring(aggregate, 0.05, 1.0));
        ck.normal_map = Some(normal.clone());
        let m = onnx::model(&ck, path).unwrap();
        let ops = checked_ops(&m);
        let score = &ops[ops.iter().rposition(|o| o == "Sigmoid").unwrap() + 1..];
        let maps = aggregate != Aggregate::Mean;
        // The last Sub of the graph: the normal map's where maps are scored; otherwise the
        // reconstruction's difference from the input (the plain error has no map).
        let g = m.graph.as_ref().unwrap();
        let sub = g.node.iter().rfind(|n| op(n) == "Sub").unwrap();
        let constant =
            (g.node.iter()).any(|n| n.output == [sub.input[1].clone()] && op(n) == "Constant");
        assert_eq!(constant, maps, "{aggregate:?}");
        if maps {
            assert_eq!(constant_f32(&m, &sub.input[1]), normal);
            // Then clamped at 0, before the aggregate.
            let at = score.iter().rposition(|o| o == "Sub").unwrap();
            assert_eq!(score[at + 1], "Max");
            let doc = g.doc_string.clone().unwrap_or_default();
            assert!(doc.contains("above the normal map"), "{doc}");
        }
    }
}
