#!/usr/bin/env python3
"""How long the conv-ae sits on the mean-image plateau, by initialisation (PyTorch, not lamp).

lamp's `--init pytorch` is PyTorch's default (kaiming_uniform with a = sqrt(5): weights of
variance 1/(3 fan_in), a gain of about 0.58 per layer, so the signal fades through conv-ae's ten
layers). 'he' here is PyTorch's kaiming_normal_, which counts a transposed convolution's fan_in
by its output channels; lamp's `--init he` counts the inputs each output sums and gives the
latent and sigmoid layers a gain of 1 (src/model/init.rs; lamp_torch.init_he).

This trains scripts/lamp_torch.py's conv-ae 3x64 (stages 32,64,128,128, latent 128) on the
object benchmark's cup with lamp's default training recipe (batch 64, Adam 1e-3 on a cosine schedule
to a hundredth, 501 steps, MSE, 20 images held out) from that init and from He's (kaiming_normal
for leaky ReLU 0.2, zero biases), two seeds each, and prints the held-out error every 50-100
steps and the first step at which it falls below 0.8x the mean image's.

    python3 scripts/plateau_init.py     (after scripts/make_objects.sh; needs torch, numpy, Pillow)
"""
import glob, math, os, sys

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lamp_torch import ConvAE
torch.set_num_threads(2)
files = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'objects', 'cup', 'train', 'good', '*.png')))
x = np.stack([np.asarray(Image.open(f).convert('RGB'), dtype=np.float32).transpose(2, 0, 1) / 255 for f in files])
rng = np.random.default_rng(0); idx = rng.permutation(len(x)); va, tr = x[idx[:20]], x[idx[20:]]
va_t, tr_t = torch.tensor(va), torch.tensor(tr)
mean_img = tr_t.mean(0, keepdim=True)
base = ((va_t - mean_img) ** 2).mean().item()
def run(init, seed, steps=501, batch=64):
    torch.manual_seed(seed)
    m = ConvAE(3, 64, [32, 64, 128, 128], 128)
    if init == 'he':
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.kaiming_normal_(mod.weight, a=0.2, nonlinearity='leaky_relu', mode='fan_in')
                nn.init.zeros_(mod.bias)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * s / steps)))
    g = torch.Generator().manual_seed(seed); s = 0; first_below = None; curve = []
    while s < steps:
        perm = torch.randperm(len(tr_t), generator=g)
        for i in range(0, len(perm), batch):
            if s >= steps: break
            b = tr_t[perm[i:i + batch]]
            loss = ((m(b) - b) ** 2).mean()
            opt.zero_grad(); loss.backward(); opt.step(); sched.step(); s += 1
            if s % 10 == 0:
                with torch.no_grad():
                    e = ((m(va_t) - va_t) ** 2).mean().item()
                curve.append((s, e))
                if first_below is None and e < 0.8 * base: first_below = s
    return first_below, curve[-1][1], [c for c in curve if c[0] in (50, 100, 150, 200, 300, 400, 500)]
print(f'mean image held-out error {base:.5f}')
for init in ['torch', 'he']:
    for seed in [0, 1]:
        fb, final, pts = run(init, seed)
        print(init, seed, 'first step below 0.8x mean image:', fb, 'final', round(final, 5), [(a, round(b, 4)) for a, b in pts], flush=True)
