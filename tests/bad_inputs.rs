//! A corpus of bad inputs, generated here, each driven through the binary: every case must end
//! with a non-zero exit and a one-line error that names the file (or argument) and the problem,
//! and none may panic. Inputs that are merely unusual (16-bit, palette, one-channel float TIFF,
//! wrong extension, mixed sizes) must work.

mod common;
use common::*;
use lamp::data::tensors::write_safetensors;
use lamp::detect::Checkpoint;
use lamp::model::{Arch, LossConfig};
use std::collections::BTreeMap;
use std::path::Path;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn succeeds(args: &[String]) {
    let out = lamp().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "lamp {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn png(path: &Path, w: u32, h: u32) {
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 7 + y * 3) % 256) as u8]))
        .save(path)
        .unwrap();
}

fn train_args(dir: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["train".to_string(), s(dir), "--out".into(), s(out)];
    if !extra.contains(&"--epochs") {
        v.extend(["--epochs".to_string(), "1".into()]);
    }
    if !extra.contains(&"--batch") {
        v.extend(["--batch".to_string(), "2".into()]);
    }
    v.push("--quiet".into());
    v.extend(extra.iter().map(|e| e.to_string()));
    v
}

#[test]
fn image_files() {
    let d = tmpdir("images");
    let out = d.join("m.safetensors");
    let case = |name: &str, bytes: &[u8]| {
        let dir = d.join(name.replace('.', "_"));
        std::fs::create_dir_all(&dir).unwrap();
        png(&dir.join("ok1.png"), 30, 30);
        png(&dir.join("ok2.png"), 30, 30);
        std::fs::write(dir.join(name), bytes).unwrap();
        dir
    };
    // Zero bytes, truncated, corrupt header, unsupported format, a text file named .png.
    let mut good = Vec::new();
    image::GrayImage::from_fn(64, 64, |x, _| image::Luma([x as u8]))
        .write_to(
            &mut std::io::Cursor::new(&mut good),
            image::ImageFormat::Png,
        )
        .unwrap();
    let zero = case("zero.png", b"");
    fails(&train_args(&zero, &out, &[]), &["zero.png", "0 bytes"]);
    // With --skip-bad the bad image is skipped with a warning and counted.
    let o = lamp()
        .args(train_args(&zero, &out, &["--skip-bad"]))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.contains("zero.png") && err.contains("skipped 1 unreadable"),
        "{err}"
    );
    // An unreadable image stops the run, and the error says how to go on without it.
    fails(
        &train_args(&case("cut.png", &good[..good.len() / 2]), &out, &[]),
        &["cut.png", "--skip-bad"],
    );
    let mut bad_header = good.clone();
    bad_header[12..20].copy_from_slice(b"XXXXXXXX");
    fails(
        &train_args(&case("header.png", &bad_header), &out, &[]),
        &["header.png"],
    );
    fails(
        &train_args(
            &case("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
            &out,
            &[],
        ),
        &["anim.gif"],
    );
    fails(
        &train_args(
            &case("text.png", b"just some text, not an image"),
            &out,
            &[],
        ),
        &["text.png"],
    );
    // A decompression bomb: a valid PNG header claiming 100000 x 100000 pixels.
    let mut bomb = good[..33].to_vec();
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    bomb.extend_from_slice(&good[33..]);
    fails(
        &train_args(&case("bomb.png", &bomb), &out, &[]),
        &["bomb.png"],
    );

    // Unusual but valid: 16-bit, palette (indexed), RGBA, wrong extension, mixed sizes.
    let ok = d.join("unusual");
    std::fs::create_dir_all(&ok).unwrap();
    image::ImageBuffer::<image::Luma<u16>, _>::from_fn(40, 20, |x, y| {
        image::Luma([(x * 1000 + y) as u16])
    })
    .save(ok.join("sixteen.png"))
    .unwrap();
    image::RgbaImage::from_fn(10, 50, |x, y| image::Rgba([x as u8, y as u8, 9, 100]))
        .save(ok.join("rgba.png"))
        .unwrap();
    std::fs::write(ok.join("actually_png.jpg"), &good).unwrap();
    std::fs::write(ok.join("indexed.png"), indexed_png()).unwrap();
    png(&ok.join("big.png"), 300, 200);
    // A height map: one channel of 32-bit floats, which the image library does not decode.
    let heights: Vec<f32> = (0..32 * 32).map(|i| (i % 29) as f32 / 29.0).collect();
    tiff::encoder::TiffEncoder::new(std::fs::File::create(ok.join("height.tif")).unwrap())
        .unwrap()
        .write_image::<tiff::encoder::colortype::Gray32Float>(32, 32, &heights)
        .unwrap();
    // A format lamp does not decode is left out with one warning, although training reads the
    // folder's headers and then its pixels.
    std::fs::write(ok.join("photo.heic"), b"not read").unwrap();
    let o = lamp().args(train_args(&ok, &out, &[])).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("photo.heic").count(), 1, "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A 2x2 palette PNG written by hand (the image crate only writes truecolour).
fn indexed_png() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend(data);
        out.extend(&c);
        out.extend(crc32(&c).to_be_bytes());
    }
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut v, b"IHDR", &[0, 0, 0, 2, 0, 0, 0, 2, 8, 3, 0, 0, 0]);
    chunk(&mut v, b"PLTE", &[255, 0, 0, 0, 0, 255]);
    // Rows: filter byte 0, then indices; zlib stream of stored blocks.
    let raw = [0u8, 0, 1, 0, 1, 0];
    let mut z = vec![0x78, 0x01, 1, raw.len() as u8, 0, !(raw.len() as u8), 0xff];
    z.extend(raw);
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    chunk(&mut v, b"IDAT", &z);
    chunk(&mut v, b"IEND", &[]);
    v
}

#[test]
fn folders_and_arguments() {
    let d = tmpdir("folders");
    let out = d.join("m.safetensors");
    fails(
        &train_args(&d.join("nope"), &out, &[]),
        &["nope", "no such file"],
    );
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        &train_args(&empty, &out, &[]),
        &["empty", "empty directory"],
    );
    let texts = d.join("texts");
    std::fs::create_dir_all(&texts).unwrap();
    std::fs::write(texts.join("a.txt"), "x").unwrap();
    fails(&train_args(&texts, &out, &[]), &["texts", "no images"]);
    // A symlink loop is not an image and must not hang the listing.
    let looped = d.join("looped");
    std::fs::create_dir_all(&looped).unwrap();
    png(&looped.join("a.png"), 28, 28);
    png(&looped.join("b.png"), 28, 28);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&looped, looped.join("self")).unwrap();
    succeeds(&train_args(&looped, &out, &[]));
    // Arguments.
    fails(
        &train_args(&looped, &out, &["--batch", "5"]),
        &["--batch 5", "2 images"],
    );
    fails(
        &train_args(&looped, &out, &["--epochs", "0"]),
        &["--epochs"],
    );
    fails(&train_args(&looped, &out, &["--lr", "-0.1"]), &["--lr"]);
    fails(
        &train_args(
            &looped,
            &out,
            &["--arch", "conv-ae", "--size", "24", "--stages", "8,8,8,8"],
        ),
        &["size 24", "16"],
    );
    fails(
        &train_args(&looped, &out, &["--val-split", "1.5"]),
        &["--val-split"],
    );
    // The patch is the model's input: a --size that differs is refused, not ignored.
    fails(
        &train_args(&looped, &out, &["--patch", "16", "--size", "32"]),
        &["--size", "32", "--patch 16"],
    );
    // An output directory that cannot be created (a file stands in the way).
    std::fs::write(d.join("file"), "x").unwrap();
    fails(
        &train_args(&looped, &d.join("file/sub/m.safetensors"), &[]),
        &["file/sub"],
    );
    std::fs::remove_dir_all(&d).unwrap();
}

fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(body);
    v
}

#[test]
fn idx_files() {
    let d = tmpdir("idx");
    let out = s(&d.join("m.safetensors"));
    let write = |name: &str, imgs: Vec<u8>, labels: Vec<u8>| {
        let dir = d.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("train-images-idx3-ubyte"), imgs).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte"), labels).unwrap();
        s(&dir)
    };
    let imgs = idx(&[3, 28, 28], &[7u8; 3 * 784]);
    let train = |dir: String| {
        vec![
            "train".into(),
            "fashion-mnist:1".into(),
            "--idx-dir".into(),
            dir,
            "--out".into(),
            out.clone(),
        ]
    };
    let dir = write("magic", vec![1, 2, 3, 4, 5, 6, 7, 8], idx(&[3], &[1, 1, 1]));
    fails(&train(dir), &["train-images-idx3-ubyte", "magic"]);
    let dir = write(
        "short",
        idx(&[3, 28, 28], &[7u8; 700]),
        idx(&[3], &[1, 1, 1]),
    );
    fails(&train(dir), &["train-images-idx3-ubyte", "truncated"]);
    let dir = write("count", imgs.clone(), idx(&[2], &[1, 1]));
    fails(
        &train(dir),
        &["train-labels-idx1-ubyte", "2 labels for 3 images"],
    );
    let dir = write("class", imgs.clone(), idx(&[3], &[1, 12, 1]));
    fails(&train(dir), &["train-labels-idx1-ubyte", "label 12"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn checkpoints() {
    let d = tmpdir("ckpt");
    let arch = Arch::fmnist_ae();
    let good = Checkpoint::new(arch.clone(), None, arch.init(0))
        .to_bytes()
        .unwrap();
    let batch = d.join("batch.safetensors");
    let x = vec![0.5f32; 784];
    let mut t = BTreeMap::new();
    t.insert("x".to_string(), (vec![1usize, 1, 28, 28], x.as_slice()));
    std::fs::write(&batch, write_safetensors(&BTreeMap::new(), &t)).unwrap();
    let grad = |model: &Path, extra: &[&str]| {
        let mut v: Vec<String> = vec![
            "grad".into(),
            "--model".into(),
            s(model),
            "--input".into(),
            s(&batch),
        ];
        v.extend(["--out".to_string(), s(&d.join("o.safetensors"))]);
        v.extend(extra.iter().map(|e| e.to_string()));
        v
    };
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    fails(
        &grad(
            &write("truncated.safetensors", &good[..good.len() - 100]),
            &[],
        ),
        &["truncated.safetensors"],
    );
    let mut corrupt = good.clone();
    corrupt[9..20].copy_from_slice(b"!!!!!!!!!!!");
    fails(
        &grad(&write("corrupt.safetensors", &corrupt), &[]),
        &["corrupt.safetensors"],
    );
    fails(
        &grad(&write("text.safetensors", b"hello world"), &[]),
        &["text.safetensors", "safetensors"],
    );
    fails(
        &grad(&d.join("absent.safetensors"), &[]),
        &["absent.safetensors"],
    );
    let other = Arch::conv_ae(1, 32, vec![8, 8], 4).unwrap();
    let other_bytes = Checkpoint::new(other.clone(), None, other.init(0))
        .to_bytes()
        .unwrap();
    fails(
        &grad(
            &write("other.safetensors", &other_bytes),
            &["--arch", "fmnist-ae"],
        ),
        &["other.safetensors", "conv-ae"],
    );
    // Missing tensors and a wrong dtype in a bare tensor file.
    let p = arch.init(0);
    let table = arch.param_table();
    let mut bare: BTreeMap<String, (Vec<usize>, &[f32])> = table
        .entries
        .iter()
        .map(|e| {
            (
                e.name.clone(),
                (e.shape.clone(), &p[e.offset..e.offset + e.len()]),
            )
        })
        .collect();
    bare.remove("enc2.bias");
    fails(
        &grad(
            &write(
                "missing.safetensors",
                &write_safetensors(&BTreeMap::new(), &bare),
            ),
            &["--arch", "fmnist-ae"],
        ),
        &["missing.safetensors", "enc2.bias"],
    );
    let mut dtype = good.clone();
    let at = dtype.windows(5).position(|w| w == b"\"F32\"").unwrap();
    dtype[at + 1..at + 4].copy_from_slice(b"I32");
    fails(
        &grad(&write("dtype.safetensors", &dtype), &[]),
        &["dtype.safetensors", "I32"],
    );
    let mut future = good.clone();
    let pat = b"\"version\":\"1\"";
    let at = future.windows(pat.len()).position(|w| w == pat).unwrap();
    future[at + pat.len() - 2] = b'7';
    fails(
        &grad(&write("future.safetensors", &future), &[]),
        &["future.safetensors", "newer"],
    );
    // Scoring and evaluation need a trained model.
    fails(
        &[
            "score".into(),
            s(&write("init.safetensors", &good)),
            s(&batch),
        ],
        &["init.safetensors", "lamp train"],
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn engine_says_what_batch_fits() {
    let arch = Arch::fmnist_ae();
    let e = lamp::engine::Engine::new(device(), arch, LossConfig::default(), 1_000_000, &{
        Arch::fmnist_ae().init(0)
    });
    let msg = e.err().expect("a million samples do not fit").to_string();
    assert!(
        msg.contains("at most") && msg.contains("samples per batch fit"),
        "{msg}"
    );
}

/// Unreadable files and folders, checked as an unprivileged user (root reads everything). Needs
/// root and setpriv to drop privileges: `cargo test --release -- --ignored` as root (CI does).
#[test]
#[ignore = "needs root: drops privileges with setpriv"]
fn unreadable_files_and_folders() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmpdir("perm");
    let set = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set(&d, 0o777);
    let files = d.join("files");
    std::fs::create_dir_all(&files).unwrap();
    png(&files.join("ok.png"), 28, 28);
    png(&files.join("secret.png"), 28, 28);
    set(&files.join("secret.png"), 0o000);
    let closed = d.join("closed");
    std::fs::create_dir_all(&closed).unwrap();
    png(&closed.join("a.png"), 28, 28);
    set(&closed, 0o000);
    let as_nobody = |dir: &Path| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_lamp"))
            .arg("train")
            .arg(dir)
            .arg("--out")
            .arg(d.join("m.safetensors"))
            .args(["--epochs", "1", "--quiet"])
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
    };
    let probe = as_nobody(&files);
    let usable = probe
        .as_ref()
        .is_ok_and(|o| !String::from_utf8_lossy(&o.stderr).contains("setpriv:"));
    assert!(
        usable,
        "cannot drop privileges here: this test needs root and setpriv"
    );
    let check = |o: std::process::Output, needle: &str| {
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("lamp: error:"))
            .unwrap_or_else(|| panic!("{err}"));
        assert!(
            line.contains(needle) && line.contains("ermission denied"),
            "{line}"
        );
    };
    check(probe.unwrap(), "secret.png");
    check(as_nobody(&closed).unwrap(), "closed");
    set(&closed, 0o755);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn mvtec_trees() {
    let d = tmpdir("mvtec");
    let root = d.join("cat");
    for dir in ["train/good", "test/good", "test/hole", "ground_truth/hole"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for i in 0..3 {
        png(&root.join(format!("train/good/{i}.png")), 28, 28);
        png(&root.join(format!("test/good/{i}.png")), 28, 28);
        png(&root.join(format!("test/hole/{i}.png")), 28, 28);
        png(
            &root.join(format!("ground_truth/hole/{i}_mask.png")),
            28,
            28,
        );
    }
    let model = d.join("m.safetensors");
    succeeds(&train_args(&root, &model, &[]));
    let eval = |root: &Path| {
        vec![
            "eval".to_string(),
            s(&model),
            s(root),
            "--out".into(),
            s(&d.join("eval")),
        ]
    };
    succeeds(&eval(&root));
    // A test image that is not square is stretched to be scored: eval says so, as score does,
    // on the terminal and in the report.
    let oblong = root.join("test/good/9.png");
    png(&oblong, 40, 28);
    let o = lamp().args(eval(&root)).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("9.png (40x28)"), "{err}");
    let md = std::fs::read_to_string(d.join("eval/report.md")).unwrap();
    assert!(md.contains("stretched to the model's 28x28"), "{md}");
    std::fs::remove_file(&oblong).unwrap();
    // Every image far from the model's size, the sizes far apart: named by their range (it
    // said "about 200 pixels a side" of a 8 px and a 200 px image).
    let (small, large) = (d.join("s8.png"), d.join("s200.png"));
    png(&small, 8, 8);
    png(&large, 200, 200);
    let o = lamp()
        .args(["score", &s(&model), &s(&small), &s(&large)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("28x28; these are 8 to 200 pixels a side, resized"),
        "{err}"
    );
    // `score` on the category's root: every test image once, its masks not at all, and map
    // files named so that test/good/0.png and test/hole/0.png can be told apart.
    let maps = d.join("maps");
    let o = lamp()
        .args([
            "score",
            &s(&model),
            &s(&root),
            "--json",
            "--maps",
            &s(&maps),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("ground_truth/ masks are not scored"), "{err}");
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // train/good is scored too (a folder is walked whole); ground_truth/ is not.
    assert_eq!(rows.len(), 9, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| !r["path"].as_str().unwrap().contains("ground_truth")));
    let names: Vec<&str> = rows.iter().map(|r| r["maps"].as_str().unwrap()).collect();
    for (row, name) in rows.iter().zip(&names) {
        // test/hole/0.png → test_hole_0: the folders below the root, then the stem.
        let path = Path::new(row["path"].as_str().unwrap());
        let rel = path.strip_prefix(&root).unwrap().with_extension("");
        let want = rel.to_string_lossy().replace('/', "_");
        assert_eq!(name, &want, "{}", path.display());
        assert!(maps.join(format!("{name}_overlay.png")).is_file(), "{name}");
    }
    // A snapshot of an interrupted run beside --out: a fresh run would overwrite it.
    let fresh = d.join("fresh.safetensors");
    std::fs::write(d.join("fresh.partial.safetensors"), b"snapshot").unwrap();
    fails(
        &train_args(&root, &fresh, &[]),
        &[
            "fresh.partial.safetensors",
            "stopped before finishing",
            "--resume",
        ],
    );
    // A mask of another size than its image.
    png(&root.join("ground_truth/hole/1_mask.png"), 20, 28);
    fails(&eval(&root), &["1_mask.png", "20x28", "28x28"]);
    png(&root.join("ground_truth/hole/1_mask.png"), 28, 28);
    // A mask with no image.
    png(&root.join("ground_truth/hole/7_mask.png"), 28, 28);
    fails(&eval(&root), &["7_mask.png", "no image"]);
    std::fs::remove_file(root.join("ground_truth/hole/7_mask.png")).unwrap();
    // A missing mask.
    std::fs::remove_file(root.join("ground_truth/hole/2_mask.png")).unwrap();
    fails(&eval(&root), &["2_mask.png", "missing"]);
    // No train/good.
    std::fs::remove_dir_all(root.join("train")).unwrap();
    fails(&train_args(&root, &model, &[]), &["train/good", "missing"]);
    std::fs::remove_dir_all(&d).unwrap();
}
