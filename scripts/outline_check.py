#!/usr/bin/env python3
"""How often the outlined region (map pixels over a pixel threshold) appears, and how well it
covers the defects, for candidate pixel thresholds: the one the MODEL stores, the 99th
percentile of all pixels of normal images' maps (lamp's rule before 2026-12-07), and the 99th
and 90th percentiles of each normal image's highest pixel (lamp's rule since).

The normal maps come from CATEGORY/calib/good, scored by the model (so not part of its normal
map, as calibration's leave-one-out makes them); the test maps from CATEGORY/test/*, with the
masks of CATEGORY/ground_truth. Maps are read from `lamp score --maps` (16-bit PNG, value x 65535).

    python3 scripts/outline_check.py MODEL CATEGORY WORK_DIR [--lamp target/release/lamp]

Needs numpy and Pillow.
"""
import argparse
import glob
import os
import re
import subprocess

import numpy as np
from PIL import Image


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("category")
    ap.add_argument("work")
    ap.add_argument("--lamp", default="target/release/lamp")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    info = subprocess.run([a.lamp, "inspect", a.model], capture_output=True, text=True, check=True)
    stored = float(re.search(r"pixel threshold ([0-9.e-]+)", info.stdout).group(1))

    def maps(folder, tag):
        d = os.path.join(a.work, tag)
        if not os.path.isdir(d):
            subprocess.run(
                [a.lamp, "score", a.model, folder, "--maps", d, "-o", d + ".txt"],
                check=True, capture_output=True)
        return {os.path.basename(f)[:-len("_map.png")]:
                np.asarray(Image.open(f)).astype(np.float64) / 65535
                for f in sorted(glob.glob(os.path.join(d, "*_map.png")))}

    normal = maps(os.path.join(a.category, "calib", "good"), "calib")
    peaks = np.array([m.max() for m in normal.values()])
    pixels = np.concatenate([m.ravel() for m in normal.values()])
    candidates = {
        "stored in the model": stored,
        "99th percentile of all normal pixels": np.quantile(pixels, 0.99),
        "99th percentile of normal images' peaks": np.quantile(peaks, 0.99),
        "90th percentile of normal images' peaks": np.quantile(peaks, 0.90),
    }
    types = sorted(os.listdir(os.path.join(a.category, "test")))
    tests = {t: maps(os.path.join(a.category, "test", t), "test_" + t) for t in types}
    print(f"{a.model} on {a.category}: {len(normal)} normal calibration images")
    for label, t in candidates.items():
        print(f"{label}: {t:.5f}")
        for ty, ms in tests.items():
            outlined = sum(bool((m > t).any()) for m in ms.values())
            line = f"  {ty:8s} images with an outline {outlined}/{len(ms)}"
            if ty == "good":
                per = np.mean([(m > t).sum() for m in ms.values()])
                line += f", {per:.1f} outlined pixels per image"
            else:
                tp = fp = fn = 0
                for name, m in ms.items():
                    mask = os.path.join(a.category, "ground_truth", ty, name + "_mask.png")
                    gt = np.asarray(Image.open(mask)) > 0
                    p = m > t
                    tp += (p & gt).sum()
                    fp += (p & ~gt).sum()
                    fn += (~p & gt).sum()
                line += f", pixel precision {tp / max(tp + fp, 1):.2f} recall {tp / max(tp + fn, 1):.2f}"
            print(line)


if __name__ == "__main__":
    main()
