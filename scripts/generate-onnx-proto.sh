#!/usr/bin/env bash
# Regenerates Sources/ONNXProto/onnx.pb.swift from the onnx.proto that PyPI's `onnx` package
# ships. Run by hand when ONNX's schema changes, then commit the result: builds never run protoc
# (building swift-protobuf's plugin alone takes minutes). Needs protoc (apt: protobuf-compiler).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv" && "$work/venv/bin/pip" install -q onnx
proto=$("$work/venv/bin/python" -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "onnx.proto"))')
version=$(grep -o 'swift-protobuf", from: "[0-9.]*' Package.swift | grep -o '[0-9.]*$')
git clone -q --branch "$version" https://github.com/apple/swift-protobuf "$work/swift-protobuf"
swift build -c release --package-path "$work/swift-protobuf" --product protoc-gen-swift
cp "$proto" "$work/onnx.proto"
protoc --plugin=protoc-gen-swift="$work/swift-protobuf/.build/release/protoc-gen-swift" \
  --swift_out="$work" --swift_opt=Visibility=Public -I "$work" "$work/onnx.proto"
cp "$work/onnx.pb.swift" Sources/ONNXProto/onnx.pb.swift
echo "regenerated from onnx $("$work/venv/bin/python" -c 'import onnx; print(onnx.__version__)')"
