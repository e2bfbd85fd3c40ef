#!/bin/sh
# Quick start on a fresh Debian/Ubuntu machine with Rust: install the Vulkan loader and Mesa's
# software driver (lavapipe) unless they are there, then build lamp and run its demo.
set -e
cd "$(dirname "$0")/.."
if ! dpkg -s mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mesa-vulkan-drivers libvulkan1
fi
exec cargo run --release -- demo "$@"
