#!/usr/bin/env python3
"""What aligning the parts before scoring would give: a trial outside lamp, for the object
benchmark framed with larger shifts (scripts/make_objects.sh OUT REACH).

Each image of a category (test/*, calib/good) is moved by the whole-pixel shift within
±REACH px that best matches the reference (the mean training image of REF_CATEGORY, itself made
by aligning the training images to their mean, twice), the strip it uncovers filled from the
reference; masks move with their images. Then, for the category as framed and as aligned, `lamp calibrate MODEL calib/good` (the
normal map and threshold from those framings) and `lamp eval`; prints image AUROC by each score,
pixel AUROC and AUPRO.

    python3 scripts/align_trial.py MODEL CATEGORY REF_CATEGORY --reach 6 --work DIR
    python3 scripts/align_trial.py - CATEGORY CATEGORY --only-align --work DIR  (a tree to train on)

Needs numpy and Pillow.
"""
import argparse
import glob
import json
import os
import subprocess

import numpy as np
from PIL import Image


def load(p):
    return np.asarray(Image.open(p), np.float64) / 255


def shifted(img, dx, dy, fill=None):
    """out[y, x] = img[y + dy, x + dx]; where that lies outside, fill's pixel (the reference:
    a strip of repeated edge pixels would be an anomaly in every moved image), else the edge's."""
    h, w = img.shape[:2]
    ys, xs = np.arange(h) + dy, np.arange(w) + dx
    out = img[np.clip(ys, 0, h - 1)][:, np.clip(xs, 0, w - 1)]
    if fill is not None:
        outside = ((ys < 0) | (ys >= h))[:, None] | ((xs < 0) | (xs >= w))[None, :]
        out = np.where(outside[..., None] if out.ndim == 3 else outside, fill, out)
    return out


def best_shift(img, ref, reach):
    """The shift within ±reach whose moved image is nearest the reference (mean squared
    difference over the interior, which every shift covers; each side's mean removed)."""
    h, w = img.shape[:2]
    r = reach
    target = ref[r:h - r, r:w - r]
    target = target - target.mean()
    best = None
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            win = img[r + dy:h - r + dy, r + dx:w - r + dx]
            d = np.mean((win - win.mean() - target) ** 2)
            if best is None or d < best[0]:
                best = (d, dx, dy)
    return best[1], best[2]


def reference(paths, reach):
    imgs = [load(p) for p in paths]
    ref = np.mean(imgs, axis=0)
    for _ in range(2):
        ref = np.mean([shifted(i, *best_shift(i, ref, reach)) for i in imgs], axis=0)
    return ref


def align_tree(src, dst, ref, reach, train=False):
    shifts = []
    for p in sorted(glob.glob(os.path.join(src, "*/*/*.png"))):
        rel = os.path.relpath(p, src)
        if rel.startswith("ground_truth") or (rel.startswith("train") and not train):
            continue
        img = load(p)
        dx, dy = best_shift(img, ref, reach)
        shifts.append(max(abs(dx), abs(dy)))
        out = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        Image.fromarray(np.round(shifted(img, dx, dy, ref) * 255).astype(np.uint8)).save(out)
        kind, name = rel.split(os.sep)[1], os.path.splitext(os.path.basename(p))[0]
        mask = os.path.join(src, "ground_truth", kind, name + "_mask.png")
        if os.path.exists(mask):
            m = np.asarray(Image.open(mask))
            h, w = m.shape
            moved = np.zeros_like(m)
            ys, xs = np.arange(h) + dy, np.arange(w) + dx
            ok_y, ok_x = (ys >= 0) & (ys < h), (xs >= 0) & (xs < w)
            moved[np.ix_(ok_y, ok_x)] = m[np.ix_(ys[ok_y], xs[ok_x])]
            mo = os.path.join(dst, "ground_truth", kind, name + "_mask.png")
            os.makedirs(os.path.dirname(mo), exist_ok=True)
            Image.fromarray(moved).save(mo)
    return shifts


def evaluate(lamp, model, tree, work, tag):
    variant = os.path.join(work, tag + ".safetensors")
    report = os.path.join(work, tag + "-eval")
    subprocess.run([lamp, "calibrate", model, os.path.join(tree, "calib/good"), "--out", variant],
                   check=True, capture_output=True)
    subprocess.run([lamp, "eval", variant, tree, "-o", report], check=True, capture_output=True)
    m = json.load(open(os.path.join(report, "metrics.json")))
    s = m["image_auroc_by_score"]
    return (f"{tag}: image AUROC mean {s['mean']:.3f} max {s['max']:.3f} topk {s['topk']:.3f}, "
            f"pixel AUROC {m['pixel_auroc']:.3f}, AUPRO {m['aupro_fpr30']:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("category")
    ap.add_argument("ref_category")
    ap.add_argument("--reach", type=int, default=6)
    ap.add_argument("--work", default="/tmp/align-trial")
    ap.add_argument("--lamp", default="target/release/lamp")
    ap.add_argument("--only-align", action="store_true",
                    help="write the aligned tree, train/good included (to train on), and stop")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    ref = reference(sorted(glob.glob(os.path.join(a.ref_category, "train/good/*.png"))), a.reach)
    aligned = os.path.join(a.work, "aligned")
    shifts = align_tree(a.category, aligned, ref, a.reach, train=a.only_align)
    print(f"{len(shifts)} images aligned; largest shift per image: "
          f"{np.bincount(shifts).tolist()} (count by 0, 1, 2, ... px)")
    if a.only_align:
        return
    print(evaluate(a.lamp, a.model, a.category, a.work, "as-framed"))
    print(evaluate(a.lamp, a.model, aligned, a.work, "aligned"))


if __name__ == "__main__":
    main()
