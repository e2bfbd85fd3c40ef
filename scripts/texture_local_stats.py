#!/usr/bin/env python3
"""A model-free detector for the texture benchmark, to set lamp's autoencoder beside: multi-scale
local statistics of each pixel, scored by their distance to the nearest training pixels'.

No network: per pixel, at Gaussian scales sigma = 1, 2, 4 px, the local mean, the local standard
deviation, the gradient energy sqrt(Jxx + Jyy) and the orientation coherence
sqrt((Jxx - Jyy)^2 + 4 Jxy^2) / (Jxx + Jyy) of the structure tensor J (Sobel gradients, smoothed
at that scale): 12 numbers, standardised by the training pixels' mean and deviation. The bank is
1,500 random pixels of each training image (180,000); a test pixel's anomaly is its mean distance
to its K = 5 nearest neighbours in the bank (a density estimate, so a flat stain in a busy texture
is far from everything even where its grey level is common). Maps are smoothed with a Gaussian of
sigma 2 px; an image's score is the maximum of its map. The configuration was fixed before the
run below; the variants tried afterwards are in the output file's last lines.

Why it exists: on grass and gravel, a reconstruction autoencoder reconstructs a flat stain better
than the texture around it, so its error maps rank defect pixels *below* normal ones (pixel AUROC
0.35-0.74 in results/textures/results.md); a density of local statistics does not have that
blind spot. It is a reference point for the benchmark, not part of lamp.

--region-shift asks a different question: how far the test region's normal crops are from the
training region's. The bank is built from every other training image (3,000 pixels each), and the
held-out training images, the normal test images and the defective ones are scored alike (the
map's maximum): AUROC 0.5 between the first two means no shift.

Needs numpy, scipy, scikit-learn, pillow. Usage (a category of scripts/make_textures.sh's tree):
    python3 scripts/texture_local_stats.py textures/grass [--k 5] [--scales 1,2,4] [--smooth 2]
    python3 scripts/texture_local_stats.py textures/grass --region-shift
"""
import argparse
import glob
import os

import numpy as np
from scipy.ndimage import gaussian_filter, sobel
from sklearn.neighbors import NearestNeighbors

from texture_eval import evaluate, load, region_shift


def features(im, scales):
    gx, gy = sobel(im, 1), sobel(im, 0)
    out = []
    for s in scales:
        m = gaussian_filter(im, s)
        var = gaussian_filter(im * im, s) - m * m
        jxx, jyy, jxy = (gaussian_filter(g, s) for g in (gx * gx, gy * gy, gx * gy))
        trace = jxx + jyy
        out += [m, np.sqrt(np.maximum(var, 0.0)), np.sqrt(trace),
                np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / (trace + 1e-6)]
    return np.stack(out, -1).reshape(-1, len(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("category")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--scales", default="1,2,4")
    ap.add_argument("--smooth", type=float, default=2.0)
    ap.add_argument("--per-image", type=int, default=1500)
    ap.add_argument("--region-shift", action="store_true",
                    help="score held-out training crops beside the test crops (see above)")
    a = ap.parse_args()
    scales = [float(s) for s in a.scales.split(",")]
    rng = np.random.default_rng(0)
    bank = []
    train = sorted(glob.glob(os.path.join(a.category, "train/good/*.png")))
    per_image = 2 * a.per_image if a.region_shift else a.per_image
    for p in train[0::2] if a.region_shift else train:
        f = features(load(p), scales)
        bank.append(f[rng.choice(len(f), per_image, replace=False)])
    bank = np.concatenate(bank)
    mu, sd = bank.mean(0), bank.std(0)
    nn = NearestNeighbors(n_neighbors=a.k).fit((bank - mu) / sd)

    def anomaly_map(im):
        dist, _ = nn.kneighbors((features(im, scales) - mu) / sd)
        return gaussian_filter(dist.mean(1).reshape(im.shape), a.smooth)

    if a.region_shift:
        region_shift(a.category, train[1::2], lambda p: anomaly_map(load(p)).max())
    else:
        evaluate(a.category, anomaly_map, f"k={a.k} scales={a.scales} smooth={a.smooth}")


if __name__ == "__main__":
    main()
