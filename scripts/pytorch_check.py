#!/usr/bin/env python3
"""Loads an ollie checkpoint into the same network written in PyTorch and tests it on MNIST, or
on the clips (or images) it was trained on.

ollie's checkpoints are safetensors files whose tensors are named as PyTorch's nn.Sequential of
the same layers names them ("0.weight", "10.bias", batchnorm's running statistics too), with
PyTorch's layouts, and whose metadata holds the model's spec ("ollie.spec", e.g.
"conv 3x3 16 relu | pool 2 | dense 10"). This script writes that spec as an nn.Sequential, layer
for layer, loads the file with load_state_dict(strict=True) (no renaming, except for files of
ollie's first versions, named conv1.weight … fc.bias), and tests it on MNIST; or, given one of
ollie's decoded-cache files (~/.cache/ollie/decoded/KEY.bin: the clips or images exactly as
ollie decoded them), on that file's test split, so both sides see the same inputs. With the
checkpoint alone, a model trained on `load videos`/`load images` is tested on the newest cache
entry of the folder and options its metadata ("ollie.load") names.

Nested layers are modules of their own, numbered by their place in the top-level Sequential
(inline activations and implied flattens count, as at the top):
  res(A | B | …)     Residual: `body` = Sequential(A, B, …), `shortcut` = Identity when the body keeps
                     the shape, else Sequential(Conv 1×1 in→out, stride = the product of the body's
                     conv and pool strides, bias; BatchNorm(out) if the body has a batchnorm);
                     body(x) + shortcut(x). Names i.body.0.weight, i.shortcut.0.weight, i.shortcut.1.…
  frames(A | …)      Frames: `net` = Sequential(A, …, Flatten if a frame's output is not flat) run on
                     each frame: [N, C, T, H, W] → [N·T, C, H, W] → net → [N, T, F]. Names i.net.0.weight
  lstm|gru H [bi] [seq]   nn.LSTM/nn.GRU (one layer, batch_first): every step [N, T, H·dirs] with seq,
                     else the last (bi: the forward direction's last step, the backward one's first).
                     Names i.weight_ih_l0, i.weight_hh_l0, i.bias_ih_l0, i.bias_hh_l0 (+ _reverse)
  attention [A]      `proj` Linear(F, A) (A = F by default), `score` Linear(A, 1, no bias):
                     α = softmax over t of score(tanh(proj(h_t))), out Σ_t α_t h_t, [N, F]
  gap on [N, T, F] is the mean over T; dense on a sequence acts on each step.
Usage: scripts/pytorch_check.py CHECKPOINT [MNIST_DIR | DECODED.bin]   (default ../shared/datasets/mnist)
       scripts/pytorch_check.py --self-test   (checkpoints written with those names load, run and
                                               compute what the layers are defined to; no data needed)
Needs PyTorch (Debian: apt-get install python3-torch); reads safetensors without the package.
"""
import gzip, json, os, shutil, struct, sys

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        assert entry["dtype"] == "F32", f"{name}: {entry['dtype']}"
        begin, end = entry["data_offsets"]
        tensors[name] = torch.from_numpy(np.frombuffer(data[begin:end], dtype="<f4").copy()).reshape(entry["shape"])
    return tensors, metadata


def sizes(word, rank):
    values = [int(v) for v in word.lower().split("x")]
    return values * rank if len(values) == 1 else values


ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "leakyrelu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
               "gelu": nn.GELU}


class Residual(nn.Module):
    """`res(A | B | …)`: body(x) + shortcut(x); the shortcut is nn.Identity when the body keeps
    the shape, else a 1×1 conv (stride: the body's) and a batchnorm when the body has one."""

    def __init__(self, body, shortcut):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class Frames(nn.Module):
    """`frames(A | …)`: the same `net` on every frame. Clips [N, C, T, H, W] (or sequences
    [N, T, F]) go in as N·T frames [C, H, W] ([F]); out comes [N, T, F'] for the layers after."""

    def __init__(self, net, sequence=False):
        super().__init__()
        self.net, self.sequence = net, sequence

    def forward(self, x):
        if self.sequence:   # a sequence [N, T, F]: each step is a frame
            n, t = x.shape[:2]
            return self.net(x.reshape(n * t, x.shape[2])).reshape(n, t, -1)
        n, c, t = x.shape[:3]
        frames = x.transpose(1, 2).reshape(n * t, c, *x.shape[3:])
        return self.net(frames).reshape(n, t, -1)


class _Steps:
    """A recurrent layer's output as ollie's `lstm H [bi] [seq]` gives it: every step [N, T, H·dirs]
    with `seq`, else the last step (bidirectional: the forward direction's last step and the
    backward direction's first, which has then seen the whole sequence)."""

    def forward(self, x):
        out, _ = super().forward(x)
        if self.seq:
            return out
        if not self.bidirectional:
            return out[:, -1]
        return torch.cat([out[:, -1, :self.hidden_size], out[:, 0, self.hidden_size:]], 1)

    def extra_repr(self):
        return super().extra_repr() + (", seq" if self.seq else "")


class LSTM(_Steps, nn.LSTM):
    def __init__(self, inputs, hidden, bidirectional=False, seq=False):
        nn.LSTM.__init__(self, inputs, hidden, num_layers=1, batch_first=True, bidirectional=bidirectional)
        self.seq = seq


class GRU(_Steps, nn.GRU):
    def __init__(self, inputs, hidden, bidirectional=False, seq=False):
        nn.GRU.__init__(self, inputs, hidden, num_layers=1, batch_first=True, bidirectional=bidirectional)
        self.seq = seq


class Attention(nn.Module):
    """`attention [A]` on a sequence [N, T, F]: α = softmax over t of score(tanh(proj(h_t))),
    out = Σ_t α_t h_t, [N, F]."""

    def __init__(self, features, size=None):
        super().__init__()
        self.proj = nn.Linear(features, size or features)
        self.score = nn.Linear(size or features, 1, bias=False)

    def forward(self, h):
        alpha = torch.softmax(self.score(torch.tanh(self.proj(h))).squeeze(-1), dim=1)
        return (alpha.unsqueeze(-1) * h).sum(1)


class StepMean(nn.Module):
    """`gap` on a sequence [N, T, F]: the mean over T."""

    def forward(self, x):
        return x.mean(1)


class Shape:
    """One sample's shape as the builder follows it: "spatial" [C, d1 … dr] (rank r; None where a
    size is not known), "flat" [F], or "seq" [T, F] (`channels` holds C or F)."""

    def __init__(self, kind, channels, dims=(), steps=None):
        self.kind, self.channels, self.dims, self.steps = kind, channels, list(dims), steps

    @property
    def rank(self):
        return len(self.dims) if self.kind == "spatial" else 0

    def size(self):
        values = [self.channels] + (self.dims if self.kind == "spatial" else [self.steps] if self.kind == "seq" else [])
        return None if None in values else int(np.prod(values))

    def flat(self):
        return Shape("flat", self.size())

    def __eq__(self, other):
        return (self.kind, self.channels, self.dims, self.steps) == (other.kind, other.channels, other.dims, other.steps)

    def __repr__(self):
        size = lambda v: "?" if v is None else str(v)
        values = [self.channels] + self.dims if self.kind == "spatial" else [self.steps, self.channels] if self.kind == "seq" else [self.channels]
        return f"{self.kind} {'×'.join(map(size, values))}"


def split_layers(spec):
    """The spec's layers: split at each `|` outside parentheses."""
    layers, depth, current = [], 0, []
    for ch in spec:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            sys.exit(f"a ')' without its '(' in the spec: {spec}")
        if ch == "|" and depth == 0:
            layers.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if depth:
        sys.exit(f"a '(' without its ')' in the spec: {spec}")
    layers.append("".join(current).strip())
    if not all(layers):
        sys.exit(f"an empty layer in the spec: {spec}")
    return layers


def bracketed(layer):
    """`res(…) [activation]` as ("res", "…", [words after the ')']); (None, None, None) if no '('."""
    if "(" not in layer:
        return None, None, None
    begin, depth = layer.index("("), 0
    for end in range(begin, len(layer)):
        depth += {"(": 1, ")": -1}.get(layer[end], 0)
        if depth == 0:
            break
    return layer[:begin].strip().lower(), layer[begin + 1:end], layer[end + 1:].split()


def strides(body, rank):
    """The product of the strides of a res body's convs and pools (nested res bodies too), per dim."""
    total = [1] * rank
    for m in body:
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
                          nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
            s = m.stride if isinstance(m.stride, (tuple, list)) else [m.stride] * rank
            total = [a * b for a, b in zip(total, s)]
        elif isinstance(m, Residual):
            total = [a * b for a, b in zip(total, strides(m.body, rank))]
    return total


def layers(spec, shape, linear_inputs=None):
    """The modules of `spec` in ollie's order for inputs of `shape`, and the shape they give.
    An inline activation is its own module, and a flatten is implied before a dense that follows
    spatial data. `linear_inputs(modules)`, when given, gives the input size of a Linear appended
    after `modules` where the shape does not say it (sizes unknown); only at the top level."""
    modules = []
    for layer in split_layers(spec):
        head, inner, tail = bracketed(layer)
        activation = None
        if head is not None:
            kind, args = head, []
            if tail and tail[-1].lower() in ACTIVATIONS:
                activation = tail.pop().lower()
            if tail or kind not in ("res", "residual", "frames"):
                sys.exit(f"unknown layer '{layer}' in the spec: only res(…) and frames(…) take layers in parentheses")
        else:
            words = layer.split()
            kind, args = words[0].lower(), words[1:]
        if kind in ("conv", "dense", "linear", "fc") and args and args[-1].lower() in ACTIVATIONS:
            activation = args.pop().lower()
        rank = shape.rank

        def needs(*kinds):
            if shape.kind not in kinds:
                wanted = {"spatial": "images or clips", "flat": "flat features", "seq": "a sequence [T, F]"}
                sys.exit(f"'{layer}' needs {' or '.join(wanted[k] for k in kinds)}, not {shape}"
                         + (": put the per-frame layers in frames(…)" if "seq" in kinds and shape.kind == "spatial" else ""))

        if kind in ("res", "residual"):
            if shape.size() is None:
                sys.exit(f"res({inner}): the input's size is not known (give it to build(spec, shape))")
            body, out = layers(inner, shape)
            body = nn.Sequential(*body)
            if out == shape:
                shortcut = nn.Identity()
            else:
                needs("spatial")
                if out.kind != "spatial" or out.rank != rank:
                    sys.exit(f"res({inner}): the body gives {out} from {shape}; a shortcut cannot match it")
                stride = strides(body, rank)
                conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]
                parts = [conv(shape.channels, out.channels, 1, stride=stride, padding=0, bias=True)]
                if any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) for m in body.modules()):
                    parts.append({1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[rank](out.channels))
                shortcut = nn.Sequential(*parts)
                through = [None if n is None else (n - 1) // s + 1 for n, s in zip(shape.dims, stride)]
                if None not in through + out.dims and through != out.dims:
                    sys.exit(f"res({inner}): the body gives {out} from {shape}, the shortcut (stride {stride}) "
                             f"{'×'.join(map(str, [out.channels] + through))}")
            modules.append(Residual(body, shortcut))
            shape = out
        elif kind == "frames":
            needs("spatial", "seq")
            if shape.kind == "seq":
                steps, frame = shape.steps, Shape("flat", shape.channels)
            elif rank == 1:
                steps, frame = shape.dims[0], Shape("flat", shape.channels)
            else:
                steps, frame = shape.dims[0], Shape("spatial", shape.channels, shape.dims[1:])
            net, out = layers(inner, frame)
            if out.kind != "flat":
                net.append(nn.Flatten())
                out = out.flat()
            if out.size() is None:
                sys.exit(f"frames({inner}): the size of a frame's output is not known from {shape}")
            modules.append(Frames(nn.Sequential(*net), sequence=shape.kind == "seq"))
            shape = Shape("seq", out.channels, steps=steps)
        elif kind == "conv":
            needs("spatial")
            kernel, out = sizes(args[0], rank), int(args[1])
            stride, padding, groups = [1] * rank, [k // 2 for k in kernel], 1
            rest = args[2:]
            while rest:
                word = rest.pop(0).lower()
                if word == "stride":
                    stride = sizes(rest.pop(0), rank)
                elif word in ("pad", "padding"):
                    value = rest.pop(0).lower()
                    padding = [0] * rank if value == "valid" else [k // 2 for k in kernel] if value == "same" else sizes(value, rank)
                elif word == "valid":
                    padding = [0] * rank
                elif word in ("groups", "group"):
                    groups = int(rest.pop(0))
            conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]
            modules.append(conv(shape.channels, out, kernel, stride=stride, padding=padding, groups=groups))
            shape = Shape("spatial", out, [None if n is None else (n + 2 * p - k) // s + 1
                                           for n, k, s, p in zip(shape.dims, kernel, stride, padding)])
        elif kind == "pool":
            needs("spatial")
            kernel, stride, padding, average = sizes(args[0], rank), None, [0] * rank, False
            rest = args[1:]
            while rest:
                word = rest.pop(0).lower()
                if word == "stride":
                    stride = sizes(rest.pop(0), rank)
                elif word in ("pad", "padding"):
                    padding = sizes(rest.pop(0), rank)
                elif word in ("avg", "average", "mean"):
                    average = True
            stride = stride or kernel
            if average:   # ollie's average leaves the padding out of the count, as ONNX's AveragePool does
                pooling = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[rank](kernel, stride=stride, padding=padding,
                                                                                   count_include_pad=False)
            else:
                pooling = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[rank](kernel, stride=stride, padding=padding)
            modules.append(pooling)
            shape = Shape("spatial", shape.channels, [None if n is None else (n + 2 * p - k) // s + 1
                                                      for n, k, s, p in zip(shape.dims, kernel, stride, padding)])
        elif kind == "gap":
            needs("spatial", "seq")
            if shape.kind == "seq":
                modules.append(StepMean())
                shape = Shape("flat", shape.channels)
            else:
                modules.append({1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[rank](1))
                shape = Shape("spatial", shape.channels, [1] * rank)
        elif kind == "flatten":
            modules.append(nn.Flatten())
            shape = shape.flat()
        elif kind in ("dense", "linear", "fc"):
            if shape.kind == "spatial":
                modules.append(nn.Flatten())
                shape = shape.flat()
            inputs = shape.channels
            if inputs is None:
                if linear_inputs is None:
                    sys.exit(f"'{layer}': its input size is not known (give the input's shape)")
                inputs = linear_inputs(modules)
            modules.append(nn.Linear(inputs, int(args[0])))   # on a sequence: each step
            shape = Shape(shape.kind, int(args[0]), steps=shape.steps)
        elif kind in ("lstm", "gru"):
            needs("seq")
            hidden, options = int(args[0]), [w.lower() for w in args[1:]]
            unknown = [w for w in options if w not in ("bi", "bidirectional", "seq", "sequence", "sequences")]
            if unknown:
                sys.exit(f"'{layer}': unknown option '{unknown[0]}' (bi, seq)")
            bi, seq = any(w.startswith("bi") for w in options), any(w.startswith("seq") for w in options)
            modules.append((LSTM if kind == "lstm" else GRU)(shape.channels, hidden, bidirectional=bi, seq=seq))
            out = hidden * (2 if bi else 1)
            shape = Shape("seq", out, steps=shape.steps) if seq else Shape("flat", out)
        elif kind == "attention":
            needs("seq")
            modules.append(Attention(shape.channels, int(args[0]) if args else None))
            shape = Shape("flat", shape.channels)
        elif kind in ACTIVATIONS:
            modules.append(ACTIVATIONS[kind]())
        elif kind == "dropout":
            modules.append(nn.Dropout(float(args[0])))
        elif kind in ("batchnorm", "bn"):
            needs("spatial", "flat")
            modules.append({0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[rank](shape.channels))
        else:
            sys.exit(f"unknown layer '{kind}' in the spec")
        if activation:
            modules.append(ACTIVATIONS[activation]())
    return modules, shape


def build(spec, shape):
    """The spec as an nn.Sequential for samples of `shape`: (C, H, W) images, (C, T, H, W) clips
    (the layout of ollie's clip batches in PyTorch: [N, C, T, H, W]), (C, L) or (F,)."""
    start = Shape("flat", shape[0]) if len(shape) == 1 else Shape("spatial", shape[0], shape[1:])
    return nn.Sequential(*layers(spec, start)[0])


def sequential(spec, channels, rank, linear_inputs):
    """The spec as an nn.Sequential when only the input's channels and rank are known: a Linear's
    input size comes from `linear_inputs(modules)`, the modules before it. Nested layers whose
    sizes depend on the input's (res, frames) need build(spec, shape) instead."""
    return nn.Sequential(*layers(spec, Shape("spatial", channels, [None] * rank), linear_inputs)[0])


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


def read_decoded(path):
    """An ollie decoded-cache file (Datasets/DecodedCache.swift): "OLLIEDC1", a little-endian
    UInt64 length, that much JSON, then train images (Float32), labels (Int32), test images,
    labels. Returns the header and (x, y) per split, x as [N, C, T, H, W] (clips) or [N, C, H, W]."""
    with open(path, "rb") as f:
        assert f.read(8) == b"OLLIEDC1", f"{path} is not an ollie decoded-cache file"
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        raw = f.read()
    frames, h, w, c = header.get("frames", 1), header["height"], header["width"], header["channels"]
    values, offset, splits = frames * h * w * c, 0, []
    for count in (header["trainCount"], header["testCount"]):
        x = np.frombuffer(raw, "<f4", count * values, offset).reshape(count, frames, h, w, c)
        offset += 4 * count * values
        y = np.frombuffer(raw, "<i4", count, offset).astype(np.int64)
        offset += 4 * count
        x = torch.from_numpy(x.transpose(0, 4, 1, 2, 3).copy())   # samples are stored [T, H, W, C]
        splits.append((x if frames > 1 else x[:, :, 0], torch.from_numpy(y)))
    return header, splits


def cache_entry(load_words):
    """The newest decoded-cache file of the folder and options in a checkpoint's "ollie.load"."""
    folder = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "ollie", "decoded")
    words = [w.lower() for w in load_words]
    frames = int(words[words.index("frames") + 1]) if "frames" in words else (16 if words[0] == "videos" else 1)
    size = words[words.index("size") + 1].split("x") if "size" in words else None
    best = None
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            if f.read(8) != b"OLLIEDC1":
                continue
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        if os.path.abspath(header["source"]) == os.path.abspath(load_words[1]) and header.get("frames", 1) == frames \
                and (size is None or [header["height"], header["width"]] == [int(v) for v in size]):
            if best is None or os.path.getmtime(path) > os.path.getmtime(best):
                best = path
    if best is None:
        sys.exit(f"no decoded clips of {' '.join(load_words)} in {folder}: load them in ollie first")
    return best


def model_state(saved):
    """A checkpoint's tensors as load_state_dict takes them: without the optimizer's, and with
    batchnorm's num_batches_tracked as the int64 scalar PyTorch keeps."""
    state = {k: v for k, v in saved.items() if not k.startswith("optimizer.")}
    return {k: (v.long().reshape(()) if k.endswith("num_batches_tracked") else v) for k, v in state.items()}


def write_safetensors(path, tensors, metadata):
    """Float32 tensors and string metadata as a safetensors file (the self-test's checkpoints)."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, tensor in tensors.items():
        blob = tensor.detach().float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def manual_recurrent(kind, x, w_ih, w_hh, b_ih, b_hh):
    """Every step's hidden state of one LSTM/GRU direction over x [N, T, F], written out with
    PyTorch's gate order (LSTM: i, f, g, o; GRU: r, z, n, with r applied to W_hn·h + b_hn)."""
    n, steps = x.shape[:2]
    hidden = w_hh.shape[1]
    h, c, out = torch.zeros(n, hidden), torch.zeros(n, hidden), []
    for t in range(steps):
        if kind == "lstm":
            i, f, g, o = (x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        else:
            xr, xz, xn = (x[:, t] @ w_ih.T + b_ih).chunk(3, 1)
            hr, hz, hn = (h @ w_hh.T + b_hh).chunk(3, 1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            h = (1 - z) * torch.tanh(xn + r * hn) + z * h
        out.append(h)
    return torch.stack(out, 1)


def self_test():
    """Checkpoints written here with the names ollie gives the nested layers (res, frames,
    lstm/gru, attention) load with load_state_dict(strict=True), run, and compute what the
    layers are defined to compute; the flat specs keep their old names."""
    import tempfile

    def bn(prefix, c):
        return {f"{prefix}.weight": [c], f"{prefix}.bias": [c], f"{prefix}.running_mean": [c],
                f"{prefix}.running_var": [c], f"{prefix}.num_batches_tracked": []}

    def rnn(prefix, gates, inputs, hidden, bi=False):
        names = {}
        for suffix in ["", "_reverse"] if bi else [""]:
            names.update({f"{prefix}.weight_ih_l0{suffix}": [gates * hidden, inputs], f"{prefix}.weight_hh_l0{suffix}": [gates * hidden, hidden],
                          f"{prefix}.bias_ih_l0{suffix}": [gates * hidden], f"{prefix}.bias_hh_l0{suffix}": [gates * hidden]})
        return names

    cases = [   # spec, one sample's shape, the tensors' names and shapes, one output's shape
        ("conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 10", (1, 28, 28),
         {"0.weight": [16, 1, 3, 3], "0.bias": [16], "3.weight": [32, 16, 3, 3], "3.bias": [32], "6.weight": [32, 32, 3, 3],
          "6.bias": [32], "10.weight": [10, 288], "10.bias": [10]}, [10]),
        ("conv 3x3x3 8 relu | batchnorm | pool 1x2x2 | gap | dense 5", (1, 4, 8, 8),
         {"0.weight": [8, 1, 3, 3, 3], "0.bias": [8], **bn("2", 8), "6.weight": [5, 8], "6.bias": [5]}, [5]),
        ("frames(conv 3 16 relu | pool 2 | conv 3 32 relu | pool 2 | dense 64 relu) | lstm 64 | dense 5", (1, 16, 32, 32),
         {"0.net.0.weight": [16, 1, 3, 3], "0.net.0.bias": [16], "0.net.3.weight": [32, 16, 3, 3], "0.net.3.bias": [32],
          "0.net.7.weight": [64, 2048], "0.net.7.bias": [64], **rnn("1", 4, 64, 64), "2.weight": [5, 64], "2.bias": [5]}, [5]),
        ("frames(conv 3 16 relu | pool 2 | conv 3 32 relu | pool 2 | dense 64 relu) | lstm 64 bi | dense 5", (1, 6, 16, 16),
         {"0.net.0.weight": [16, 1, 3, 3], "0.net.0.bias": [16], "0.net.3.weight": [32, 16, 3, 3], "0.net.3.bias": [32],
          "0.net.7.weight": [64, 512], "0.net.7.bias": [64], **rnn("1", 4, 64, 64, bi=True), "2.weight": [5, 128], "2.bias": [5]}, [5]),
        ("frames(conv 3 8 relu | pool 2 | gap) | lstm 16 bi seq | attention 8 | dense 5", (3, 6, 12, 12),
         {"0.net.0.weight": [8, 3, 3, 3], "0.net.0.bias": [8], **rnn("1", 4, 8, 16, bi=True), "2.proj.weight": [8, 32],
          "2.proj.bias": [8], "2.score.weight": [1, 8], "3.weight": [5, 32], "3.bias": [5]}, [5]),
        ("frames(conv 3 4 | pool 2) | gru 10 seq | relu | dropout 0.5 | attention | dense 3", (2, 5, 6, 6),
         {"0.net.0.weight": [4, 2, 3, 3], "0.net.0.bias": [4], **rnn("1", 3, 36, 10), "4.proj.weight": [10, 10],
          "4.proj.bias": [10], "4.score.weight": [1, 10], "5.weight": [3, 10], "5.bias": [3]}, [3]),
        ("frames(dense 12 tanh) | gru 10 seq | relu | dropout 0.5 | gap | dense 3", (4, 5, 3, 3),
         {"0.net.1.weight": [12, 36], "0.net.1.bias": [12], **rnn("1", 3, 12, 10), "5.weight": [3, 10], "5.bias": [3]}, [3]),
        ("frames(conv 3 4 | res(conv 3 4 relu | conv 3 4) | pool 2) | gru 6 bi | dense 2", (1, 4, 8, 8),
         {"0.net.0.weight": [4, 1, 3, 3], "0.net.0.bias": [4], "0.net.1.body.0.weight": [4, 4, 3, 3], "0.net.1.body.0.bias": [4],
          "0.net.1.body.2.weight": [4, 4, 3, 3], "0.net.1.body.2.bias": [4], **rnn("1", 3, 64, 6, bi=True),
          "2.weight": [2, 12], "2.bias": [2]}, [2]),
        ("conv 3 8 relu | res(conv 3 8 | batchnorm | relu | conv 3 8 | batchnorm) relu"
         " | res(conv 3 16 stride 2 | batchnorm | relu | conv 3 16 | batchnorm) | res(conv 3 16 relu | pool 2)"
         " | res(conv 1 16) | gap | dense 10", (3, 16, 16),
         {"0.weight": [8, 3, 3, 3], "0.bias": [8],
          "2.body.0.weight": [8, 8, 3, 3], "2.body.0.bias": [8], **bn("2.body.1", 8), "2.body.3.weight": [8, 8, 3, 3],
          "2.body.3.bias": [8], **bn("2.body.4", 8),
          "4.body.0.weight": [16, 8, 3, 3], "4.body.0.bias": [16], **bn("4.body.1", 16), "4.body.3.weight": [16, 16, 3, 3],
          "4.body.3.bias": [16], **bn("4.body.4", 16), "4.shortcut.0.weight": [16, 8, 1, 1], "4.shortcut.0.bias": [16],
          **bn("4.shortcut.1", 16),
          "5.body.0.weight": [16, 16, 3, 3], "5.body.0.bias": [16], "5.shortcut.0.weight": [16, 16, 1, 1], "5.shortcut.0.bias": [16],
          "6.body.0.weight": [16, 16, 1, 1], "6.body.0.bias": [16], "9.weight": [10, 16], "9.bias": [10]}, [10]),
        ("conv 3 16 stride 2 relu | pool 3 stride 2 pad 1 | conv 1 48 relu6 | conv 3 48 stride 2 groups 48 relu6"
         " | conv 1 8 | pool 3 stride 1 pad 1 avg | dense 4 relu6 | dense 3", (3, 16, 16),
         {"0.weight": [16, 3, 3, 3], "0.bias": [16], "3.weight": [48, 16, 1, 1], "3.bias": [48], "5.weight": [48, 1, 3, 3],
          "5.bias": [48], "7.weight": [8, 48, 1, 1], "7.bias": [8], "10.weight": [4, 32], "10.bias": [4], "12.weight": [3, 4],
          "12.bias": [3]}, [3]),
        ("res(conv 3 8 stride 2 | res(conv 3 8 | pool 2)) | dense 3", (4, 8, 8),
         {"0.body.0.weight": [8, 4, 3, 3], "0.body.0.bias": [8], "0.body.1.body.0.weight": [8, 8, 3, 3], "0.body.1.body.0.bias": [8],
          "0.body.1.shortcut.0.weight": [8, 8, 1, 1], "0.body.1.shortcut.0.bias": [8],
          "0.shortcut.0.weight": [8, 4, 1, 1], "0.shortcut.0.bias": [8], "2.weight": [3, 32], "2.bias": [3]}, [3]),
    ]
    generator = torch.Generator().manual_seed(0)
    folder = tempfile.mkdtemp(prefix="pytorch-check-self-test-")
    failures = 0
    for k, (spec, shape, names, output) in enumerate(cases):
        tensors = {name: (torch.rand(size, generator=generator) + 0.5 if name.endswith("running_var")
                          else torch.full(size, 3.0) if name.endswith("num_batches_tracked")
                          else torch.randn(size, generator=generator) * 0.3) for name, size in names.items()}
        path = os.path.join(folder, f"case-{k}.safetensors")
        write_safetensors(path, tensors, {"ollie.spec": spec})
        saved, metadata = read_safetensors(path)
        net = build(metadata["ollie.spec"], shape)
        net.load_state_dict(model_state(saved))   # strict: every name, every shape
        net.eval()
        x = torch.randn(2, *shape, generator=generator)
        with torch.no_grad():
            y = net(x)
        assert list(y.shape) == [2] + output and torch.isfinite(y).all(), f"{spec}: output {tuple(y.shape)}"
        print(f"ok   {len(names)} tensors, {tuple(x.shape)} → {tuple(y.shape)}: {spec}")
    # What the layers compute, against the definitions written out.
    with torch.no_grad():
        x = torch.randn(3, 2, 5, 6, 6, generator=generator)
        frames = build("frames(conv 3 4 relu | pool 2)", (2, 5, 6, 6))[0]
        expected = torch.stack([frames.net(x[:, :, t]) for t in range(5)], 1)
        assert torch.allclose(frames(x), expected, atol=1e-6), "frames: not the net on each frame"
        x = torch.randn(3, 4, 6, generator=generator)   # [N, C, L]: L frames of C values
        frames = build("frames(dense 2)", (4, 6))[0]
        assert torch.allclose(frames(x), frames.net(x.transpose(1, 2)), atol=1e-6), "frames on [N, C, L]"
        steps = layers("frames(dense 2)", Shape("seq", 6, steps=4))[0][0]   # [N, T, F]: each step
        assert torch.allclose(steps(x), steps.net(x), atol=1e-6), "frames on a sequence"
        for kind in ("lstm", "gru"):
            for bi in (False, True):
                for seq in (False, True):
                    spec = f"{kind} 7{' bi' if bi else ''}{' seq' if seq else ''}"
                    layer = layers(spec, Shape("seq", 5, steps=4))[0][0]
                    h = torch.randn(3, 4, 5, generator=generator)
                    p = dict(layer.named_parameters())
                    forward = manual_recurrent(kind, h, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
                    if bi:
                        backward = manual_recurrent(kind, h.flip(1), p["weight_ih_l0_reverse"], p["weight_hh_l0_reverse"],
                                                    p["bias_ih_l0_reverse"], p["bias_hh_l0_reverse"]).flip(1)
                        expected = torch.cat([forward, backward], 2) if seq else torch.cat([forward[:, -1], backward[:, 0]], 1)
                    else:
                        expected = forward if seq else forward[:, -1]
                    assert torch.allclose(layer(h), expected, atol=1e-5), f"{spec}: not the written-out recurrence"
        attention = layers("attention 3", Shape("seq", 5, steps=4))[0][0]
        h = torch.randn(2, 4, 5, generator=generator)
        scores = torch.tanh(h @ attention.proj.weight.T + attention.proj.bias) @ attention.score.weight.T   # [N, T, 1]
        alpha = torch.exp(scores) / torch.exp(scores).sum(1, keepdim=True)
        assert torch.allclose(attention(h), (alpha * h).sum(1), atol=1e-6), "attention: not Σ α_t h_t"
        assert torch.allclose(layers("gap", Shape("seq", 5, steps=4))[0][0](h), h.mean(1)), "gap on a sequence: not the mean over T"
        res = build("res(conv 3 6 stride 2 | batchnorm | relu | conv 3 6)", (4, 7, 7))[0].eval()
        x = torch.randn(2, 4, 7, 7, generator=generator)
        conv, norm = res.shortcut
        expected = res.body(x) + norm(torch.nn.functional.conv2d(x, conv.weight, conv.bias, stride=2))
        assert torch.allclose(res(x), expected, atol=1e-6) and res(x).shape == (2, 6, 4, 4), "res: not body(x) + shortcut(x)"
    print("ok   frames, lstm/gru (uni, bi; last step, seq), attention, gap on sequences and res compute their definitions")
    for spec in ("res(conv 3 4 | pool 2", "conv 3 4 | | dense 2", "lstm 8 | dense 2", "frames(conv 3 4) | conv 3 4",
                 "res(conv 3 8 | pool 3)", "frames(conv 3 4) | lstm 8 both", "frames(gap) | attention | gap", "frames(conv 3 4 | res(dense 3))"):
        try:
            build(spec, (1, 4, 8, 8))
            print(f"FAIL (built) {spec}")
            failures += 1
        except SystemExit as refusal:
            print(f"ok   refused: {refusal}")
    shutil.rmtree(folder)
    sys.exit(f"{failures} self-test failures" if failures else 0)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == "--self-test":
        self_test()
    checkpoint = sys.argv[1]
    folder = sys.argv[2] if len(sys.argv) > 2 else "../shared/datasets/mnist"
    saved, metadata = read_safetensors(checkpoint)
    spec = metadata.get("ollie.spec")
    if spec is None:   # ollie's first versions: the conv preset, named conv1 … fc
        spec = "conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 10"
        rename = {"conv1": "0", "conv2": "3", "conv3": "6", "fc": "10"}
        saved = {rename.get(k.split(".")[0], k.split(".")[0]) + "." + k.split(".", 1)[1]: v for k, v in saved.items()}
    state = model_state(saved)
    load = json.loads(metadata["ollie.load"]) if "ollie.load" in metadata else None
    decoded = folder if folder.endswith(".bin") else None
    if decoded is None and len(sys.argv) <= 2 and load and load[0].lower() in ("videos", "images"):
        decoded = cache_entry(load)
    if decoded:
        header, (_, (images, labels)) = read_decoded(decoded)
        print(f"data: {decoded} ({header['name']}, {len(labels)} test samples of {tuple(images.shape[1:])})")
    else:
        images = torch.from_numpy(read_idx(find(folder, "t10k-images-idx3-ubyte")).astype(np.float32) / 255).unsqueeze(1)
        labels = torch.from_numpy(read_idx(find(folder, "t10k-labels-idx1-ubyte")).astype(np.int64))
    net = build(spec, tuple(images.shape[1:]))
    net.load_state_dict(state)   # strict: every key, every shape
    net.eval()
    print(f"PyTorch {torch.__version__}: {net}")
    with torch.no_grad():
        predicted = torch.cat([net(images[i:i + 1000]).argmax(1) for i in range(0, len(images), 1000)])
    correct = int((predicted == labels).sum())
    print(f"{checkpoint}: test accuracy {correct / len(labels):.4f} ({correct}/{len(labels)})")


if __name__ == "__main__":
    main()
