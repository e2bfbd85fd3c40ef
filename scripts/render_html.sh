#!/bin/bash
# Renders an HTML report (lamp eval's or lamp experiment's report.html) in headless Chromium to a
# PNG screenshot, the way a person would see it in a browser:
#   scripts/render_html.sh eval-out/report.html report.png [WIDTH [HEIGHT]]
# Needs Debian's chromium (apt-get install chromium). The page must need nothing from a network:
# Chromium runs with networking features off, in a fresh profile.
set -euo pipefail
page="${1:?usage: render_html.sh PAGE.html OUT.png [WIDTH [HEIGHT]]}"
out="${2:?usage: render_html.sh PAGE.html OUT.png [WIDTH [HEIGHT]]}"
width="${3:-1280}"
height="${4:-2400}"
browser="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$browser" ]; then
    echo "render_html.sh: no chromium on PATH (apt-get install chromium)" >&2
    exit 2
fi
[ -f "$page" ] || { echo "render_html.sh: $page: no such file" >&2; exit 2; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
abs="$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
# The page's path as a URL: %, #, ? and spaces escaped.
url="file://$(printf '%s' "$abs" | sed -e 's/%/%25/g' -e 's/#/%23/g' -e 's/?/%3F/g' -e 's/ /%20/g')"
out_abs="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
# --no-sandbox only as root (CI), where Chromium's sandbox cannot start.
sandbox=()
[ "$(id -u)" -eq 0 ] && sandbox=(--no-sandbox)
timeout 120 "$browser" --headless "${sandbox[@]}" --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --window-size="$width,$height" \
    --screenshot="$out_abs" "$url" >/dev/null 2>"$profile/stderr" || {
    cat "$profile/stderr" >&2
    exit 1
}
[ -s "$out_abs" ] || { echo "render_html.sh: Chromium wrote no screenshot" >&2; cat "$profile/stderr" >&2; exit 1; }
echo "$out"
