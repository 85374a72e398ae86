#!/usr/bin/env python3
"""Writes the PyTorch reference values that Tests/NNTests/RecurrentTests.swift checks ollie's
sequence layers against: Tests/NNTests/Fixtures/{lstm,gru}{,-bidirectional}.json and attention-pool.json;
and those GroupedConvolutionTests.swift and PaddedPoolingTests.swift check grouped convolutions and
padded pooling against: conv-grouped.json, conv-depthwise-stride2.json, maxpool-padded.json,
avgpool-padded.json, avgpool-padded-3d.json.

    /usr/bin/python3 scripts/make_fixtures.py   # any Python with torch: Debian's python3-torch (1.13), or pip's

The committed files were written with torch 1.13.1 (python3-torch); torch 2.15 writes the same bytes.
The tests read them through Bundle.module (NNTests copies the Fixtures folder as a resource).

Each module is built in float32 from a fixed seed (its PyTorch default init), its weights and a
float32 input [N, T, F] are written out, and then it runs in float64 on those same values, so the
reference outputs and gradients carry no float32 rounding of their own. For L = Σ y ⊙ R with a
fixed random R, the file holds y, dL/dx and dL/d(every parameter): for a recurrent layer both with
y = the whole output sequence [N, T, D·H] and with y = the last states [N, D·H] (h_n of each
direction side by side: forward h_{T-1}, reverse h_0).

The convolution and pooling files hold one layer each, written as ollie's spec words ("spec") with
its input shape: x, y and dx in ollie's layout [C, N, D…] (PyTorch's is [N, C, D…]), the weight in
PyTorch's (the same as ollie's), for L = Σ y ⊙ R.
"""
import json
import os

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'Tests', 'NNTests', 'Fixtures')
N, T, F, H, A = 2, 4, 3, 5, 6


def flat(t):
    return [float('%.9g' % v) for v in t.detach().reshape(-1).tolist()]


class AttentionPool(nn.Module):
    """u_t = tanh(W h_t + b), score_t = v·u_t, α = softmax over t, y = Σ_t α_t h_t."""

    def __init__(self, features, size):
        super().__init__()
        self.proj = nn.Linear(features, size)
        self.score = nn.Linear(size, 1, bias=False)

    def forward(self, h):
        alpha = torch.softmax(self.score(torch.tanh(self.proj(h))).squeeze(-1), dim=1)
        return (alpha.unsqueeze(-1) * h).sum(dim=1)


def reference(module, x32, outputs):
    """Runs `module` in float64 on x32; for each (mode, y_of, R) the output, dL/dx and parameter grads."""
    module = module.double()
    result = {}
    for mode, y_of, r in outputs:
        x = x32.double().clone().requires_grad_(True)
        module.zero_grad()
        y = y_of(module, x)
        (y * r).sum().backward()
        result[mode] = dict(r=flat(r), y=flat(y), dx=flat(x.grad),
                            gradients={name: flat(p.grad) for name, p in module.named_parameters()})
    return result


def recurrent(kind, bidirectional, seed):
    torch.manual_seed(seed)
    module = (nn.LSTM if kind == 'lstm' else nn.GRU)(F, H, batch_first=True, bidirectional=bidirectional)
    x32 = torch.randn(N, T, F)
    d = 2 if bidirectional else 1
    r_sequence = torch.randn(N, T, d * H, dtype=torch.float64)
    r_last = torch.randn(N, d * H, dtype=torch.float64)

    def whole(m, x):
        return m(x)[0]

    def last(m, x):
        out, state = m(x)
        h_n = state[0] if kind == 'lstm' else state
        y = torch.cat(list(h_n), dim=1)
        # The last states are PyTorch's output at the step each direction read last.
        ends = [out[:, -1, :H]] + ([out[:, 0, H:]] if bidirectional else [])
        assert torch.allclose(y, torch.cat(ends, dim=1))
        return y

    fixture = dict(kind=kind, bidirectional=bidirectional, N=N, T=T, F=F, H=H,
                   order=[name for name, _ in module.named_parameters()],
                   parameters={name: flat(p) for name, p in module.named_parameters()}, x=flat(x32))
    fixture.update(reference(module, x32, [('sequence', whole, r_sequence), ('last', last, r_last)]))
    return fixture


def attention(seed):
    torch.manual_seed(seed)
    module = AttentionPool(F, A)
    x32 = torch.randn(N, T, F)
    r = torch.randn(N, F, dtype=torch.float64)
    fixture = dict(kind='attention', N=N, T=T, F=F, A=A,
                   order=[name for name, _ in module.named_parameters()],
                   parameters={name: flat(p) for name, p in module.named_parameters()}, x=flat(x32))
    fixture.update(reference(module, x32, [('pooled', lambda m, x: m(x), r)]))
    return fixture


def spatial(module, spec, x32, seed):
    """A convolution or pooling fixture: `module` run in float64 on x32 [N, C, D…], L = Σ y ⊙ R."""
    ollie = lambda t: t.transpose(0, 1)   # [N, C, D…] → ollie's [C, N, D…]
    y_shape = module(x32).shape
    torch.manual_seed(seed + 1000)
    r = torch.randn(*y_shape, dtype=torch.float64)
    fixture = dict(kind='spatial', spec=spec, input=list(ollie(x32).shape[:1]) + list(x32.shape[2:]),
                   x_shape=list(ollie(x32).shape), x=flat(ollie(x32)),
                   order=[name for name, _ in module.named_parameters()],
                   parameters={name: flat(p) for name, p in module.named_parameters()})
    module = module.double()
    x = x32.double().clone().requires_grad_(True)
    y = module(x)
    (y * r).sum().backward()
    fixture.update(y_shape=list(ollie(y).shape), r=flat(ollie(r)), y=flat(ollie(y)), dx=flat(ollie(x.grad)),
                   gradients={name: flat(p.grad) for name, p in module.named_parameters()})
    return fixture


def conv(spec, inputs, outputs, kernel, stride, padding, groups, shape, seed):
    torch.manual_seed(seed)
    module = nn.Conv2d(inputs, outputs, kernel, stride=stride, padding=padding, groups=groups)
    with torch.no_grad():
        module.bias.uniform_(-0.5, 0.5)   # PyTorch's init is small; make the bias show
    return spatial(module, spec, torch.randn(*shape), seed)


def pool(spec, module, shape, seed):
    torch.manual_seed(seed)
    return spatial(module, spec, torch.randn(*shape), seed)


def write(name, fixture):
    path = os.path.join(OUT, name)
    with open(path, 'w') as f:
        json.dump(fixture, f, separators=(',', ':'))
        f.write('\n')
    print(f'{os.path.relpath(path)}: {os.path.getsize(path)} bytes')


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    torch.set_grad_enabled(True)
    write('lstm.json', recurrent('lstm', False, 1))
    write('lstm-bidirectional.json', recurrent('lstm', True, 2))
    write('gru.json', recurrent('gru', False, 3))
    write('gru-bidirectional.json', recurrent('gru', True, 4))
    write('attention-pool.json', attention(5))
    # Grouped and depthwise convolutions (mobilenet_v2's), padded pooling (resnet18's stem).
    write('conv-grouped.json', conv('conv 3 6 groups 2', 4, 6, 3, 1, 1, 2, (2, 4, 7, 6), 6))
    write('conv-depthwise-stride2.json', conv('conv 3 8 stride 2 groups 8', 8, 8, 3, 2, 1, 8, (2, 8, 9, 8), 7))
    write('maxpool-padded.json', pool('pool 3 stride 2 pad 1', nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 9, 8), 8))
    write('avgpool-padded.json', pool('pool 3 stride 2 pad 1 avg',
                                      nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 9, 8), 9))
    write('avgpool-padded-3d.json', pool('pool 3 stride 2 pad 1 avg',
                                         nn.AvgPool3d(3, stride=2, padding=1, count_include_pad=False), (1, 2, 5, 6, 7), 10))
