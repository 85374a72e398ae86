import XCTest
import Foundation
import ONNX
import ONNXProto
import Tensor
import Tracking
@testable import Session

/// `export onnx FILE`: the session's model as an ONNX file that onnxruntime runs to the same
/// predictions, with the input recipe in its metadata; refused without a model or a file name.
final class ONNXExportCommandTests: SessionTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let python = repository + "/.venv-onnx/bin/python"

    func testExportONNXWritesTheTrainedModelWithItsInputRecipe() throws {
        try writeQuadrantIDX(to: folder + "/q", train: 128, test: 32, seed: 1)
        run("load idx \(folder)/q; set batch 32; set target off; build conv 3 4 relu | pool 2 | batchnorm | dense 4; train 1")
        let line = run("export onnx \(folder)/out/quadrants.onnx")
        XCTAssertNotNil(line.range(of: #"^wrote \S+/out/quadrants\.onnx \([0-9.]+ KB, ONNX opset 17\): input 1×8×8, 4 classes$"#,
                                   options: .regularExpression), line)
        let proto = try ONNXFile.read(folder + "/out/quadrants.onnx")
        let metadata = Dictionary(uniqueKeysWithValues: proto.metadataProps.map { ($0.key, $0.value) })
        XCTAssertEqual(metadata["ollie.spec"], "conv 3 4 relu | pool 2 | batchnorm | dense 4")
        XCTAssertEqual(metadata["ollie.input_shape"], "[1,8,8]")
        XCTAssertEqual(metadata["ollie.class_names"], "[\"0\",\"1\",\"2\",\"3\"]")
        XCTAssertEqual(metadata["ollie.load"], "[\"idx\",\"\(folder)/q\"]")
        XCTAssertNil(metadata["ollie.normalize"], "no normalisation was loaded")
        try assertONNXRuntimePredictsAsTheSession(folder + "/out/quadrants.onnx")
        // ollie's own import reads it back to the same model.
        let accuracy = run("accuracy")
        XCTAssertTrue(run("build \(folder)/out/quadrants.onnx").contains("conv 3 4 relu | pool 2 | batchnorm | dense 4"))
        XCTAssertEqual(run("accuracy"), accuracy)

        // Restored with no data loaded, the model keeps the checkpoint's recipe.
        run("save \(folder)/q.safetensors")
        session = Session(store: try RunStore(path: folder + "/other.sqlite"), checkpointDirectory: folder + "/other")
        XCTAssertTrue(run("restore \(folder)/q.safetensors").contains("no data loaded"))
        XCTAssertTrue(run("export onnx \(folder)/restored.onnx").hasPrefix("wrote "))
        let restored = try ONNXFile.read(folder + "/restored.onnx")
        XCTAssertEqual(restored.metadataProps.map(\.key), ["ollie.class_names", "ollie.input_shape", "ollie.load", "ollie.spec"])
        XCTAssertEqual(restored.graph.initializer.map(\.rawData), proto.graph.initializer.map(\.rawData), "the same weights")
    }

    func testExportONNXWithoutAModelOrAFileNameSaysWhatToDo() throws {
        XCTAssertEqual(run("export onnx \(folder)/m.onnx", ok: false), "error: no model yet; run: load mnist, then build conv")
        loadQuadrants()
        run("build conv 3 4 relu | dense 4")
        XCTAssertEqual(run("export onnx \(folder)", ok: false),
                       "error: \(folder) names a folder, not a file; give a file name inside it, e.g. \(folder)/NAME")
        XCTAssertTrue(run("export onnx", ok: false).contains("export onnx FILE"))
        XCTAssertTrue(run("export onnx a.onnx b.onnx", ok: false).hasPrefix("error: usage: export onnx FILE"))
        XCTAssertTrue(run("export tflite m.tflite", ok: false).contains("export onnx FILE"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/m.onnx"))
        XCTAssertTrue(session.completesFiles(for: "export onnx mo"))
        XCTAssertEqual(session.completions(for: "export o"), ["onnx"])
    }

    /// The exported file, run by scripts/onnxruntime_run.py on the test images, gives the
    /// session model's logits (to 1e-4) and so its predictions.
    func assertONNXRuntimePredictsAsTheSession(_ path: String) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("no \(Self.python): bash scripts/test-peers.sh installs it") }
            throw XCTSkip("no \(Self.python) with onnxruntime (bash scripts/test-peers.sh installs it)")
        }
        let data = try XCTUnwrap(session.dataset), model = try XCTUnwrap(session.model)
        // One channel: the images' values are already [N, 1, H, W] for ONNX and [1, N, H, W] for ollie.
        let images = data.test.images, n = data.test.labels.count
        let logits = model.forward(Tensor([1, n, 8, 8], images), training: false)
        let input = folder + "/images.bin", output = folder + "/logits.bin"
        try images.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: input))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [Self.repository + "/scripts/onnxruntime_run.py", path, input, output]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let theirs = try Data(contentsOf: URL(fileURLWithPath: output)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(theirs.count, logits.count)
        XCTAssertLessThanOrEqual(zip(theirs, logits.data).map { abs($0 - $1) }.max() ?? .infinity, 1e-4)
    }
}
