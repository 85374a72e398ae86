#!/usr/bin/env bash
# Builds scripts/kernel-test.c with the kernels of Sources/CBLAS (plain cc, no Swift, seconds)
# and runs it: every kernel of every set this CPU runs against the portable set and naive
# references. Also checks that OLLIE_KERNELS picks the set it names and refuses, in one line,
# one it cannot run. Arguments go to the driver (set names: only those sets).
# With --arm64: cross-compiles the same driver for aarch64 (gcc-aarch64-linux-gnu, static) and
# runs it under qemu-aarch64, which tests the portable and neon sets there.
set -euo pipefail
cd "$(dirname "$0")/.."
# A folder of its own: two runs at once (CI's and a developer's) must not build over each other.
work=$(mktemp -d "${TMPDIR:-/tmp}/ollie-kernel-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
out="$work/ollie-kernel-test"
sources=(scripts/kernel-test.c Sources/CBLAS/*.c)
if [ "${1:-}" = "--arm64" ]; then
    shift
    # (ollie_blas.c dlopens OpenBLAS; the driver never calls it, so the static-dlopen warning is filtered.)
    aarch64-linux-gnu-gcc -std=gnu11 -O2 -ffp-contract=off -Wall -Wextra -Werror -static -ISources/CBLAS/include -o "$out-arm64" "${sources[@]}" -lm -lpthread -ldl 2>&1 | { grep -v "dlopen\|in function .load." || true; } >&2
    qemu-aarch64 "$out-arm64" "$@"
    exit 0
fi
cc -std=gnu11 -O2 -ffp-contract=off -Wall -Wextra -Werror -ISources/CBLAS/include -o "$out" "${sources[@]}" -lm -lpthread -ldl
"$out" "$@"
# The choice: the best set by default, the named one when it runs, a one-line error otherwise.
best=$(OLLIE_KERNELS= "$out" --chosen)
[ "$(OLLIE_KERNELS=portable "$out" --chosen)" = portable ] || { echo "OLLIE_KERNELS=portable not chosen" >&2; exit 1; }
if OLLIE_KERNELS=bogus "$out" --chosen >"$out.choice" 2>&1; then
    echo "OLLIE_KERNELS=bogus was accepted" >&2; exit 1
fi
[ "$(wc -l <"$out.choice")" -eq 1 ] || { echo "OLLIE_KERNELS=bogus: not a one-line error" >&2; exit 1; }
echo "kernel choice: $best by default; OLLIE_KERNELS=bogus → $(cat "$out.choice")"
