#!/usr/bin/env python3
"""Does normalising each image's anomaly map by the image itself help on the texture benchmark?

The benchmark's test crops come from another region of the photograph than the training crops,
so a normal test crop's whole map can sit higher or lower than a training crop's. If that shift
were what hides the defects, scoring each pixel against its own image's level would remove it.
This script reads the raw maps `lamp score MODEL textures/C/test --json -o S.jsonl --maps DIR`
wrote, and reports image AUROC (mean of the top 1% of the map, as --score-agg topk) and pixel
AUROC for: the raw map; minus the image's median; divided by it; (map - median) / MAD;
(map - mean) / standard deviation; and two-sided forms against the normal test maps' median
(|map - median| and median - map, smoothed with a Gaussian of 2 or 4 px), for the case where
defects reconstruct *better* than the texture around them.

Needs numpy, scipy, scikit-learn, pillow. Usage:
    python3 scripts/texture_map_norm.py textures/gravel S.jsonl DIR
"""
import json
import os
import sys

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from sklearn.metrics import roc_auc_score


def load(category, scores, maps_dir):
    names = {}
    for line in open(scores):
        d = json.loads(line)
        names[os.path.relpath(d["path"], os.path.join(category, "test"))] = d["maps"]
    maps, labels, masks = [], [], []
    for kind in sorted(os.listdir(os.path.join(category, "test"))):
        for f in sorted(os.listdir(os.path.join(category, "test", kind))):
            m = np.asarray(Image.open(f"{maps_dir}/{names[kind + '/' + f]}_map.png"))
            m = m.astype(np.float64) / 65535
            maps.append(m)
            labels.append(kind != "good")
            if kind == "good":
                masks.append(np.zeros(m.shape, bool))
            else:
                mask = f"{category}/ground_truth/{kind}/{f[:-4]}_mask.png"
                masks.append(np.asarray(Image.open(mask)) > 127)
    return np.stack(maps), np.array(labels), np.stack(masks)


def top1(m):
    v = np.sort(m.ravel())
    return v[-max(1, v.size // 100):].mean()


def main():
    category, scores, maps_dir = sys.argv[1:4]
    maps, labels, masks = load(category, scores, maps_dir)
    med = np.median(maps, axis=(1, 2), keepdims=True)
    mad = np.median(np.abs(maps - med), axis=(1, 2), keepdims=True) + 1e-9
    mean = maps.mean(axis=(1, 2), keepdims=True)
    sd = maps.std(axis=(1, 2), keepdims=True) + 1e-9
    normal_med = np.median(maps[~labels])
    forms = [
        ("raw map", maps),
        ("minus the image's median", maps - med),
        ("over the image's median", maps / (med + 1e-9)),
        ("(map - median) / MAD", (maps - med) / mad),
        ("(map - mean) / sd", (maps - mean) / sd),
    ]
    for s in (2, 4):
        forms.append((f"|map - normal median|, sigma {s}",
                      np.stack([gaussian_filter(np.abs(m - normal_med), s) for m in maps])))
        forms.append((f"normal median - map, sigma {s}",
                      np.stack([gaussian_filter(normal_med - m, s) for m in maps])))
    name = os.path.basename(os.path.normpath(category))
    for label, m in forms:
        image = roc_auc_score(labels, [top1(x) for x in m])
        pixel = roc_auc_score(masks.ravel(), m.ravel())
        print(f"{name} {label}: image AUROC {image:.4f}, pixel AUROC {pixel:.4f}")


if __name__ == "__main__":
    main()
