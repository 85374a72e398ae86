#!/usr/bin/env bash
# Installs the C libraries ollie builds against (Debian/Ubuntu). Safe to run again.
set -euo pipefail
packages=(libopenblas-dev zlib1g-dev libreadline-dev libsqlite3-dev sqlite3 tmux libpng-dev libjpeg62-turbo-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
          libopenmpi-dev openmpi-bin iproute2    # Open MPI (optional at run time) and ip netns for its tests
          gcc-aarch64-linux-gnu qemu-user)       # the arm64 kernel tests (scripts/kernel-test.sh --arm64)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
