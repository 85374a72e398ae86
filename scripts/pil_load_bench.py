#!/usr/bin/env python3
"""The PIL side of the `load images` benchmark: one Python process reads every image of an
image folder with Image.open(...).convert("L") into one float32 array in [0, 1], as a user
would without a data loader. Usage: /usr/bin/python3 scripts/pil_load_bench.py DIR
"""
import os, sys, time

import numpy as np
from PIL import Image


def main():
    root = sys.argv[1]
    started = time.time()
    arrays, labels = [], []
    for split in ("train", "test"):
        for label, name in enumerate(sorted(os.listdir(os.path.join(root, split)))):
            folder = os.path.join(root, split, name)
            for file in sorted(os.listdir(folder)):
                arrays.append(np.asarray(Image.open(os.path.join(folder, file)).convert("L"), dtype=np.float32) / 255)
                labels.append(label)
    data = np.stack(arrays)
    print(f"PIL: {len(labels)} images {data.shape[1:]} in {time.time() - started:.2f} s")


if __name__ == "__main__":
    main()
