#!/usr/bin/env python3
"""PyTorch on the same models and recipe as lamp, for the GPU check (scripts/gpu_check.sh).

Models (docs/design.md, Architectures): the conv-ae family, Conv2d k3 s2 p1 + LeakyReLU(0.2) per
encoder stage, Linear to the latent, Linear back + LeakyReLU, ConvTranspose2d k4 s2 p1 +
LeakyReLU per decoder stage, the last one with a sigmoid. fmnist-ae is 1x28x28, stages 32,64,
latent 32; conv-ae 128 is 3x128x128, stages 32,64,128,128, latent 128.
Recipe: MSE amplified per element, mean(-ln(1 - min(e, 1 - 1e-6))); Adam, lr 1e-3.

Measures training images/s eagerly and with the whole step captured in one CUDA graph, and
scoring images/s (per-image mean squared error, batch 256 for fmnist-ae and for conv-ae 128
`lamp bench`'s (--big-score-batch), the scores copied to the host).
Prints one JSON object. `--device cpu --steps 3` is a smoke test on a machine without a GPU.
"""
import argparse
import json
import time

import torch

from lamp_torch import ConvAE


def lamp_loss(y, x):
    e = (y - x) ** 2
    return (-torch.log1p(-e.clamp(0, 1 - 1e-6))).mean()


def sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def timed(dev, fn, reps):
    sync(dev)
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    sync(dev)
    return time.perf_counter() - t


def bench(dev, name, channels, size, stages, latent, batch, steps, score_batch=256):
    torch.manual_seed(0)
    out = {"model": name, "batch": batch, "steps": steps}
    x = torch.rand(batch, channels, size, size, device=dev)

    model = ConvAE(channels, size, stages, latent).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        lamp_loss(model(x), x).backward()
        opt.step()

    timed(dev, step, max(2, steps // 10))
    out["train_eager_img_s"] = batch * steps / timed(dev, step, steps)

    if dev == "cuda":
        # PyTorch's documented whole-network capture: warm up on a side stream, capture one step.
        try:
            m2 = ConvAE(channels, size, stages, latent).to(dev)
            opt2 = torch.optim.Adam(m2.parameters(), lr=1e-3, capturable=True)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    opt2.zero_grad(set_to_none=True)
                    lamp_loss(m2(x), x).backward()
                    opt2.step()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            opt2.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph):
                lamp_loss(m2(x), x).backward()
                opt2.step()
            timed(dev, graph.replay, 20)
            out["train_graph_img_s"] = batch * steps / timed(dev, graph.replay, steps)
        except Exception as ex:  # report, do not hide: the JSON says why there is no figure
            out["train_graph_error"] = str(ex)[:300]

    model.eval()
    xs = torch.rand(score_batch, channels, size, size, device=dev)

    def score():
        with torch.no_grad():
            ((model(xs) - xs) ** 2).flatten(1).mean(1).cpu()

    reps = max(3, steps // 4)
    timed(dev, score, 3)
    out["score_batch"] = score_batch
    out["score_img_s"] = score_batch * reps / timed(dev, score, reps)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--big-score-batch", type=int, default=64, help="conv-ae 128's scoring batch (lamp bench's)")
    a = ap.parse_args()
    name = torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu"
    fm = ("fmnist-ae", 1, 28, [32, 64], 32)
    big = ("conv-ae 3x128", 3, 128, [32, 64, 128, 128], 128)
    runs = [
        bench(a.device, *fm, 64, a.steps),
        bench(a.device, *fm, 256, a.steps),
        bench(a.device, *big, 16, max(1, a.steps // 2), score_batch=a.big_score_batch),
    ]
    res = {
        "torch": torch.__version__,
        "device": name,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "runs": runs,
    }
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
