#!/usr/bin/env python3
"""Side by side: lamp against PyTorch eager on the same machine, the same fmnist-ae
(docs/design.md, Architectures), the same recipe (MSE with LAMP per element, Adam lr 1e-3) and batch sizes. Runs the two
alternately in one invocation (lamp, PyTorch, lamp, PyTorch) and prints images/s and the ratio
lamp / PyTorch for training (batch 16, 64, 256) and scoring (batch 256).

On a machine without a GPU this is lamp on lavapipe (Mesa's software Vulkan) against PyTorch on
the CPU: report it as it is. Optional; never needed by CI.
Needs: torch (pip install torch). Usage: python3 benches/pytorch_reference.py [--lamp PATH]
"""
import argparse
import json
import subprocess
import time

import torch
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from lamp_torch import FmnistAE  # noqa: E402


def torch_train(batch, steps=10):
    model = FmnistAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, 28, 28)

    def step():
        opt.zero_grad()
        e = (model(x) - x) ** 2
        loss = -torch.log(1 - e.clamp(0, 1 - 1e-6)).mean()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def torch_score(batch=256, reps=5):
    model = FmnistAE().eval()
    x = torch.rand(1024, 1, 28, 28)
    with torch.no_grad():
        model(x[:batch])
        t0 = time.perf_counter()
        for _ in range(reps):
            for i in range(0, 1024, batch):
                xb = x[i : i + batch]
                ((model(xb) - xb) ** 2).flatten(1).mean(1)
    return 1024 * reps / (time.perf_counter() - t0)


def lamp_bench(path):
    out = subprocess.run([path, "bench", "--json", "--fmnist-only"], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    train = {s["batch"]: s["images_per_s"] for s in r["steps"]}
    return r["device"], train, r["scoring"][0]["images_per_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lamp", default="target/release/lamp")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    rows = []
    for _ in range(a.rounds):
        device, lt, ls = lamp_bench(a.lamp)
        pt = {b: torch_train(b) for b in (16, 64, 256)}
        ps = torch_score()
        rows.append((lt, ls, pt, ps))
    print(f"lamp on {device}; PyTorch {torch.__version__} eager on CPU ({torch.get_num_threads()} threads)")
    print(f"{'':18} {'lamp img/s':>11} {'PyTorch img/s':>14} {'lamp/PyTorch':>13}")
    for b in (16, 64, 256):
        l = sorted(r[0][b] for r in rows)[len(rows) // 2]
        p = sorted(r[2][b] for r in rows)[len(rows) // 2]
        print(f"train batch {b:<6} {l:11.1f} {p:14.1f} {l / p:13.2f}")
    l = sorted(r[1] for r in rows)[len(rows) // 2]
    p = sorted(r[3] for r in rows)[len(rows) // 2]
    print(f"score batch 256    {l:11.1f} {p:14.1f} {l / p:13.2f}")


if __name__ == "__main__":
    main()
