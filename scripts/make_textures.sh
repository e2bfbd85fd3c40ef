#!/bin/sh
# The texture benchmark (examples/make_textures.rs): fetches three CC0 texture photographs from
# scikit-image's wheel on PyPI (brick: CC0Textures "Bricks25"; grass: "Grass 01" by linolafett
# on DeviantArt; gravel: CC0Textures "Gravel04"; all CC0, as skimage/data/_fetchers.py says),
# checks them, and cuts the benchmark from them into OUT_DIR (default: textures).
#   scripts/make_textures.sh [OUT_DIR]
set -eu
cd "$(dirname "$0")/.."
out=${1:-textures}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_28_x86_64 scikit-image==0.26.0 -d "$tmp"
python3 - "$tmp" <<'PY'
import sys, zipfile, glob, os
tmp = sys.argv[1]
wheel = glob.glob(os.path.join(tmp, "scikit_image-*.whl"))[0]
os.makedirs(os.path.join(tmp, "photos"))
with zipfile.ZipFile(wheel) as z:
    for n in ("brick", "grass", "gravel"):
        with open(os.path.join(tmp, "photos", n + ".png"), "wb") as f:
            f.write(z.read("skimage/data/%s.png" % n))
PY
(cd "$tmp/photos" && sha256sum -c - <<'SUMS'
7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf  brick.png
b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89  grass.png
c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12  gravel.png
SUMS
)
cargo run --release --example make_textures -- "$tmp/photos" "$out"
