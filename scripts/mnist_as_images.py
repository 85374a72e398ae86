#!/usr/bin/env python3
"""Writes MNIST as an image folder, for `load images` and its benchmark: DIR/train/<digit>/N.png
and DIR/test/<digit>/N.png (or .jpg with --jpeg), 70,000 files.
Usage: /usr/bin/python3 scripts/mnist_as_images.py OUT_DIR [MNIST_DIR] [--jpeg]   (needs PIL: python3-pil)
"""
import os, sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_check import find, read_idx  # noqa: E402


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args:
        sys.exit(__doc__)
    out, folder = args[0], args[1] if len(args) > 1 else "../shared/datasets/mnist"
    ext = ".jpg" if "--jpeg" in sys.argv else ".png"
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(find(folder, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(find(folder, f"{prefix}-labels-idx1-ubyte"))
        for digit in range(10):
            os.makedirs(os.path.join(out, split, str(digit)), exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L").save(os.path.join(out, split, str(label), f"{i}{ext}"))
    print(f"wrote {out}: {len(os.listdir(os.path.join(out, 'train')))} classes")


if __name__ == "__main__":
    main()
