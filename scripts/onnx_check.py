#!/usr/bin/env python3
"""Checks `lamp export --format onnx` against lamp itself, through onnxruntime.

Trains small models with the lamp binary (fmnist-ae on the Fashion-MNIST subset in assets/, and a
conv-ae of 3x32x32 on those images resized and tinted), one per metric (mae, mse, ssim); for each
scoring (aggregate mean, max, topk; a few smoothing sigmas, set in the checkpoint's metadata) it
exports the model and runs the ONNX graph with onnxruntime on real images (Fashion-MNIST test
images) and on random ones (noise, a flat grey image, a smooth blob). Both sides see the same
inputs: the images are written as PNG files (8-bit; 16-bit for random grey ones) that lamp reads,
and the script converts them as lamp does (value / 255 or / 65535 in float32).

lamp's side: the scores of `lamp score MODEL PNGs --json`, and the reconstructions of
`lamp grad --model MODEL` (the engine's forward pass on the same float32 batch). Prints the
largest absolute differences and exits 1 when any is above 1e-5.

Needs: numpy, onnx, onnxruntime, safetensors, Pillow. Not needed by CI.
Usage: python3 scripts/onnx_check.py [--lamp target/release/lamp] [--epochs 5] [--keep DIR]
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDX = os.path.join(ROOT, "assets", "fashion-mnist-mini")
TOLERANCE = 1e-5


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return r.stdout


def idx_images(split):
    with gzip.open(os.path.join(IDX, f"{split}-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28)
    with gzip.open(os.path.join(IDX, f"{split}-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read()[8:], np.uint8)
    return images, labels


def to_rgb32(img, k):
    """A 28x28 grey image as a 32x32 RGB one, tinted by one of a few colours."""
    tints = np.array([[1.0, 0.8, 0.6], [0.6, 0.9, 1.0], [0.9, 1.0, 0.7], [1.0, 1.0, 1.0]])
    big = np.asarray(Image.fromarray(img).resize((32, 32), Image.BILINEAR), np.float64)
    return np.clip(big[:, :, None] * tints[k % len(tints)], 0, 255).round().astype(np.uint8)


def write_png(path, a):
    """uint8 or uint16, [H, W] (grey) or [H, W, 3] (RGB)."""
    if a.dtype == np.uint16:
        assert a.ndim == 2, "16-bit PNGs: grey only"
        Image.fromarray(a).save(path)  # mode I;16
    else:
        Image.fromarray(a).save(path)


def as_input(a):
    """What lamp's loader makes of a written image: CHW float32 in [0, 1]."""
    full = np.float32(65535 if a.dtype == np.uint16 else 255)
    x = a.astype(np.float32) / full
    return x[None] if x.ndim == 2 else x.transpose(2, 0, 1)


def image_sets(d, channels, size, rng):
    """Real and random images for a model of `channels` x `size` x `size`: {name: (paths, x)}."""
    test, labels = idx_images("t10k")
    pick = [i for c in range(10) for i in np.flatnonzero(labels == c)[:2]]
    real = [test[i] if channels == 1 else to_rgb32(test[i], k) for k, i in enumerate(pick)]
    shape = (size, size) if channels == 1 else (size, size, 3)
    if channels == 1:
        noise = [rng.integers(0, 65536, shape).astype(np.uint16) for _ in range(6)]
        flat = np.full(shape, 45875, np.uint16)  # 0.7: SSIM's windows are all flat
        yy, xx = np.mgrid[:size, :size] / size
        blob = (65535 * np.exp(-((yy - 0.4) ** 2 + (xx - 0.6) ** 2) * 8)).astype(np.uint16)
    else:
        noise = [rng.integers(0, 256, shape).astype(np.uint8) for _ in range(6)]
        flat = np.full(shape, 178, np.uint8)
        yy, xx = np.mgrid[:size, :size] / size
        g = np.exp(-((yy - 0.4) ** 2 + (xx - 0.6) ** 2) * 8)
        blob = (255 * np.stack([g, g**2, 1 - g], -1)).astype(np.uint8)
    sets = {}
    for name, images in [("real", real), ("random", noise + [flat, blob])]:
        os.makedirs(os.path.join(d, name), exist_ok=True)
        paths = []
        for k, a in enumerate(images):
            p = os.path.join(d, name, f"{k:03}.png")
            write_png(p, a)
            paths.append(p)
        sets[name] = (paths, np.stack([as_input(a) for a in images]))
    return sets


def with_score(ck, out, aggregate, top_k, sigma):
    """A copy of checkpoint `ck` that scores by `aggregate` (metadata `score`)."""
    with safe_open(ck, "np") as f:
        meta = dict(f.metadata())
    meta["score"] = json.dumps({"aggregate": aggregate, "top_k": top_k, "sigma": sigma})
    save_file(load_file(ck), out, metadata=meta)


def lamp_scores(lamp, ck, paths):
    lines = run([lamp, "score", ck, *paths, "--json"]).splitlines()
    by_path = {r["path"]: r["score"] for r in map(json.loads, lines)}
    return np.array([by_path[p] for p in paths], np.float64)


def lamp_recon(lamp, ck, metric, x, d, name):
    """lamp's reconstructions and plain errors of batch `x` (`lamp grad` on the checkpoint)."""
    batch = os.path.join(d, f"{name}.batch.safetensors")
    out = os.path.join(d, f"{name}.grad.safetensors")
    save_file({"x": np.ascontiguousarray(x)}, batch)
    run([lamp, "grad", "--model", ck, "--input", batch, "--metric", metric, "--out", out])
    t = load_file(out)
    return t["recon"], t["errors"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lamp", default=os.path.join(ROOT, "target", "release", "lamp"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="work in this folder (kept) instead of a temporary one")
    args = ap.parse_args()
    lamp = os.path.abspath(args.lamp)
    d = args.keep or tempfile.mkdtemp(prefix="lamp-onnx-")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    chosen = [l for l in run([lamp, "info"]).splitlines() if l.startswith("chosen:")]
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}; {run([lamp, '--version']).strip()}, "
          f"{chosen[0] if chosen else 'adapter unknown'}; epochs {args.epochs}, seed {args.seed}")
    print(f"acceptance: max |difference| <= {TOLERANCE:g} (reconstruction per element, score per image)")

    # Training data: Fashion-MNIST trousers (class 1) as IDX for fmnist-ae, as RGB PNGs for conv-ae.
    train, labels = idx_images("train")
    folder = os.path.join(d, "train-rgb32")
    os.makedirs(folder, exist_ok=True)
    for k, i in enumerate(np.flatnonzero(labels == 1)):
        write_png(os.path.join(folder, f"{k:04}.png"), to_rgb32(train[i], k))
    models = [
        ("fmnist-ae", ["fashion-mnist:1", "--idx-dir", IDX], 1, 28),
        ("conv-ae 3x32", [folder], 3, 32),
    ]
    # Scorings: (aggregate, top_k, sigma); None: the checkpoint's own sigma.
    scorings = [("mean", 0.01, None), ("max", 0.01, None), ("topk", 0.01, None),
                ("max", 0.01, 0.0), ("topk", 0.05, 8.0)]

    header = f"{'model':13} {'metric':6} {'score':18} {'images':7} {'n':>3} {'max|d recon|':>12} {'max|d score|':>12} {'max|d error|':>12}"
    print(header)
    worst = {"recon": 0.0, "score": 0.0}
    failures = 0
    for model, data, channels, size in models:
        sets = image_sets(os.path.join(d, model.split()[0]), channels, size, rng)
        for metric in ["mae", "mse", "ssim"]:
            name = f"{model.split()[0]}-{metric}"
            ck = os.path.join(d, f"{name}.safetensors")
            run([lamp, "train", *data, "--epochs", str(args.epochs), "--metric", metric,
                 "--seed", str(args.seed), "-o", ck, "--quiet"])
            with safe_open(ck, "np") as f:
                own_sigma = json.loads(f.metadata()["score"])["sigma"]
            refs = {s: lamp_recon(lamp, ck, metric, x, d, f"{name}-{s}") for s, (_, x) in sets.items()}
            for aggregate, top_k, sigma in scorings:
                sigma = own_sigma if sigma is None else sigma
                scored = os.path.join(d, f"{name}-{aggregate}-{top_k}-{sigma}.safetensors")
                with_score(ck, scored, aggregate, top_k, sigma)
                exported = scored.replace(".safetensors", ".onnx")
                run([lamp, "export", scored, "--format", "onnx", "--out", exported])
                onnx.checker.check_model(onnx.load(exported), full_check=True)
                sess = ort.InferenceSession(exported, providers=["CPUExecutionProvider"])
                for s, (paths, x) in sets.items():
                    recon, score = sess.run(["reconstruction", "score"], {"image": x})
                    want_recon, want_errors = refs[s]
                    want_score = lamp_scores(lamp, scored, paths)
                    dr = float(np.abs(recon - want_recon).max())
                    ds = float(np.abs(score.astype(np.float64) - want_score).max())
                    # The plain error (lamp grad's) is the score when it aggregates by the mean.
                    de = float(np.abs(score - want_errors).max()) if aggregate == "mean" else None
                    bad = max(dr, ds, de or 0.0) > TOLERANCE
                    failures += bad
                    worst["recon"] = max(worst["recon"], dr)
                    worst["score"] = max(worst["score"], ds)
                    how = f"{aggregate}" + (f" {top_k:g}" if aggregate == "topk" else "") + \
                        ("" if aggregate == "mean" else f" s={sigma:g}")
                    print(f"{model:13} {metric:6} {how:18} {s:7} {len(paths):3} {dr:12.2e} {ds:12.2e} "
                          f"{'-' if de is None else f'{de:.2e}':>12}{'  FAIL' if bad else ''}", flush=True)
    print(f"largest differences: reconstruction {worst['recon']:.2e}, score {worst['score']:.2e}; "
          f"{'all within' if not failures else f'{failures} rows above'} {TOLERANCE:g}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
