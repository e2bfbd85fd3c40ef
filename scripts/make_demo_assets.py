#!/usr/bin/env python3
"""Builds assets/fashion-mnist-mini from Debian's dataset-fashion-mnist (Zalando, MIT licence):
400 training images of class 1 (Trouser) and a test set of 100 trousers and 100 others (about
11 of each other class), as gzipped IDX files, the format `--idx-dir` reads. Deterministic."""
import gzip
import os
import struct

SRC = "/usr/share/datasets/fashion-mnist"
DST = os.path.join(os.path.dirname(__file__), "..", "assets", "fashion-mnist-mini")
CLASS = 1


def read(name):
    with gzip.open(os.path.join(SRC, name)) as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return dims, data[4 + 4 * ndim :]


def write(name, dims, body):
    head = bytes([0, 0, 8, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims)
    with gzip.GzipFile(os.path.join(DST, name), "wb", mtime=0) as f:
        f.write(head + body)


def pick(split, keep):
    (n, h, w), images = read(f"{split}-images-idx3-ubyte.gz")
    _, labels = read(f"{split}-labels-idx1-ubyte.gz")
    idx = keep(labels)
    write(f"{split}-images-idx3-ubyte.gz", (len(idx), h, w), b"".join(images[i * h * w : (i + 1) * h * w] for i in idx))
    write(f"{split}-labels-idx1-ubyte.gz", (len(idx),), bytes(labels[i] for i in idx))


os.makedirs(DST, exist_ok=True)
pick("train", lambda l: [i for i in range(len(l)) if l[i] == CLASS][:400])


def test_pick(l):
    normal = [i for i in range(len(l)) if l[i] == CLASS][:100]
    others = []
    for c in range(10):
        if c != CLASS:
            others += [i for i in range(len(l)) if l[i] == c][:12]
    return sorted(normal + others[:100])


pick("t10k", test_pick)
