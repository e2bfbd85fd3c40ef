"""384 px crops of scikit-image's brick photograph (CC0) with painted spots and scratches and
their masks, in the MVTec AD layout: the patch-mode trial of results/edges/README.txt.
Train and test crops come from the same 512 px photograph (they overlap): a trial of how maps
behave at image edges, not a benchmark.

    scripts/skimage_photos.sh /tmp/photos brick.png
    python3 scripts/make_large_brick.py /tmp/photos/brick.png OUT_DIR
"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

photo, root = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(1)
src = np.asarray(Image.open(photo).convert("L"))
S = 384


def crop():
    x = rng.integers(0, src.shape[1] - S + 1)
    y = rng.integers(0, src.shape[0] - S + 1)
    im = src[y : y + S, x : x + S].astype(np.float32)
    im = im * rng.uniform(0.95, 1.05) + rng.normal(0, 2, im.shape)
    return np.clip(im, 0, 255)


for d in ["train/good", "test/good", "test/spot", "test/scratch", "ground_truth/spot",
          "ground_truth/scratch"]:
    os.makedirs(f"{root}/{d}", exist_ok=True)
for i in range(36):
    Image.fromarray(crop().astype(np.uint8)).save(f"{root}/train/good/{i:03d}.png")
for i in range(8):
    Image.fromarray(crop().astype(np.uint8)).save(f"{root}/test/good/{i:03d}.png")
for kind in ["spot", "scratch"]:
    for i in range(8):
        im = Image.fromarray(crop().astype(np.uint8))
        m = Image.new("L", (S, S), 0)
        d, dm = ImageDraw.Draw(im), ImageDraw.Draw(m)
        cx, cy = rng.integers(30, S - 30, 2)
        if kind == "spot":
            r = int(rng.integers(3, 11))
            g = int(rng.choice([20, 235]))
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=g)
            dm.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        else:
            L = rng.integers(15, 40)
            a = rng.uniform(0, np.pi)
            w = int(rng.integers(2, 4))
            g = int(rng.choice([30, 225]))
            pts = [(cx - L * np.cos(a), cy - L * np.sin(a)), (cx + L * np.cos(a), cy + L * np.sin(a))]
            d.line(pts, fill=g, width=w)
            dm.line(pts, fill=255, width=w)
        im.save(f"{root}/test/{kind}/{i:03d}.png")
        m.save(f"{root}/ground_truth/{kind}/{i:03d}_mask.png")
