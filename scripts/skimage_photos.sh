#!/bin/sh
# Fetches photographs that scikit-image ships in its wheel (skimage/data) from PyPI into DIR and
# checks each against its SHA-256 (those of skimage/data/_registry.py, scikit-image 0.26.0).
# Licences, as skimage/data/_fetchers.py states them: brick (CC0Textures "Bricks25"), grass
# ("Grass 01" by linolafett), gravel (CC0Textures "Gravel04"), coffee (Rachel Michetti), camera
# (Lav Varshney), chelsea (Stefan van der Walt): CC0; rocket (SpaceX): public domain.
#   scripts/skimage_photos.sh DIR NAME...      e.g. scripts/skimage_photos.sh /tmp/p brick.png
set -eu
dir=$1
shift
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_28_x86_64 scikit-image==0.26.0 -d "$tmp"
python3 - "$tmp" "$dir" "$@" <<'PY'
import glob, hashlib, os, sys, zipfile
tmp, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
sums = {
    "brick.png": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    "grass.png": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    "gravel.png": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
}
wheel = glob.glob(os.path.join(tmp, "scikit_image-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for n in names:
        data = z.read("skimage/data/" + n)
        if hashlib.sha256(data).hexdigest() != sums[n]:
            sys.exit("%s: checksum differs from the expected one" % n)
        with open(os.path.join(out, n), "wb") as f:
            f.write(data)
PY
