#!/usr/bin/env bash
# Builds scripts/kernel-bench.c with the kernels of Sources/CBLAS (clang, as SwiftPM builds
# them) and prints the reference net's kernel time per training step, layer by layer, for
# the set named (default: the one this CPU would choose). A benchmark: run it on a quiet
# machine, twice, and compare sets or commits side by side (BENCHMARKS.md says how).
set -euo pipefail
cd "$(dirname "$0")/.."
# A folder of its own: two runs at once (CI's and a developer's) must not build over each other.
work=$(mktemp -d "${TMPDIR:-/tmp}/ollie-kernel-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
out="$work/ollie-kernel-bench"
cc=$(command -v clang || command -v cc)
"$cc" -std=gnu11 -O2 -Wall -Wextra -Werror -ISources/CBLAS/include -o "$out" scripts/kernel-bench.c Sources/CBLAS/*.c -lm -lpthread -ldl
"$out" "$@"
