#!/bin/sh
# The texture benchmark (examples/make_textures.rs): fetches three CC0 texture photographs from
# scikit-image's wheel on PyPI (scripts/skimage_photos.sh: brick, grass, gravel) and cuts the
# benchmark from them into OUT_DIR (default: textures).
#   scripts/make_textures.sh [OUT_DIR]
set -eu
cd "$(dirname "$0")/.."
out=${1:-textures}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/skimage_photos.sh "$tmp" brick.png grass.png gravel.png
cargo run --release --example make_textures -- "$tmp" "$out"
