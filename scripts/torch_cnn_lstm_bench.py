#!/usr/bin/env python3
"""The PyTorch peer for the CNN-LSTM on the trick clips (issue 19): the same network as ollie's

  frames(conv 3 16 relu | pool 2 | conv 3 32 relu | pool 2 | dense 64 relu) | lstm 64 | dense 5

(per frame: 3×3 convs, padding 'same', stride 1, MaxPool2d(2), Linear; the frame net's weights
shared over the frames, [N, C, T, H, W] → [N·T, C, H, W] → net → [N, T, 64]; nn.LSTM(64, 64,
batch_first) read at its last step), written by scripts/pytorch_check.py's build(), so its
modules and tensor names are those of ollie's checkpoints. --bi makes the LSTM bidirectional
(`lstm 64 bi`: the forward direction's last step and the backward one's first, 128 features);
--attention reads every step through attention pooling instead (`lstm 64 seq | attention`).

Data as ollie's `load videos DIR frames 16 size 32x32` with `set val 0.1`: the clips decoded
once (16 frames evenly over each clip, gray, 32×32, by the ffmpeg program, as
scripts/torch_video_bench.py does; or, given one of ollie's decoded-cache files instead of DIR,
exactly as ollie decoded them), then ollie's validation split: from each class ⌊count·val⌉ clips
chosen by ollie's generator (xoshiro256**, seed 1, stream "val"), the rest trained on in
order, shuffled each epoch. Adam lr 1e-3, batch 16, no input noise; Glorot-uniform weights and
zero biases for the convs and denses (ollie's), PyTorch's own init for the LSTM/GRU and the
attention. Prints per epoch: train seconds, clips/s, train loss, validation and test accuracy.

Usage: scripts/torch_cnn_lstm_bench.py DIR|DECODED.bin [--epochs 12] [--threads 2] [--bi]
       [--attention] [--gru] [--spec SPEC] [--frames 16] [--size 32] [--val 0.1] [--seed 1]
       [--lr 1e-3] [--batch 16] [--noise 0]
e.g.   /tmp/torch2/bin/python scripts/torch_cnn_lstm_bench.py /work/data/tricks --epochs 2

Recorded once (PyTorch 2.15 CPU, 2 threads on a machine whose 2 cores were shared with other
work, load ~7, so the times say nothing; clips from `make_tricks.py DIR` with its defaults,
decoded here by ffmpeg; 169,541 parameters), test accuracy by epoch 1–12:
0.205 0.400 0.435 0.395 0.390 0.405 0.435 0.425 0.465 0.475 0.575 0.560 (val 0.5875 at 12;
train loss 1.61 → 0.70, still falling).
"""
import argparse, os, sys, time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_check  # noqa: E402

MASK = (1 << 64) - 1


class OllieRandom:
    """ollie's generator (Sources/Tensor/Random.swift): xoshiro256**, seeded through SplitMix64."""

    def __init__(self, seed, stream=None):
        if stream is not None:   # Swift: seed ^ (stream &* K) &+ C, ^ and &+ of one precedence, left to right
            seed = ((seed ^ (stream * 0xD1B54A32D192ED03 & MASK)) + 0x2545F4914F6CDD1D) & MASK
        x, state = seed, []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            state.append(z ^ (z >> 31))
        self.s = state

    @staticmethod
    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK

    def next(self):
        s = self.s
        result = self.rotl(s[1] * 5 & MASK, 7) * 9 & MASK
        t = s[1] << 17 & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self.rotl(s[3], 45)
        return result

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.next() % (i + 1)
            p[i], p[j] = p[j], p[i]
        return p


def validation_split(labels, fraction, seed):
    """ollie's Trainer.splits(): (train indices in dataset order, validation indices sorted)."""
    by_class = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    random, held = OllieRandom(seed, 0x76616C), set()   # stream "val"
    for label in sorted(by_class):
        members = by_class[label]
        order = random.permutation(len(members))
        exact = float(np.float32(len(members)) * np.float32(fraction))   # Float arithmetic, rounded half away from zero
        take = min(len(members) - 1, int(np.floor(exact + 0.5)))
        held.update(members[k] for k in order[:max(0, take)])
    return [i for i in range(len(labels)) if i not in held], sorted(held)


def spec_of(args):
    if args.spec:
        return args.spec
    frames = "frames(conv 3 16 relu | pool 2 | conv 3 32 relu | pool 2 | dense 64 relu)"
    recurrent = ("gru" if args.gru else "lstm") + " 64" + (" bi" if args.bi else "")
    return f"{frames} | {recurrent} seq | attention | dense 5" if args.attention else f"{frames} | {recurrent} | dense 5"


def init(model):
    """Glorot-uniform weights and zero biases for convs and denses (ollie's init); the recurrent
    layers and the attention keep PyTorch's."""
    skip = {id(m) for a in model.modules() if isinstance(a, pytorch_check.Attention) for m in a.modules()}
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and id(m) not in skip:
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(x[i:i + 64]).argmax(1) for i in range(0, len(y), 64)])
    return (predicted == y).float().mean().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="the trick clips' folder (DIR/train/<trick>/…, DIR/test/<trick>/…) or an ollie decoded-cache .bin")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--bi", action="store_true", help="bidirectional LSTM (lstm 64 bi)")
    parser.add_argument("--attention", action="store_true", help="attention over every step (lstm 64 seq | attention)")
    parser.add_argument("--gru", action="store_true", help="a GRU instead of the LSTM")
    parser.add_argument("--spec", help="another ollie spec to train instead (the options above then do nothing)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--val", type=float, default=0.1, help="fraction of the training clips held out as ollie's `set val` does; 0: none")
    parser.add_argument("--seed", type=int, default=1, help="ollie's seed (the validation split), and PyTorch's")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--noise", type=float, default=0.0, help="σ of Gaussian noise added to the training inputs")
    parser.add_argument("--torch-init", action="store_true", help="PyTorch's default initialisation everywhere (not ollie's Glorot)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    if args.data.endswith(".bin"):   # the clips exactly as ollie decoded them (its decoded cache)
        _, ((xtr, ytr), (xte, yte)) = pytorch_check.read_decoded(args.data)
    else:
        import torch_video_bench
        xtr, ytr, _ = torch_video_bench.load(args.data, "train", args.frames, args.size)
        xte, yte, _ = torch_video_bench.load(args.data, "test", args.frames, args.size)
    xva = yva = None
    if args.val > 0:
        train, held = validation_split(ytr.tolist(), args.val, args.seed)
        xva, yva = xtr[held], ytr[held]
        xtr, ytr = xtr[train], ytr[train]

    spec = spec_of(args)
    model = pytorch_check.build(spec, tuple(xtr.shape[1:]))
    if not args.torch_init:
        init(model)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; {len(ytr)} training clips"
          f"{f', {len(yva)} validation' if yva is not None else ''}, {len(yte)} test, each {tuple(xtr.shape[1:])}", flush=True)
    print(f"{spec} ({parameters} parameters)\n{model}", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    order = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        model.train()
        started, total = time.time(), 0.0
        for batch in torch.randperm(len(ytr), generator=order).split(args.batch):
            x = xtr[batch]
            if args.noise > 0:
                x = x + args.noise * torch.randn_like(x)
            loss = F.cross_entropy(model(x), ytr[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        seconds = time.time() - started
        val = f", val accuracy {accuracy(model, xva, yva):.4f}" if yva is not None else ""
        print(f"epoch {epoch}: train {seconds:.2f}s ({len(ytr) / seconds:.1f} clips/s), train loss {total / len(ytr):.4f}"
              f"{val}, test accuracy {accuracy(model, xte, yte):.4f}", flush=True)


if __name__ == "__main__":
    main()
