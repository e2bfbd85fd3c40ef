#!/usr/bin/env python3
"""Learned and random convolutional features for the texture benchmark, scored like PatchCore: a
test pixel's anomaly is its feature vector's distance to the nearest of a bank of training
pixels' features. A question for issue 13: does the density of *features* (rather than the
reconstruction error) of lamp's own autoencoder detect defects in grass and gravel?

  --features ae:     lamp's conv-ae for 32x32 inputs (stages 32,64,128, latent 64; the PyTorch
                     copy in lamp_torch.py) trained with LAMP (element) on random 32x32 windows of
                     the training crops, flipped and rotated, Adam 1e-3 with a cosine schedule,
                     batch 64, --steps steps; the features are its three encoder stages run over
                     the whole 128x128 image (it is fully convolutional up to the latent).
  --features random: three 3x3 convolutions (32, 64, 128 channels, leaky ReLU, 2x2 average pooling
                     between them) with PyTorch's default random initialisation, never trained.

Each stage's map is smoothed (3x3 mean), resized to 64x64 and concatenated; features are
standardised by the bank's mean and deviation. Bank: 300 random positions of each training crop.
Maps: nearest-neighbour distance, resized to 128x128, Gaussian sigma 2; image score = map maximum.

Result (2026-12-01, --steps 1500, seed 0; figures in results/textures/features.txt):
both are below the model-free local statistics of texture_local_stats.py.

Needs torch, numpy, scipy, scikit-learn, pillow. Usage:
    python3 scripts/texture_features.py textures/grass [--features ae|random] [--steps 1500]
"""
import argparse
import glob
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lamp_torch import ConvAE  # noqa: E402
from texture_eval import evaluate, load  # noqa: E402


class RandomFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.ModuleList([nn.Conv2d(1, 32, 3, 1, 1), nn.Conv2d(32, 64, 3, 1, 1),
                                  nn.Conv2d(64, 128, 3, 1, 1)])

    def stages(self, x):
        out = []
        for i, c in enumerate(self.enc):
            x = F.leaky_relu(c(x), 0.2)
            out.append(x)
            if i < len(self.enc) - 1:
                x = F.avg_pool2d(x, 2)
        return out


def ae_stages(net, x):
    out = []
    for c in net.enc:
        x = F.leaky_relu(c(x), 0.2)
        out.append(x)
    return out


def train_ae(train, steps):
    t = torch.tensor(train)
    net = ConvAE(1, 32, [32, 64, 128], 64)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(0)
    side = t.shape[-1] - 32 + 1
    for s in range(steps):
        idx = torch.randint(0, len(t), (64,), generator=g)
        ys = torch.randint(0, side, (64,), generator=g)
        xs = torch.randint(0, side, (64,), generator=g)
        x = torch.stack([t[i, y:y + 32, x:x + 32] for i, y, x in zip(idx, ys, xs)])[:, None]
        x = torch.rot90(x, int(torch.randint(0, 4, (1,), generator=g)), (2, 3))
        if torch.rand(1, generator=g).item() < 0.5:
            x = x.flip(3)
        e = (net(x) - x).abs().clamp(max=1 - 1e-6)
        loss = (-torch.log1p(-e)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("category")
    ap.add_argument("--features", choices=["ae", "random"], default="ae")
    ap.add_argument("--steps", type=int, default=1500)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    train = np.stack([load(p) for p in sorted(glob.glob(os.path.join(a.category, "train/good/*.png")))])
    train = train.astype(np.float32)
    t0 = time.time()
    if a.features == "ae":
        net = train_ae(train, a.steps)
        stages = lambda x: ae_stages(net, x)  # noqa: E731
    else:
        stages = RandomFeatures().stages

    def feats(ims):
        with torch.no_grad():
            x = torch.tensor(np.stack(ims))[:, None]
            return torch.cat([F.interpolate(F.avg_pool2d(o, 3, 1, 1), size=64, mode="bilinear",
                                            align_corners=False) for o in stages(x)], 1)

    rng = np.random.default_rng(0)
    bank = []
    for i in range(0, len(train), 20):
        f = feats(list(train[i:i + 20]))
        b, c, h, w = f.shape
        f = f.permute(0, 2, 3, 1).reshape(b, h * w, c)
        bank += [f[j, rng.choice(h * w, 300, replace=False)] for j in range(b)]
    bank = torch.cat(bank)
    mu, sd = bank.mean(0), bank.std(0) + 1e-6
    bank = (bank - mu) / sd
    def anomaly_map(im):
        f = feats([im.astype(np.float32)])[0]
        c, h, w = f.shape
        q = (f.permute(1, 2, 0).reshape(-1, c) - mu) / sd
        d = torch.cdist(q, bank).min(1).values.reshape(1, 1, h, w)
        m = F.interpolate(d, size=im.shape[0], mode="bilinear", align_corners=False)[0, 0]
        return gaussian_filter(m.numpy(), 2)

    evaluate(a.category, anomaly_map, f"features {a.features}")
    print(f"  ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
