//! Cases of arguments and data sets: option values out of range, data that is empty, inflates
//! or lies, and output streams that fill.

use super::fixtures::*;
use super::harness::{case, Case};
use super::Env;
use std::ffi::OsString;
use std::path::PathBuf;

/// Option values, each refused before any work.
pub fn options(e: &Env) -> Vec<Case> {
    let (d, good, model, out) = (&e.d, &e.good, &e.model, &e.out);
    let mut cases = Vec::new();
    // ---- option values, each before any work
    let train = |extra: &[&str]| -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
            "train".into(),
            good.clone().into(),
            "--out".into(),
            out.clone().into(),
        ];
        v.extend(extra.iter().map(OsString::from));
        v
    };
    let many_stages = vec!["1"; 33].join(",");
    let stages_33 = ["--arch", "conv-ae", "--stages", many_stages.as_str()];
    let train_bad: Vec<(&[&str], i32, &str)> = vec![
        (&["--epochs", "-1"], 2, "--epochs"),
        (&["--epochs", "0"], 1, "--epochs"),
        (&["--epochs", "99999999999"], 2, "--epochs"),
        (&["--batch", "0"], 1, "--batch"),
        (&["--batch", "-5"], 2, "--batch"),
        (&["--lr", "0"], 1, "--lr"),
        (&["--lr", "-1"], 1, "--lr"),
        (&["--lr", "nan"], 1, "--lr"),
        (&["--lr", "inf"], 1, "--lr"),
        (&["--val-split", "-0.1"], 1, "--val-split"),
        (&["--val-split", "1"], 1, "--val-split"),
        (&["--val-split", "1.5"], 1, "--val-split"),
        (&["--val-split", "nan"], 1, "--val-split"),
        (&["--contamination", "1.5"], 1, "--contamination"),
        (&["--contamination", "-0.1"], 1, "--contamination"),
        (&["--contamination", "nan"], 1, "--contamination"),
        (
            &["--threshold", "sigma", "--sigma-k", "nan"],
            1,
            "--sigma-k",
        ),
        (
            &["--threshold", "sigma", "--sigma-k", "inf"],
            1,
            "--sigma-k",
        ),
        (&["--threshold", "median"], 2, "--threshold"),
        (&["--top-k", "0"], 1, "--top-k"),
        (&["--top-k", "101"], 1, "--top-k"),
        (&["--top-k", "nan"], 1, "--top-k"),
        (&["--min-steps", "-1"], 2, "--min-steps"),
        (&["--seed", "-1"], 2, "--seed"),
        (&["--log-every", "-1"], 2, "--log-every"),
        (&["--device-data-mb", "-1"], 2, "--device-data-mb"),
        (&["--arch", "resnet"], 1, "resnet"),
        (&["--arch", "conv-ae", "--stages", "0"], 1, "stage"),
        (&stages_33, 1, "stages"),
        (&["--arch", "conv-ae", "--stages", "x,y"], 2, "--stages"),
        (&["--arch", "conv-ae", "--latent", "0"], 1, "latent"),
        (
            &["--arch", "conv-ae", "--latent", "4000000000"],
            1,
            "latent",
        ),
        (&["--arch", "conv-ae", "--size", "0"], 1, "size"),
        (&["--arch", "conv-ae", "--size", "1048576"], 1, "size"),
        (&["--arch", "conv-ae", "--size", "4294967295"], 1, "size"),
        (&["--arch", "conv-ae", "--channels", "7"], 1, "channels"),
        (
            &[
                "--arch",
                "conv-ae",
                "--stages",
                "4096,4096,4096,4096",
                "--size",
                "4096",
            ],
            1,
            "parameters",
        ),
        (&["--patch", "0"], 1, "--patch"),
        (&["--patch", "100000"], 1, "--patch"),
        (&["--metric", "psnr"], 2, "--metric"),
        (&["--amp", "cube"], 2, "--amp"),
    ];
    for (extra, code, needle) in &train_bad {
        cases.push(case(
            &format!("train {}", extra.join(" ")),
            &train(extra)
                .iter()
                .map(|a| a as &dyn AsRef<std::ffi::OsStr>)
                .collect::<Vec<_>>(),
            *code,
            &[needle],
        ));
    }
    cases.push(case(
        "train --out is a folder",
        &[&"train", &good, &"--out", &d],
        1,
        &["folder"],
    ));
    cases.push(case(
        "train --out in a missing folder",
        &[&"train", &good, &"--out", &d.join("no/such/m.safetensors")],
        1,
        &["does not exist; create it first"],
    ));
    cases.push(case(
        "train --resume with nothing there",
        &[
            &"train",
            &good,
            &"--out",
            &d.join("new.safetensors"),
            &"--resume",
        ],
        1,
        &["nothing to resume"],
    ));
    let out_dir = d.to_str().unwrap_or_default();
    for (extra, code, needle) in [
        (vec!["--threshold", "nan"], 1, "--threshold"),
        (vec!["--threshold", "-1"], 1, "--threshold"),
        (vec!["--threshold", "inf"], 1, "--threshold"),
        (vec!["--batch", "0"], 1, "--batch"),
        (vec!["--shard", "4/4"], 2, "--shard"),
        (vec!["--shard", "0/0"], 2, "--shard"),
        (vec!["--shard", "x/4"], 2, "--shard"),
        (vec!["--shard", "1"], 2, "--shard"),
        (vec!["--shard", "0/99999999999999999999"], 2, "--shard"),
        (vec!["--shard", "auto/4"], 1, "JOB_COMPLETION_INDEX"),
        (vec!["--json", "-o", out_dir], 1, out_dir),
        // A device is refused, not replaced by a renamed file (as root, rename could).
        (vec!["--json", "-o", "/dev/null"], 1, "not a regular file"),
    ] {
        let mut a: Vec<OsString> = vec!["score".into(), model.clone().into(), good.clone().into()];
        a.extend(extra.iter().map(OsString::from));
        cases.push(case(
            &format!("score {}", extra.join(" ")),
            &a.iter()
                .map(|x| x as &dyn AsRef<std::ffi::OsStr>)
                .collect::<Vec<_>>(),
            code,
            &[needle],
        ));
    }
    // A data set's name where images are wanted.
    cases.push(case(
        "score fashion-mnist:1",
        &[&"score", &model, &"fashion-mnist:1"],
        1,
        &["fashion-mnist:1", "lamp train and lamp eval"],
    ));
    // The model left out: the first image taken for it; a folder that does not exist, to eval.
    let image = e.good.join("g0.png");
    cases.push(case(
        "score without the model",
        &[&"score", &image, &image],
        1,
        &[
            "g0.png",
            "a PNG image, not a lamp checkpoint",
            "take the model first",
        ],
    ));
    cases.push(case(
        "eval on a missing folder",
        &[
            &"eval",
            &model,
            &d.join("nowhere"),
            &"--out",
            &d.join("ev0"),
        ],
        1,
        &["nowhere", "no such file or directory"],
    ));
    // `lamp merge` of what is not a shard's output.
    let bad_csv = d.join("not-scores.csv");
    let _ = std::fs::write(&bad_csv, "name,value\na.png,1\n");
    let notes_file = d.join("notes.txt");
    let _ = std::fs::write(&notes_file, "garbage line\n");
    let bad_json = d.join("not-scores.jsonl");
    let _ = std::fs::write(&bad_json, "{\"score\": 1}\n");
    // A CSV shard cut inside its last verdict; JSON rows of another shape.
    let cut_csv = d.join("cut.csv");
    let _ = std::fs::write(
        &cut_csv,
        "path,score,normalised,verdict\na.png,0.01,0.5,normal\nb.png,0.02,0.6,nor",
    );
    let odd_json = d.join("odd.jsonl");
    let _ = std::fs::write(&odd_json, "{\"path\":\"a.png\",\"score\":\"abc\"}\n");
    // Parts scored by two models (or thresholds), and by a lamp that did not name its model.
    let by = |name: &str, text: &str| {
        let f = d.join(name);
        let _ = std::fs::write(&f, text);
        f
    };
    let row = |path: &str, id: &str| {
        format!(
            "{{\"path\":\"{path}\",\"score\":0.01,\"normalised\":0.5,\"anomalous\":false,\
             \"verdict\":\"normal\"{id}}}\n"
        )
    };
    let part_a = by("part-a.jsonl", &row("a.png", ",\"model_id\":\"0a1b2c3d\""));
    let part_b = by("part-b.jsonl", &row("b.png", ",\"model_id\":\"99999999\""));
    let part_old = by("part-old.jsonl", &row("c.png", ""));
    let csv_a = by(
        "part-a.csv",
        "path,score,normalised,verdict,model_id\na.png,0.01,0.5,normal,0a1b2c3d\n",
    );
    let csv_old = by(
        "part-old.csv",
        "path,score,normalised,verdict\nc.png,0.01,0.5,normal\n",
    );
    for (name, other, needle) in [
        ("merge parts of two models", &part_b, "model 99999999"),
        (
            "merge parts of an unnamed model",
            &part_old,
            "did not record",
        ),
    ] {
        cases.push(case(name, &[&"merge", &part_a, other], 1, &[needle]));
    }
    cases.push(case(
        "merge CSV parts of a named and an unnamed model",
        &[&"merge", &csv_a, &csv_old],
        1,
        &["part-old.csv", "not the earlier shards'"],
    ));
    // An empty shard's CSV (its header only) beside a part of an older lamp.
    let csv_empty = by("part-empty.csv", "path,score,normalised,verdict,model_id\n");
    cases.push(case(
        "merge an empty CSV part and an older one",
        &[&"merge", &csv_empty, &csv_old],
        1,
        &["part-old.csv", "not the earlier shards'"],
    ));
    for (name, file, needle) in [
        ("merge a checkpoint", model.clone(), "UTF-8"),
        ("merge a folder", d.clone(), "not a regular file"),
        (
            "merge a missing file",
            d.join("nowhere.jsonl"),
            "nowhere.jsonl",
        ),
        ("merge a CSV of another header", bad_csv, "name,value"),
        ("merge JSON lines without paths", bad_json, "line 1"),
        ("merge a CSV cut inside a verdict", cut_csv, "line 3"),
        (
            "merge JSON rows without a verdict",
            odd_json,
            "not lamp score's",
        ),
        (
            "merge a text file",
            notes_file.clone(),
            "neither JSON lines nor CSV",
        ),
    ] {
        cases.push(case(name, &[&"merge", &file], 1, &[needle]));
    }
    cases.push(case(
        "score --maps onto a file",
        &[&"score", &model, &good, &"--maps", &model],
        1,
        &["m.safetensors"],
    ));
    for (extra, code, needle) in [
        (vec!["--classes", "0-4000000000"], 1, "--classes"),
        (vec!["--classes", "5-2"], 1, "--classes"),
        (vec!["--classes", "x"], 1, "--classes"),
        (vec!["--classes", "12"], 1, "--classes"),
        (vec!["--seeds", "-1"], 2, "--seeds"),
        (vec!["--epochs", "0"], 1, "--epochs"),
        (vec!["--lr", "nan"], 1, "--lr"),
    ] {
        let mut a: Vec<OsString> = vec![
            "experiment".into(),
            "fashion-mnist".into(),
            "--out".into(),
            d.join("exp").into(),
        ];
        a.extend(extra.iter().map(OsString::from));
        cases.push(case(
            &format!("experiment {}", extra.join(" ")),
            &a.iter()
                .map(|x| x as &dyn AsRef<std::ffi::OsStr>)
                .collect::<Vec<_>>(),
            code,
            &[needle],
        ));
    }
    for (extra, code, needle) in [
        (vec!["--radius", "nan"], 1, "--radius"),
        (vec!["--radius", "-1"], 1, "--radius"),
        (vec!["--radius", "inf"], 1, "--radius"),
        (vec!["--grid", "0"], 1, "--grid"),
        (vec!["--grid", "100000"], 1, "--grid"),
        (vec!["--batch", "0"], 1, "--batch"),
    ] {
        let mut a: Vec<OsString> = vec![
            "landscape".into(),
            model.clone().into(),
            good.clone().into(),
            "--out".into(),
            d.join("land").into(),
        ];
        a.extend(extra.iter().map(OsString::from));
        cases.push(case(
            &format!("landscape {}", extra.join(" ")),
            &a.iter()
                .map(|x| x as &dyn AsRef<std::ffi::OsStr>)
                .collect::<Vec<_>>(),
            code,
            &[needle],
        ));
    }

    cases
}

/// Data sets that are empty, filtered to nothing, inflating or lying.
pub fn data_sets(e: &Env) -> Vec<Case> {
    let (d, model, out) = (&e.d, &e.model, &e.out);
    let mut cases = Vec::new();
    // ---- data sets: empty, filtered to nothing, inflating, lying
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let notes = d.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("readme.txt"), "not images").unwrap();
    cases.push(case(
        "train on an empty folder",
        &[&"train", &empty, &"--out", &out],
        1,
        &["empty"],
    ));
    cases.push(case(
        "train on a folder without images",
        &[&"train", &notes, &"--out", &out],
        1,
        &["notes"],
    ));
    // A folder whose images sit one level down, sorted by label: refused, naming good/.
    let nested = d.join("nested");
    for (sub, from) in [("good", "g0.png"), ("crack", "g1.png")] {
        let _ = std::fs::create_dir_all(nested.join(sub));
        let _ = std::fs::copy(e.good.join(from), nested.join(sub).join(from));
    }
    cases.push(case(
        "train on a folder whose images are in subfolders by label",
        &[&"train", &nested, &"--out", &out],
        1,
        &["nested", "good/ beside crack/", "normal images only"],
    ));
    cases.push(case(
        "train on a missing folder",
        &[&"train", &d.join("nowhere"), &"--out", &out],
        1,
        &["nowhere"],
    ));
    cases.push(case(
        "score an empty folder",
        &[&"score", &model, &empty],
        1,
        &["empty"],
    ));
    cases.push(case(
        "calibrate on an empty folder",
        &[&"calibrate", &model, &empty],
        1,
        &["empty"],
    ));
    cases.push(case(
        "fashion-mnist:10",
        &[&"train", &"fashion-mnist:10", &"--out", &out],
        1,
        &["fashion-mnist:10"],
    ));
    cases.push(case(
        "fashion-mnist:x",
        &[&"train", &"fashion-mnist:x", &"--out", &out],
        1,
        &["fashion-mnist:x"],
    ));
    let missing = d.join("no-idx");
    cases.push(case(
        "--idx-dir missing",
        &[
            &"train",
            &"fashion-mnist:0",
            &"--idx-dir",
            &missing,
            &"--out",
            &out,
        ],
        1,
        &["no-idx"],
    ));
    let labels: Vec<u8> = (0..20).map(|i| (i % 2) as u8).collect();
    let ok_images = idx(&[20, 28, 28], &vec![100u8; 20 * 784]);
    let idx_cases: Vec<(&str, Vec<u8>, Vec<u8>, &str)> = vec![
        (
            "idx-bomb",
            {
                // Header promising 4 GiB; the gz body is small.
                let mut v = idx(&[65536, 256, 256], &[]);
                v.extend(vec![0u8; 1 << 20]);
                v
            },
            labels.clone(),
            "promises",
        ),
        (
            "idx-magic",
            {
                let mut v = ok_images.clone();
                v[2] = 0x0d;
                v
            },
            labels.clone(),
            "magic",
        ),
        (
            "idx-truncated",
            ok_images[..ok_images.len() - 100].to_vec(),
            labels.clone(),
            "truncated",
        ),
        (
            "idx-trailing",
            {
                let mut v = ok_images.clone();
                v.extend([1, 2, 3]);
                v
            },
            labels.clone(),
            "after the data",
        ),
        (
            "idx-header-cut",
            vec![0, 0, 8, 3, 0, 0],
            labels.clone(),
            "header",
        ),
        ("idx-labels-11", ok_images.clone(), vec![11u8; 20], "label"),
        (
            "idx-label-count",
            ok_images.clone(),
            vec![0u8; 19],
            "labels",
        ),
        (
            "idx-class-absent",
            ok_images.clone(),
            vec![1u8; 20],
            "class 0",
        ),
    ];
    for (n, images, labels, needle) in &idx_cases {
        let dir = d.join(n);
        idx_dir(&dir, images, labels);
        cases.push(case(
            n,
            &[
                &"train",
                &"fashion-mnist:0",
                &"--idx-dir",
                &dir,
                &"--out",
                &out,
            ],
            1,
            &[needle],
        ));
    }
    let gz_corrupt = d.join("gz-corrupt");
    idx_dir(&gz_corrupt, &ok_images, &labels);
    let mut g = std::fs::read(gz_corrupt.join("train-images-idx3-ubyte.gz")).unwrap();
    let mid = g.len() / 2;
    g[mid] ^= 0xff;
    g.truncate(g.len() - 8);
    std::fs::write(gz_corrupt.join("train-images-idx3-ubyte.gz"), g).unwrap();
    cases.push(case(
        "idx gzip corrupt",
        &[
            &"train",
            &"fashion-mnist:0",
            &"--idx-dir",
            &gz_corrupt,
            &"--out",
            &out,
        ],
        1,
        &["train-images"],
    ));
    // MVTec trees with problems.
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("train/good")).unwrap();
    std::fs::create_dir_all(tree.join("test/good")).unwrap();
    std::fs::create_dir_all(tree.join("test/scratch")).unwrap();
    std::fs::create_dir_all(tree.join("ground_truth/scratch")).unwrap();
    for i in 0..3 {
        png(&tree.join(format!("train/good/{i}.png")), 28, 28, i);
        png(&tree.join(format!("test/good/{i}.png")), 28, 28, i + 3);
    }
    png(&tree.join("test/scratch/000.png"), 28, 28, 9);
    png(&tree.join("ground_truth/scratch/000_mask.png"), 14, 14, 0);
    cases.push(case(
        "mvtec mask of the wrong size",
        &[&"eval", &model, &tree, &"--out", &d.join("ev1")],
        1,
        &["000_mask.png"],
    ));
    let tree2 = d.join("tree2");
    std::fs::create_dir_all(tree2.join("test/scratch")).unwrap();
    std::fs::create_dir_all(tree2.join("ground_truth/scratch")).unwrap();
    png(&tree2.join("test/scratch/000.png"), 28, 28, 9);
    cases.push(case(
        "mvtec mask missing",
        &[&"eval", &model, &tree2, &"--out", &d.join("ev2")],
        1,
        &["mask"],
    ));

    cases
}

/// Output that cannot be written.
pub fn streams(e: &Env) -> Vec<Case> {
    let full = || Some(PathBuf::from("/dev/full"));
    vec![
        Case {
            stdout: full(),
            ..case(
                "score to a full device",
                &[&"score", &e.model, &e.good],
                1,
                &["standard output"],
            )
        },
        Case {
            stdout: full(),
            ..case("info to a full device", &[&"info"], 1, &["standard output"])
        },
    ]
}
