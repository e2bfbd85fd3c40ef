//! The scoring jobs under deploy/ run as a batch system would run them: the Kubernetes Indexed
//! Job's command (read from its manifest) in 4 "pods" with JOB_COMPLETION_INDEX, and the Slurm
//! array script in 4 "tasks" with SLURM_ARRAY_TASK_ID; merged, each equals one run of
//! `lamp score` byte for byte.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

/// A small trained model and a folder of 13 images in two subfolders.
fn model_and_images(d: &Path) -> (PathBuf, PathBuf) {
    let mut rng = lamp::rng::SplitMix64::new(5);
    let mut save = |dir: PathBuf, n: usize| {
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            let img = image::GrayImage::from_fn(16, 16, |x, y| {
                let v = 0.5 + 0.4 * ((x + 2 * y) as f64 * 0.7).sin() + 0.1 * rng.next_f64();
                image::Luma([(v.clamp(0.0, 1.0) * 255.0) as u8])
            });
            img.save(dir.join(format!("{i:02}.png"))).unwrap();
        }
    };
    save(d.join("train"), 24);
    save(d.join("line/a"), 6);
    save(d.join("line/b"), 7);
    let model = d.join("model.safetensors");
    ok(lamp()
        .arg("train")
        .arg(d.join("train"))
        .args([
            "--arch", "conv-ae", "--size", "16", "--stages", "4,8", "--latent", "8",
        ])
        .args(["--epochs", "1", "--batch", "8", "--quiet", "-o"])
        .arg(&model));
    (model, d.join("line"))
}

#[test]
fn kubernetes_and_slurm_jobs_merge_into_one_run() {
    let d = tmpdir("deploy");
    let (model, images) = model_and_images(&d);
    let single = ok(lamp().arg("score").arg(&model).arg(&images).arg("--json")).stdout;
    assert_eq!(String::from_utf8_lossy(&single).lines().count(), 13);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    // `lamp` on PATH, as in the container image or on the cluster's nodes.
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_lamp"), bin.join("lamp")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let merge = |dir: &Path| {
        let parts: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(parts.len(), 4, "one file per shard in {dir:?}");
        ok(lamp().arg("merge").args(&parts)).stdout
    };

    // Kubernetes: the Job's own command, its paths pointed at this test's folders.
    let text = std::fs::read_to_string(root.join("kubernetes/score-job.yaml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).expect("the manifest is valid YAML");
    let job = &docs[0];
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let completions = spec["completions"].as_i64().unwrap();
    assert_eq!(spec["parallelism"].as_i64(), Some(completions));
    let container = &spec["template"]["spec"]["containers"][0];
    let env = |name: &str| {
        container["env"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
            .and_then(|e| e["value"].as_str().map(str::to_owned))
    };
    assert_eq!(env("SHARDS"), Some(completions.to_string()));
    let command: Vec<&str> = container["command"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(command, ["/bin/sh", "-c"]);
    let script = container["args"][0].as_str().unwrap();
    let results = d.join("k8s-results");
    std::fs::create_dir_all(&results).unwrap();
    let script = script
        .replace("/data/model.safetensors", model.to_str().unwrap())
        .replace("/data/images", images.to_str().unwrap())
        .replace("/results", results.to_str().unwrap());
    let pods: Vec<_> = (0..completions)
        .map(|i| {
            Command::new("/bin/sh")
                .args(["-c", &script])
                .env_clear()
                .env("PATH", &path)
                .env("XDG_RUNTIME_DIR", std::env::temp_dir())
                .env("SHARDS", completions.to_string())
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut p in pods {
        assert!(p.wait().unwrap().success(), "a pod failed");
    }
    assert!(
        merge(&results) == single,
        "Kubernetes shards merged differ from one run"
    );

    // Slurm: the array script, task ids from 1 (--array=1-4), one after another.
    let script = root.join("slurm/score-array.sh");
    let results = d.join("slurm-results");
    for id in 1..=4 {
        ok(Command::new("bash")
            .arg(&script)
            .env("PATH", &path)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .env("MODEL", &model)
            .env("IMAGES", &images)
            .env("RESULTS", &results)
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_MIN", "1")
            .env("SLURM_ARRAY_TASK_COUNT", "4"));
    }
    assert!(
        merge(&results) == single,
        "Slurm shards merged differ from one run"
    );
    for s in ["slurm/score-array.sh", "slurm/submit.sh"] {
        ok(Command::new("bash").arg("-n").arg(root.join(s)));
    }
    std::fs::remove_dir_all(&d).unwrap();
}
