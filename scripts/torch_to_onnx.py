#!/usr/bin/env python3
"""Exports PyTorch models to ONNX with N random inputs and onnxruntime's outputs beside them, for
ollie's ONNX import tests (Tests/ONNXTests/ONNXImportTests.swift).

    torch_to_onnx.py MODEL[,MODEL…] FOLDER [--inputs 32] [--seed 0] [--size 64] [--keep-batchnorm]

MODEL: resnet18, mobilenet_v2 (torchvision, weights=None), convbn, resproj, resproj_bn,
resmixed, lstm, bilstm, gru, bigru, stacked. FOLDER (FOLDER/MODEL for each of several, exported in one
process: importing torch takes longer than an export) gets model.onnx, inputs.bin and
outputs.bin (raw little-endian float32, the batch first), torch.bin (torch's own logits) and shapes.json ({"input": [N, ...],
"output": [N, classes]}).

The classic TorchScript exporter (dynamo=False, opset 17): in eval mode it folds each
BatchNormalization into the Conv before it and writes plain Conv/Relu/Add/MaxPool/Gemm nodes,
and nn.LSTM/nn.GRU as one LSTM/GRU node, which is the graph ollie imports. --keep-batchnorm (and
the models resproj_bn, resmixed) turns constant folding off, so BatchNormalization nodes stay.
The batch dimension is symbolic ("batch"). Weights are random (seeded, the same for a model
whatever else is exported with it); every BatchNorm gets random affine parameters and running
statistics measured on random batches, so folding them is tested on values that are not 0 and
1; the last linear layer is scaled so the logits vary by about 1.
"""
import argparse
import json
import os

import numpy as np
import torch
from torch import nn


class ConvBN(nn.Module):
    """A small convnet with batchnorm: the one after a conv torch folds into it, the one after
    the pool stays a BatchNormalization node."""

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
    when the shape changes. Either batchnorm may be left out (body_bn, shortcut_bn) and given
    another ε, for the shortcuts ollie must fill in or fold."""

    def __init__(self, cin, cout, stride, body_bn=True, shortcut_bn=True, eps=1e-5):
        super().__init__()
        norm = (lambda c: nn.BatchNorm2d(c, eps=eps)) if body_bn else (lambda c: nn.Identity())
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=not body_bn), norm(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=not body_bn), norm(cout))
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=not shortcut_bn),
                                          nn.BatchNorm2d(cout, eps=eps) if shortcut_bn else nn.Identity())

    def forward(self, x):
        s = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(self.body(x) + s)


class ResProj(nn.Module):
    """Residual blocks; `mixed`: one whose shortcut has a batchnorm and body none, one the other
    way round, one with ε = 1e-3 (export them with --keep-batchnorm)."""

    def __init__(self, classes=10, mixed=False):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        if mixed:
            self.blocks = nn.Sequential(Block(8, 8, 1, eps=1e-3), Block(8, 16, 2, body_bn=False),
                                        Block(16, 32, 2, shortcut_bn=False), Block(32, 32, 1))
        else:
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


class Stacked(nn.Module):
    """A bidirectional LSTM whose every step feeds a GRU (ollie: lstm H bi seq | gru H)."""

    def __init__(self, features=12, hidden=16, classes=5):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(2 * hidden, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.lstm(x)
        _, h = self.gru(out)
        return self.fc(h[-1])


def build(name, size):
    import torchvision
    if name == "resnet18":
        return torchvision.models.resnet18(weights=None), (3, size, size)
    if name == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(weights=None), (3, size, size)
    if name == "convbn":
        return ConvBN(), (3, 32, 32)
    if name in ("resproj", "resproj_bn"):
        return ResProj(), (3, 32, 32)
    if name == "resmixed":
        return ResProj(mixed=True), (3, 32, 32)
    if name == "stacked":
        return Stacked(), (9, 12)
    if name in ("lstm", "bilstm", "gru", "bigru"):
        return Recurrent(name.removeprefix("bi"), name.startswith("bi")), (9, 12)
    raise SystemExit(f"unknown model {name}; known: resnet18, mobilenet_v2, convbn, resproj, resproj_bn, resmixed, lstm, bilstm, gru, bigru, stacked")


def randomize_batchnorms(model, shape, generator):
    """Random affine parameters, then running statistics measured on random batches (the
    mean over them, in train mode): with statistics that fit its activations, a deep random
    network's logits still depend on its input (with made-up ones mobilenet_v2's do not)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for module in norms:
        c = module.num_features
        module.weight.data.copy_(torch.rand(c, generator=generator) + 0.5)
        module.bias.data.copy_(torch.randn(c, generator=generator) * 0.2)
        module.reset_running_stats()
        module.momentum = None
    model.train()
    for _ in range(4):
        model(torch.randn(16, *shape, generator=generator))


def spread_logits(model, shape, generator):
    """Scales the last linear layer so the logits vary by about 1 from input to input (a random
    small net's vary by 0.01) around 0: a 1e-4 tolerance on them then means something, and
    argmax differs between inputs."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    model.eval()
    spread = model(torch.randn(64, *shape, generator=generator)).std(0).mean().item()
    last.weight.data.mul_(1 / max(spread, 1e-6))
    last.bias.data.sub_(model(torch.randn(64, *shape, generator=generator)).mean(0))


def export(name, folder, args):
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    model, shape = build(name, args.size)
    with torch.no_grad():
        randomize_batchnorms(model, shape, generator)
        spread_logits(model, shape, generator)
    model.eval()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.onnx")
    example = torch.randn(2, *shape, generator=generator)
    keep = args.keep_batchnorm or name in ("resproj_bn", "resmixed")
    torch.onnx.export(model, (example,), path, dynamo=False, opset_version=17, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=not keep)
    import onnxruntime
    inputs = torch.randn(args.inputs, *shape, generator=generator).numpy().astype("<f4")
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"input": inputs})[0].astype("<f4")
    with torch.no_grad():
        reference = model(torch.from_numpy(inputs)).numpy()
    # onnxruntime runs the graph ollie reads; it must agree with the module it came from.
    assert np.abs(reference - outputs).max() < 1e-3, np.abs(reference - outputs).max()
    print(f"{name}: onnxruntime vs torch: max abs difference {np.abs(reference - outputs).max():.3g}")
    inputs.tofile(os.path.join(folder, "inputs.bin"))
    outputs.tofile(os.path.join(folder, "outputs.bin"))
    # torch's own logits: how far the two references are apart bounds what a third can match.
    reference.astype("<f4").tofile(os.path.join(folder, "torch.bin"))
    with open(os.path.join(folder, "shapes.json"), "w") as f:
        json.dump({"input": list(inputs.shape), "output": list(outputs.shape)}, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", help="one model, or several separated by commas")
    parser.add_argument("folder")
    parser.add_argument("--inputs", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=64, help="image side for resnet18 and mobilenet_v2")
    parser.add_argument("--keep-batchnorm", action="store_true",
                        help="no constant folding: BatchNormalization nodes stay instead of folding into the convs")
    args = parser.parse_args()
    names = args.models.split(",")
    for name in names:
        export(name, args.folder if len(names) == 1 else os.path.join(args.folder, name), args)


if __name__ == "__main__":
    main()
