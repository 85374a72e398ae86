#!/usr/bin/env python3
"""Exports a PyTorch model to ONNX with N random inputs and onnxruntime's outputs beside it, for
ollie's ONNX import tests (Tests/ONNXTests/ONNXImportTests.swift).

    torch_to_onnx.py MODEL FOLDER [--inputs 32] [--seed 0] [--size 64]

MODEL: resnet18, mobilenet_v2 (torchvision, weights=None), convbn, resproj, lstm, bilstm, gru,
bigru. FOLDER gets model.onnx, inputs.bin and outputs.bin (raw little-endian float32, the batch
first) and shapes.json ({"input": [N, ...], "output": [N, classes]}).

The classic TorchScript exporter (dynamo=False, opset 17): in eval mode it folds each
BatchNormalization into the Conv before it and writes plain Conv/Relu/Add/MaxPool/Gemm nodes,
and nn.LSTM/nn.GRU as one LSTM/GRU node, which is the graph ollie imports. The batch dimension
is symbolic ("batch"). Weights are random (seeded) and every BatchNorm gets random running
statistics and affine parameters, so folding them is tested on values that are not 0 and 1.
"""
import argparse
import json
import os

import numpy as np
import torch
from torch import nn


class ConvBN(nn.Module):
    """A small convnet with batchnorm (unfolded here: exported in training=TRAINING? no, eval;
    torch folds it, so one BatchNormalization is kept standalone after a pooling layer)."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(8),  # after a pool: nothing to fold into, a batchnorm of its own
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.LeakyReLU(0.01),
            nn.Conv2d(16, 16, 5, padding=2), nn.Tanh(),
            nn.AvgPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16 * 4 * 4, 32), nn.Sigmoid(),
                                        nn.Linear(32, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class Block(nn.Module):
    """A residual block; a projection shortcut (1×1 conv with the body's stride, then batchnorm)
    when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        s = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(self.body(x) + s)


class ResProj(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.blocks = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2), Block(16, 32, 2), Block(32, 32, 1))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class Recurrent(nn.Module):
    """A classifier over sequences [N, T, F]: the recurrent layer's last state (both directions'
    when bidirectional, as h_n), then a linear layer."""

    def __init__(self, kind, bidirectional, features=12, hidden=16, classes=5):
        super().__init__()
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(features, hidden, batch_first=True,
                                                            bidirectional=bidirectional)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), classes)

    def forward(self, x):
        _, h = self.rnn(x)
        if isinstance(h, tuple):
            h = h[0]
        return self.fc(h.transpose(0, 1).flatten(1))   # [D, N, H] → [N, D·H]


def build(name):
    import torchvision
    if name == "resnet18":
        return torchvision.models.resnet18(weights=None), (3, SIZE, SIZE)
    if name == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(weights=None), (3, SIZE, SIZE)
    if name == "convbn":
        return ConvBN(), (3, 32, 32)
    if name == "resproj":
        return ResProj(), (3, 32, 32)
    if name in ("lstm", "bilstm", "gru", "bigru"):
        return Recurrent(name.removeprefix("bi"), name.startswith("bi")), (9, 12)
    raise SystemExit(f"unknown model {name}; known: resnet18, mobilenet_v2, convbn, resproj, lstm, bilstm, gru, bigru")


def randomize_batchnorms(model, generator):
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=generator) * 0.2)
            module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(c, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(c, generator=generator) * 0.2)


def main():
    global SIZE
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("folder")
    parser.add_argument("--inputs", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=64, help="image side for resnet18 and mobilenet_v2")
    args = parser.parse_args()
    SIZE = args.size
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    model, shape = build(args.model)
    with torch.no_grad():
        randomize_batchnorms(model, generator)
    model.eval()
    os.makedirs(args.folder, exist_ok=True)
    path = os.path.join(args.folder, "model.onnx")
    example = torch.randn(2, *shape, generator=generator)
    torch.onnx.export(model, (example,), path, dynamo=False, opset_version=17, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    import onnxruntime
    inputs = torch.randn(args.inputs, *shape, generator=generator).numpy().astype("<f4")
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"input": inputs})[0].astype("<f4")
    with torch.no_grad():
        reference = model(torch.from_numpy(inputs)).numpy()
    # onnxruntime runs the graph ollie reads; it must agree with the module it came from.
    assert np.abs(reference - outputs).max() < 1e-3, np.abs(reference - outputs).max()
    inputs.tofile(os.path.join(args.folder, "inputs.bin"))
    outputs.tofile(os.path.join(args.folder, "outputs.bin"))
    with open(os.path.join(args.folder, "shapes.json"), "w") as f:
        json.dump({"input": list(inputs.shape), "output": list(outputs.shape)}, f)


if __name__ == "__main__":
    main()
