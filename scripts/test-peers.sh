#!/usr/bin/env bash
# The peers some tests talk to: Debian's PyTorch (python3-torch, for /usr/bin/python3), which
# loads ollie's checkpoints through scripts/pytorch_check.py; and, from PyPI into a venv of
# their own (.venv-peers, git-ignored), a real MLflow tracking server for the `export mlflow` /
# `set mlflow` tests; then the ONNX peers (below). Idempotent: what is already installed is
# left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c "import torch, numpy" 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-torch python3-numpy
fi
# Debian's own python3 makes venvs only with python3-venv installed.
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv
fi
MLFLOW_VERSION=3.17.2
VENV=.venv-peers
if [ -x "$VENV/bin/mlflow" ] && "$VENV/bin/python" -c "import mlflow, sys; sys.exit(mlflow.__version__ != '$MLFLOW_VERSION')" 2>/dev/null; then
    echo "mlflow $MLFLOW_VERSION already in $VENV"
else
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "mlflow==$MLFLOW_VERSION"
    "$VENV/bin/mlflow" --version
fi
# The ONNX peers, from PyPI into .venv-onnx (git-ignored), in two steps. First onnx and
# onnxruntime (about 200 MB), which run what ollie exports. Then PyTorch and torchvision, which
# export the models the import tests read (torch.onnx) and check augmentation: about 3 minutes
# and 6 GB, plus as much again while pip unpacks (PyPI's torch wheel brings CUDA libraries it
# never uses here). pip keeps no cache copy of them (--no-cache-dir). On a machine with too
# little disk for torch, the reason goes to .venv-onnx/torch-skipped and the tests that need
# torch skip with it; every other test runs.
ONNX_PEERS="onnx==1.23.2 onnxruntime==1.32.0 onnxscript==0.7.2 numpy"
TORCH_PEERS="torch==2.15.0 torchvision==0.29.2"
TORCH_NEEDS_GB=12
pip_install() { .venv-onnx/bin/pip install --quiet --disable-pip-version-check --no-cache-dir "$@"; }
if ! [ -x .venv-onnx/bin/python ] || ! .venv-onnx/bin/python -c "import onnx, onnxruntime, onnxscript, numpy" 2>/dev/null; then
    rm -rf .venv-onnx
    python3 -m venv .venv-onnx
    # shellcheck disable=SC2086
    pip_install $ONNX_PEERS
fi
if ! .venv-onnx/bin/python -c "import torch, torchvision" 2>/dev/null; then
    # The least free space of the venv's disk and pip's temporary folder, in whole GB.
    free_gb=$(df -Pk . "${TMPDIR:-/tmp}" | awk 'NR > 1 && (min == "" || $4 < min) { min = $4 } END { print int(min / 1048576) }')
    if [ "$free_gb" -lt "$TORCH_NEEDS_GB" ]; then
        echo "torch peer skipped: $free_gb GB free, and torch from PyPI needs about $TORCH_NEEDS_GB GB to install" \
            | tee .venv-onnx/torch-skipped >&2
    else
        rm -f .venv-onnx/torch-skipped
        # shellcheck disable=SC2086
        pip_install $TORCH_PEERS
    fi
fi
