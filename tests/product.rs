//! The product end to end through the binary: train on a synthetic MVTec AD tree (striped
//! textures, planted defects with masks), evaluate (the defects must be found), score a folder as
//! JSONL with verdicts that follow the stored threshold, maps, exit status, and the demo.

mod common;
use common::*;
use lamp::detect::{Calibration, Checkpoint};
use lamp::rng::SplitMix64;
use std::path::Path;
use std::process::Command;

fn run(c: &mut Command) -> std::process::Output {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{:?} failed: {}",
        c,
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

const SIZE: u32 = 48;

/// Diagonal stripes with a random phase and a little noise; a defect is a bright disk.
fn texture(
    rng: &mut SplitMix64,
    defect: Option<(f64, f64, f64)>,
) -> (image::GrayImage, image::GrayImage) {
    let phase = rng.next_f64() * std::f64::consts::TAU;
    let mut img = image::GrayImage::new(SIZE, SIZE);
    let mut mask = image::GrayImage::new(SIZE, SIZE);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let mut v =
                0.5 + 0.3 * (((x + y) as f64) * 0.5 + phase).sin() + 0.05 * (rng.next_f64() - 0.5);
            if let Some((cx, cy, r)) = defect {
                if (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2) <= r * r {
                    v = 0.98;
                    mask.put_pixel(x, y, image::Luma([255]));
                }
            }
            img.put_pixel(x, y, image::Luma([(v.clamp(0.0, 1.0) * 255.0) as u8]));
        }
    }
    (img, mask)
}

fn mvtec_tree(root: &Path) {
    let mut rng = SplitMix64::new(11);
    for dir in ["train/good", "test/good", "test/spot", "ground_truth/spot"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for i in 0..60 {
        texture(&mut rng, None)
            .0
            .save(root.join(format!("train/good/{i:03}.png")))
            .unwrap();
    }
    for i in 0..12 {
        texture(&mut rng, None)
            .0
            .save(root.join(format!("test/good/{i:03}.png")))
            .unwrap();
        let d = (
            8.0 + rng.next_f64() * 32.0,
            8.0 + rng.next_f64() * 32.0,
            4.0 + rng.next_f64() * 3.0,
        );
        let (img, mask) = texture(&mut rng, Some(d));
        img.save(root.join(format!("test/spot/{i:03}.png")))
            .unwrap();
        mask.save(root.join(format!("ground_truth/spot/{i:03}_mask.png")))
            .unwrap();
    }
}

#[test]
fn mvtec_tree_train_eval_score() {
    let d = tmpdir("mvtec");
    let root = d.join("textures");
    mvtec_tree(&root);
    let model = d.join("model.safetensors");
    run(lamp()
        .args([
            "train",
            "--arch",
            "conv-ae",
            "--size",
            "48",
            "--channels",
            "1",
            "--stages",
            "8,16",
            "--latent",
            "24",
        ])
        .args([
            "--epochs",
            "40",
            "--batch",
            "8",
            "--lr",
            "0.003",
            "--val-split",
            "0.15",
            "--quiet",
            // The mean score (conv-ae's default is topk), whose better alternatives eval names.
            "--score-agg",
            "mean",
        ])
        .arg(&root)
        .arg("--out")
        .arg(&model));
    for f in ["model.loss.csv", "model.loss.png"] {
        assert!(d.join(f).is_file(), "{f} written beside the model");
    }

    let out = d.join("eval");
    let o = run(lamp()
        .arg("eval")
        .arg(&model)
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .args(["--panels", "3"]));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    // A way of scoring 0.02 better than the model's (mean) is pointed out, and only then.
    let by = &m["image_auroc_by_score"];
    let best_other = ["max", "topk"]
        .iter()
        .map(|g| by[g].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let hinted = String::from_utf8_lossy(&o.stderr).contains("separates better");
    assert_eq!(
        hinted,
        best_other >= by["mean"].as_f64().unwrap() + 0.02,
        "{by}"
    );
    // The report says it as the terminal does.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(md.contains("separates better"), hinted, "{md}");
    let image_auroc = m["image_auroc"].as_f64().unwrap();
    let pixel_auroc = m["pixel_auroc"].as_f64().unwrap();
    eprintln!("synthetic MVTec: image AUROC {image_auroc:.4}, pixel AUROC {pixel_auroc:.4}");
    assert!(image_auroc > 0.8, "image AUROC {image_auroc}");
    assert!(pixel_auroc > 0.8, "pixel AUROC {pixel_auroc}");
    assert!(m["aupro_fpr30"].as_f64().is_some());
    assert!(m["per_type"]["spot"]["auroc"].as_f64().is_some());
    // One defect type: its pixels with the normal images' are all the pixels.
    let spot_pixels = m["per_type"]["spot"]["pixel_auroc"].as_f64().unwrap();
    assert!(
        (spot_pixels - pixel_auroc).abs() < 1e-9,
        "{spot_pixels} vs {pixel_auroc}"
    );
    assert_eq!(m["counts"]["images"], 24);
    // The pictures decode and have the sizes the report promises.
    let dims = |p: &Path| image::image_dimensions(p).unwrap();
    assert_eq!(dims(&out.join("roc.png")), (640, 440));
    assert_eq!(dims(&out.join("hist.png")), (640, 440));
    let panels: Vec<_> = std::fs::read_dir(out.join("panels"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // 3 highest-scored, 3 sampled, and the mistakes at the threshold (up to 3 of each kind).
    let mistakes = |what: &str| m["calibrated"][what].as_u64().unwrap().min(3) as usize;
    let (false_alarms, missed) = (mistakes("false_positives"), mistakes("false_negatives"));
    let of_kind = |k: &str| {
        panels
            .iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(k))
            .count()
    };
    assert_eq!(
        [
            of_kind("worst_"),
            of_kind("sample_"),
            of_kind("false_alarm_"),
            of_kind("missed_")
        ],
        [3, 3, false_alarms, missed]
    );
    let pictures = panels.len();
    assert_eq!(pictures, 6 + false_alarms + missed);
    for p in &panels {
        let (w, h) = dims(p);
        assert!(w > 3 * 144 && h > 144, "{p:?} is {w}x{h}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("image AUROC") && report.contains("roc.png") && report.contains("panels/")
    );
    // The panels show a few mistakes of each kind; the text counts them all.
    let all = |what: &str| m["calibrated"][what].as_u64().unwrap();
    let counted = format!("{} false alarm", all("false_positives"));
    assert!(report.contains(&counted), "{report}");
    let counted = format!("{} missed anomal", all("false_negatives"));
    assert!(report.contains(&counted), "{report}");
    let html = check_html_report(&out.join("report.html"), pictures, &d.join("eval.png"));
    assert!(html.contains("image AUROC") && html.contains("spot"));

    // Scoring a folder as JSONL: one object per image, verdicts from the stored threshold.
    let o = run(lamp()
        .arg("score")
        .arg(&model)
        .arg(root.join("test/spot"))
        .arg(root.join("test/good"))
        .arg("--json"));
    let text = String::from_utf8(o.stdout).unwrap();
    let cal: Calibration = Checkpoint::load(&model, None)
        .unwrap()
        .meta("calibration")
        .unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 24);
    let mut flagged_spots = 0;
    for v in &lines {
        let s = v["score"].as_f64().unwrap() as f32;
        assert_eq!(v["anomalous"].as_bool().unwrap(), s > cal.threshold);
        assert_eq!(v["normalised"].as_f64().unwrap() as f32, cal.normalise(s));
        if v["path"].as_str().unwrap().contains("spot") && v["anomalous"].as_bool().unwrap() {
            flagged_spots += 1;
        }
    }
    assert!(
        flagged_spots >= 6,
        "{flagged_spots} of 12 planted defects flagged"
    );

    // Maps, CSV and the exit status of --fail-on-anomaly.
    let maps = d.join("maps");
    let o = lamp()
        .arg("score")
        .arg(&model)
        .arg(root.join("test/spot"))
        .args(["--csv", "--fail-on-anomaly", "--maps"])
        .arg(&maps)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "anomalies found → exit 3");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("path,score,normalised,verdict"));
    let raw = image::open(maps.join("000_map.png")).unwrap();
    assert_eq!(raw.color(), image::ColorType::L16, "raw map is 16-bit");
    assert_eq!((raw.width(), raw.height()), (SIZE, SIZE));
    assert!(maps.join("000_overlay.png").is_file() && maps.join("000_region.png").is_file());
    // The overlay carries its caption (path, score, verdict) above the picture: taller than the
    // region picture of the same scale.
    let (ov, region) = (
        image::open(maps.join("000_overlay.png")).unwrap(),
        image::open(maps.join("000_region.png")).unwrap(),
    );
    let (oh, rh) = (ov.height(), region.height());
    assert!(oh >= rh + 40, "overlay {oh} px high, region {rh}");

    shards_merge_into_the_single_run(&d, &model, &root);

    // The experiment runner on an MVTec AD root: image and pixel AUROC per category.
    let exp = d.join("exp");
    run(lamp()
        .args(["experiment", "mvtec"])
        .arg(&d)
        .args([
            "--classes",
            "textures",
            "--metrics",
            "mse",
            "--amp",
            "none,lamp",
            "--seeds",
            "0",
            "--epochs",
            "3",
        ])
        .args([
            "--arch", "conv-ae", "--size", "48", "--stages", "8,16", "--latent", "24", "--out",
        ])
        .arg(&exp));
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(exp.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["class"], "textures");
        // The default batch (64), cut to the category's 60 training images, as recorded.
        assert_eq!(
            (&r["batch"], &r["batch_used"]),
            (&64.into(), &60.into()),
            "{r}"
        );
        assert!(
            r["auroc"].as_f64().is_some() && r["pixel_auroc"].as_f64().is_some(),
            "{r}"
        );
    }
    let md = std::fs::read_to_string(exp.join("results.md")).unwrap();
    assert!(
        md.contains("Pixel AUROC") && md.contains("| mse lamp element adam 3ep | textures | 1 |"),
        "{md}"
    );
    let html = check_html_report(&exp.join("report.html"), 0, &d.join("experiment.png"));
    assert!(
        html.contains("<td>mse lamp element adam 3ep</td>"),
        "{html}"
    );

    // Bad inputs: a tree whose mask is missing, a model without calibration.
    std::fs::remove_file(root.join("ground_truth/spot/003_mask.png")).unwrap();
    let o = lamp()
        .arg("eval")
        .arg(&model)
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("003_mask.png") && !err.contains("panicked"),
        "{err}"
    );
    let bare = d.join("init.safetensors");
    run(lamp().args(["init", "--out"]).arg(&bare));
    let o = lamp()
        .arg("score")
        .arg(&bare)
        .arg(root.join("test/good"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("init.safetensors") && err.contains("lamp train"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn demo_runs_and_writes_a_report() {
    let d = tmpdir("demo");
    let o = run(lamp()
        .args(["demo", "--epochs", "2", "--out"])
        .arg(d.join("demo")));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("report.html"), "{text}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("demo/report/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(m["counts"]["images"], 200);
    assert!(m["image_auroc"].as_f64().unwrap() > 0.6);

    // The loss landscape around the demo model: both surfaces on one scale, the centre is the
    // trained model's loss, and it is a minimum along the grid's axes.
    let land = d.join("land");
    run(lamp()
        .arg("landscape")
        .arg(d.join("demo/model.safetensors"))
        .arg("fashion-mnist:1")
        .arg("--idx-dir")
        .arg(d.join("demo/data"))
        .args(["--grid", "5", "--batch", "16", "--out"])
        .arg(&land));
    for f in ["plain.png", "amplified.png"] {
        assert_eq!(image::image_dimensions(land.join(f)).unwrap(), (640, 540));
    }
    let l: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(land.join("landscape.json")).unwrap())
            .unwrap();
    let plain = &l["plain"];
    let c = plain[2][2].as_f64().unwrap();
    assert!(
        c < plain[0][2].as_f64().unwrap()
            && c < plain[4][2].as_f64().unwrap()
            && c < plain[2][0].as_f64().unwrap()
    );
    assert!(
        l["amplified_at_center"].as_f64().unwrap() > c,
        "-ln(1 - e) > e"
    );
    // The trained weights are the grid's centre exactly, and the mean rise within r = 0.5 is
    // over the four points at 0.5 from it (the centre left out).
    assert_eq!(l["alphas"][2].as_f64(), Some(0.0), "{}", l["alphas"]);
    let rise: f64 = [(1, 2), (3, 2), (2, 1), (2, 3)]
        .map(|(i, j)| plain[i][j].as_f64().unwrap() - c)
        .iter()
        .sum::<f64>()
        / 4.0;
    let got = l["plain_mean_rise"].as_f64().unwrap();
    assert!(
        (got - rise).abs() <= 1e-12 * rise.abs().max(1.0),
        "{got} vs {rise}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// `score --shard I/N` in 4 processes at once, joined by `lamp merge`, equals one run byte for
/// byte (JSON lines and CSV), the shards' map files are the single run's, and a shard with no
/// images writes an empty output.
fn shards_merge_into_the_single_run(d: &Path, model: &Path, root: &Path) {
    // One folder, listed in path order as merge orders records; its subfolders' images share
    // names (good/000.png, spot/000.png …), which must not clash across shards' map files.
    let inputs = [root.join("test")];
    let score = |extra: &[&str], out: &Path| {
        let mut c = lamp();
        c.arg("score").arg(model).args(&inputs).args(extra);
        c.arg("-o").arg(out);
        c
    };
    for format in ["--json", "--csv"] {
        let single = d.join(format!("single{format}"));
        let single_maps = d.join(format!("maps-single{format}"));
        run(&mut score(
            &[format, "--maps", single_maps.to_str().unwrap()],
            &single,
        ));
        let shard_maps = d.join(format!("maps-shards{format}"));
        let parts: Vec<_> = (0..4)
            .map(|i| d.join(format!("shard-{i}{format}")))
            .collect();
        let children: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let shard = format!("{i}/4");
                score(
                    &[
                        format,
                        "--shard",
                        &shard,
                        "--maps",
                        shard_maps.to_str().unwrap(),
                    ],
                    p,
                )
                .spawn()
                .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let merged = d.join(format!("merged{format}"));
        // Given in any order: merge orders the records by path.
        run(lamp()
            .arg("merge")
            .args(parts.iter().rev())
            .arg("-o")
            .arg(&merged));
        let (a, b) = (
            std::fs::read(&single).unwrap(),
            std::fs::read(&merged).unwrap(),
        );
        assert!(
            a.len() > 500 && a == b,
            "{format}: merged shards differ from one run"
        );
        let names = |dir: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&single_maps), names(&shard_maps));
        assert_eq!(names(&shard_maps).len(), 24 * 3);
    }
    // With the inputs named, merge checks the parts are complete: a missing part is an error.
    let parts: Vec<_> = (0..4).map(|i| d.join(format!("shard-{i}--json"))).collect();
    run(lamp()
        .arg("merge")
        .args(&parts)
        .arg("--inputs")
        .args(&inputs));
    let o = lamp()
        .arg("merge")
        .args(&parts[..3])
        .arg("--inputs")
        .args(&inputs)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("in no shard"), "{err}");
    // A part scored with another threshold has verdicts of its own: refused, though it covers
    // the missing images.
    let other = d.join("other-threshold.jsonl");
    run(&mut score(
        &["--json", "--shard", "3/4", "--threshold", "1e-9"],
        &other,
    ));
    let o = lamp()
        .arg("merge")
        .args(&parts[..3])
        .arg(&other)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("one --threshold"),
        "{err}"
    );
    // 30 shards of 24 images: shard 0 is empty, and says so.
    let empty = d.join("empty.jsonl");
    let o = run(&mut score(&["--json", "--shard", "0/30"], &empty));
    assert!(String::from_utf8_lossy(&o.stderr).contains("empty"));
    assert_eq!(std::fs::read(&empty).unwrap(), b"");
    // An index from the batch system's environment.
    let k8s = d.join("k8s.jsonl");
    let k8s_maps = d.join("k8s-maps");
    let args = [
        "--json",
        "--shard",
        "auto/4",
        "--maps",
        k8s_maps.to_str().unwrap(),
    ];
    run(score(&args, &k8s).env("JOB_COMPLETION_INDEX", "2"));
    assert_eq!(
        std::fs::read(&k8s).unwrap(),
        std::fs::read(d.join("shard-2--json")).unwrap()
    );
}

/// A report.html is one self-contained page: charts as inline SVG, `pictures` PNGs embedded,
/// nothing referenced outside it. Where Chromium is installed (CI installs it), the page is
/// rendered by it (scripts/render_html.sh) and the screenshot must show the page: text, and the
/// charts' blue. Returns the page.
fn check_html_report(page: &Path, pictures: usize, screenshot: &Path) -> String {
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(html.matches("<svg").count() >= 2, "charts inline");
    assert_eq!(
        html.matches("src=\"data:image/png;base64,").count(),
        pictures
    );
    for attr in ["src=\"", "href=\"", "url("] {
        for part in html.split(attr).skip(1) {
            assert!(
                part.starts_with("data:"),
                "{attr} of something outside the page"
            );
        }
    }
    let chromium = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(_) = chromium else {
        eprintln!(
            "{}: no Chromium here, not rendered in a browser",
            page.display()
        );
        return html;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/render_html.sh");
    run(Command::new("bash")
        .arg(script)
        .arg(page)
        .arg(screenshot)
        .args(["1280", "1600"]));
    let shot = image::open(screenshot).unwrap().to_rgb8();
    assert_eq!(shot.dimensions(), (1280, 1600));
    let n = shot.pixels().count() as f64;
    let ink = shot
        .pixels()
        .filter(|p| p.0.iter().all(|&v| v < 100))
        .count() as f64;
    let blue = shot
        .pixels()
        .filter(|p| {
            let d = |a: u8, b: u8| (a as i32 - b as i32).abs() <= 6;
            d(p[0], 31) && d(p[1], 119) && d(p[2], 180)
        })
        .count();
    assert!(
        ink / n > 0.002,
        "the screenshot shows little text: {}",
        ink / n
    );
    assert!(
        blue > 100,
        "the screenshot shows {blue} pixels of the charts' blue"
    );
    html
}
