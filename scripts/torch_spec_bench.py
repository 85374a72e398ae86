#!/usr/bin/env python3
"""The same training run as `ollie-bench --spec SPEC` in PyTorch, for side-by-side timing: the
spec written as an nn.Sequential (as scripts/pytorch_check.py does), MNIST decoded once, batch
128, Adam 3e-3, N(0, 0.1²) input noise, dataset order, Glorot-uniform weights and zero biases.
Usage: /usr/bin/python3 scripts/torch_spec_bench.py SPEC [MNIST_DIR] [EPOCHS] [THREADS]
"""
import os, sys, time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_check import find, read_idx  # noqa: E402
import pytorch_check  # noqa: E402


def build(spec):
    """The spec's nn.Sequential for 1×28×28 images."""
    return pytorch_check.build(spec, (1, 28, 28))


def main():
    spec = sys.argv[1]
    folder = sys.argv[2] if len(sys.argv) > 2 else "../shared/datasets/mnist"
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    torch.manual_seed(0)
    xtr = torch.from_numpy(read_idx(find(folder, "train-images-idx3-ubyte")).astype(np.float32) / 255).unsqueeze(1)
    ytr = torch.from_numpy(read_idx(find(folder, "train-labels-idx1-ubyte")).astype(np.int64))
    xte = torch.from_numpy(read_idx(find(folder, "t10k-images-idx3-ubyte")).astype(np.float32) / 255).unsqueeze(1)
    yte = torch.from_numpy(read_idx(find(folder, "t10k-labels-idx1-ubyte")).astype(np.int64))
    model = build(spec)
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads: {spec}", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(1, epochs + 1):
        model.train()
        t = time.time()
        for i in range(0, len(xtr), 128):
            x = xtr[i:i + 128]
            x = x + 0.1 * torch.randn_like(x)
            loss = F.cross_entropy(model(x), ytr[i:i + 128])
            opt.zero_grad()
            loss.backward()
            opt.step()
        seconds = time.time() - t
        model.eval()
        with torch.no_grad():
            accuracy = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch}: train {seconds:.2f}s ({len(xtr) / seconds:.0f} img/s), accuracy {accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
