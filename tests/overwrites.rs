//! Nothing a user has is lost to a slip of an option: an output named like one of the images
//! being read, or placed where its images would be read the next time, is refused before
//! anything is written; a calibration that could not be loaded again is never written; a
//! finished model resumed with no epoch left is left as it is; an evaluation report that cannot
//! be put in place leaves the one before it.

mod common;
use common::*;
use std::path::Path;

/// `n` grey `size` px images of smooth waves and a little noise (different for each seed).
fn waves(dir: &Path, n: usize, size: u32, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut r = lamp::rng::SplitMix64::new(seed);
    for i in 0..n {
        let (p, q) = (r.next_f64() * 6.0, r.next_f64() * 6.0);
        let img = image::GrayImage::from_fn(size, size, |x, y| {
            let (x, y) = (x as f64 / size as f64, y as f64 / size as f64);
            let v = 0.5 + 0.3 * (6.0 * x + p).sin() * (5.0 * y + q).cos();
            image::Luma([((v + 0.05 * (r.next_f64() - 0.5)) * 255.0) as u8])
        });
        img.save(dir.join(format!("{i:03}.png"))).unwrap();
    }
}

#[test]
fn outputs_never_replace_inputs_and_models_stay_loadable() {
    let d = tmpdir("overwrites");
    let good = d.join("good");
    waves(&good, 12, 32, 1);
    let model = d.join("m.safetensors");
    let train = |extra: &[&str]| {
        let mut c = lamp();
        c.arg("train")
            .arg(&good)
            .args(["--epochs", "2", "--min-steps", "0"]);
        c.args(extra).arg("--out").arg(&model);
        c
    };
    ok(&mut train(&["--quiet"]));
    let s = |p: &Path| p.as_os_str().to_owned();
    let (good_s, model_s) = (s(&good), s(&model));
    let image = good.join("003.png");
    let image_bytes = std::fs::read(&image).unwrap();
    let model_bytes = std::fs::read(&model).unwrap();

    // A model written into its own training folder: its loss curve would be trained on next.
    let inside = good.join("m2.safetensors");
    let train_to = |out: &Path| {
        vec![
            s(Path::new("train")),
            good_s.clone(),
            s(Path::new("--out")),
            s(out),
        ]
    };
    fails(
        &train_to(&inside),
        &["m2.safetensors", "loss curve", "--out"],
    );
    assert!(!inside.exists() && !good.join("m2.loss.png").exists());
    // score -o and calibrate --out over an image being read; score -o over the model.
    let score = |extra: &[&Path]| {
        let mut v = vec![s(Path::new("score")), model_s.clone(), good_s.clone()];
        v.extend(extra.iter().map(|p| s(p)));
        v
    };
    fails(
        &score(&[Path::new("-o"), &image]),
        &["003.png", "-o", "one of the images"],
    );
    fails(
        &score(&[Path::new("-o"), &model]),
        &["m.safetensors", "the model"],
    );
    // --maps inside a folder being scored, also where it is yet to be made a level or two
    // below: its maps would be scored the next time.
    let maps = good.join("new/maps");
    fails(
        &score(&[Path::new("--maps"), &maps]),
        &["maps", "--maps", "heat maps"],
    );
    assert!(!good.join("new").exists());
    // Through links: a write to a link lands in its target.
    #[cfg(unix)]
    {
        let link = d.join("out.json");
        std::os::unix::fs::symlink(&image, &link).unwrap();
        fails(
            &score(&[Path::new("-o"), &link]),
            &["out.json", "-o", "one of the images"],
        );
        let maps_link = d.join("maps");
        std::os::unix::fs::symlink(&good, &maps_link).unwrap();
        fails(
            &score(&[Path::new("--maps"), &maps_link]),
            &["maps", "--maps"],
        );
    }
    let calibrate = |extra: &[&str]| {
        let mut v = vec![s(Path::new("calibrate")), model_s.clone(), good_s.clone()];
        v.extend(extra.iter().map(|e| s(Path::new(e))));
        v
    };
    let mut over = calibrate(&["--out"]);
    over.push(s(&image));
    fails(&over, &["003.png", "--out", "one of the images"]);
    assert_eq!(std::fs::read(&image).unwrap(), image_bytes);
    // A negative k would set a negative threshold, which no lamp loads: refused, the model
    // (calibrate writes over it by default) unchanged.
    fails(
        &calibrate(&["--threshold", "sigma", "--sigma-k", "-5"]),
        &["--sigma-k", "-5"],
    );
    assert_eq!(std::fs::read(&model).unwrap(), model_bytes);

    // Resumed with no epoch left to train: nothing to do, and the model is not rewritten.
    let o = ok(&mut train(&["--resume"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("already trained for 2 epochs"), "{err}");
    assert_eq!(std::fs::read(&model).unwrap(), model_bytes);

    // One image far from the model's size among ordinary ones: named in a warning.
    let mixed = d.join("mixed");
    waves(&mixed, 3, 32, 2);
    image::GrayImage::from_pixel(1, 1, image::Luma([128]))
        .save(mixed.join("tiny.png"))
        .unwrap();
    let o = ok(lamp().arg("score").arg(&model).arg(&mixed));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("1 of the 4 images") && err.contains("tiny.png") && err.contains("1 px"),
        "{err}"
    );

    // A model an older lamp calibrated out of range (a negative threshold): refused by every
    // command but calibrate, which sets it anew.
    let (_, header) = safetensors::SafeTensors::read_metadata(&model_bytes).unwrap();
    let mut meta: std::collections::BTreeMap<String, String> =
        header.metadata().clone().unwrap().into_iter().collect();
    let mut cal: serde_json::Value = serde_json::from_str(&meta["calibration"]).unwrap();
    cal["threshold"] = serde_json::json!(-0.001);
    meta.insert("calibration".into(), cal.to_string());
    let tensors = lamp::data::tensors::read_safetensors(&model_bytes).unwrap();
    let t: lamp::data::tensors::Tensors = (tensors.iter())
        .map(|(k, (shape, v))| (k.clone(), (shape.clone(), v.as_slice())))
        .collect();
    let bad = d.join("bad.safetensors");
    std::fs::write(&bad, lamp::data::tensors::write_safetensors(&meta, &t)).unwrap();
    fails(
        &[s(Path::new("score")), s(&bad), s(&image)],
        &["bad.safetensors", "threshold is -0.001"],
    );
    // (On its training images, which calibrate accepts only for a copy.)
    let fixed = d.join("fixed.safetensors");
    ok(lamp()
        .arg("calibrate")
        .arg(&bad)
        .arg(&good)
        .arg("-o")
        .arg(&fixed));
    ok(lamp().arg("score").arg(&fixed).arg(&image));

    // A model in a subfolder of the training folder (which training does not read) may go.
    let sub = good.join("models");
    std::fs::create_dir(&sub).unwrap();
    ok(lamp()
        .arg("train")
        .arg(&good)
        .args(["--epochs", "1", "--min-steps", "0", "--quiet", "--out"])
        .arg(sub.join("m.safetensors")));
    assert!(sub.join("m.safetensors").is_file());
    std::fs::remove_dir_all(&d).unwrap();
}

/// A folder that holds its images in subfolders (by day) trains on all of them and says so;
/// its outputs are refused anywhere in it (the loss curve beside the model would be trained on
/// next), and calibrating on a day's images says those were learnt.
#[test]
fn a_folder_of_subfolders_trains_on_them_all_and_keeps_outputs_out() {
    let d = tmpdir("subfolders");
    let days = d.join("days");
    waves(&days.join("mon"), 5, 16, 1);
    waves(&days.join("tue/cam2"), 4, 16, 2);
    let train = |out: &Path| {
        let mut c = lamp();
        c.arg("train")
            .arg(&days)
            .args(["--epochs", "1", "--min-steps", "0", "--batch", "4", "--out"])
            .arg(out);
        c
    };
    // In it, or in one of the subfolders trained on.
    for inside in [days.join("m.safetensors"), days.join("mon/m.safetensors")] {
        let args: Vec<_> = train(&inside).get_args().map(|a| a.to_owned()).collect();
        fails(&args, &["m.safetensors", "inside", "loss curve"]);
    }
    // A link to a folder is not followed, and said.
    #[cfg(unix)]
    std::os::unix::fs::symlink(days.join("mon"), days.join("wed")).unwrap();
    let model = d.join("m.safetensors");
    let o = ok(&mut train(&model));
    let err = String::from_utf8_lossy(&o.stderr);
    #[cfg(unix)]
    assert!(
        err.contains("left out 1 link to a folder (the first"),
        "{err}"
    );
    assert!(
        err.contains(
            "holds no images itself: training on the 9 images in its 2 subfolders (mon/ 5, tue/ 4)"
        ),
        "{err}"
    );
    let c = lamp::detect::Checkpoint::load(&model, None).unwrap();
    let folders: Vec<String> = serde_json::from_str(&c.metadata["training_folders"]).unwrap();
    assert_eq!(folders.len(), 2, "{folders:?}");
    assert!(folders[1].ends_with("cam2"), "{folders:?}");
    // Images of a folder trained on, as a calibration set: said.
    let o = ok(lamp()
        .arg("calibrate")
        .arg(&model)
        .arg(days.join("tue/cam2"))
        .arg("--out")
        .arg(d.join("recal.safetensors")));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("4 of these 4 images are in")
            && err.contains("the folder the model was trained on"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_report_that_cannot_be_put_in_place_leaves_the_one_before() {
    let d = tmpdir("report-in-place");
    let cat = d.join("cat");
    waves(&cat.join("train/good"), 12, 32, 1);
    waves(&cat.join("test/good"), 4, 32, 2);
    waves(&cat.join("test/odd"), 4, 32, 3);
    let model = d.join("m.safetensors");
    ok(lamp()
        .arg("train")
        .arg(&cat)
        .args(["--epochs", "1", "--min-steps", "0", "--quiet", "--out"])
        .arg(&model));
    let report = d.join("report");
    let eval = |model: &Path, panels: &str| {
        let mut c = lamp();
        c.arg("eval").arg(model).arg(&cat).arg("--out").arg(&report);
        c.args(["--panels", panels]);
        c
    };
    ok(&mut eval(&model, "3"));
    // A folder where report.html goes: found before anything moves, and nothing is changed
    // (another model's report would change every file).
    std::fs::remove_file(report.join("report.html")).unwrap();
    std::fs::create_dir(report.join("report.html")).unwrap();
    let before = files_under(&report);
    let other = d.join("other.safetensors");
    std::fs::copy(&model, &other).unwrap();
    let o = eval(&other, "3").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("report.html") && err.contains("left as it was"),
        "{err}"
    );
    assert!(
        files_under(&report) == before,
        "the report before is changed"
    );
    // Out of the way, a report of fewer panels replaces the old ones, and a file of the
    // user's among them stays.
    std::fs::remove_dir(report.join("report.html")).unwrap();
    std::fs::write(report.join("panels/notes.txt"), b"mine").unwrap();
    ok(&mut eval(&other, "1"));
    let panels: Vec<String> = std::fs::read_dir(report.join("panels"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(panels.contains(&"notes.txt".to_string()), "{panels:?}");
    assert!(
        panels
            .iter()
            .all(|p| !p.contains("_01_") && !p.contains("_02_")),
        "{panels:?}"
    );
    assert!(report.join("report.html").is_file());
    let hidden: Vec<_> = std::fs::read_dir(&report)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "nothing is left behind: {hidden:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn every_command_refuses_to_replace_what_it_reads() {
    let d = tmpdir("every-command");
    let good = d.join("good");
    waves(&good, 12, 28, 4);
    let model = d.join("m.safetensors");
    ok(lamp()
        .arg("train")
        .arg(&good)
        .args(["--epochs", "1", "--min-steps", "0", "--quiet", "--out"])
        .arg(&model));
    let model_bytes = std::fs::read(&model).unwrap();
    let image = good.join("000.png");
    let image_bytes = std::fs::read(&image).unwrap();
    let s = |p: &Path| p.to_string_lossy().into_owned();
    // grad's -o over its input batch or its model.
    let x = d.join("x.safetensors");
    let batch: Vec<f32> = random(2 * 28 * 28, 3, 0.1, 0.9);
    let t: lamp::data::tensors::Tensors =
        [("x".to_string(), (vec![2, 1, 28, 28], batch.as_slice()))].into();
    std::fs::write(
        &x,
        lamp::data::tensors::write_safetensors(&Default::default(), &t),
    )
    .unwrap();
    let x_bytes = std::fs::read(&x).unwrap();
    for (from, out, what) in [
        ("--init-seed", &x, "the input batch"),
        ("--model", &model, "the model"),
    ] {
        let seed_or_model = if from == "--model" {
            s(&model)
        } else {
            "0".into()
        };
        fails(
            &[
                "grad",
                from,
                &seed_or_model,
                "--input",
                &s(&x),
                "-o",
                &s(out),
            ],
            &["-o", "would replace it", what],
        );
    }
    assert_eq!(std::fs::read(&x).unwrap(), x_bytes);
    // --lr without --adam-steps would be ignored.
    fails(
        &[
            "grad",
            "--init-seed",
            "0",
            "--input",
            &s(&x),
            "-o",
            &s(&d.join("g")),
            "--lr",
            "0.5",
        ],
        &["--adam-steps"],
    );
    // init over a trained model or an image; options fmnist-ae does not take.
    fails(
        &["init", "-o", &s(&model)],
        &["m.safetensors", "not an untrained model"],
    );
    fails(
        &["init", "-o", &s(&image)],
        &["000.png", "not an untrained model"],
    );
    fails(
        &[
            "init",
            "-o",
            &s(&d.join("i.safetensors")),
            "--arch",
            "fmnist-ae",
            "--size",
            "64",
        ],
        &["--size", "fmnist-ae"],
    );
    let train_fmnist = |extra: &[&str]| {
        let mut v = vec![
            "train".to_string(),
            s(&good),
            "-o".into(),
            s(&d.join("f.safetensors")),
        ];
        v.extend(
            ["--arch", "fmnist-ae"]
                .iter()
                .chain(extra)
                .map(|e| e.to_string()),
        );
        v
    };
    fails(&train_fmnist(&["--patch", "14"]), &["--patch", "fmnist-ae"]);
    fails(
        &train_fmnist(&["--latent", "64", "--print-config"]),
        &["--latent"],
    );
    // merge's -o over one of its shards.
    let shard = d.join("all.jsonl");
    ok(lamp()
        .arg("score")
        .arg(&model)
        .arg(&good)
        .arg("-o")
        .arg(&shard));
    let shard_bytes = std::fs::read(&shard).unwrap();
    assert!(
        shard_bytes.starts_with(b"{"),
        "-o x.jsonl writes JSON lines"
    );
    fails(
        &["merge", &s(&shard), "-o", &s(&shard)],
        &["all.jsonl", "would replace it"],
    );
    assert_eq!(std::fs::read(&shard).unwrap(), shard_bytes);
    // landscape's pictures among the images it reads.
    fails(
        &["landscape", &s(&model), &s(&good), "-o", &s(&good)],
        &["-o", "being read"],
    );
    // An evaluation report, or a model's loss curve, inside an MVTec AD category: the next
    // eval would count the report's charts among its test images, `score CATEGORY` the curve.
    let cat = d.join("cat");
    waves(&cat.join("train/good"), 8, 28, 6);
    waves(&cat.join("test/good"), 2, 28, 7);
    waves(&cat.join("test/odd"), 2, 28, 8);
    let inside = s(&cat.join("test/good"));
    fails(
        &["eval", &s(&model), &s(&cat), "--out", &inside],
        &["--out", "being read"],
    );
    let cat_model = s(&cat.join("m.safetensors"));
    fails(
        &["train", &s(&cat), "--epochs", "1", "--out", &cat_model],
        &["--out", "being read"],
    );
    // Heat maps named like one of the images named one by one.
    let named = d.join("named");
    waves(&named, 2, 28, 5);
    let overlay = named.join("000_overlay.png");
    std::fs::rename(named.join("001.png"), &overlay).unwrap();
    let overlay_bytes = std::fs::read(&overlay).unwrap();
    fails(
        &[
            "score",
            &s(&model),
            &s(&named.join("000.png")),
            &s(&overlay),
            "--maps",
            &s(&named),
        ],
        &["000_overlay.png", "--maps"],
    );
    assert_eq!(std::fs::read(&overlay).unwrap(), overlay_bytes);
    assert_eq!(std::fs::read(&model).unwrap(), model_bytes);
    assert_eq!(std::fs::read(&image).unwrap(), image_bytes);
    std::fs::remove_dir_all(&d).unwrap();
}
