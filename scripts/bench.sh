#!/usr/bin/env bash
# Side-by-side timing of the reference convnet: ollie, then the PyTorch and TensorFlow peers
# from ../shared/peers when present, alternating, in one shell session (absolute times drift on
# shared machines; compare ratios). Usage: scripts/bench.sh [EPOCHS] [ROUNDS]
# TensorFlow runs from the Python in $TF_PYTHON (default /tmp/tfenv/bin/python), made with
#   python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu
# PyTorch from Debian's python3-torch (apt-get install python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-3}
rounds=${2:-2}
data=${OLLIE_DATA_PATH:-../shared/datasets}
tf_python=${TF_PYTHON:-/tmp/tfenv/bin/python}
swift build -c release --product ollie-bench >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%Y-%m-%d)"
for round in $(seq "$rounds"); do
    echo "== round $round: ollie"
    OLLIE_DATA_PATH=$data .build/release/ollie-bench --epochs "$epochs" --threads 2
    OLLIE_DATA_PATH=$data .build/release/ollie-bench --epochs 1 --threads 1 | grep -E "epoch  1"
    if [ -f ../shared/peers/torch_conv.py ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then
        echo "== round $round: PyTorch (2 threads)"
        /usr/bin/python3 ../shared/peers/torch_conv.py "$data/mnist" "$epochs" 2
    fi
    if [ -x "$tf_python" ] && [ -f ../shared/peers/tf_conv.py ]; then
        echo "== round $round: TensorFlow"
        "$tf_python" ../shared/peers/tf_conv.py "$data/mnist" "$epochs" 2>/dev/null
    fi
done
