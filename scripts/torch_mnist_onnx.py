#!/usr/bin/env python3
"""Trains conv.jl's MNIST convnet in PyTorch, measures its test accuracy, and exports it to ONNX:
the other side of `build FILE.onnx` (a network trained elsewhere, scored in ollie on the same
test images: the accuracy should be PyTorch's, digit for digit).

Usage: scripts/torch_mnist_onnx.py OUT.onnx [MNIST_DIR] [--epochs 1] [--threads 2] [--seed 1]
Prints the test accuracy PyTorch measured (10k images, pixels in [0, 1] as ollie loads them).
Needs PyPI's torch with onnx/onnxscript (scripts/test-peers.sh puts them in .venv-onnx).
"""
import argparse, gzip, os, struct, time

import numpy as np
import torch
from torch import nn


def read_idx(folder, name):
    for path in (os.path.join(folder, name), os.path.join(folder, name + ".gz")):
        if os.path.exists(path):
            data = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
            dims = data[3]
            shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    raise SystemExit(f"no {name} in {folder}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("mnist", nargs="?", default=os.path.join(os.path.dirname(__file__), "../../shared/datasets/mnist"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    x = torch.from_numpy(read_idx(args.mnist, "train-images-idx3-ubyte").astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(read_idx(args.mnist, "train-labels-idx1-ubyte").astype(np.int64))
    tx = torch.from_numpy(read_idx(args.mnist, "t10k-images-idx3-ubyte").astype(np.float32) / 255).unsqueeze(1)
    ty = torch.from_numpy(read_idx(args.mnist, "t10k-labels-idx1-ubyte").astype(np.int64))
    # conv.jl: conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 10
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(288, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    started = time.time()
    for _ in range(args.epochs):
        model.train()
        for batch in torch.randperm(len(x)).split(128):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(tx[i:i + 1000]).argmax(1) == ty[i:i + 1000]).sum()) for i in range(0, len(tx), 1000))
    print(f"PyTorch {torch.__version__}: {args.epochs} epoch(s) in {time.time() - started:.1f} s, "
          f"test accuracy {correct / len(tx):.4f} ({correct}/{len(tx)})")
    torch.onnx.export(model, (tx[:1],), args.out, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=17, dynamo=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
