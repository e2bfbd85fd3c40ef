#!/usr/bin/env python3
"""An independent PyTorch implementation of lamp's Fashion-MNIST one-class recipe, to compare
lamp's experiment cells with (issue "experiments": baseline AUROCs within ±0.01 on the class mean).

Recipe (docs/design.md, Architectures and Data): fmnist-ae, PyTorch default init, Adam (lr 1e-3, betas 0.9/0.999, eps
1e-8), batch 64, reshuffled every epoch, trained on the 6000 training images of class c; scored on
all 10000 test images by the plain per-sample error with the training metric; class c normal.
Loss: mse or mae, amplification none or lamp (per element). SSIM is not implemented here.

Needs torch, numpy, scikit-learn. Reads Debian's dataset-fashion-mnist IDX files.
Usage: python3 scripts/torch_experiment.py --classes 0 --metric mse --amp none --seeds 0,1,2
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from lamp_torch import FmnistAE

DIR = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(os.path.join(DIR, name)) as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data[4 + 4 * nd :], dtype=np.uint8).reshape(dims)


def error(metric, x, y):
    return (x - y).abs() if metric == "mae" else (x - y) ** 2


def run(c, metric, amp, seed, epochs):
    torch.manual_seed(seed)
    xtr, ytr = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
    xte, yte = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
    x = torch.tensor(xtr[ytr == c], dtype=torch.float32).unsqueeze(1) / 255
    model = FmnistAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.time()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            xb = x[perm[i : i + 64]]
            e = error(metric, xb, model(xb))
            loss = (-torch.log(1 - e.clamp(0, 1 - 1e-6))).mean() if amp == "lamp" else e.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    xt = torch.tensor(xte, dtype=torch.float32).unsqueeze(1) / 255
    with torch.no_grad():
        scores = torch.cat([error(metric, xb, model(xb)).flatten(1).mean(1) for xb in xt.split(500)])
    return roc_auc_score(yte != c, scores.numpy()), time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--classes", default="0")
    ap.add_argument("--metric", default="mse", choices=["mse", "mae"])
    ap.add_argument("--amp", default="none", choices=["none", "lamp"])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=10)
    a = ap.parse_args()
    for c in [int(v) for v in a.classes.split(",")]:
        aucs = []
        for s in [int(v) for v in a.seeds.split(",")]:
            auc, secs = run(c, a.metric, a.amp, s, a.epochs)
            aucs.append(auc)
            print(json.dumps({"class": c, "metric": a.metric, "amp": a.amp, "seed": s, "epochs": a.epochs, "auroc": auc, "seconds": round(secs, 1)}))
        print(f"class {c} {a.metric} {a.amp}: AUROC {np.mean(aucs):.4f} ± {np.std(aucs, ddof=1) if len(aucs) > 1 else 0:.4f} over {len(aucs)} seeds")


if __name__ == "__main__":
    main()
