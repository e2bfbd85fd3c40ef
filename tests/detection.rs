//! Detection on a user's own images through the binary: the model and batch chosen from the data
//! (`--arch auto`, no batch given), the held-out error and the mean-image check with its
//! warning, calibration warnings, `lamp calibrate`, `score --threshold`, scoring a tree of
//! subfolders, and evaluation of a tree without masks.

mod common;
use common::*;
use lamp::detect::fit::HeldOut;
use lamp::detect::{Calibration, Checkpoint};
use lamp::rng::SplitMix64;
use std::path::Path;

/// `n` RGB images of `size`² pixels: soft colour waves with a random phase and noise.
fn photos(dir: &Path, n: usize, size: u32, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut r = SplitMix64::new(seed);
    for i in 0..n {
        let (p, q) = (r.next_f64() * 6.0, r.next_f64() * 6.0);
        let img = image::RgbImage::from_fn(size, size, |x, y| {
            let (x, y) = (x as f64 / size as f64, y as f64 / size as f64);
            let mut v =
                |a: f64| ((0.5 + 0.35 * a.sin() + 0.05 * (r.next_f64() - 0.5)) * 255.0) as u8;
            image::Rgb([v(6.0 * x + p), v(5.0 * y + q), v(4.0 * (x + y) + p)])
        });
        img.save(dir.join(format!("{i:03}.png"))).unwrap();
    }
}

#[test]
fn auto_model_and_batch_fit_rgb_photos() {
    let d = tmpdir("auto");
    photos(&d.join("photos"), 40, 128, 1);
    let out = d.join("m.safetensors");
    // No model, no batch: chosen from the images and the device (lavapipe binds too little for
    // a batch of 64 at 128x128 RGB, which used to be an error).
    let o = ok(lamp()
        .args(["train", "--epochs", "1"])
        .arg(d.join("photos"))
        .arg("--out")
        .arg(&out));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("conv-ae 3x128x128")
            && err.contains("40 RGB images of 128x128")
            && err.contains("initial weights he"),
        "{err}"
    );
    let ck = Checkpoint::load(&out, None).unwrap();
    assert_eq!((ck.arch.channels, ck.arch.size), (3, 128));
    // Whole images: maps are scored above the held-out images' normal map.
    assert_eq!(ck.normal_map.as_ref().map(Vec::len), Some(128 * 128));
    let train: serde_json::Value = serde_json::from_str(&ck.metadata["train"]).unwrap();
    let batch = train["batch"].as_u64().unwrap();
    assert!((1..=36).contains(&batch), "batch {batch}");
    // conv-ae starts from He's weights unless told otherwise, and the checkpoint says so, as
    // does its recipe (which the command line gave as auto).
    assert_eq!(train["init"], "he", "{train}");
    let recipe = ok(lamp().arg("inspect").arg(&out).arg("--recipe")).stdout;
    let recipe = String::from_utf8_lossy(&recipe);
    assert!(recipe.contains("\ninit = \"he\"\n"), "{recipe}");
    // The held-out check and the per-epoch held-out error are stored and written out.
    let h: HeldOut = ck.meta("held_out").unwrap();
    assert_eq!(h.images, 4);
    assert!(h.model_error > 0.0 && h.mean_image_error > 0.0);
    let csv = std::fs::read_to_string(d.join("m.loss.csv")).unwrap();
    assert!(csv.starts_with("epoch,loss,held_out_error,"), "{csv}");
    assert!(csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .parse::<f32>()
        .is_ok());
    // Four held-out images: too few for a threshold, and said so.
    assert!(
        err.contains("warning: the threshold comes from only 4"),
        "{err}"
    );
    // A size or channel count given with auto overrides the images' (they are resized).
    let small = d.join("small.safetensors");
    let o = ok(lamp()
        .args(["train", "--epochs", "1", "--size", "32", "--channels", "1"])
        .arg(d.join("photos"))
        .arg("--out")
        .arg(&small));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("conv-ae 1x32x32") && err.contains("--arch auto, --size 32, --channels 1"),
        "{err}"
    );
    let ck = Checkpoint::load(&small, None).unwrap();
    assert_eq!((ck.arch.channels, ck.arch.size), (1, 32));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn init_draws_the_weights_it_names() {
    let d = tmpdir("init");
    let draw = |how: &str| {
        let out = d.join(format!("{how}.safetensors"));
        let mut c = lamp();
        c.args(["init", "--size", "64", "--channels", "1"]);
        if how != "default" {
            c.args(["--init", how]);
        }
        ok(c.arg("--out").arg(&out));
        Checkpoint::load(&out, None).unwrap()
    };
    let (he, pytorch, default) = (draw("he"), draw("pytorch"), draw("default"));
    assert_eq!(he.metadata["init"], "he");
    assert_eq!(pytorch.metadata["init"], "pytorch");
    // A conv-ae of four stages (64 px) starts from He's by default; one of three, PyTorch's.
    assert_eq!(default.params, he.params);
    let out = d.join("small.safetensors");
    let o = ok(lamp().args(["init", "--size", "32", "--out"]).arg(&out));
    // It says what it wrote.
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("initial weights pytorch") && said.contains("untrained"),
        "{said}"
    );
    assert_eq!(
        Checkpoint::load(&out, None).unwrap().metadata["init"],
        "pytorch"
    );
    let table = he.arch.param_table();
    let b = table.get("enc1.bias").unwrap();
    let bias = |c: &Checkpoint| c.params[b.offset..b.offset + b.len()].to_vec();
    assert!(bias(&he).iter().all(|&v| v == 0.0));
    assert!(bias(&pytorch).iter().all(|&v| v != 0.0));
    // fmnist-ae (no size given) keeps PyTorch's, the reference model's.
    let out = d.join("fmnist.safetensors");
    ok(lamp().args(["init", "--out"]).arg(&out));
    let f = Checkpoint::load(&out, None).unwrap();
    assert_eq!(f.metadata["init"], "pytorch");
    let bad = lamp()
        .args(["init", "--init", "xavier", "--out"])
        .arg(d.join("x.safetensors"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("[possible values: auto, pytorch, he]"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_model_on_the_mean_image_plateau_is_reported() {
    let d = tmpdir("plateau");
    photos(&d.join("photos"), 30, 32, 2);
    let out = d.join("m.safetensors");
    // A learning rate too small to learn anything in two epochs.
    let o = ok(lamp()
        .args(["train", "--epochs", "2", "--lr", "1e-7"])
        .arg(d.join("photos"))
        .arg("--out")
        .arg(&out));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: the model reconstructs held-out normal images no better than")
            && err.contains("--min-steps"),
        "{err}"
    );
    let h: HeldOut = Checkpoint::load(&out, None)
        .unwrap()
        .meta("held_out")
        .unwrap();
    assert!(h.on_plateau(), "{h:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn calibrate_score_threshold_and_trees() {
    let d = tmpdir("calibrate");
    let root = d.join("parts");
    photos(&root.join("train/good"), 30, 32, 3);
    photos(&root.join("test/good"), 6, 32, 4);
    // Anomalies: the same waves with a dark square.
    photos(&root.join("test/dent"), 6, 32, 5);
    for e in std::fs::read_dir(root.join("test/dent")).unwrap() {
        let p = e.unwrap().path();
        let mut img = image::open(&p).unwrap().to_rgb8();
        for y in 8..20 {
            for x in 10..22 {
                img.put_pixel(x, y, image::Rgb([10, 10, 10]));
            }
        }
        img.save(&p).unwrap();
    }
    let model = d.join("m.safetensors");
    let o = ok(lamp()
        // The mean score (conv-ae's default is topk): what follows recalibrates it to topk.
        .args(["train", "--epochs", "30", "--lr", "3e-3", "--quiet"])
        .args(["--score-agg", "mean"])
        .arg(&root)
        .arg("--out")
        .arg(&model));
    // 3 held-out images of 30: said before training starts (before its first line).
    let err = String::from_utf8_lossy(&o.stderr);
    let early = "the threshold will come from only 3 held-out images";
    assert!(err.contains(early), "{err}");
    // (more than half of 30 would have to be held out for 20: no --val-split is offered)
    assert!(!err.contains("--val-split 0."), "{err}");

    // Evaluation of a tree without ground_truth/: image metrics, and a word on pixel metrics.
    let o = ok(lamp()
        .arg("eval")
        .arg(&model)
        .arg(&root)
        .arg("--out")
        .arg(d.join("eval")));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("pixel metrics need ground_truth/ masks"),
        "{text}"
    );
    // The verdicts at the threshold in numbers, and the report's warnings on the terminal too.
    assert!(
        text.contains("at the calibrated threshold") && text.contains("of 6 anomalies flagged"),
        "{text}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("threshold comes from only 3"), "{err}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("eval/metrics.json")).unwrap())
            .unwrap();
    assert!(m["image_auroc"].as_f64().is_some() && m["pixel_auroc"].is_null());
    assert_eq!(m["masks"], false);
    for agg in ["mean", "max", "topk"] {
        assert!(m["image_auroc_by_score"][agg].as_f64().is_some(), "{agg}");
    }
    let report = std::fs::read_to_string(d.join("eval/report.md")).unwrap();
    assert!(report.contains("no ground-truth masks"));

    // A tree of subfolders: every image scored once, by its path.
    let o = ok(lamp()
        .arg("score")
        .arg(&model)
        .arg(root.join("test"))
        .arg("--json"));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12);
    let mismatch = "the model takes images of 32x32";
    assert!(!String::from_utf8_lossy(&o.stderr).contains(mismatch));
    // A grey image given to this colour model: scored, with a warning that says why it scores
    // high; colour images get none.
    let grey = "grey and the model was trained on colour images";
    assert!(!String::from_utf8_lossy(&o.stderr).contains(grey));
    std::fs::create_dir_all(d.join("grey")).unwrap();
    image::open(root.join("test/good/000.png"))
        .unwrap()
        .to_luma8()
        .save(d.join("grey/000.png"))
        .unwrap();
    let o = ok(lamp().arg("score").arg(&model).arg(d.join("grey")));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(grey) && err.contains("grey/000.png"), "{err}");
    // A model trained on colour images among which were grey ones (train counts them) has
    // seen grey images: no warning. (The same model, said to have been.)
    let mut ck = Checkpoint::load(&model, None).unwrap();
    assert_eq!(ck.metadata["grey_images"], "0");
    ck.metadata.insert("grey_images".into(), "2".into());
    let seen = d.join("seen_grey.safetensors");
    ck.save(&seen).unwrap();
    let o = ok(lamp().arg("score").arg(&seen).arg(d.join("grey")));
    assert!(!String::from_utf8_lossy(&o.stderr).contains(grey));
    // Images of another size than the model's are scored, resized, with a warning.
    photos(&d.join("big"), 2, 96, 6);
    let o = ok(lamp().arg("score").arg(&model).arg(d.join("big")));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(mismatch) && err.contains("96 pixels"), "{err}");
    assert_eq!(
        lines
            .iter()
            .filter(|v| v["path"].as_str().unwrap().contains("/dent/"))
            .count(),
        6
    );
    // A glob pattern with a wildcard in a folder part: the dent images only.
    let pattern = root.join("test").join("de*").join("*.png");
    let o = ok(lamp().arg("score").arg(&model).arg(&pattern).arg("--json"));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 6);
    // A threshold given on the command line decides the verdicts.
    let o = ok(lamp()
        .arg("score")
        .arg(&model)
        .arg(root.join("test"))
        .args(["--json", "--threshold", "0"]));
    assert!(String::from_utf8_lossy(&o.stdout)
        .lines()
        .all(|l| l.contains("\"anomalous\":true")));
    // Judged normal by a threshold no score reaches, the dents are still outlined in their maps:
    // a note says how to judge by the worst region. With every image anomalous, no note.
    let note = "judged normal have a region outlined";
    let maps_of = |threshold: &str| {
        let o = ok(lamp()
            .arg("score")
            .arg(&model)
            .arg(root.join("test/dent"))
            .args(["--threshold", threshold, "--maps"])
            .arg(d.join(format!("maps-{threshold}"))));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = maps_of("1000");
    assert!(err.contains(note) && err.contains("--score-agg"), "{err}");
    assert!(!maps_of("0").contains(note));
    // With --json, each row says what its map outlines: how many pixels are over the pixel
    // threshold and the box that holds them, in the image's pixels. A dent's box overlaps its
    // dark square ([10, 22) x [8, 20)).
    let o = ok(lamp()
        .arg("score")
        .arg(&model)
        .arg(root.join("test"))
        .args(["--json", "--maps"])
        .arg(d.join("maps-json")));
    let mut dents_outlined = 0;
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let g = &r["outlined"];
        if g.is_null() {
            continue;
        }
        let pixels = g["pixels"].as_u64().unwrap();
        assert!(pixels >= 1, "{r}");
        assert_eq!(
            g["fraction"].as_f64().unwrap(),
            pixels as f64 / 1024.0,
            "{r}"
        );
        let b: Vec<u64> = g["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert!(
            b[0] < b[2] && b[1] < b[3] && b[2] <= 32 && b[3] <= 32,
            "{r}"
        );
        assert!(((b[2] - b[0]) * (b[3] - b[1])) >= pixels, "{r}");
        if r["path"].as_str().unwrap().contains("/dent/") {
            assert!(b[0] < 22 && b[2] > 10 && b[1] < 20 && b[3] > 8, "{r}");
            dents_outlined += 1;
        }
    }
    assert!(
        dents_outlined >= 1,
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Defects are not normal images: a tree that holds them (named whole, or its test/) is
    // refused, with the folder of normal ones named; nothing is written.
    for tree in [root.clone(), root.join("test")] {
        fails(
            &[
                "calibrate".as_ref(),
                model.as_os_str(),
                tree.as_os_str(),
                "--out".as_ref(),
                d.join("never.safetensors").as_os_str(),
            ],
            &["6 of these", "folders of defects", "test/dent", "test/good"],
        );
        assert!(!d.join("never.safetensors").exists());
    }
    // An unreadable file among normal images stops calibrate, which says how to go past it;
    // with --skip-bad it is skipped with a warning and the rest set the threshold.
    let mixed = d.join("mixed");
    photos(&mixed, 6, 32, 7);
    std::fs::write(mixed.join("broken.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    let mixed_out = d.join("mixed.safetensors");
    let args = [
        "calibrate".as_ref(),
        model.as_os_str(),
        mixed.as_os_str(),
        "--out".as_ref(),
        mixed_out.as_os_str(),
    ];
    fails(&args, &["broken.png", "--skip-bad"]);
    let o = ok(lamp().args(args).arg("--skip-bad"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("skipped 1 unreadable image") && err.contains("from 6 images"),
        "{err}"
    );

    // Recalibration on new normal images, without training: the threshold moves, the weights
    // stay, and the count says where it came from.
    let recal = d.join("recal.safetensors");
    let o = ok(lamp()
        .arg("calibrate")
        .arg(&model)
        .arg(root.join("train/good"))
        .args(["--contamination", "0.2", "--out"])
        .arg(&recal));
    // Those are the images the model was trained on: said, as the threshold will run low.
    let learnt = "the folder the model was trained on";
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(learnt) && err.contains("30 of these 30 images"),
        "{err}"
    );
    // Over the model itself, that is refused before anything is read: its threshold stays.
    let before = std::fs::read(&model).unwrap();
    fails(
        &[
            "calibrate".as_ref(),
            model.as_os_str(),
            root.join("train/good").as_os_str(),
        ],
        &[learnt, "--out"],
    );
    assert_eq!(std::fs::read(&model).unwrap(), before);
    let o = ok(lamp()
        .arg("calibrate")
        .arg(&model)
        .arg(root.join("test/good"))
        .arg("--out")
        .arg(d.join("recal-test.safetensors")));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains(learnt), "{err}");
    // Files named one by one (a shell's expansion: possibly thousands) are recorded as the
    // first few and their number.
    let mut files: Vec<_> = std::fs::read_dir(root.join("test/good"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let by_name = d.join("recal-files.safetensors");
    ok(lamp()
        .arg("calibrate")
        .arg(&model)
        .args(&files[..5])
        .arg("--out")
        .arg(&by_name));
    let cal: lamp::detect::Calibration = Checkpoint::load(&by_name, None)
        .unwrap()
        .meta("calibration")
        .unwrap();
    assert!(cal.source.ends_with("… (5 inputs)"), "{}", cal.source);
    // Evaluated on the images its threshold was set on, a model gets a warning; not otherwise.
    let optimistic = "where the model's threshold was set";
    for (m, warned) in [
        (d.join("recal-test.safetensors"), true),
        (model.clone(), false),
    ] {
        let o = ok(lamp()
            .arg("eval")
            .arg(&m)
            .arg(&root)
            .arg("--out")
            .arg(d.join("eval-cal")));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.contains(optimistic), warned, "{m:?}: {err}");
        if warned {
            assert!(err.contains("6 of these test images"), "{err}");
            // Its normal map came from them too: the AUROC is in doubt as well.
            let normal = Checkpoint::load(&m, None).unwrap().counted_against();
            assert_eq!(
                err.contains("so may be the AUROC"),
                normal.is_some(),
                "{err}"
            );
        }
        // The report says it too, where its precision and recall are read, and gives the
        // metrics.json figures it once left out.
        let md = std::fs::read_to_string(d.join("eval-cal/report.md")).unwrap();
        assert_eq!(md.contains(optimistic), warned, "{md}");
        for row in ["image average precision", "recall at a 5% false-alarm rate"] {
            assert!(md.contains(row), "{row}: {md}");
        }
    }
    // Another way of scoring, without training: the score and its threshold change together.
    let topk = d.join("topk.safetensors");
    ok(lamp()
        .arg("calibrate")
        .arg(&model)
        .arg(root.join("test/good"))
        .args(["--score-agg", "topk", "--top-k", "0.05", "--out"])
        .arg(&topk));
    let (mean_ck, topk_ck) = (
        Checkpoint::load(&d.join("recal-test.safetensors"), None).unwrap(),
        Checkpoint::load(&topk, None).unwrap(),
    );
    assert_eq!(mean_ck.params, topk_ck.params);
    // The normal map comes from the calibration images, and goes with --normal-map off.
    let normal_of = |ck: &Checkpoint| ck.normal_map.clone().expect("a normal map");
    assert_ne!(
        normal_of(&mean_ck),
        normal_of(&Checkpoint::load(&model, None).unwrap())
    );
    let plain = d.join("plain.safetensors");
    ok(lamp()
        .arg("calibrate")
        .arg(&model)
        .arg(root.join("test/good"))
        .args(["--normal-map", "off", "--out"])
        .arg(&plain));
    assert!(Checkpoint::load(&plain, None).unwrap().normal_map.is_none());
    // Asked for one from a single image, it says none was set.
    let o = ok(lamp()
        .arg("calibrate")
        .arg(&plain)
        .arg(root.join("test/good/000.png"))
        .args(["--normal-map", "on"]));
    let said = String::from_utf8_lossy(&o.stdout) + String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("no normal map set"), "{said}");
    assert!(Checkpoint::load(&plain, None).unwrap().normal_map.is_none());
    let sc: lamp::detect::ScoreConfig = topk_ck.meta("score").unwrap();
    assert_eq!(
        (sc.aggregate, sc.top_k),
        (lamp::detect::Aggregate::Topk, 0.05)
    );
    let (tm, tt): (Calibration, Calibration) = (
        mean_ck.meta("calibration").unwrap(),
        topk_ck.meta("calibration").unwrap(),
    );
    assert!(
        tt.threshold > tm.threshold,
        "the top 5% of a map lie above its mean: {} vs {}",
        tt.threshold,
        tm.threshold
    );
    fails(
        &[
            "calibrate".as_ref(),
            model.as_os_str(),
            root.join("test/good").as_os_str(),
            "--score-agg".as_ref(),
            "topk".as_ref(),
            "--top-k".as_ref(),
            "2".as_ref(),
        ],
        &["--top-k"],
    );
    fails(
        &[
            "calibrate".as_ref(),
            model.as_os_str(),
            root.join("test/good").as_os_str(),
            "--top-k".as_ref(),
            "0.1".as_ref(),
        ],
        &["--top-k", "topk only"],
    );
    let (a, b) = (
        Checkpoint::load(&model, None).unwrap(),
        Checkpoint::load(&recal, None).unwrap(),
    );
    assert_eq!(a.params, b.params);
    let (ca, cb): (Calibration, Calibration) = (
        a.meta("calibration").unwrap(),
        b.meta("calibration").unwrap(),
    );
    assert_eq!(cb.count, 30);
    assert_eq!(cb.contamination, 0.2);
    assert_ne!(ca.threshold, cb.threshold);
    fails(
        &[
            "calibrate".as_ref(),
            model.as_os_str(),
            root.join("test").as_os_str(),
            "--contamination".as_ref(),
            "1.5".as_ref(),
        ],
        &["--contamination"],
    );
    std::fs::remove_dir_all(&d).unwrap();
}
