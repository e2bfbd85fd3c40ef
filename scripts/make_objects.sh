#!/bin/sh
# The object benchmark (examples/make_objects.rs): fetches photographs from scikit-image's wheel
# on PyPI (scripts/skimage_photos.sh: coffee and camera CC0, rocket public domain, chelsea CC0 for
# the foreign patches) and frames the benchmark from them into OUT_DIR (default: objects).
# REACH: how far the framings shift, in pixels at 64 px (default 2).
#   scripts/make_objects.sh [OUT_DIR [REACH]]
set -eu
cd "$(dirname "$0")/.."
out=${1:-objects}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/skimage_photos.sh "$tmp" coffee.png rocket.jpg camera.png chelsea.png
cargo run --release --example make_objects -- "$tmp" "$out" ${2:-2}
