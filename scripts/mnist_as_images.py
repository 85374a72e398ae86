#!/usr/bin/env python3
"""Writes MNIST as an image folder, for `load images` and its benchmark:
OUT_DIR/train/<digit>/N.png and OUT_DIR/test/<digit>/N.png, 70,000 files (fewer with --limit).
With --color, each digit becomes a 32×32 RGB image (padded by 2): the digit in one random
colour over a background of another, with a little per-pixel noise, drawn from the image's
index (the same files every time): an RGB folder for `res(…)` networks, whose colours carry
nothing about the class.

PNGs are written with the standard library alone (zlib and struct); --jpeg needs PIL
(apt-get install python3-pil, or pip install pillow).
"""
import argparse, gzip, os, struct, sys, zlib


def read_idx(path):
    """An IDX file (raw or .gz) as (shape, bytes)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return shape, raw[4 + 4 * dims:]


def find(folder, stem):
    for name in (stem + ".gz", stem):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    sys.exit(f"no {stem}(.gz) in {folder}; give the folder of the four MNIST IDX files as MNIST_DIR")


def png_gray(height, width, pixels):
    """An 8-bit grayscale PNG: signature, IHDR, one IDAT (filter 0 on every row), IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def png_rgb(height, width, pixels):
    """An 8-bit RGB PNG (colour type 2) of height×width×3 bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    stride = width * 3
    rows = b"".join(b"\x00" + pixels[y * stride:(y + 1) * stride] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def colored(index, height, width, pixels, pad=2):
    """The digit over a background, each a random colour, padded to (height+2·pad)²."""
    import random
    draw = random.Random(index)
    foreground = [draw.randrange(256) for _ in range(3)]
    background = [draw.randrange(256) for _ in range(3)]
    while sum(abs(f - b) for f, b in zip(foreground, background)) < 150:   # keep the digit visible
        background = [draw.randrange(256) for _ in range(3)]
    side_h, side_w = height + 2 * pad, width + 2 * pad
    out = bytearray()
    for y in range(side_h):
        for x in range(side_w):
            inside = pad <= y < height + pad and pad <= x < width + pad
            a = pixels[(y - pad) * width + (x - pad)] / 255 if inside else 0
            for c in range(3):
                value = background[c] * (1 - a) + foreground[c] * a + draw.uniform(-12, 12)
                out.append(max(0, min(255, int(round(value)))))
    return side_h, side_w, bytes(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", metavar="OUT_DIR", help="folder to write train/<digit>/ and test/<digit>/ into")
    parser.add_argument("mnist", metavar="MNIST_DIR", nargs="?", default="../shared/datasets/mnist",
                        help="folder of the four IDX files (default: ../shared/datasets/mnist)")
    parser.add_argument("--limit", type=int, metavar="N", help="write only the first N images of each split")
    parser.add_argument("--jpeg", action="store_true", help="write JPEG files instead of PNG (needs PIL)")
    parser.add_argument("--color", action="store_true", help="32×32 RGB digits in random colours (PNG)")
    args = parser.parse_args()
    if args.limit is not None and args.limit < 1:
        parser.error("--limit needs a whole number of at least 1")
    if args.jpeg and args.color:
        parser.error("--color writes PNGs; leave out --jpeg")
    if args.jpeg:
        try:
            from PIL import Image
        except ImportError:
            sys.exit("--jpeg needs PIL: apt-get install python3-pil (or pip install pillow); PNGs need nothing")
    written = 0
    for split, prefix in (("train", "train"), ("test", "t10k")):
        (count, height, width), images = read_idx(find(args.mnist, f"{prefix}-images-idx3-ubyte"))
        _, labels = read_idx(find(args.mnist, f"{prefix}-labels-idx1-ubyte"))
        for i in range(min(count, args.limit or count)):
            pixels = images[i * height * width:(i + 1) * height * width]
            # A class folder only for digits that occur: with --limit an empty one would stop `load images`.
            folder = os.path.join(args.out, split, str(labels[i]))
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f"{i}.{'jpg' if args.jpeg else 'png'}")
            if args.color:
                with open(path, "wb") as f:
                    f.write(png_rgb(*colored(i + (0 if split == "train" else 60000), height, width, pixels)))
            elif args.jpeg:
                Image.frombytes("L", (width, height), pixels).save(path)
            else:
                with open(path, "wb") as f:
                    f.write(png_gray(height, width, pixels))
            written += 1
    print(f"wrote {written} {'RGB ' if args.color else ''}images to {args.out} (train/ and test/, 10 classes)")


if __name__ == "__main__":
    main()
