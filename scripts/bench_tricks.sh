#!/usr/bin/env bash
# Issue 10's benchmark: the 3-D net on 16×32×32 gray clips, batch 16, 2 threads, ollie and
# PyTorch 1.13's nn.Conv3d (and TensorFlow's Conv3D when $TF_PYTHON, default /tmp/tfenv/bin/python,
# runs) alternating, ROUNDS rounds of EPOCHS epochs each, on the same clips (the peers read them
# from ollie's decoded cache, so all see the same inputs).
# Usage: bash scripts/bench_tricks.sh DIR [ROUNDS] [EPOCHS]   (DIR from scripts/make_tricks.py)
set -euo pipefail
tf_python=${TF_PYTHON:-/tmp/tfenv/bin/python}
dir=${1:?usage: bash scripts/bench_tricks.sh DIR [ROUNDS] [EPOCHS]}
rounds=${2:-3}
epochs=${3:-3}
spec="conv 3x3x3 16 relu | pool 1x2x2 | conv 3x3x3 32 relu | pool 2 | conv 3x3x3 32 relu | pool 2 | gap | dense 5"
cd "$(dirname "$0")/.."
swift build -c release --product ollie-bench >/dev/null
bench=.build/release/ollie-bench
# The first run decodes the clips into the cache; find that entry for PyTorch.
$bench --videos "$dir" --frames 16 --size 32 --spec "$spec" --batch 16 --lr 1e-3 --epochs 0 >/dev/null
cache=$(python3 - "$dir" <<'PY'
import json, os, struct, sys
folder = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "ollie", "decoded")
best = None
for name in os.listdir(folder):
    path = os.path.join(folder, name)
    with open(path, "rb") as f:
        if f.read(8) != b"OLLIEDC1":
            continue
        h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    if os.path.abspath(h["source"]) == os.path.abspath(sys.argv[1]) and h.get("frames") == 16 and h["height"] == 32:
        if best is None or os.path.getmtime(path) > os.path.getmtime(best):
            best = path
print(best)
PY
)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; clips: $cache"
for round in $(seq "$rounds"); do
    echo "== round $round: ollie"
    $bench --videos "$dir" --frames 16 --size 32 --spec "$spec" --batch 16 --lr 1e-3 --epochs "$epochs" --threads 2 \
        | grep -E "^epoch|test pass|epoch seconds"
    echo "== round $round: PyTorch"
    /usr/bin/python3 scripts/torch_video_bench.py "$cache" "$spec" "$epochs" 16 32 1e-3 0.1 | grep -E "^epoch|PyTorch"
    if [ -x "$tf_python" ]; then
        echo "== round $round: TensorFlow"
        "$tf_python" scripts/tf_video_bench.py "$cache" "$epochs" 1e-3 0.1 2>/dev/null | grep -E "^epoch|TensorFlow"
    fi
done
