#!/usr/bin/env python3
"""Writes a small trick-video set to learn on: MNIST digits riding a skateboard, one folder per
trick, the class given by the motion only:

  roll      the board rolls along
  ollie     the rider and board hop together
  kickflip  they hop while the board flips about its long axis
  shuvit    the board spins flat under the rider
  manual    the board rolls tilted, nose up

Digit, direction, position, speed, timing and noise are drawn from the seed, so the same seed
writes the same files. Clips are real video files encoded by the ffmpeg program (H.264 MP4 by
default): DIR/train/<trick>/NNNN.mp4 and DIR/test/<trick>/NNNN.mp4.

Usage: python3 scripts/make_tricks.py DIR [--train 160] [--test 40] [--frames 40] [--size 64]
       [--fps 24] [--seed 1] [--codec libx264|mjpeg|libvpx-vp9] [--digits MNIST_DIR]
Needs numpy and the ffmpeg program (scripts/setup.sh installs it).
"""
import argparse, gzip, os, struct, subprocess, sys

import numpy as np

TRICKS = ["kickflip", "manual", "ollie", "roll", "shuvit"]


def read_digits(folder):
    """MNIST's training digits as uint8 [N, 28, 28], or None when the files are not there."""
    for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            raw = (gzip.open if name.endswith(".gz") else open)(path, "rb").read()
            count, rows, cols = struct.unpack(">III", raw[4:16])
            return np.frombuffer(raw[16:], dtype=np.uint8).reshape(count, rows, cols)
    return None


def stick_figure(rng):
    """A rider when MNIST is not at hand: a head and a body, drawn with some variation."""
    figure = np.zeros((28, 28), np.uint8)
    head = 4 + rng.integers(0, 3)
    yy, xx = np.mgrid[0:28, 0:28]
    figure[(yy - 6) ** 2 + (xx - 14) ** 2 <= head * head] = 255
    figure[10:26, 12:16] = 255
    figure[14:17, 6:22] = 200
    return figure


def polygon(canvas, corners, value):
    """Fills the convex polygon `corners` [(x, y), …] on canvas (max with what is there)."""
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    x0, x1 = max(int(np.floor(min(xs))), 0), min(int(np.ceil(max(xs))), canvas.shape[1] - 1)
    y0, y1 = max(int(np.floor(min(ys))), 0), min(int(np.ceil(max(ys))), canvas.shape[0] - 1)
    if x0 > x1 or y0 > y1:
        return
    yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1] + 0.5
    inside = np.ones(yy.shape, bool)
    n = len(corners)
    sign = None
    for i in range(n):
        (ax, ay), (bx, by) = corners[i], corners[(i + 1) % n]
        cross = (bx - ax) * (yy - ay) - (by - ay) * (xx - ax)
        if sign is None:
            sign = np.sign((bx - ax) * (np.mean(ys) - ay) - (by - ay) * (np.mean(xs) - ax)) or 1
        inside &= cross * sign >= 0
    region = canvas[y0:y1 + 1, x0:x1 + 1]
    np.maximum(region, np.where(inside, value, 0), out=region)


def paste(canvas, image, x, y):
    """Pastes `image` with its top-left at (x, y) (max with what is there), clipped."""
    h, w = image.shape
    x, y = int(round(x)), int(round(y))
    cx0, cy0 = max(x, 0), max(y, 0)
    cx1, cy1 = min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])
    if cx0 >= cx1 or cy0 >= cy1:
        return
    region = canvas[cy0:cy1, cx0:cx1]
    np.maximum(region, image[cy0 - y:cy1 - y, cx0 - x:cx1 - x], out=region)


def render(trick, digit, frames, size, rng):
    """One clip: uint8 [frames, size, size]."""
    scale = size / 64
    rider = digit[::2, ::2].astype(np.float32)             # 14×14
    rider = np.kron(rider, np.ones((max(1, round(scale)),) * 2))[: int(14 * scale) + 1, : int(14 * scale) + 1]
    direction = rng.choice([-1, 1])
    speed = rng.uniform(0.3, 0.7) * scale * 40 / frames    # pixels a frame: the ride stays in view
    travel = speed * frames
    margin = 13 * scale
    start = rng.uniform(margin, size - margin - travel) if direction > 0 else rng.uniform(margin + travel, size - margin)
    ground = rng.uniform(44, 54) * scale
    begin = rng.integers(frames // 6, frames // 3)            # when the trick starts
    length = rng.integers(frames // 3, frames // 2)           # how long it lasts
    half_board = rng.uniform(10, 13) * scale
    noise = rng.uniform(4, 14)
    clip = np.zeros((frames, size, size), np.float32)
    for f in range(frames):
        canvas = np.zeros((size, size), np.float32)
        x = start + direction * speed * f
        phase = (f - begin) / length if begin <= f < begin + length else None
        lift = 0.0
        if phase is not None and trick in ("ollie", "kickflip"):
            lift = 4 * phase * (1 - phase) * rng.uniform(13, 16) * scale
        flip = 2 * np.pi * phase if phase is not None and trick == "kickflip" else 0.0
        spin = 2 * np.pi * phase if phase is not None and trick == "shuvit" else 0.0
        tilt = 0.35 * direction if trick == "manual" and phase is not None else 0.0
        y = ground - lift
        # The board: along x its length shrinks with the flat spin; its thickness (and which
        # face shows) changes with the flip; a manual tilts it, nose up.
        length_now = half_board * max(abs(np.cos(spin)), 0.15)
        thickness = 1.5 * scale + 2.5 * scale * abs(np.sin(flip))
        shade = 200 if np.cos(flip) >= 0 else 120
        c, s = np.cos(tilt), np.sin(tilt)
        corners = [(x + dx * c - dy * s, y + dx * s + dy * c)
                   for dx, dy in ((-length_now, -thickness / 2), (length_now, -thickness / 2),
                                  (length_now, thickness / 2), (-length_now, thickness / 2))]
        polygon(canvas, corners, shade)
        # Wheels, under the board unless it is upside down in the flip.
        if np.cos(flip) > 0.3:
            for end in (-0.7, 0.7):
                wx, wy = x + end * length_now * c, y + end * length_now * s + thickness / 2 + 1.2 * scale
                polygon(canvas, [(wx - 1.2 * scale, wy - 1.2 * scale), (wx + 1.2 * scale, wy - 1.2 * scale),
                                 (wx + 1.2 * scale, wy + 1.2 * scale), (wx - 1.2 * scale, wy + 1.2 * scale)], 255)
        # The rider stands on the board (leaning back in a manual).
        paste(canvas, rider, x - rider.shape[1] / 2 - tilt * 6 * scale, y - thickness / 2 - rider.shape[0] - lift * 0.1)
        clip[f] = canvas
    clip += rng.normal(0, noise, clip.shape)
    return np.clip(clip, 0, 255).astype(np.uint8)


def encode(clip, path, fps, codec):
    frames, height, width = clip.shape
    options = {"libx264": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-preset", "veryfast"],
               "mjpeg": ["-c:v", "mjpeg", "-q:v", "3"],
               "libvpx-vp9": ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "30", "-deadline", "realtime"]}[codec]
    command = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{width}x{height}",
               "-r", str(fps), "-i", "-"] + options + [path]
    subprocess.run(command, input=clip.tobytes(), check=True, stdin=None)


def main():
    # The whole first paragraph (the trick list too), kept as written: its first line alone stops mid-sentence.
    parser = argparse.ArgumentParser(description=__doc__.split("\n\nDigit")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to write DIR/train/<trick>/ and DIR/test/<trick>/ into")
    parser.add_argument("--train", type=int, default=160, help="clips per trick for training")
    parser.add_argument("--test", type=int, default=40, help="clips per trick for testing")
    parser.add_argument("--frames", type=int, default=40, help="frames per clip")
    parser.add_argument("--size", type=int, default=64, help="side of the square frames, in pixels")
    parser.add_argument("--fps", type=int, default=24, help="frame rate written in the files")
    parser.add_argument("--seed", type=int, default=1, help="the same seed writes the same files")
    parser.add_argument("--codec", default="libx264", choices=["libx264", "mjpeg", "libvpx-vp9"], help="ffmpeg encoder")
    parser.add_argument("--digits", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/datasets/mnist"),
                        help="folder of the MNIST IDX files the riders are drawn from")
    args = parser.parse_args()
    extension = {"libx264": ".mp4", "mjpeg": ".avi", "libvpx-vp9": ".webm"}[args.codec]
    rng = np.random.default_rng(args.seed)
    digits = read_digits(args.digits)
    written = 0
    for split, count in (("train", args.train), ("test", args.test)):
        for trick in TRICKS:
            folder = os.path.join(args.out, split, trick)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                digit = digits[rng.integers(len(digits))] if digits is not None else stick_figure(rng)
                clip = render(trick, digit, args.frames, args.size, rng)
                encode(clip, os.path.join(folder, f"{i:04d}{extension}"), args.fps, args.codec)
                written += 1
    print(f"wrote {written} clips of {args.frames} frames, {args.size}×{args.size}, to {args.out}"
          f" ({len(TRICKS)} tricks: {', '.join(TRICKS)}; digits from {'MNIST' if digits is not None else 'stick figures'})")


if __name__ == "__main__":
    sys.exit(main())
