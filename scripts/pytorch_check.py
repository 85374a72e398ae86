#!/usr/bin/env python3
"""Loads an ollie checkpoint into the same network written in PyTorch and tests it on MNIST.

ollie's checkpoints are safetensors files with PyTorch's names and layouts, so this only
renames the keys (conv1.weight → the first Conv2d's weight, ...) and calls load_state_dict.
Usage: scripts/pytorch_check.py CHECKPOINT [MNIST_DIR]   (default ../shared/datasets/mnist)
Needs PyTorch (Debian: apt-get install python3-torch); reads safetensors without the package.
"""
import gzip, json, os, struct, sys

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    tensors = {}
    for name, entry in header.items():
        assert entry["dtype"] == "F32", f"{name}: {entry['dtype']}"
        begin, end = entry["data_offsets"]
        tensors[name] = torch.from_numpy(np.frombuffer(data[begin:end], dtype="<f4").copy()).reshape(entry["shape"])
    return tensors


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return np.frombuffer(raw[4 + 4 * dims:], dtype=np.uint8).reshape(shape)


def find(folder, stem):
    for name in (stem + ".gz", stem):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    sys.exit(f"no {stem} in {folder}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    checkpoint = sys.argv[1]
    folder = sys.argv[2] if len(sys.argv) > 2 else "../shared/datasets/mnist"
    # conv.jl's network, as PyTorch writes it.
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(288, 10))
    saved = read_safetensors(checkpoint)
    rename = {"conv1": "0", "conv2": "3", "conv3": "6", "fc": "10"}
    state = {rename[k.split(".")[0]] + "." + k.split(".")[1]: v
             for k, v in saved.items() if not k.startswith("optimizer.")}
    net.load_state_dict(state)   # strict: every key, every shape
    images = torch.from_numpy(read_idx(find(folder, "t10k-images-idx3-ubyte")).astype(np.float32) / 255).unsqueeze(1)
    labels = torch.from_numpy(read_idx(find(folder, "t10k-labels-idx1-ubyte")).astype(np.int64))
    with torch.no_grad():
        predicted = torch.cat([net(images[i:i + 1000]).argmax(1) for i in range(0, len(images), 1000)])
    correct = int((predicted == labels).sum())
    print(f"PyTorch {torch.__version__}, {checkpoint}: test accuracy {correct / len(labels):.4f} ({correct}/{len(labels)})")


if __name__ == "__main__":
    main()
