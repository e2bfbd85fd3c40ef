#!/usr/bin/env python3
"""The object benchmark's table: lamp as a new user runs it, defaults first.

For each object (cup, rocket, camera; scripts/make_objects.sh builds them) and seed, trains with
`lamp train CATEGORY --seed S` and no other option (the model, batch, steps and schedule are
lamp's defaults), then, from that one trained model, two ways of making maps: as they are
(`lamp calibrate MODEL CATEGORY/calib/good --normal-map off`) and above the normal map of the
calibration images (`--normal-map on`, lamp's default for whole images), each evaluated with
`lamp eval`; keeps each evaluation's figures in OUT/results.jsonl. A rerun skips what is there.
Then writes OUT/results.md: image AUROC by each of lamp's image scores (mean error, max of the
smoothed map, mean of its top 1%), pixel AUROC, AUPRO, and the model-free mean-image baseline.

    python3 scripts/objects_table.py [--objects objects] [--out results/objects] [--seeds 0,1]
        [--init pytorch|he]

Needs numpy, Pillow and scikit-learn for the baseline (not for lamp).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

OBJECTS = ["cup", "rocket", "camera"]
CONFIGS = {"maps as they are": "off", "above the normal map": "on"}
SCORES = ["mean", "max", "topk"]


def load(paths, grey):
    mode = "L" if grey else "RGB"
    return np.stack([np.asarray(Image.open(p).convert(mode), np.float64) / 255 for p in paths])


def mean_image_baseline(root):
    """Image AUROC of each test image's mean squared error against the mean training image, and
    of the mean of its top 1% squared errors (no smoothing)."""
    train = sorted(glob.glob(os.path.join(root, "train/good/*.png")))
    grey = Image.open(train[0]).mode == "L"
    mean = load(train, grey).mean(axis=0)
    tests, labels = [], []
    for d in sorted(glob.glob(os.path.join(root, "test/*"))):
        for p in sorted(glob.glob(os.path.join(d, "*.png"))):
            tests.append(p)
            labels.append(0 if os.path.basename(d) == "good" else 1)
    err = (load(tests, grey) - mean) ** 2
    err = err.reshape(len(tests), -1) if grey else err.mean(axis=3).reshape(len(tests), -1)
    k = max(1, err.shape[1] // 100)
    top = np.sort(err, axis=1)[:, -k:].mean(axis=1)
    return roc_auc_score(labels, err.mean(axis=1)), roc_auc_score(labels, top)


def model_init(path):
    """The initial weights a lamp checkpoint's run started from (PyTorch's before the choice)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n)).get("__metadata__", {})
    return json.loads(meta.get("train", "{}")).get("init") or "pytorch"


def run(cmd, log):
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        subprocess.run(cmd, stdout=f, stderr=f, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", default="objects")
    ap.add_argument("--out", default="results/objects")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--lamp", default="target/release/lamp")
    ap.add_argument("--work", default="runs/objects", help="models and eval reports")
    ap.add_argument("--init", choices=["pytorch", "he"],
                    help="lamp train's --init (default: none given, lamp's own default)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.work, exist_ok=True)
    path = os.path.join(a.out, "results.jsonl")
    done = []
    if os.path.exists(path):
        done = [json.loads(l) for l in open(path) if l.strip()]
    # One table, one kind of initial weights (rows from before --init was recorded: PyTorch's;
    # lamp's default for these 64 px models is he).
    want = a.init or "he"
    for r in done:
        got = (r.get("recipe") or {}).get("init", "pytorch")
        if got != want:
            sys.exit(f"{path} holds runs with --init {got}, not {want}: give --init {got} or "
                     "another --out")
    have = {(r["object"], r["config"], r["seed"]) for r in done}
    for seed in [int(s) for s in a.seeds.split(",")]:
        for obj in OBJECTS:
            data = os.path.join(a.objects, obj)
            # A model of another --init is another model: its files are named apart.
            name = f"{obj}-{seed}" + (f"-{a.init}" if a.init else "")
            model = os.path.join(a.work, f"{name}.safetensors")
            log = os.path.join(a.work, f"{name}.log")
            seconds = None
            for config in a.configs.split(","):
                if (obj, config, seed) in have:
                    continue
                if not os.path.exists(model):
                    t0 = time.time()
                    init = ["--init", a.init] if a.init else []
                    run([a.lamp, "train", data, "--seed", str(seed), *init, "--out", model], log)
                    seconds = time.time() - t0
                elif model_init(model) != want:
                    # A model left by a run of another init under the same name.
                    sys.exit(f"{model} started from {model_init(model)} initial weights, not "
                             f"{want}: move it away or give another --work")
                tag = f"{name}-normal-map-{CONFIGS[config]}"
                variant = os.path.join(a.work, tag + ".safetensors")
                report = os.path.join(a.work, tag + "-eval")
                run([a.lamp, "calibrate", model, os.path.join(data, "calib/good"), "--normal-map",
                     CONFIGS[config], "--out", variant], log)
                run([a.lamp, "eval", variant, data, "-o", report, "--panels", "4"], log)
                m = json.load(open(os.path.join(report, "metrics.json")))
                r = {"object": obj, "config": config, "seed": seed,
                     "image_auroc_by_score": m["image_auroc_by_score"],
                     "pixel_auroc": m["pixel_auroc"], "aupro": m["aupro_fpr30"],
                     "per_type": {k: v["auroc"] for k, v in m["per_type"].items()},
                     "score": m.get("score"), "recipe": m["recipe"],
                     "train_seconds": seconds and round(seconds, 1)}
                with open(path, "a") as f:
                    f.write(json.dumps(r) + "\n")
                done.append(r)
                print(f"{tag}: {r['image_auroc_by_score']} pixel {r['pixel_auroc']:.4f}",
                      flush=True)
    write_table(a, done)


def write_table(a, done):
    def cell(rows, get):
        v = [get(r) for r in rows]
        if not v:
            return ""
        if len(v) == 1:
            return f"{v[0]:.3f} (n=1)"
        return f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f} (n={len(v)})"

    command = "python3 scripts/objects_table.py"
    if a.out != "results/objects":
        command += f" --out {a.out}"
    if a.seeds != "0,1":
        command += f" --seeds {a.seeds}"
    train = "lamp train objects/OBJECT --seed S"
    if a.init:
        command += f" --init {a.init}"
        train += f" --init {a.init}"
    lines = [
        "# Object benchmark: which image score, by default",
        "",
        "Reproduce (resumes; finished runs are kept): `scripts/make_objects.sh` then "
        f"`{command}`. Each model is `{train}` "
        "with no other option; its two rows differ only in the maps (`lamp calibrate MODEL "
        "objects/OBJECT/calib/good --normal-map off|on`, 30 normal framings no model trained "
        "on), and its three image-AUROC columns only in the score (lamp's eval scores every test "
        "image all three ways). 64×64 images, 200 training framings, 30 normal and 60 defective "
        "test framings per object. Mean ± standard deviation over seeds.",
        "",
        "| object | configuration | " + " | ".join(f"image AUROC, {s}" for s in SCORES)
        + " | pixel AUROC | AUPRO |",
        "|---|---|" + "---|" * (len(SCORES) + 2),
    ]
    configs = [c for c in CONFIGS if any(r["config"] == c for r in done)]
    for obj in OBJECTS:
        for config in configs:
            rows = [r for r in done if r["object"] == obj and r["config"] == config]
            if not rows:
                continue
            cells = [cell(rows, lambda r, s=s: r["image_auroc_by_score"][s]) for s in SCORES]
            cells += [cell(rows, lambda r: r["pixel_auroc"]), cell(rows, lambda r: r["aupro"])]
            lines.append(f"| {obj} | {config} | " + " | ".join(cells) + " |")
    if not a.init and a.out == "results/objects":
        # (that table's first models; the others score by the top 1%)
        lines += ["", "`per_type` in results.jsonl is by each model's own score: the mean error "
                  "for the seed-0 models of cup and rocket (trained before `--score-agg auto` was "
                  "the default), the top 1% otherwise; the tables here use "
                  "`image_auroc_by_score` only."]
    lines += ["", "Per object and configuration, the mean over seeds of topk minus mean and of "
              "max minus mean (image AUROC):", "",
              "| object | configuration | topk − mean | max − mean |", "|---|---|---|---|"]
    for obj in OBJECTS:
        for config in configs:
            rows = [r for r in done if r["object"] == obj and r["config"] == config]
            if rows:
                d = {s: np.mean([r["image_auroc_by_score"][s] - r["image_auroc_by_score"]["mean"]
                                 for r in rows]) for s in ("topk", "max")}
                lines.append(f"| {obj} | {config} | {d['topk']:+.3f} | {d['max']:+.3f} |")
    lines += ["", "The model-free mean-image baseline (each test image against the mean training "
              "image, squared error; no training, no smoothing):", "",
              "| object | image AUROC, mean | image AUROC, top 1% |", "|---|---|---|"]
    for obj in OBJECTS:
        root = os.path.join(a.objects, obj)
        if os.path.isdir(root):
            m, t = mean_image_baseline(root)
            lines.append(f"| {obj} | {m:.3f} | {t:.3f} |")
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
