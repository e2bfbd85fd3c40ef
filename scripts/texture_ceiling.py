#!/usr/bin/env python3
"""How far a detector could go on the texture benchmark if it were *told* where the defects are: a
supervised reference, to read the unsupervised results against. Not a detector lamp could ship
(it trains on the test set's masks); it measures how visible the synthetic defects are.

A small fully convolutional network (3x3 convolutions dilated 1, 1, 2, 4, 8, 1, each followed by
batch normalisation and ReLU: a receptive field of 35 px, 16 channels) is trained with a per-pixel
cross-entropy on the ground-truth masks, on 64x64 crops (half of them centred on a defect pixel,
the rest anywhere), inputs standardised by the normal images' mean and deviation. Two-fold
cross-validation over the test images (each defect kind and the good images split alternately by
file order): a network trained on one half (plus the category's normal training images as extra
defect-free examples) maps the other half, so no image is scored by a network that saw it.
Flips and 90-degree rotations augment the training images. The maps are then evaluated exactly
as the other reference detectors' (texture_eval.py: image score = the map's maximum; pixel AUROC
over every pixel against the masks). Adam, lr 1e-3 on a cosine, batch 16, defect pixels weighted
10, seed 0. A first version (no normalisation, crops anywhere, defect pixels weighted by the
negatives-to-positives ratio, ~300) learned almost nothing (grass pixel AUROC 0.58): the
--plain flag runs it again.

Needs numpy, scipy, scikit-learn, pillow, torch (CPU is enough: 6.5-8 minutes a category on
two cores). Results: results/textures/ceiling.txt. Usage (a category of scripts/make_textures.sh's tree):
    python3 scripts/texture_ceiling.py textures/grass [--steps 3000] [--plain]
"""
import argparse
import glob
import os

import numpy as np
import torch
from torch import nn

from texture_eval import evaluate, load, test_images


def net(plain):
    layers, c = [], 1
    for d in (1, 1, 2, 4, 8, 1):
        layers += [nn.Conv2d(c, 16, 3, padding=d, dilation=d)]
        layers += [nn.ReLU()] if plain else [nn.BatchNorm2d(16), nn.ReLU()]
        c = 16
    return nn.Sequential(*layers, nn.Conv2d(16, 1, 1))


def items(category):
    """(image, mask, kind, fold) of every test image, folds alternating within each kind."""
    return [(im, gt.astype(float), kind, i % 2) for im, gt, kind, i in test_images(category)]


def crop_at(x, y, i, r, c):
    return x[i, :, r:r + 64, c:c + 64], y[i, :, r:r + 64, c:c + 64]


def train(images, masks, steps, rng, plain):
    torch.manual_seed(0)
    f = net(plain)
    x = torch.tensor(np.stack(images), dtype=torch.float32)[:, None]
    y = torch.tensor(np.stack(masks), dtype=torch.float32)[:, None]
    side = x.shape[2]
    if plain:
        opt = torch.optim.Adam(f.parameters(), lr=1e-3)
        sched = None
        pos = float(y.mean())
        weight = (1 - pos) / max(pos, 1e-6)
    else:
        opt = torch.optim.Adam(f.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        weight = 10.0
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight))
    defective = [i for i in range(len(y)) if y[i].any()]
    f.train()
    for step in range(steps):
        if plain:
            idx = rng.choice(len(x), 16)
            r, c = (int(v) for v in rng.integers(0, side - 63, 2))
            xb, yb = x[idx, :, r:r + 64, c:c + 64], y[idx, :, r:r + 64, c:c + 64]
        else:
            xs, ys = [], []
            for j in range(16):
                if j % 2 == 0 and defective:
                    i = int(rng.choice(defective))
                    rr, cc = np.nonzero(y[i, 0].numpy())
                    k = int(rng.integers(len(rr)))
                    r = int(np.clip(rr[k] - 32 + rng.integers(-16, 17), 0, side - 64))
                    c = int(np.clip(cc[k] - 32 + rng.integers(-16, 17), 0, side - 64))
                else:
                    i = int(rng.integers(len(x)))
                    r, c = (int(v) for v in rng.integers(0, side - 63, 2))
                a, b = crop_at(x, y, i, r, c)
                xs.append(a)
                ys.append(b)
            xb, yb = torch.stack(xs), torch.stack(ys)
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        xb, yb = torch.rot90(xb, k, (2, 3)), torch.rot90(yb, k, (2, 3))
        if flip:
            xb, yb = xb.flip(3), yb.flip(3)
        opt.zero_grad()
        loss = loss_fn(f(xb), yb)
        loss.backward()
        opt.step()
        if sched:
            sched.step()
    f.eval()
    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("category")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--plain", action="store_true", help="the first version (see above)")
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    data = items(a.category)
    normal = [load(p) for p in sorted(glob.glob(os.path.join(a.category, "train/good/*.png")))]
    mu, sd = (0.0, 1.0) if a.plain else (np.mean(normal), np.std(normal))
    data = [((im - mu) / sd, m, kind, k) for im, m, kind, k in data]
    normal = [(n - mu) / sd for n in normal]
    maps = {}
    for fold in (0, 1):
        seen = [d for d in data if d[3] != fold]
        f = train([d[0] for d in seen] + normal,
                  [d[1] for d in seen] + [np.zeros_like(n) for n in normal], a.steps, rng,
                  a.plain)
        with torch.no_grad():
            for im, _, _, k in data:
                if k == fold:
                    x = torch.tensor(im, dtype=torch.float32)[None, None]
                    maps[im.tobytes()] = f(x)[0, 0].numpy().astype(np.float64)
    # evaluate() loads the images again: look their maps up by the standardised bytes.
    evaluate(a.category, lambda im: maps[((im - mu) / sd).tobytes()],
             f"supervised FCN ({'plain, ' if a.plain else ''}two-fold, {a.steps} steps)")


if __name__ == "__main__":
    main()
