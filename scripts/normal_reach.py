#!/usr/bin/env python3
"""Would a normal map that tolerates small shifts score jittered parts better?

lamp's normal map is the calibration images' mean anomaly map, and a whole image's map is scored
above it (0 where below). Parts photographed a few pixels off their usual place leave a crescent
of error along their edges that the mean map, blurred over the calibration images' own shifts,
does not cover. This script tries the normal map's maximum within R pixels (a grey dilation,
R = 0 is lamp's) on raw maps lamp wrote, and reports image AUROC of the topk score (the mean of
the top 1% of the map, lamp's default for conv-ae), pixel AUROC, and the share of normal test
images whose highest pixel exceeds the pixel threshold (the calibration images' highest pixels'
99th percentile, as lamp sets it) - the normal images a user would see outlined.

    lamp calibrate MODEL CATEGORY/calib/good --normal-map off --out RAW
    lamp score RAW CATEGORY/calib/good --json -o calib.jsonl --maps CALIB_MAPS
    lamp score RAW CATEGORY/test --json -o test.jsonl --maps TEST_MAPS
    python3 scripts/normal_reach.py CATEGORY calib.jsonl CALIB_MAPS test.jsonl TEST_MAPS

Needs numpy, scipy, scikit-learn, pillow.
"""
import json
import os
import sys

import numpy as np
from PIL import Image
from scipy.ndimage import maximum_filter
from sklearn.metrics import roc_auc_score


def maps_of(jsonl, maps_dir):
    out = {}
    for line in open(jsonl):
        d = json.loads(line)
        m = np.asarray(Image.open(f"{maps_dir}/{d['maps']}_map.png")).astype(np.float64) / 65535
        out[d["path"]] = m
    return out


def top1(m):
    v = np.sort(m.ravel())
    return v[-max(1, v.size // 100):].mean()


def main():
    category, cal_json, cal_dir, test_json, test_dir = sys.argv[1:6]
    cal = list(maps_of(cal_json, cal_dir).values())
    test = maps_of(test_json, test_dir)
    maps, labels, masks = [], [], []
    for path, m in sorted(test.items()):
        kind = os.path.basename(os.path.dirname(path))
        maps.append(m)
        labels.append(kind != "good")
        if kind == "good":
            masks.append(np.zeros(m.shape, bool))
        else:
            f = os.path.basename(path)[:-4]
            masks.append(np.asarray(Image.open(f"{category}/ground_truth/{kind}/{f}_mask.png")) > 127)
    maps, labels, masks = np.stack(maps), np.array(labels), np.stack(masks)
    n = len(cal)
    cal = np.stack(cal)
    total = cal.sum(axis=0)
    for reach in [0, 1, 2, 3, 4]:
        size = 2 * reach + 1
        normal = maximum_filter(total / n, size=size)
        # Calibration as lamp does it: each image above the (dilated) mean of the others.
        peaks = [np.maximum(c - maximum_filter((total - c) / (n - 1), size=size), 0).max() for c in cal]
        # lamp's quantile rule, contamination 0.01: the 99th percentile (linear interpolation).
        pixel_threshold = np.quantile(peaks, 0.99)
        above = np.maximum(maps - normal, 0)
        scores = np.array([top1(m) for m in above])
        img = roc_auc_score(labels, scores)
        pix = roc_auc_score(masks.ravel(), above.ravel())
        outlined = (above[~labels].reshape((~labels).sum(), -1).max(axis=1) > pixel_threshold).mean()
        hit = np.array([(a[k] > pixel_threshold).any() for a, k in zip(above[labels], masks[labels])]).mean()
        print(f"{category} reach {reach}: image AUROC (topk) {img:.4f}, pixel AUROC {pix:.4f}, "
              f"normal test images outlined {outlined:.2f}, defects touched by an outline {hit:.2f}")


if __name__ == "__main__":
    main()
