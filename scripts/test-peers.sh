#!/usr/bin/env bash
# The peers some tests talk to: Debian's PyTorch (python3-torch, for /usr/bin/python3), which
# loads ollie's checkpoints through scripts/pytorch_check.py; and, from PyPI into a venv of
# their own (.venv-peers, git-ignored), a real MLflow tracking server for the `export mlflow` /
# `set mlflow` tests. Idempotent: what is already installed is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c "import torch, numpy" 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-torch python3-numpy
fi
# The ONNX peers, from PyPI into .venv-onnx (git-ignored): PyTorch and torchvision export the
# models the import tests read (torch.onnx), onnxruntime runs what ollie exports. About 3
# minutes and 6 GB the first time (PyPI's torch wheel brings CUDA libraries it never uses here).
ONNX_PEERS="torch==2.15.0 torchvision==0.29.2 onnx==1.23.2 onnxruntime==1.32.0 onnxscript==0.7.2"
if ! [ -x .venv-onnx/bin/python ] || ! .venv-onnx/bin/python -c "import torch, torchvision, onnx, onnxruntime, onnxscript" 2>/dev/null; then
    if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
        sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv
    fi
    rm -rf .venv-onnx
    python3 -m venv .venv-onnx
    # shellcheck disable=SC2086
    .venv-onnx/bin/pip install --quiet --disable-pip-version-check $ONNX_PEERS numpy
fi
MLFLOW_VERSION=3.17.2
VENV=.venv-peers
if [ -x "$VENV/bin/mlflow" ] && "$VENV/bin/python" -c "import mlflow, sys; sys.exit(mlflow.__version__ != '$MLFLOW_VERSION')" 2>/dev/null; then
    echo "mlflow $MLFLOW_VERSION already in $VENV"
    exit 0
fi
# Debian's own python3 makes venvs only with python3-venv installed.
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv
fi
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION"
"$VENV/bin/mlflow" --version
