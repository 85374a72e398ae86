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
Usage: scripts/pytorch_check.py CHECKPOINT [MNIST_DIR | DECODED.bin]   (default ../shared/datasets/mnist)
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


ACTIVATIONS = {"relu": nn.ReLU, "leakyrelu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def sequential(spec, channels, rank, linear_inputs):
    """The spec as PyTorch modules, in ollie's order: an inline activation is its own module,
    and a flatten is implied before a dense that follows spatial data. `linear_inputs(modules)`
    gives the input size of a Linear appended after `modules`."""
    modules = []
    for layer in spec.split("|"):
        words = layer.split()
        kind, args = words[0].lower(), words[1:]
        activation = None
        if kind in ("conv", "dense", "linear", "fc") and args and args[-1].lower() in ACTIVATIONS:
            activation = args.pop().lower()
        if kind == "conv":
            kernel, out = sizes(args[0], rank), int(args[1])
            stride, padding = [1] * rank, [k // 2 for k in kernel]
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
            conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]
            modules.append(conv(channels, out, kernel, stride=stride, padding=padding))
            channels = out
        elif kind == "pool":
            kernel, stride, average = sizes(args[0], rank), None, False
            rest = args[1:]
            while rest:
                word = rest.pop(0).lower()
                if word == "stride":
                    stride = sizes(rest.pop(0), rank)
                elif word in ("avg", "average", "mean"):
                    average = True
            table = {1: (nn.MaxPool1d, nn.AvgPool1d), 2: (nn.MaxPool2d, nn.AvgPool2d), 3: (nn.MaxPool3d, nn.AvgPool3d)}
            modules.append(table[rank][average](kernel, stride=stride or kernel))
        elif kind == "gap":
            modules.append({1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[rank](1))
        elif kind == "flatten":
            modules.append(nn.Flatten())
            rank = 0
        elif kind in ("dense", "linear", "fc"):
            if rank > 0:
                modules.append(nn.Flatten())
                rank = 0
            modules.append(nn.Linear(linear_inputs(modules), int(args[0])))
            channels = int(args[0])
        elif kind in ACTIVATIONS:
            modules.append(ACTIVATIONS[kind]())
        elif kind == "dropout":
            modules.append(nn.Dropout(float(args[0])))
        elif kind in ("batchnorm", "bn"):
            modules.append({0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[rank](channels))
        else:
            sys.exit(f"unknown layer '{kind}' in the spec")
        if activation:
            modules.append(ACTIVATIONS[activation]())
    return nn.Sequential(*modules)


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


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    checkpoint = sys.argv[1]
    folder = sys.argv[2] if len(sys.argv) > 2 else "../shared/datasets/mnist"
    saved, metadata = read_safetensors(checkpoint)
    spec = metadata.get("ollie.spec")
    if spec is None:   # ollie's first versions: the conv preset, named conv1 … fc
        spec = "conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 10"
        rename = {"conv1": "0", "conv2": "3", "conv3": "6", "fc": "10"}
        saved = {rename.get(k.split(".")[0], k.split(".")[0]) + "." + k.split(".", 1)[1]: v for k, v in saved.items()}
    state = {k: v for k, v in saved.items() if not k.startswith("optimizer.")}
    if "num_batches_tracked" in " ".join(state):
        state = {k: (v.long() if k.endswith("num_batches_tracked") else v) for k, v in state.items()}
        state = {k: (v.reshape(()) if k.endswith("num_batches_tracked") else v) for k, v in state.items()}
    load = json.loads(metadata["ollie.load"]) if "ollie.load" in metadata else None
    decoded = folder if folder.endswith(".bin") else None
    if decoded is None and len(sys.argv) <= 2 and load and load[0].lower() in ("videos", "images"):
        decoded = cache_entry(load)
    if decoded:
        header, (_, (images, labels)) = read_decoded(decoded)
        channels, rank = header["channels"], 3 if header.get("frames", 1) > 1 else 2
        print(f"data: {decoded} ({header['name']}, {len(labels)} test samples of {tuple(images.shape[1:])})")
    else:
        images = torch.from_numpy(read_idx(find(folder, "t10k-images-idx3-ubyte")).astype(np.float32) / 255).unsqueeze(1)
        labels = torch.from_numpy(read_idx(find(folder, "t10k-labels-idx1-ubyte")).astype(np.int64))
        channels, rank = 1, 2
    net = sequential(spec, channels, rank, lambda modules: state[f"{len(modules)}.weight"].shape[1])
    net.load_state_dict(state)   # strict: every key, every shape
    net.eval()
    print(f"PyTorch {torch.__version__}: {net}")
    with torch.no_grad():
        predicted = torch.cat([net(images[i:i + 1000]).argmax(1) for i in range(0, len(images), 1000)])
    correct = int((predicted == labels).sum())
    print(f"{checkpoint}: test accuracy {correct / len(labels):.4f} ({correct}/{len(labels)})")


if __name__ == "__main__":
    main()
