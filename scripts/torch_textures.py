#!/usr/bin/env python3
"""An independent PyTorch implementation of lamp's texture recipe, to compare with lamp's cells
of results/textures (issue "detection on real images": image AUROC within ±0.02 on one category).

Recipe (README "Training"; docs/design.md): conv-ae 1x32x32 (stages 32, 64, 128, latent 64),
PyTorch's default init; trained on 32x32 windows of the category's 128x128 train/good images, one
per image per epoch at a random position, under a random flip/rotation (the 8 of them), and in
half the samples a rectangle of 1 to 16 px a side set to a grey level uniform in [0, 1] in the
input only (--denoise); MSE, LAMP per element or none; Adam lr 1e-3 decaying on a cosine to 1e-5
over 500 steps of batch 64 (250 epochs of 120 images). Scored by 32x32 windows every 16 px, the
windows' squared-error maps averaged where they overlap, smoothed with a Gaussian of sigma 2 px
(truncated at 4 sigma, borders clamped), the image's score the mean of its map's top 1% pixels.

Needs torch, numpy, pillow. Usage:
    python3 scripts/torch_textures.py textures/brick --amp lamp --seeds 0,1,2
"""
import argparse
import glob
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

P, STRIDE, SIGMA, TOP = 32, 16, 2.0, 0.01


class ConvAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.ModuleList([nn.Conv2d(1, 32, 3, 2, 1), nn.Conv2d(32, 64, 3, 2, 1), nn.Conv2d(64, 128, 3, 2, 1)])
        self.enc4 = nn.Linear(2048, 64)
        self.dec1 = nn.Linear(64, 2048)
        self.dec = nn.ModuleList([nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ConvTranspose2d(32, 1, 4, 2, 1)])

    def forward(self, x):
        for c in self.enc:
            x = F.leaky_relu(c(x), 0.2)
        x = F.leaky_relu(self.dec1(self.enc4(x.flatten(1))), 0.2).view(-1, 128, 4, 4)
        for i, c in enumerate(self.dec):
            x = c(x)
            x = torch.sigmoid(x) if i == 2 else F.leaky_relu(x, 0.2)
        return x


def load(pattern):
    paths = sorted(glob.glob(pattern))
    return paths, np.stack([np.asarray(Image.open(p).convert("L"), np.float32) / 255 for p in paths])


def view(img, rng, augment):
    y0, x0 = rng.integers(0, img.shape[0] - P + 1, 2)
    w = img[y0 : y0 + P, x0 : x0 + P]
    if augment:
        op = rng.integers(8)
        if op & 4:
            w = w.T
        if op & 1:
            w = w[:, ::-1]
        if op & 2:
            w = w[::-1, :]
    return np.ascontiguousarray(w)


def smooth(m):
    r = math.ceil(4 * SIGMA)
    k = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * SIGMA * SIGMA))
    k /= k.sum()
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r, r)
        p = np.pad(m, pad, mode="edge")
        m = sum(k[i] * np.take(p, range(i, i + m.shape[axis]), axis=axis) for i in range(2 * r + 1))
    return m


def auroc(scores, labels):
    s, l = np.asarray(scores, float), np.asarray(labels, bool)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sv = s[order]
    i = 0
    while i < len(sv):
        j = i
        while j + 1 < len(sv) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j + 2) / 2
        i = j + 1
    npos = l.sum()
    return (ranks[l].sum() - npos * (npos + 1) / 2) / (npos * (len(l) - npos))


def run(root, amp, seed, steps=500, batch=64, lr=1e-3):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    _, train = load(os.path.join(root, "train/good/*.png"))
    model = ConvAE()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    epochs = max(10, math.ceil(steps / math.ceil(len(train) / batch)))
    total = epochs * math.ceil(len(train) / batch)
    t, t0 = 0, time.time()
    for _ in range(epochs):
        order = rng.permutation(len(train))
        for i in range(0, len(order), batch):
            xs, ts = [], []
            for k in order[i : i + batch]:
                w = view(train[k], rng, True)
                x = w.copy()
                if rng.random() < 0.5:
                    h, wd = rng.integers(1, P // 2 + 1, 2)
                    y0, x0 = rng.integers(0, P - h + 1), rng.integers(0, P - wd + 1)
                    x[y0 : y0 + h, x0 : x0 + wd] = rng.random()
                xs.append(x)
                ts.append(w)
            x = torch.tensor(np.stack(xs)).unsqueeze(1)
            target = torch.tensor(np.stack(ts)).unsqueeze(1)
            for g in opt.param_groups:
                g["lr"] = lr / 100 + (lr - lr / 100) * 0.5 * (1 + math.cos(math.pi * min(t / total, 1)))
            e = (model(x) - target) ** 2
            loss = (-torch.log(1 - e.clamp(0, 1 - 1e-6))).mean() if amp == "lamp" else e.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            t += 1
    seconds = time.time() - t0
    scores, labels = [], []
    for kind in sorted(os.listdir(os.path.join(root, "test"))):
        _, imgs = load(os.path.join(root, "test", kind, "*.png"))
        for img in imgs:
            s = img.shape[0]
            starts = list(range(0, s - P + 1, STRIDE))
            if starts[-1] != s - P:
                starts.append(s - P)
            wins = np.stack([img[y : y + P, x : x + P] for y in starts for x in starts])
            with torch.no_grad():
                rec = model(torch.tensor(wins).unsqueeze(1)).squeeze(1).numpy()
            acc, cnt = np.zeros((s, s)), np.zeros((s, s))
            for (y, x), w, r in zip([(y, x) for y in starts for x in starts], wins, rec):
                acc[y : y + P, x : x + P] += (w - r) ** 2
                cnt[y : y + P, x : x + P] += 1
            m = np.sort(smooth(acc / cnt).ravel())[::-1]
            scores.append(m[: math.ceil(len(m) * TOP)].mean())
            labels.append(kind != "good")
    return auroc(scores, labels), seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("category")
    ap.add_argument("--amp", default="lamp", choices=["none", "lamp"])
    ap.add_argument("--seeds", default="0,1,2")
    a = ap.parse_args()
    aucs = []
    for s in [int(v) for v in a.seeds.split(",")]:
        auc, secs = run(a.category, a.amp, s)
        aucs.append(auc)
        print(json.dumps({"category": a.category, "amp": a.amp, "seed": s, "auroc": auc, "seconds": round(secs, 1)}), flush=True)
    print(f"{a.category} mse {a.amp}: AUROC {np.mean(aucs):.4f} ± {np.std(aucs, ddof=1) if len(aucs) > 1 else 0:.4f} over {len(aucs)} seeds")


if __name__ == "__main__":
    main()
