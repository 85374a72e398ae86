#!/usr/bin/env python3
"""Writes the PyTorch reference values that Tests/NNTests/RecipeTests.swift checks ollie's
optimizers and training loss against: Tests/NNTests/Fixtures/optimizers.json and
Tests/NNTests/Fixtures/loss-recipes.json.

    .venv-onnx/bin/python scripts/optimizer_fixtures.py   # any Python with torch ≥ 1.10

optimizers.json: for each case (an optimizer kind as ollie names it, its torch.optim class and
arguments), two float32 parameters (a weight [3, 4] and a bias [3]) start from fixed values and
take `steps` steps, each with the gradients given for that step; the file holds the start
values, every step's gradients and the parameters after each step. The learning rate and
weight decay are float32 values (as ollie holds them) passed to torch as Python floats.

loss-recipes.json: logits [N, K] and labels, and for each case (label smoothing ε, class
weights or none) torch.nn.CrossEntropyLoss(weight=w, label_smoothing=ε)'s mean loss and its
gradient with respect to the logits, computed in float64 from the same float32 values.
"""
import json
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'Tests', 'NNTests', 'Fixtures')


def flat(t):
    return [float('%.9g' % v) for v in t.detach().reshape(-1).tolist()]


def f32(x):
    return float(np.float32(x))


def optimizer_cases():
    lr = f32(0.01)
    return [
        ('adam', torch.optim.Adam, dict(lr=lr), 0.0),
        ('adam', torch.optim.Adam, dict(lr=lr, weight_decay=f32(0.1)), f32(0.1)),
        ('adamw', torch.optim.AdamW, dict(lr=lr, weight_decay=f32(0.01)), f32(0.01)),
        ('adamw', torch.optim.AdamW, dict(lr=lr, weight_decay=f32(0.5)), f32(0.5)),
        ('sgd', torch.optim.SGD, dict(lr=f32(0.1), weight_decay=f32(0.05)), f32(0.05)),
        ('momentum', torch.optim.SGD, dict(lr=f32(0.1), momentum=f32(0.9), weight_decay=f32(0.05)), f32(0.05)),
        ('nesterov', torch.optim.SGD, dict(lr=f32(0.1), momentum=f32(0.9), nesterov=True), 0.0),
        ('nesterov', torch.optim.SGD, dict(lr=f32(0.1), momentum=f32(0.9), nesterov=True, weight_decay=f32(0.05)), f32(0.05)),
        ('rmsprop', torch.optim.RMSprop, dict(lr=lr), 0.0),
        ('rmsprop', torch.optim.RMSprop, dict(lr=lr, weight_decay=f32(0.1)), f32(0.1)),
    ]


def make_optimizers():
    g = torch.Generator().manual_seed(21)
    steps = 4
    w0 = torch.randn(3, 4, generator=g)
    b0 = torch.randn(3, generator=g)
    grads = [(torch.randn(3, 4, generator=g), torch.randn(3, generator=g)) for _ in range(steps)]
    cases = []
    for kind, cls, args, wd in optimizer_cases():
        w = torch.nn.Parameter(w0.clone())
        b = torch.nn.Parameter(b0.clone())
        opt = cls([w, b], **args)
        after = []
        for gw, gb in grads:
            w.grad = gw.clone()
            b.grad = gb.clone()
            opt.step()
            after.append({'weight': flat(w), 'bias': flat(b)})
        cases.append({'kind': kind, 'learningRate': args['lr'], 'weightDecay': wd, 'after': after})
    return {
        'torch': torch.__version__,
        'weight': flat(w0), 'bias': flat(b0),
        'gradients': [{'weight': flat(gw), 'bias': flat(gb)} for gw, gb in grads],
        'cases': cases,
    }


def make_loss():
    g = torch.Generator().manual_seed(7)
    n, k = 6, 4
    logits = (torch.randn(n, k, generator=g) * 2).float()
    labels = torch.tensor([0, 1, 2, 3, 1, 1])
    cases = []
    for smoothing, weights in [(0.1, None), (0.0, [1.0, 2.0, 0.5, 3.0]), (0.2, [1.0, 2.0, 0.5, 3.0]),
                               (0.0, None)]:
        z = logits.double().clone().requires_grad_(True)
        w = None if weights is None else torch.tensor(weights, dtype=torch.float64)
        loss = torch.nn.CrossEntropyLoss(weight=w, label_smoothing=smoothing)(z, labels)
        loss.backward()
        cases.append({'smoothing': smoothing, 'weights': weights, 'loss': float(loss.detach()), 'gradient': flat(z.grad)})
    return {'torch': torch.__version__, 'N': n, 'K': k, 'logits': flat(logits), 'labels': labels.tolist(), 'cases': cases}


if __name__ == '__main__':
    for name, data in [('optimizers.json', make_optimizers()), ('loss-recipes.json', make_loss())]:
        with open(os.path.join(OUT, name), 'w') as f:
            json.dump(data, f, separators=(',', ':'))
            f.write('\n')
        print('wrote', name)
