#!/usr/bin/env python3
"""The PyTorch peer for training on clips (issue 10's benchmark): the same spec as ollie's, written
as nn.Sequential with nn.Conv3d (scripts/pytorch_check.py's `sequential`), on the same clips
decoded once before timing (T frames evenly over each clip, gray, H×W, by the ffmpeg program;
or, given one of ollie's decoded-cache files instead of DIR, the clips exactly as ollie decoded
them), batch 16, Adam, 2 threads; prints clips/s per epoch and the test accuracy.
Usage: /usr/bin/python3 scripts/torch_video_bench.py DIR|DECODED.bin SPEC [EPOCHS] [FRAMES] [SIZE] [LR] [NOISE]
"""
import hashlib, json, os, subprocess, sys, tempfile, time

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
    """The split's clips and labels, decoded once and kept in the temporary folder (keyed by the
    folder, the options and every file's size and time), so benchmark rounds skip the decoding."""
    classes = sorted(os.listdir(os.path.join(root, split)))
    files = [os.path.join(root, split, c, f) for c in classes for f in sorted(os.listdir(os.path.join(root, split, c)))]
    key = hashlib.md5(repr([(f, os.path.getsize(f), os.path.getmtime(f)) for f in files] + [frames, size]).encode()).hexdigest()
    cached = os.path.join(tempfile.gettempdir(), f"torch-video-bench-{key}.npz")
    if os.path.exists(cached):
        saved = np.load(cached)
        return torch.from_numpy(saved["clips"]), torch.from_numpy(saved["labels"]), classes
    clips, labels = decode_split(root, split, classes, frames, size)
    np.savez(cached, clips=clips.numpy(), labels=labels.numpy())
    return clips, labels, classes


def decode_split(root, split, classes, frames, size):
    clips, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, split, name)
        for file in sorted(os.listdir(folder)):
            clips.append(decode(os.path.join(folder, file), frames, size))
            labels.append(label)
    return torch.from_numpy(np.stack(clips)).unsqueeze(1), torch.tensor(labels)


def main():
    root, spec = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    frames = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 32
    rate = float(sys.argv[6]) if len(sys.argv) > 6 else 1e-3
    sigma = float(sys.argv[7]) if len(sys.argv) > 7 else 0.1
    torch.set_num_threads(2)
    torch.manual_seed(0)
    if root.endswith(".bin"):   # the clips exactly as ollie decoded them (its decoded cache)
        _, ((xtr, ytr), (xte, yte)) = pytorch_check.read_decoded(root)
        frames, size = xtr.shape[2], xtr.shape[3]
    else:
        xtr, ytr, _ = load(root, "train", frames, size)
        xte, yte, _ = load(root, "test", frames, size)
    order = torch.randperm(len(ytr))
    xtr, ytr = xtr[order], ytr[order]

    model = pytorch_check.build(spec, tuple(xtr.shape[1:]))
    for m in model.modules():
        if isinstance(m, (nn.Conv3d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, {len(ytr)} clips {tuple(xtr.shape[1:])}: {spec}", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=rate)
    for epoch in range(1, epochs + 1):
        model.train()
        started = time.time()
        for i in range(0, len(ytr), 16):
            x = xtr[i:i + 16] + sigma * torch.randn_like(xtr[i:i + 16]) if sigma > 0 else xtr[i:i + 16]
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
