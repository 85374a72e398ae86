#!/usr/bin/env python3
"""The PyTorch peer for training on clips (issue 10's benchmark): the same spec as ollie's, written
as nn.Sequential with nn.Conv3d (scripts/pytorch_check.py's `sequential`), on the same clips
decoded once before timing (T frames evenly over each clip, gray, H×W, by the ffmpeg program),
batch 16, Adam, 2 threads; prints clips/s per epoch and the test accuracy.
Usage: /usr/bin/python3 scripts/torch_video_bench.py DIR SPEC [EPOCHS] [FRAMES] [SIZE] [LR]
"""
import json, os, subprocess, sys, time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_check  # noqa: E402


def decode(path, frames, size):
    """T frames chosen evenly over the clip's frames, gray, size×size, as float32 [T, H, W]."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=nb_read_frames", "-of", "json", path], capture_output=True, check=True)
    total = int(json.loads(probe.stdout)["streams"][0]["nb_read_frames"])
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", path, "-vf", f"scale={size}:{size}", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True, stdin=subprocess.DEVNULL).stdout
    video = np.frombuffer(raw, np.uint8).reshape(total, size, size)
    picks = [min(total - 1, int((k + 0.5) * total / frames)) for k in range(frames)]
    return video[picks].astype(np.float32) / 255


def load(root, split, frames, size):
    classes = sorted(os.listdir(os.path.join(root, split)))
    clips, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, split, name)
        for file in sorted(os.listdir(folder)):
            clips.append(decode(os.path.join(folder, file), frames, size))
            labels.append(label)
    return torch.from_numpy(np.stack(clips)).unsqueeze(1), torch.tensor(labels), classes


def main():
    root, spec = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    frames = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 32
    rate = float(sys.argv[6]) if len(sys.argv) > 6 else 1e-3
    torch.set_num_threads(2)
    torch.manual_seed(0)
    xtr, ytr, classes = load(root, "train", frames, size)
    xte, yte, _ = load(root, "test", frames, size)
    order = torch.randperm(len(ytr))
    xtr, ytr = xtr[order], ytr[order]

    def linear_inputs(modules):
        return nn.Sequential(*modules)(torch.zeros(1, 1, frames, size, size)).reshape(1, -1).shape[1]

    model = pytorch_check.sequential(spec, 1, 3, linear_inputs)
    for m in model:
        if isinstance(m, (nn.Conv3d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, {len(ytr)} clips {tuple(xtr.shape[1:])}: {spec}", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=rate)
    for epoch in range(1, epochs + 1):
        model.train()
        started = time.time()
        for i in range(0, len(ytr), 16):
            x = xtr[i:i + 16] + 0.1 * torch.randn_like(xtr[i:i + 16])
            loss = F.cross_entropy(model(x), ytr[i:i + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
        seconds = time.time() - started
        model.eval()
        with torch.no_grad():
            accuracy = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch}: train {seconds:.2f}s ({len(ytr) / seconds:.0f} clips/s), test accuracy {accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
