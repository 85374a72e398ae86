import Foundation
import ONNX
import ONNXProto
import XCTest

final class ONNXFileTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "onnx-file-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// A one-node graph (y = relu(x)) with one initializer.
    func tinyModel(weights: [Float] = [1, -2, 3.5]) -> Onnx_ModelProto {
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var node = Onnx_NodeProto()
        node.opType = "Relu"
        node.input = ["x"]
        node.output = ["y"]
        model.graph.node = [node]
        model.graph.initializer = [Onnx_TensorProto(name: "w", shape: [3], floats: weights)]
        return model
    }

    func testWriteThenReadGivesTheSameGraphAndValues() throws {
        let path = folder + "/tiny.onnx"
        try ONNXFile.write(tinyModel(), to: path)
        let read = try ONNXFile.read(path)
        XCTAssertEqual(read.graph.node.map(\.opType), ["Relu"])
        XCTAssertEqual(try read.graph.initializer[0].floatValues(), [1, -2, 3.5])
        XCTAssertEqual(read.graph.initializer[0].shape, [3])
    }

    func testTruncatedEmptyAndForeignFilesAreOneLineErrors() throws {
        let path = folder + "/tiny.onnx"
        try ONNXFile.write(tinyModel(), to: path)
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try whole.prefix(whole.count - 5).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ONNXFile.read(path)) { XCTAssertTrue("\($0)".contains("export it again"), "\($0)") }
        try Data().write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ONNXFile.read(path)) { XCTAssertTrue("\($0)".contains("is empty"), "\($0)") }
        try Data("conv 3 16 relu | dense 10\n".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ONNXFile.read(path)) { XCTAssertFalse("\($0)".contains("\n"), "\($0)") }
        XCTAssertThrowsError(try ONNXFile.read(folder + "/missing.onnx")) { XCTAssertTrue("\($0)".contains("missing.onnx"), "\($0)") }
        XCTAssertThrowsError(try ONNXFile.read(folder)) { XCTAssertFalse("\($0)".isEmpty) }
    }

    func testExternalDataIsReadFromBesideTheModelAndItsAbsenceNamed() throws {
        var model = tinyModel()
        var tensor = Onnx_TensorProto()
        tensor.name = "w"
        tensor.dims = [2]
        tensor.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.dataLocation = .external
        for (key, value) in [("location", "w.bin"), ("offset", "4"), ("length", "8")] {
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            tensor.externalData.append(entry)
        }
        model.graph.initializer = [tensor]
        let path = folder + "/external.onnx"
        try ONNXFile.write(model, to: path)
        XCTAssertThrowsError(try ONNXFile.read(path)) { XCTAssertTrue("\($0)".contains("w.bin"), "\($0)") }
        let floats: [Float] = [9, 0.25, -4]
        try floats.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: folder + "/w.bin"))
        XCTAssertEqual(try ONNXFile.read(path).graph.initializer[0].floatValues(), [0.25, -4])
        // A location outside the model's folder is refused rather than read.
        model.graph.initializer[0].externalData[0].value = "../w.bin"
        try ONNXFile.write(model, to: path)
        XCTAssertThrowsError(try ONNXFile.read(path)) { XCTAssertTrue("\($0)".contains("beside the model"), "\($0)") }
    }

    func testIntegerAndDoubleTensorsConvert() throws {
        XCTAssertEqual(try Onnx_TensorProto(name: "s", shape: [2], int64s: [1, -1]).integerValues(), [1, -1])
        var doubles = Onnx_TensorProto()
        doubles.dims = [2]
        doubles.dataType = Int32(Onnx_TensorProto.DataType.double.rawValue)
        doubles.doubleData = [0.5, 2]
        XCTAssertEqual(try doubles.floatValues(), [0.5, 2])
        var wrongCount = Onnx_TensorProto(name: "w", shape: [4], floats: [1, 2])
        wrongCount.name = "w"
        XCTAssertThrowsError(try wrongCount.floatValues()) { XCTAssertTrue("\($0)".contains("corrupt"), "\($0)") }
    }
}
