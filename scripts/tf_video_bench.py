#!/usr/bin/env python3
"""The TensorFlow peer for training on clips (issue 10's benchmark): examples/tricks.ollie's 3-D net
in Keras (Conv3D / MaxPooling3D / GlobalAveragePooling3D, channels last), on the clips exactly as
ollie decoded them (one of its decoded-cache files), batch 16, Adam (epsilon 1e-8, as ollie),
Glorot-uniform kernels and zero biases (Keras' defaults, as ollie), GaussianNoise as ollie's noise,
the two cores TF finds by itself; prints clips/s per epoch and the test accuracy. Epoch 1 includes
tracing the train function.
Usage: /tmp/tfenv/bin/python scripts/tf_video_bench.py DECODED.bin [EPOCHS] [LR] [NOISE]
(TensorFlow from a venv: python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu)
"""
import json, struct, sys, time

import numpy as np
import tensorflow as tf
import keras


def read_decoded(path):
    """ollie's decoded cache (Datasets/DecodedCache.swift), as scripts/pytorch_check.py reads it,
    with samples kept channels last: [N, T, H, W, C]."""
    with open(path, "rb") as f:
        assert f.read(8) == b"OLLIEDC1", f"{path} is not an ollie decoded-cache file"
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        raw = f.read()
    shape = (header.get("frames", 1), header["height"], header["width"], header["channels"])
    values, offset, splits = int(np.prod(shape)), 0, []
    for count in (header["trainCount"], header["testCount"]):
        x = np.frombuffer(raw, "<f4", count * values, offset).reshape((count,) + shape)
        offset += 4 * count * values
        y = np.frombuffer(raw, "<i4", count, offset).astype(np.int32)
        offset += 4 * count
        splits.append((x, y))
    return header, splits


def main():
    path = sys.argv[1]
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
    sigma = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
    keras.utils.set_random_seed(0)
    header, ((xtr, ytr), (xte, yte)) = read_decoded(path)
    classes = len(header["classNames"])
    L = keras.layers
    model = keras.Sequential([
        keras.Input(xtr.shape[1:]),
        L.GaussianNoise(sigma),
        L.Conv3D(16, 3, padding="same", activation="relu"), L.MaxPooling3D((1, 2, 2)),
        L.Conv3D(32, 3, padding="same", activation="relu"), L.MaxPooling3D(2),
        L.Conv3D(32, 3, padding="same", activation="relu"), L.MaxPooling3D(2),
        L.GlobalAveragePooling3D(), L.Dense(classes)])
    model.compile(optimizer=keras.optimizers.Adam(rate, epsilon=1e-8),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    print(f"TensorFlow {tf.__version__}, {len(ytr)} clips {xtr.shape[1:]}, "
          f"intra_op={tf.config.threading.get_intra_op_parallelism_threads()} (0 = TF's default)", flush=True)
    forward = tf.function(lambda x: model(x, training=False))
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        history = model.fit(xtr, ytr, batch_size=16, epochs=1, shuffle=False, verbose=0)
        seconds = time.perf_counter() - started
        logits = np.concatenate([forward(tf.constant(xte[i:i + 64])).numpy() for i in range(0, len(xte), 64)])
        accuracy = float((logits.argmax(1) == yte).mean())
        print(f"epoch {epoch}: train {seconds:.2f}s ({len(ytr) / seconds:.0f} clips/s) loss {history.history['loss'][0]:.4f}, "
              f"test accuracy {accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
