#!/usr/bin/env python3
"""Side by side: lamp against PyTorch eager on the same machine, the same models (docs/design.md,
Architectures: fmnist-ae, and conv-ae 3x128x128 with stages 32,64,128,128 and latent 128), the
same recipe (MSE with LAMP per element, Adam lr 1e-3) and batch sizes. Runs the two alternately in
one invocation (lamp, PyTorch, lamp, PyTorch) and prints images/s and the ratio lamp / PyTorch for
training (fmnist-ae at batch 16, 64, 256; conv-ae 128 at batch 16) and scoring (fmnist-ae at batch
256, conv-ae 128 at the batch `lamp bench` chose: the largest up to 64 the device binds).

On a machine without a GPU this is lamp on lavapipe (Mesa's software Vulkan) against PyTorch on
the CPU: report it as it is. On a GPU machine, scripts/gpu_check.sh is the comparison (PyTorch
with CUDA, eager and with CUDA graphs). Optional; never needed by CI.
Needs: torch (pip install torch).
Usage: python3 benches/pytorch_reference.py [--lamp PATH] [--rounds 2] [--fmnist-only]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from statistics import median as med

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from lamp_torch import ConvAE, FmnistAE  # noqa: E402

FMNIST = dict(channels=1, size=28)
BIG = dict(channels=3, size=128)


def make(model):
    if model == "fmnist-ae":
        return FmnistAE(), FMNIST
    return ConvAE(3, 128, [32, 64, 128, 128], 128), BIG


def torch_train(model_name, batch, steps):
    model, shape = make(model_name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, shape["channels"], shape["size"], shape["size"])

    def step():
        opt.zero_grad()
        e = (model(x) - x) ** 2
        loss = -torch.log(1 - e.clamp(0, 1 - 1e-6)).mean()
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def torch_score(model_name, batch, n):
    model, shape = make(model_name)
    model.eval()
    x = torch.rand(n, shape["channels"], shape["size"], shape["size"])
    with torch.no_grad():
        model(x[:batch])
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            xb = x[i : i + batch]
            ((model(xb) - xb) ** 2).flatten(1).mean(1)
    return n / (time.perf_counter() - t0)


def lamp_bench(path, fmnist_only):
    args = [path, "bench", "--json"] + (["--fmnist-only"] if fmnist_only else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    r = json.loads(out)
    train = {}
    # Whole images, steps grouped as lamp groups them (the bench also times one step per submit).
    for s in sorted(r["steps"], key=lambda s: s.get("steps_per_submit", 1)):
        if s["views"] == "whole images":
            train[(s["model"].split()[0], s["batch"])] = s["images_per_s"]
    score = {s["model"].split()[0]: (s["batch"], s["images_per_s"]) for s in r["scoring"]}
    return r["device"], train, score, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lamp", default="target/release/lamp")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--fmnist-only", action="store_true", help="skip conv-ae 128 (faster)")
    ap.add_argument("--lamp-json", help="also write the last round's `lamp bench --json` here "
                    "(every kernel's time, for BENCHMARKS.md)")
    a = ap.parse_args()
    rows = []
    for _ in range(a.rounds):
        device, lt, ls, raw = lamp_bench(a.lamp, a.fmnist_only)
        if a.lamp_json:
            with open(a.lamp_json, "w") as f:
                f.write(raw)
        pt = {k: torch_train(k[0], k[1], 10 if k[0] == "fmnist-ae" else 4) for k in lt}
        ps = {m: torch_score(m, b, 1024 if m == "fmnist-ae" else 4 * b) for m, (b, _) in ls.items()}
        rows.append((lt, ls, pt, ps))
    print(f"lamp on {device}; PyTorch {torch.__version__} eager on CPU ({torch.get_num_threads()} threads)")
    print(f"{'':28} {'lamp img/s':>11} {'PyTorch img/s':>14} {'lamp/PyTorch':>13}")
    for k in rows[0][0]:
        l, p = med([r[0][k] for r in rows]), med([r[2][k] for r in rows])
        print(f"{'train ' + k[0] + ' batch ' + str(k[1]):28} {l:11.1f} {p:14.1f} {l / p:13.2f}")
    for m, (b, _) in rows[0][1].items():
        l, p = med([r[1][m][1] for r in rows]), med([r[3][m] for r in rows])
        print(f"{'score ' + m + ' batch ' + str(b):28} {l:11.1f} {p:14.1f} {l / p:13.2f}")


if __name__ == "__main__":
    main()
