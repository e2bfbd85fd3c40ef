//! End to end through the `lamp` binary: `grad` against the CPU reference, a short `train` on a
//! folder of images, and bad inputs that must end in a one-line error naming the file, with a
//! non-zero exit and no panic.

mod common;
use common::*;
use lamp::data::tensors::{read_safetensors, write_safetensors, OwnedTensors};
use lamp::detect::Checkpoint;
use lamp::model::{Amp, Arch, Granularity, LossConfig, Metric};
use std::collections::BTreeMap;
use std::path::Path;

fn read_tensors(path: &Path) -> OwnedTensors {
    read_safetensors(&std::fs::read(path).unwrap()).unwrap()
}

fn write_batch(path: &Path, x: &[f32], shape: Vec<usize>) {
    let mut t = BTreeMap::new();
    t.insert("x".to_string(), (shape, x));
    std::fs::write(path, write_safetensors(&BTreeMap::new(), &t)).unwrap();
}

/// The GEMM cores (`LAMP_GEMM`) give the same bits: a forward and backward pass and three Adam
/// steps of fmnist-ae (convolutions, linear layers, transposed convolutions) write identical
/// files with each core.
#[test]
fn gemm_cores_agree_bit_for_bit() {
    let d = tmpdir("cores");
    let batch = 5;
    let x = random(batch * 28 * 28, 8, 0.0, 1.0);
    let input = d.join("batch.safetensors");
    write_batch(&input, &x, vec![batch, 1, 28, 28]);
    let run = |core: &str, adam: &str| {
        let out = d.join(format!("{core}-{adam}.safetensors"));
        let st = lamp()
            .env("LAMP_GEMM", core)
            .args(["grad", "--init-seed", "2", "--arch", "fmnist-ae"])
            .args(["--metric", "mse", "--adam-steps", adam, "--input"])
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        std::fs::read(&out).unwrap()
    };
    for adam in ["0", "3"] {
        let plain = run("plain", adam);
        assert!(plain.len() > 1000);
        for core in ["subgroup", "tiled"] {
            assert!(
                run(core, adam) == plain,
                "{core} differs from plain (adam steps {adam})"
            );
        }
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn grad_matches_reference_and_adam_steps_run() {
    let d = tmpdir("grad");
    let arch = Arch::fmnist_ae();
    let batch = 3;
    let x = random(batch * arch.input_len(), 5, 0.0, 1.0);
    let input = d.join("batch.safetensors");
    write_batch(&input, &x, vec![batch, 1, 28, 28]);
    let out = d.join("grad.safetensors");
    let st = lamp()
        .args([
            "grad",
            "--init-seed",
            "4",
            "--metric",
            "mae",
            "--amp",
            "lamp",
            "--granularity",
            "sample",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let t = read_tensors(&out);
    let cfg = LossConfig {
        metric: Metric::Mae,
        amp: Amp::Lamp,
        granularity: Granularity::Sample,
    };
    let (want, grads) =
        lamp::model::reference::model_grad(&arch, cfg, &to_f64(&arch.init(4)), &to_f64(&x), batch);
    assert_close("loss", &t["loss"].1, &[want.loss], 1e-5);
    assert_eq!(t["loss"].0, Vec::<usize>::new(), "loss is a scalar");
    assert_close("errors", &t["errors"].1, &want.errors, 1e-5);
    assert_eq!(t["recon"].0, vec![batch, 1, 28, 28]);
    for e in &arch.param_table().entries {
        let g = &t[&format!("grad.{}", e.name)];
        assert_eq!(g.0, e.shape, "grad.{} shape", e.name);
        assert_close(
            &format!("grad.{}", e.name),
            &g.1,
            &grads[e.offset..e.offset + e.len()],
            5e-5,
        );
    }

    // K Adam steps write the parameters under their own names; a bare tensor file is accepted
    // as --model with --arch.
    let bare = d.join("bare.safetensors");
    let p = arch.init(4);
    let mut tensors = BTreeMap::new();
    for e in &arch.param_table().entries {
        tensors.insert(
            e.name.clone(),
            (e.shape.clone(), &p[e.offset..e.offset + e.len()]),
        );
    }
    std::fs::write(&bare, write_safetensors(&BTreeMap::new(), &tensors)).unwrap();
    let out2 = d.join("adam.safetensors");
    let st = lamp()
        .args([
            "grad",
            "--arch",
            "fmnist-ae",
            "--adam-steps",
            "2",
            "--lr",
            "0.01",
        ])
        .arg("--model")
        .arg(&bare)
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out2)
        .status()
        .unwrap();
    assert!(st.success());
    let t2 = read_tensors(&out2);
    let moved = t2["enc1.weight"]
        .1
        .iter()
        .zip(&p[..288])
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        moved > 200,
        "Adam moved the weights ({moved} of 288 changed)"
    );
    assert_eq!(t2["loss"].0, vec![2]);
    std::fs::remove_dir_all(&d).unwrap();
}

/// `--arch conv-ae` without --size or --channels takes them from the images (it made a 1x128x128
/// grey model of 40 px colour images), and --stages and --latent shape the model auto chooses
/// (they were ignored there); each says what it chose. With --val-split 0, a warning.
#[test]
fn a_conv_ae_takes_its_shape_from_the_images_and_the_flags_given() {
    let d = tmpdir("conv-shape");
    let imgs = d.join("good");
    std::fs::create_dir_all(&imgs).unwrap();
    for i in 0..6u32 {
        image::RgbImage::from_fn(40, 40, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 6) as u8, i as u8])
        })
        .save(imgs.join(format!("{i}.png")))
        .unwrap();
    }
    let out = d.join("m.safetensors");
    for (flags, want) in [
        (&["--arch", "conv-ae"][..], Arch::for_images(3, 40).unwrap()),
        (
            &["--stages", "8,16", "--latent", "8", "--val-split", "0"][..],
            Arch::conv_ae(3, 40, vec![8, 16], 8).unwrap(),
        ),
        (
            &["--arch", "conv-ae", "--channels", "1", "--latent", "12"][..],
            Arch::conv_ae(1, 40, vec![32, 64, 128], 12).unwrap(),
        ),
        // A size asked for takes the stages auto would give it (24 px: 2; the fixed 4 stages
        // refused it as not a multiple of 16).
        (
            &["--arch", "conv-ae", "--size", "24"][..],
            Arch::conv_ae(3, 24, vec![32, 64], 32).unwrap(),
        ),
    ] {
        let o = lamp()
            .args(["train", "--epochs", "1", "--min-steps", "0", "--batch", "3"])
            .arg(&imgs)
            .args(flags)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{flags:?}: {err}");
        assert_eq!(
            Checkpoint::load(&out, None).unwrap().arch,
            want,
            "{flags:?}"
        );
        assert!(
            err.contains(&format!("lamp: model {}", want.describe())),
            "{err}"
        );
        // Nothing held out: the threshold comes from the training images, and lamp says so.
        let none_held = flags.contains(&"--val-split");
        assert_eq!(err.contains("no images are held out"), none_held, "{err}");
        // An explicit conv-ae's recipe names its whole shape, so that it repeats as it ran.
        if flags.contains(&"conv-ae") {
            let recipe = &Checkpoint::load(&out, None).unwrap().metadata["recipe"];
            let stages: Vec<String> = want.stages.iter().map(u32::to_string).collect();
            for line in [
                format!("size = {}", want.size),
                format!("channels = {}", want.channels),
                format!("stages = \"{}\"", stages.join(",")),
                format!("latent = {}", want.latent),
            ] {
                assert!(recipe.lines().any(|l| l == line), "{line} in\n{recipe}");
            }
        }
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn train_on_a_folder_writes_a_checkpoint_that_resumes() {
    let d = tmpdir("train");
    let imgs = d.join("good");
    std::fs::create_dir_all(&imgs).unwrap();
    for i in 0..12u32 {
        // 40x40 RGB stripes: --arch auto picks a 3x40x40 model for them.
        let img = image::RgbImage::from_fn(40, 40, |x, y| {
            let v = (((x + i) / 4 + y / 8) % 2) as u8 * 180 + 40;
            image::Rgb([v, v / 2, 255 - v])
        });
        img.save(imgs.join(format!("{i:02}.png"))).unwrap();
    }
    let out = d.join("m.safetensors");
    let o = lamp()
        .args(["train", "--epochs", "3", "--batch", "5", "--quiet"])
        .arg(&imgs)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = Checkpoint::load(&out, None).unwrap();
    // --arch auto: a conv-ae of the images' size and colour.
    assert_eq!(c.arch, Arch::for_images(3, 40).unwrap());
    assert_eq!((c.arch.channels, c.arch.size), (3, 40));
    // --score-agg auto: a conv-ae scores by the top of its map.
    let sc: lamp::detect::ScoreConfig = c.meta("score").unwrap();
    assert_eq!(sc.aggregate, lamp::detect::Aggregate::Topk);
    let opt = c.optimizer.expect("optimizer state saved");
    assert_eq!(opt.t, 3 * 3, "3 epochs of 3 steps (12 images, batch 5)");
    let csv = std::fs::read_to_string(d.join("m.loss.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // `inspect` reads the recipe, history and calibration back, as text and as JSON.
    let o = lamp()
        .arg("inspect")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "finished");
    assert_eq!(v["parameters"], c.arch.param_table().len());
    assert_eq!(v["train"]["epochs"], 3);
    assert_eq!(v["train"]["batch"], 5);
    assert_eq!(v["optimizer_steps"], 9);
    assert_eq!(v["history"]["epochs"], 3);
    assert_eq!(v["written_by"], env!("CARGO_PKG_VERSION"));
    assert!(v["calibration"]["threshold"].as_f64().unwrap() > 0.0);
    assert_eq!(v["layers"].as_array().unwrap().len(), c.arch.layers().len());
    let o = lamp().arg("inspect").arg(&out).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "conv-ae 3x40x40",
        "3 epochs of batch 5",
        "calibration: threshold",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    // Recipes: --print-config writes one, --config reads it (flags override it), and the
    // checkpoint keeps it for `inspect --recipe`.
    let o = lamp()
        .args([
            "train",
            "--epochs",
            "2",
            "--batch",
            "5",
            "--augment",
            "--print-config",
        ])
        .arg(&imgs)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recipe = String::from_utf8(o.stdout).unwrap();
    for needle in ["epochs = 2", "batch = 5", "augment = true", "lr = 0.001"] {
        assert!(recipe.contains(needle), "{needle:?} in {recipe}");
    }
    // Paths given relative are written absolute and canonical: the recipe names the same files
    // from any folder.
    let o = lamp()
        .current_dir(&d)
        .args([
            "train",
            "good/../good",
            "-o",
            "./rel.safetensors",
            "--print-config",
        ])
        .output()
        .unwrap();
    let rel = String::from_utf8(o.stdout).unwrap();
    // The child's working folder is `d` with any symbolic links resolved.
    let real = d.canonicalize().unwrap();
    for path in [real.join("good"), real.join("rel.safetensors")] {
        let needle = format!("{:?}", path.display().to_string());
        assert!(rel.contains(&needle), "{needle} in {rel}");
    }
    // A recipe that could not run is refused, not written.
    let o = lamp()
        .current_dir(&d)
        .args([
            "train",
            "good",
            "-o",
            "x.safetensors",
            "--top-k",
            "2",
            "--print-config",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success() && o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--top-k"));
    let file = d.join("recipe.toml");
    std::fs::write(&file, &recipe).unwrap();
    let out2 = d.join("m2.safetensors");
    let o = lamp()
        .args(["train", "--quiet", "--epochs", "1", "--config"])
        .arg(&file)
        .arg("-o")
        .arg(&out2)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c2 = Checkpoint::load(&out2, None).unwrap();
    assert_eq!(
        c2.optimizer.unwrap().t,
        3,
        "1 epoch (the flag) of batch 5 (the file)"
    );
    let o = lamp()
        .arg("inspect")
        .arg(&out2)
        .arg("--recipe")
        .output()
        .unwrap();
    let kept = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "epochs = 1",
        "batch = 5",
        "augment = true",
        "m2.safetensors",
    ] {
        assert!(kept.contains(needle), "{needle:?} in {kept}");
    }
    // A run repeated from its checkpoint's recipe (seed and data included) writes the same
    // checkpoint, byte for byte. The recipe names the model it made only in a comment: without
    // -o the run does not start, rather than replace that model.
    let first = std::fs::read(&out2).unwrap();
    let lamp_bin = env!("CARGO_BIN_EXE_lamp");
    let repeat = |extra: &str| {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "\"{lamp_bin}\" train --quiet --config <(\"{lamp_bin}\" inspect \"{}\" --recipe) \
                 {extra}",
                out2.display()
            ))
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap()
    };
    let o = repeat("");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--out"), "{err}");
    // (Over the model itself, asked for: the recipe stored in it names its own file.)
    let o = repeat(&format!("-o \"{}\"", out2.display()));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        std::fs::read(&out2).unwrap() == first,
        "the repeated run wrote other bytes"
    );
    std::fs::write(&file, "epoch = 3\n").unwrap();
    let o = lamp()
        .arg("train")
        .arg(&imgs)
        .arg("-o")
        .arg(&out2)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("--epoch") && err.contains("recipe.toml"),
        "{err}"
    );
    // A relative data path in a recipe is the recipe's folder's (lamp runs from another).
    let sub = d.join("recipes");
    std::fs::create_dir_all(&sub).unwrap();
    // (adapter, a global option, is a key too.)
    let text = "data = \"../good\"\nepochs = 1\nadapter = \"llvmpipe\"\n";
    std::fs::write(sub.join("r.toml"), text).unwrap();
    let o = lamp()
        .args(["train", "--print-config", "-o", "x.safetensors", "--config"])
        .arg(sub.join("r.toml"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&o.stdout);
    let good = imgs.canonicalize().unwrap();
    assert!(
        printed.contains(&format!("data = \"{}\"", good.display())),
        "{printed}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_inputs_end_in_one_line_errors() {
    let d = tmpdir("bad");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let missing = d.join("missing");
    fails(
        &["train", &s(&missing), "--out", &s(&d.join("m"))],
        &["missing"],
    );
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        &["train", &s(&empty), "--out", &s(&d.join("m"))],
        &["empty"],
    );
    let corrupt = d.join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("a.png"), b"\x89PNG\r\n\x1a\nthis is not a png").unwrap();
    fails(
        &["train", &s(&corrupt), "--out", &s(&d.join("m"))],
        &["a.png"],
    );
    std::fs::write(corrupt.join("a.png"), b"").unwrap();
    fails(
        &["train", &s(&corrupt), "--out", &s(&d.join("m"))],
        &["0 bytes"],
    );
    fails(
        &["train", "fashion-mnist:12", "--out", &s(&d.join("m"))],
        &["0 to 9"],
    );
    fails(
        &[
            "train",
            "fashion-mnist:1",
            "--idx-dir",
            &s(&empty),
            "--out",
            &s(&d.join("m")),
        ],
        &["train-images"],
    );
    fails(
        &[
            "train",
            &s(&corrupt),
            "--epochs",
            "0",
            "--out",
            &s(&d.join("m")),
        ],
        &["--epochs"],
    );
    fails(
        &[
            "train",
            &s(&corrupt),
            "--lr",
            "-1",
            "--out",
            &s(&d.join("m")),
        ],
        &["--lr"],
    );
    let notst = d.join("model.safetensors");
    std::fs::write(&notst, b"hello").unwrap();
    let batch = d.join("batch.safetensors");
    write_batch(&batch, &random(784, 1, 0.0, 1.0), vec![1, 1, 28, 28]);
    fails(
        &[
            "grad",
            "--model",
            &s(&notst),
            "--input",
            &s(&batch),
            "--out",
            &s(&d.join("o")),
        ],
        &["model.safetensors"],
    );
    let wrong = d.join("wrong.safetensors");
    write_batch(&wrong, &random(3 * 784, 1, 0.0, 1.0), vec![1, 3, 28, 28]);
    fails(
        &[
            "grad",
            "--init-seed",
            "1",
            "--input",
            &s(&wrong),
            "--out",
            &s(&d.join("o")),
        ],
        &["wrong.safetensors"],
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A WGPU_BACKEND that selects no adapter (an unknown name, or a backend absent here) is named
/// as the reason first, before "install lavapipe" (which it said alone where lavapipe was
/// installed).
#[test]
fn a_backend_that_selects_nothing_is_named() {
    let o = lamp()
        .arg("info")
        .env("WGPU_BACKEND", "foo")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("(none)") && out.contains("WGPU_BACKEND=\"foo\""),
        "{out}"
    );
    // The backend first, the way to a software adapter only after it.
    let (named, install) = (out.find("WGPU_BACKEND=\"foo\""), out.find("apt-get"));
    assert!(named < install, "{out}");
}
