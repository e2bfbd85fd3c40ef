//! Cases of files: images (scored, and trained on) and checkpoints that are not what they claim.

use super::fixtures::*;
use super::harness::{case, Case};
use super::Env;

/// Image files that are corrupt, truncated, huge, non-finite or not files at all.
pub fn images(e: &Env) -> Vec<Case> {
    let (d, good, model, out) = (&e.d, &e.good, &e.model, &e.out);
    let write = |n: &str, bytes: &[u8]| e.write(n, bytes);
    let mut cases = Vec::new();
    // ---- image files, scored and trained on
    let valid_png = std::fs::read(good.join("g0.png")).unwrap();
    let jpg = d.join("ok.jpg");
    image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 3, y as u8 * 3, 90]))
        .save(&jpg)
        .unwrap();
    let jpg_bytes = std::fs::read(&jpg).unwrap();
    let nan_tif = d.join("nan.tif");
    float_tiff(&nan_tif, f32::NAN);
    let inf_tif = d.join("inf.tif");
    float_tiff(&inf_tif, f32::INFINITY);
    let ninf_tif = d.join("ninf.tif");
    float_tiff(&ninf_tif, f32::NEG_INFINITY);
    // One channel of 32-bit floats: read (lamp decodes it itself), unless not finite or in other
    // units than intensities from 0 to 1; RGB floats likewise.
    let grey_tif = d.join("depth-ok.tif");
    grey_float_tiff(&grey_tif, 0.5);
    cases.push(case(
        "score a one-channel float TIFF",
        &[&"score", &model, &grey_tif],
        0,
        &[],
    ));
    let grey_nan_tif = d.join("depth-nan.tif");
    grey_float_tiff(&grey_nan_tif, f32::NAN);
    let grey_mm_tif = d.join("depth-mm.tif");
    grey_float_tiff(&grey_mm_tif, 812.5);
    cases.push(case(
        "score a float TIFF in millimetres",
        &[&"score", &model, &grey_mm_tif],
        1,
        &["depth-mm.tif", "812.5", "scale it to [0, 1]"],
    ));
    let rgb_far_tif = d.join("rgb-far.tif");
    float_tiff(&rgb_far_tif, -3.0);
    let mut bad_images = vec![
        write(
            "corrupt.png",
            &[0x89, b'P', b'N', b'G', 1, 2, 3, 4, 5, 6, 7],
        ),
        write("empty.png", b""),
        write("text.png", b"hello, not an image"),
        write("trunc.png", &valid_png[..valid_png.len() / 2]),
        write("trunc.jpg", &jpg_bytes[..jpg_bytes.len() / 2]),
        write("bomb.png", &png_claiming(32768, 16384)),
        write("wide.png", &png_claiming(1 << 20, 1)),
        write("zero.png", &png_claiming(0, 0)),
        write(
            "random.jpg",
            &(0..4000u32)
                .map(|i| (i.wrapping_mul(2654435761u32) >> 13) as u8)
                .collect::<Vec<_>>(),
        ),
        write("bmp.bmp", b"BM\x00\x00\x00\x00"),
        write("gif.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
        nan_tif.clone(),
        inf_tif.clone(),
        ninf_tif,
        grey_nan_tif,
        rgb_far_tif,
    ];
    let dir_png = d.join("folder.png");
    std::fs::create_dir_all(&dir_png).unwrap();
    bad_images.push(dir_png);
    let fifo_png = d.join("fifo.png");
    if mkfifo(&fifo_png) {
        bad_images.push(fifo_png.clone());
    }
    #[cfg(unix)]
    {
        let (a, b) = (d.join("loop-a.png"), d.join("loop-b.png"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        bad_images.push(a);
    }
    // A file of no image format, named so (its message once quoted the extension as `."txt"`).
    let notes = write("notes.txt", b"shift 2: line 3 stopped at 14:02");
    cases.push(case(
        "score notes.txt",
        &[&"score", &model, &notes],
        1,
        &["notes.txt", "not an image lamp reads"],
    ));
    // A GIF (its first frame) is an image lamp reads, as the folders' listing promises.
    let gif = d.join("real.gif");
    image::RgbImage::from_fn(28, 28, |x, y| image::Rgb([x as u8 * 9, y as u8 * 9, 60]))
        .save(&gif)
        .unwrap();
    cases.push(case("score a GIF", &[&"score", &model, &gif], 0, &[]));
    // Not square: scored stretched, and the warning names the image.
    let oblong = d.join("oblong.png");
    png(&oblong, 40, 28, 7);
    cases.push(case(
        "score an oblong image",
        &[&"score", &model, &oblong],
        0,
        &["oblong.png (40x28) is not square"],
    ));
    for p in &bad_images {
        let n = name(p);
        cases.push(case(
            &format!("score {n}"),
            &[&"score", &model, p],
            1,
            &[&n],
        ));
    }
    // Training stops at a bad image and names it (a folder with one among good ones).
    for (i, p) in [&bad_images[0], &bad_images[4], &nan_tif, &inf_tif]
        .into_iter()
        .enumerate()
    {
        let dir = d.join(format!("train-bad-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..4 {
            png(&dir.join(format!("g{k}.png")), 28, 28, k);
        }
        let n = name(p);
        std::fs::copy(p, dir.join(&n)).unwrap();
        cases.push(case(
            &format!("train on a folder holding {n}"),
            &[
                &"train",
                &dir,
                &"--out",
                &out,
                &"--epochs",
                &"1",
                &"--batch",
                &"2",
                &"--arch",
                &"fmnist-ae",
            ],
            1,
            &[&n],
        ));
    }
    if fifo_png.exists() {
        let dir = d.join("train-fifo");
        std::fs::create_dir_all(&dir).unwrap();
        png(&dir.join("g.png"), 28, 28, 1);
        mkfifo(&dir.join("x.png"));
        cases.push(case(
            "train on a folder holding a FIFO named x.png",
            &[&"train", &dir, &"--out", &out, &"--arch", &"fmnist-ae"],
            1,
            &["x.png", "not a regular file"],
        ));
        // With the model chosen from the headers (the default), named .tif: the one-channel
        // TIFF reader must not open it (it would wait for a writer).
        let dir = d.join("train-fifo-auto");
        std::fs::create_dir_all(&dir).unwrap();
        png(&dir.join("g.png"), 28, 28, 1);
        mkfifo(&dir.join("x.tif"));
        cases.push(case(
            "train (arch auto) on a folder holding a FIFO named x.tif",
            &[&"train", &dir, &"--out", &out],
            1,
            &["x.tif", "not a regular file"],
        ));
    }

    cases
}

/// Checkpoints that are empty, truncated, poisoned or whose metadata lies.
pub fn checkpoints(e: &Env) -> Vec<Case> {
    let (d, good, ck) = (&e.d, &e.good, &e.ck);
    let write = |n: &str, bytes: &[u8]| e.write(n, bytes);
    let mut cases = Vec::new();
    // ---- checkpoints that are not what they claim
    let bad_ck: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "safetensors"),
        ("text", b"hello".to_vec(), "safetensors"),
        ("truncated", ck[..ck.len() / 2].to_vec(), "safetensors"),
        (
            "huge-header",
            {
                let mut v = (1u64 << 60).to_le_bytes().to_vec();
                v.extend(b"{}");
                v
            },
            "safetensors",
        ),
        (
            "nan-weight",
            edited(ck, "x", None, Some(("enc1.weight", f32::NAN))),
            "enc1.weight",
        ),
        (
            // One bit of one weight flipped after lamp wrote the file: a finite value, so only
            // the checksum sees it.
            "flipped-bit",
            {
                let mut v = ck.to_vec();
                let at = v.len() - 1000;
                v[at] ^= 0x10;
                v
            },
            "checksum",
        ),
        (
            "inf-weight",
            edited(ck, "x", None, Some(("dec3.bias", f32::INFINITY))),
            "dec3.bias",
        ),
        (
            "neg-inf-moment",
            edited(
                ck,
                "x",
                None,
                Some(("optimizer.exp_avg_sq.enc2.weight", f32::NEG_INFINITY)),
            ),
            "exp_avg_sq",
        ),
        (
            "unknown-arch",
            edited(
                ck,
                "arch",
                Some(r#"{"name":"resnet","channels":1,"size":28,"stages":[32,64],"latent":32}"#),
                None,
            ),
            "resnet",
        ),
        (
            "latent-4e9",
            edited(
                ck,
                "arch",
                Some(
                    r#"{"name":"conv-ae","channels":1,"size":28,"stages":[32,64],"latent":4000000000}"#,
                ),
                None,
            ),
            "latent",
        ),
        (
            "latent-0",
            edited(
                ck,
                "arch",
                Some(r#"{"name":"conv-ae","channels":1,"size":28,"stages":[32,64],"latent":0}"#),
                None,
            ),
            "latent",
        ),
        (
            "stages-40",
            edited(
                ck,
                "arch",
                Some(&format!(
                    r#"{{"name":"conv-ae","channels":1,"size":28,"stages":{:?},"latent":32}}"#,
                    vec![8; 40]
                )),
                None,
            ),
            "stages",
        ),
        (
            "stages-none",
            edited(
                ck,
                "arch",
                Some(r#"{"name":"conv-ae","channels":1,"size":28,"stages":[],"latent":32}"#),
                None,
            ),
            "stage",
        ),
        (
            "stage-0",
            edited(
                ck,
                "arch",
                Some(r#"{"name":"conv-ae","channels":1,"size":28,"stages":[0,64],"latent":32}"#),
                None,
            ),
            "stage",
        ),
        (
            "stage-huge",
            edited(
                ck,
                "arch",
                Some(
                    r#"{"name":"conv-ae","channels":1,"size":28,"stages":[4000000000,64],"latent":32}"#,
                ),
                None,
            ),
            "channels",
        ),
        (
            "size-2^20",
            edited(
                ck,
                "arch",
                Some(
                    r#"{"name":"conv-ae","channels":1,"size":1048576,"stages":[32,64],"latent":32}"#,
                ),
                None,
            ),
            "size",
        ),
        (
            "size-odd",
            edited(
                ck,
                "arch",
                Some(r#"{"name":"conv-ae","channels":1,"size":30,"stages":[32,64],"latent":32}"#),
                None,
            ),
            "multiple",
        ),
        (
            "channels-7",
            edited(
                ck,
                "arch",
                Some(r#"{"name":"conv-ae","channels":7,"size":28,"stages":[32,64],"latent":32}"#),
                None,
            ),
            "channels",
        ),
        (
            "arch-not-json",
            edited(ck, "arch", Some("{{{"), None),
            "architecture",
        ),
        (
            "arch-negative",
            edited(
                ck,
                "arch",
                Some(r#"{"name":"conv-ae","channels":1,"size":-28,"stages":[32,64],"latent":32}"#),
                None,
            ),
            "architecture",
        ),
        (
            "threshold-negative",
            edited(
                ck,
                "calibration",
                Some(&calibration_with(ck, "threshold", "-1.0")),
                None,
            ),
            "threshold",
        ),
        (
            "threshold-huge",
            edited(
                ck,
                "calibration",
                Some(&calibration_with(ck, "threshold", "1e300")),
                None,
            ),
            "calibration",
        ),
        (
            "std-negative",
            edited(
                ck,
                "calibration",
                Some(&calibration_with(ck, "std", "-2")),
                None,
            ),
            "std",
        ),
        (
            "calibration-not-json",
            edited(ck, "calibration", Some("{\"threshold\": 1"), None),
            "calibration",
        ),
        (
            "calibration-missing",
            edited(ck, "calibration", None, None),
            "calibrated",
        ),
        (
            "loss-not-json",
            edited(ck, "loss", Some("???"), None),
            "loss",
        ),
        (
            "history-not-json",
            edited(ck, "history", Some("[{\"epoch\": 1"), None),
            "training history",
        ),
        (
            "held-out-not-json",
            edited(ck, "held_out", Some("{\"images\": 4,"), None),
            "held-out check",
        ),
        (
            "version-99",
            edited(ck, "version", Some("99"), None),
            "version",
        ),
        (
            "version-text",
            edited(ck, "version", Some("one"), None),
            "version",
        ),
        (
            "optimizer-step-text",
            edited(ck, "optimizer.step", Some("many"), None),
            "optimizer",
        ),
        (
            "score-not-json",
            edited(ck, "score", Some("[1,2"), None),
            "score",
        ),
        (
            "patch-not-json",
            edited(ck, "patch", Some("{\"image\": -1}"), None),
            "patch",
        ),
        (
            "patch-huge",
            edited(
                ck,
                "patch",
                Some("{\"image\": 4000000000, \"stride\": 14}"),
                None,
            ),
            "patch",
        ),
        (
            "patch-zero-stride",
            edited(ck, "patch", Some("{\"image\": 56, \"stride\": 0}"), None),
            "patch",
        ),
    ];
    for (n, bytes, needle) in &bad_ck {
        let p = write(&format!("{n}.safetensors"), bytes);
        cases.push(case(
            &format!("checkpoint {n}"),
            &[&"score", &p, &good],
            1,
            &[&name(&p), needle],
        ));
    }
    let ck_dir = d.join("dir.safetensors");
    std::fs::create_dir_all(&ck_dir).unwrap();
    cases.push(case(
        "checkpoint is a folder",
        &[&"score", &ck_dir, &good],
        1,
        &["dir.safetensors"],
    ));
    cases.push(case(
        "checkpoint absent",
        &[&"score", &d.join("absent.safetensors"), &good],
        1,
        &["absent.safetensors"],
    ));
    let ck_fifo = d.join("fifo.safetensors");
    if mkfifo(&ck_fifo) {
        cases.push(case(
            "checkpoint is a FIFO",
            &[&"score", &ck_fifo, &good],
            1,
            &["fifo.safetensors", "not a regular file"],
        ));
        cases.push(case(
            "calibrate a FIFO",
            &[&"calibrate", &ck_fifo, &good],
            1,
            &["fifo.safetensors"],
        ));
        cases.push(case(
            "eval a FIFO",
            &[&"eval", &ck_fifo, &good, &"--out", &d.join("ev")],
            1,
            &["fifo.safetensors"],
        ));
        cases.push(case(
            "export a FIFO",
            &[&"export", &ck_fifo, &"-o", &d.join("fifo.onnx")],
            1,
            &["fifo.safetensors", "not a regular file"],
        ));
    }

    cases
}
