#!/usr/bin/env python3
"""Checks lamp's engine against an independent PyTorch implementation, through `lamp grad`.

For every metric x amplification x granularity it builds the fmnist-ae of docs/design.md in
PyTorch with lamp's initial weights, runs one forward and backward pass on a random batch, and
compares the loss, per-sample errors, reconstruction and every parameter's gradient (relative L2
error, acceptance 1e-3); then K Adam steps (acceptance 1e-4 on the parameters).

Needs: torch, safetensors, numpy (pip install torch safetensors numpy). Not needed by CI.
Usage: python3 scripts/torch_check.py [--lamp target/release/lamp] [--batch 8] [--steps 5]
"""
import argparse
import itertools
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from lamp_torch import FmnistAE


def gaussian_window(channels):
    g = torch.exp(-((torch.arange(11, dtype=torch.float32) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    w = torch.outer(g, g)
    return w.expand(channels, 1, 11, 11).contiguous()


def ssim_map(x, y):
    """SSIM map over valid 11x11 Gaussian windows (sigma 1.5), population covariances, range 1."""
    c = x.shape[1]
    w = gaussian_window(c)
    f = lambda t: F.conv2d(t, w, groups=c)
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def per_element_error(metric, x, y):
    if metric == "mae":
        return (x - y).abs()
    if metric == "mse":
        return (x - y) ** 2
    return (1 - ssim_map(x, y)) / 2


def amp(e, kind):
    if kind == "none":
        return e
    return -torch.log(1 - e.clamp(0.0, 1 - 1e-6))


def loss_fn(metric, kind, gran, x, y):
    e = per_element_error(metric, x, y)
    per_sample = e.flatten(1).mean(1)
    if gran == "element":
        loss = amp(e, kind).mean()
    elif gran == "sample":
        loss = amp(per_sample, kind).mean()
    else:
        loss = amp(per_sample.mean(), kind)
    return loss, per_sample


def rel(a, b):
    a, b = a.double().flatten(), b.double().flatten()
    d = torch.linalg.norm(a - b)
    n = torch.linalg.norm(b)
    return (d / n).item() if n > 0 else d.item()


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"lamp failed: {' '.join(cmd)}\n{r.stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lamp", default="target/release/lamp")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    tmp = tempfile.mkdtemp(prefix="lamp-torch-")
    # A batch that looks like images: smooth blobs in [0, 1], not uniform noise.
    x = torch.rand(args.batch, 1, 28, 28)
    x = F.avg_pool2d(x, 5, 1, 2).clamp(0, 1)
    x = (x - x.amin()) / (x.amax() - x.amin())
    batch_path = os.path.join(tmp, "batch.safetensors")
    save_file({"x": x.contiguous()}, batch_path)
    # lamp's initial weights, through a checkpoint written by lamp itself.
    init_path = os.path.join(tmp, "init.safetensors")
    run([args.lamp, "init", "--seed", str(args.seed), "--out", init_path])
    init = load_file(init_path)
    worst = 0.0
    failures = 0
    print(f"{'metric':6} {'amp':5} {'granularity':11} {'loss':>10} {'errors':>9} {'recon':>9} {'worst grad':>10}  (relative L2 vs PyTorch)")
    for metric, kind, gran in itertools.product(["mae", "mse", "ssim"], ["none", "lamp"], ["element", "sample", "batch"]):
        model = FmnistAE()
        model.load_state_dict(init)
        y = model(x)
        loss, per_sample = loss_fn(metric, kind, gran, x, y)
        loss.backward()
        out = os.path.join(tmp, f"grad-{metric}-{kind}-{gran}.safetensors")
        run([args.lamp, "grad", "--init-seed", str(args.seed), "--input", batch_path, "--metric", metric,
             "--amp", kind, "--granularity", gran, "--out", out])
        got = load_file(out)
        grads = {n: rel(got[f"grad.{n}"], p.grad) for n, p in model.named_parameters()}
        gname, gworst = max(grads.items(), key=lambda kv: kv[1])
        row = [rel(got["loss"], loss.detach()), rel(got["errors"], per_sample.detach()), rel(got["recon"], y.detach()), gworst]
        worst = max(worst, *row)
        bad = any(v > 1e-3 for v in row)
        failures += bad
        print(f"{metric:6} {kind:5} {gran:11} {row[0]:10.2e} {row[1]:9.2e} {row[2]:9.2e} {row[3]:10.2e}  {gname}{'  FAIL' if bad else ''}")
    # K Adam steps on the same batch (mse, lamp, element).
    model = FmnistAE()
    model.load_state_dict(init)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(args.steps):
        opt.zero_grad()
        loss, _ = loss_fn("mse", "lamp", "element", x, model(x))
        loss.backward()
        opt.step()
    out = os.path.join(tmp, "adam.safetensors")
    run([args.lamp, "grad", "--init-seed", str(args.seed), "--input", batch_path, "--metric", "mse", "--amp", "lamp",
         "--granularity", "element", "--adam-steps", str(args.steps), "--lr", "1e-3", "--out", out])
    got = load_file(out)
    adam = max(rel(got[n], p.detach()) for n, p in model.named_parameters())
    moved = max(rel(got[n] - init[n], p.detach() - init[n]) for n, p in model.named_parameters())
    print(f"Adam, {args.steps} steps: parameters {adam:.2e} (acceptance 1e-4); displacement from init {moved:.2e}")
    failures += adam > 1e-4
    print(f"worst relative L2 over the gradient table: {worst:.2e}; {'all within 1e-3' if not failures else f'{failures} FAILED'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
