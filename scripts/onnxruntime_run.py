"""Runs an ONNX classifier in onnxruntime on a batch read from a file and writes its output.

    onnxruntime_run.py [--check] MODEL INPUT OUTPUT

INPUT holds raw little-endian float32 values, samples one after another in the layout the model's
input states ([N, C, H, W], [N, C, T, H, W] or [N, F]; N is however many samples the file holds).
OUTPUT gets the model's first output (ollie's "logits", [N, classes]) the same way. Prints nothing
on success; a problem is one line on stderr and exit status 1. --check first runs the onnx package's
full checker (with shape inference) on the model. ollie's ONNX export tests use it.
"""
import argparse
import sys

import numpy as np
import onnxruntime


def main():
    parser = argparse.ArgumentParser(description="Run an ONNX model in onnxruntime on raw float32 samples.")
    parser.add_argument("model", help="the .onnx file")
    parser.add_argument("input", help="raw little-endian float32 samples, in the model's input layout")
    parser.add_argument("output", help="where the first output goes, as raw little-endian float32")
    parser.add_argument("--check", action="store_true", help="check the model with onnx.checker (full_check) first")
    args = parser.parse_args()

    if args.check:
        import onnx
        onnx.checker.check_model(onnx.load(args.model), full_check=True)

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1   # small batches; the machine is shared with the build
    session = onnxruntime.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    sample_shape = model_input.shape[1:]
    if not all(isinstance(size, int) for size in sample_shape):
        sys.exit(f"{args.model}: the input {model_input.name} has no fixed sample shape ({model_input.shape})")
    values = np.fromfile(args.input, dtype="<f4")
    per_sample = int(np.prod(sample_shape))
    if values.size == 0 or values.size % per_sample != 0:
        sys.exit(f"{args.input}: {values.size} values are not whole samples of {sample_shape} ({per_sample} values each)")
    batch = values.reshape([values.size // per_sample] + sample_shape)
    output = session.run(None, {model_input.name: batch})[0]
    np.ascontiguousarray(output, dtype="<f4").tofile(args.output)


if __name__ == "__main__":
    main()
