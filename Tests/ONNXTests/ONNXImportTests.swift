import Foundation
import NN
import ONNX
import ONNXProto
import Tensor
import XCTest

/// ONNX import against PyTorch's exporter and onnxruntime (scripts/torch_to_onnx.py, run by
/// .venv-onnx/bin/python, which scripts/test-peers.sh installs): each model's logits from
/// ollie's forward must match onnxruntime's on 32 random inputs. And one-line refusals of
/// graphs ollie cannot express, built by hand.
final class ONNXImportTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "onnx-import-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    // MARK: - Against PyTorch and onnxruntime

    /// torchvision's resnet18 (weights=None, random batchnorm statistics), exported in eval mode:
    /// batchnorms folded into the convs, basic blocks with identity and projection shortcuts, a
    /// padded max-pool stem. 3×64×64 inputs keep the test fast (the graph is the same at 224).
    func testResNet18MatchesOnnxruntime() throws {
        try requireGrammar("pool 3 stride 2 pad 1", for: "resnet18's stem max-pool")
        let (imported, difference) = try importAndCompare("resnet18")
        XCTAssertTrue(imported.spec.text.hasPrefix("conv 7 64 stride 2 relu | pool 3 stride 2"), imported.spec.text)
        XCTAssertTrue(imported.spec.text.contains("| res(conv 3 64 relu | conv 3 64) | relu | res(conv 3 128 stride 2 relu | conv 3 128) | relu |"),
                      imported.spec.text)
        XCTAssertTrue(imported.spec.text.hasSuffix("| gap | dense 1000"), imported.spec.text)
        XCTAssertEqual(imported.spec.text.components(separatedBy: "res(").count - 1, 8)
        print("resnet18: max |Δ| \(difference)")
    }

    /// torchvision's mobilenet_v2 at 3×64×64: depthwise convs (groups), relu6 (Clip 0..6),
    /// inverted residual blocks without an activation after the add.
    func testMobileNetV2MatchesOnnxruntime() throws {
        try requireGrammar("conv 3 32 groups 32 relu6", for: "mobilenet_v2's depthwise convolutions")
        let (imported, difference) = try importAndCompare("mobilenet_v2")
        XCTAssertTrue(imported.spec.text.contains("groups"), imported.spec.text)
        XCTAssertEqual(imported.spec.text.components(separatedBy: "res(").count - 1, 10)
        print("mobilenet_v2: max |Δ| \(difference)")
    }

    /// A convnet with a batchnorm torch could not fold (after a pool), leaky relu, tanh, an
    /// average pool, flatten, sigmoid and two dense layers.
    func testSmallConvNetWithBatchNormMatchesOnnxruntime() throws {
        let (imported, _) = try importAndCompare("convbn")
        XCTAssertEqual(imported.spec.text, "conv 3 8 relu | pool 2 | batchnorm | conv 3 16 stride 2 leakyrelu | conv 5 16 tanh | pool 2 avg | dense 32 sigmoid | dense 10")
        XCTAssertEqual(imported.inputShape, [3, 32, 32])
        XCTAssertEqual(imported.tensors["3.running_var"]?.shape, [8])
    }

    /// Residual blocks with identity and projection shortcuts (1×1 conv with the body's
    /// stride, whose batchnorm torch folded into it, as into the body's convs).
    func testResidualNetWithProjectionShortcutsMatchesOnnxruntime() throws {
        let (imported, _) = try importAndCompare("resproj")
        XCTAssertEqual(imported.spec.text, "conv 3 8 relu | res(conv 3 8 relu | conv 3 8) | relu | res(conv 3 16 stride 2 relu | conv 3 16) | relu | res(conv 3 32 stride 2 relu | conv 3 32) | relu | res(conv 3 32 relu | conv 3 32) | relu | gap | dense 10")
        XCTAssertEqual(imported.tensors["4.shortcut.0.weight"]?.shape, [16, 8, 1, 1])
    }

    /// nn.LSTM / nn.GRU (batch_first) classifiers over [N, 9, 12] from h_n, one way and both:
    /// ONNX's gate order and bias halves turned into PyTorch's.
    func testLSTMClassifierMatchesOnnxruntime() throws {
        let (imported, _) = try importAndCompare("lstm")
        XCTAssertEqual(imported.spec.text, "frames(flatten) | lstm 16 | dense 5")
        XCTAssertEqual(imported.inputShape, [1, 9, 1, 12])
    }

    func testBidirectionalLSTMClassifierMatchesOnnxruntime() throws {
        let (imported, _) = try importAndCompare("bilstm")
        XCTAssertEqual(imported.spec.text, "frames(flatten) | lstm 16 bi | dense 5")
    }

    func testGRUClassifierMatchesOnnxruntime() throws {
        let (imported, _) = try importAndCompare("gru")
        XCTAssertEqual(imported.spec.text, "frames(flatten) | gru 16 | dense 5")
    }

    func testBidirectionalGRUClassifierMatchesOnnxruntime() throws {
        let (imported, _) = try importAndCompare("bigru")
        XCTAssertEqual(imported.spec.text, "frames(flatten) | gru 16 bi | dense 5")
        XCTAssertEqual(imported.tensors["1.bias_hh_l0_reverse"]?.shape, [48])
    }

    // MARK: - Refusals (hand-built graphs)

    func testUnknownOperatorIsOneLineNamingTheNodeAndListingWhatOllieImports() throws {
        var graph = GraphBuilder(input: [nil, 3, 8, 8])
        graph.conv("conv", from: "x", to: "c", out: 4, kernel: 3, pads: [1, 1, 1, 1])
        graph.node("HardSwish", name: "/act/HardSwish", inputs: ["c"], outputs: ["y"])
        graph.output("y")
        XCTAssertThrowsError(try ONNXImport.network(from: graph.model, source: "tiny.onnx")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("tiny.onnx: node '/act/HardSwish' (HardSwish): ollie cannot import the operator HardSwish"), message)
            XCTAssertTrue(message.contains("Conv, BatchNormalization"), message)
            XCTAssertFalse(message.contains("\n"), message)
        }
    }

    func testAsymmetricPadsAreRefusedInOneLine() throws {
        var graph = GraphBuilder(input: [nil, 3, 8, 8])
        graph.conv("/stem/Conv", from: "x", to: "y", out: 4, kernel: 3, pads: [0, 0, 1, 1])
        graph.output("y")
        XCTAssertThrowsError(try ONNXImport.network(from: graph.model, source: "pads.onnx")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("node '/stem/Conv' (Conv): asymmetric pads [0, 0, 1, 1]"), message)
            XCTAssertFalse(message.contains("\n"), message)
        }
    }

    func testTruncatedFileIsOneLine() throws {
        var graph = GraphBuilder(input: [nil, 3, 8, 8])
        graph.conv("conv", from: "x", to: "y", out: 4, kernel: 3, pads: [1, 1, 1, 1])
        graph.output("y")
        let path = folder + "/cut.onnx"
        try ONNXFile.write(graph.model, to: path)
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ONNXImport.read(path)) { error in
            XCTAssertTrue("\(error)".contains("cut.onnx"), "\(error)")
            XCTAssertFalse("\(error)".contains("\n"), "\(error)")
        }
    }

    /// A non-batch dimension without a size, two inputs, a branch that is no residual block,
    /// a Clip that is no relu6: each one line naming what to change.
    func testShapesInputsBranchesAndBoundsOllieCannotExpressAreNamed() throws {
        var symbolic = GraphBuilder(input: [nil, 3, nil, 8])
        symbolic.conv("conv", from: "x", to: "y", out: 4, kernel: 3, pads: [1, 1, 1, 1])
        symbolic.output("y")
        XCTAssertThrowsError(try ONNXImport.network(from: symbolic.model, source: "m.onnx")) {
            XCTAssertTrue("\($0)".contains("unknown size at dimension 2"), "\($0)")
        }
        var twoInputs = symbolic
        twoInputs.model.graph.input[0] = GraphBuilder.input("x", [nil, 3, 8, 8])
        twoInputs.model.graph.input.append(GraphBuilder.input("z", [nil, 3, 8, 8]))
        XCTAssertThrowsError(try ONNXImport.network(from: twoInputs.model, source: "m.onnx")) {
            XCTAssertTrue("\($0)".contains("the graph has 2 inputs (x, z)"), "\($0)")
        }
        // Two 3×3 convolutions of the input added: a branch, not a shortcut.
        var branches = GraphBuilder(input: [nil, 3, 8, 8])
        branches.conv("a", from: "x", to: "ya", out: 4, kernel: 3, pads: [1, 1, 1, 1])
        branches.conv("b", from: "x", to: "yb", out: 4, kernel: 3, pads: [1, 1, 1, 1])
        branches.node("Add", name: "/block/Add", inputs: ["ya", "yb"], outputs: ["y"])
        branches.output("y")
        XCTAssertThrowsError(try ONNXImport.network(from: branches.model, source: "m.onnx")) {
            XCTAssertTrue("\($0)".contains("node '/block/Add' (Add): its two branches are not a residual block"), "\($0)")
            XCTAssertFalse("\($0)".contains("\n"), "\($0)")
        }
        var clip = GraphBuilder(input: [nil, 3, 8, 8])
        clip.conv("conv", from: "x", to: "c", out: 4, kernel: 3, pads: [1, 1, 1, 1])
        clip.weight("low", [], [0])
        clip.weight("high", [], [4])
        clip.node("Clip", name: "/clip", inputs: ["c", "low", "high"], outputs: ["y"])
        clip.output("y")
        XCTAssertThrowsError(try ONNXImport.network(from: clip.model, source: "m.onnx")) {
            XCTAssertTrue("\($0)".contains("node '/clip' (Clip): Clip to [0.0, 4.0]"), "\($0)")
        }
    }

    /// A GRU that resets before its linear map (linear_before_reset 0) is not PyTorch's.
    func testGRUWithoutLinearBeforeResetIsRefused() throws {
        var graph = GraphBuilder(input: [nil, 5, 3])
        graph.node("Transpose", name: "t", inputs: ["x"], outputs: ["xt"], ints: ["perm": [1, 0, 2]])
        graph.weight("W", [1, 6, 3], [Float](repeating: 0.1, count: 18))
        graph.weight("R", [1, 6, 2], [Float](repeating: 0.1, count: 12))
        graph.node("GRU", name: "/rnn/GRU", inputs: ["xt", "W", "R"], outputs: ["y", "h"], ints: ["hidden_size": [2]])
        graph.output("h")
        XCTAssertThrowsError(try ONNXImport.network(from: graph.model, source: "m.onnx")) {
            XCTAssertTrue("\($0)".contains("node '/rnn/GRU' (GRU): linear_before_reset 0"), "\($0)")
        }
    }

    // MARK: - Helpers

    /// Skips while this ollie's spec grammar lacks `text` (the layers branch adds it).
    func requireGrammar(_ text: String, for what: String) throws {
        if (try? ModelSpec(parsing: text)) == nil { throw XCTSkip("ollie cannot build `\(text)` yet, which \(what) needs") }
    }

    var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// Exports `name` with scripts/torch_to_onnx.py, imports it, runs ollie's forward on the
    /// script's 32 inputs and requires onnxruntime's logits within 1e-4 and the same argmax.
    /// Returns the import and the largest difference.
    func importAndCompare(_ name: String) throws -> (ImportedNetwork, Float) {
        let python = repository + "/.venv-onnx/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("no .venv-onnx: bash scripts/test-peers.sh installs it") }
            throw XCTSkip("no .venv-onnx/bin/python (bash scripts/test-peers.sh installs torch, torchvision, onnxruntime)")
        }
        let out = folder + "/" + name
        try run(python, [repository + "/scripts/torch_to_onnx.py", name, out, "--inputs", "32", "--seed", "7"])
        let shapes = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/shapes.json"))) as! [String: [Int]]   // swiftlint:disable:this force_cast
        let inputShape = shapes["input"]!, outputShape = shapes["output"]!
        let inputs = try floats(out + "/inputs.bin"), expected = try floats(out + "/outputs.bin")
        let imported = try ONNXImport.read(out + "/model.onnx")
        XCTAssertEqual(imported.classes, outputShape[1])
        let model = try ONNXImport.model(imported, seed: 1)
        let batch = inputShape[0]
        // ONNX's [N, C, D…] → ollie's [C, N, D…]; a sequence [N, T, F] is the clip batch [1, N, T, 1, F] as it is.
        let x: Tensor
        if imported.spec.text.hasPrefix("frames(flatten)") {
            x = Tensor([1, batch, inputShape[1], 1, inputShape[2]], inputs)
        } else {
            let channels = inputShape[1], plane = inputs.count / (batch * channels)
            var values = [Float](repeating: 0, count: inputs.count)
            for n in 0..<batch {
                for c in 0..<channels {
                    for i in 0..<plane { values[(c * batch + n) * plane + i] = inputs[(n * channels + c) * plane + i] }
                }
            }
            x = Tensor([channels, batch] + inputShape.dropFirst(2), values)
        }
        let logits = model.forward(x, training: false)
        XCTAssertEqual(logits.shape, outputShape)
        let difference = zip(logits.data, expected).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(difference, 1e-4, "\(name): \(imported.spec.text)")
        let classes = outputShape[1]
        for n in 0..<batch {
            let ours = logits.data[(n * classes)..<((n + 1) * classes)], theirs = expected[(n * classes)..<((n + 1) * classes)]
            XCTAssertEqual(ours.indices.max { ours[$0] < ours[$1] }, theirs.indices.max { theirs[$0] < theirs[$1] }, "\(name): sample \(n)")
        }
        return (imported, difference)
    }

    func floats(_ path: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data.withUnsafeBytes { raw in (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) } }
    }

    func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw NSError(domain: "python", code: Int(process.terminationStatus), userInfo: [NSLocalizedDescriptionKey: text]) }
    }
}

/// A small ONNX graph written by hand: one float input "x" ([nil] dims are symbolic).
struct GraphBuilder {
    var model = Onnx_ModelProto()

    init(input dims: [Int?]) {
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 17
        model.opsetImport = [opset]
        model.graph.input = [GraphBuilder.input("x", dims)]
    }

    static func input(_ name: String, _ dims: [Int?]) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type.tensorType.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        info.type.tensorType.shape.dim = dims.map { size in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let size { dim.dimValue = Int64(size) } else { dim.dimParam = "batch" }
            return dim
        }
        return info
    }

    mutating func node(_ op: String, name: String, inputs: [String], outputs: [String], ints: [String: [Int]] = [:]) {
        var node = Onnx_NodeProto()
        node.opType = op
        node.name = name
        node.input = inputs
        node.output = outputs
        node.attribute = ints.keys.sorted().map { key in
            var attribute = Onnx_AttributeProto()
            attribute.name = key
            if key == "group" || key == "hidden_size" {
                attribute.type = .int
                attribute.i = Int64(ints[key]![0])
            } else {
                attribute.type = .ints
                attribute.ints = ints[key]!.map(Int64.init)
            }
            return attribute
        }
        model.graph.node.append(node)
    }

    mutating func weight(_ name: String, _ shape: [Int], _ values: [Float]) {
        model.graph.initializer.append(Onnx_TensorProto(name: name, shape: shape, floats: values))
    }

    /// A Conv of `out` channels from 3 with deterministic weights.
    mutating func conv(_ name: String, from input: String, to output: String, out: Int, kernel: Int, pads: [Int]) {
        let count = out * 3 * kernel * kernel
        weight(name + ".weight", [out, 3, kernel, kernel], (0..<count).map { Float($0 % 7) / 10 - 0.3 })
        node("Conv", name: name, inputs: [input, name + ".weight"], outputs: [output],
             ints: ["kernel_shape": [kernel, kernel], "pads": pads, "strides": [1, 1]])
    }

    mutating func output(_ name: String) {
        var info = Onnx_ValueInfoProto()
        info.name = name
        model.graph.output = [info]
    }
}
