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

    /// Every model the peer tests compare, exported once per test process by one run of the
    /// script (importing torch takes longer than an export): the folder, or why it failed.
    static let models = ["resnet18", "mobilenet_v2", "convbn", "resproj", "resproj_bn", "resmixed", "lstm", "bilstm", "gru", "bigru", "stacked"]
    nonisolated(unsafe) static var exports: Result<String, Error>?

    override class func tearDown() {
        if case .success(let shared)? = exports { try? FileManager.default.removeItem(atPath: shared) }
        exports = nil
    }

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

    /// The same network with its BatchNormalization nodes kept: each body has batchnorms, each
    /// projection shortcut its conv (bias zero) and batchnorm, as ollie's res(…) builds it.
    func testResidualNetWithBatchNormNodesMatchesOnnxruntime() throws {
        let (imported, _) = try importAndCompare("resproj_bn")
        XCTAssertTrue(imported.spec.text.hasPrefix("conv 3 8 relu | res(conv 3 8 | batchnorm | relu | conv 3 8 | batchnorm) | relu"), imported.spec.text)
        XCTAssertEqual(imported.tensors["4.shortcut.1.running_mean"]?.shape, [16])
    }

    /// Blocks ollie must adapt to its rule (a shortcut batchnorm exactly when the body has one):
    /// a shortcut batchnorm under a body without one is folded into the conv; a body's
    /// batchnorm without one on the shortcut gets an identity one; ε = 1e-3 is folded into
    /// the running variance.
    func testResidualBlocksWithBatchNormOnOneSideOnlyMatchOnnxruntime() throws {
        let (imported, _) = try importAndCompare("resmixed")
        XCTAssertTrue(imported.spec.text.contains("| res(conv 3 16 stride 2 relu | conv 3 16) |"), imported.spec.text)
        XCTAssertNil(imported.tensors["4.shortcut.1.weight"])
        XCTAssertEqual(imported.tensors["6.shortcut.1.weight"]?.data, [Float](repeating: 1, count: 32))
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

    /// A bidirectional LSTM's every step (Y transposed and reshaped to [T, N, 2H]) into a GRU
    /// whose last state (Gather of the direction axis) feeds the classifier.
    func testStackedRecurrentLayersMatchOnnxruntime() throws {
        let (imported, _) = try importAndCompare("stacked")
        XCTAssertEqual(imported.spec.text, "frames(flatten) | lstm 16 bi seq | gru 16 | dense 5")
        XCTAssertEqual(imported.tensors["2.weight_ih_l0"]?.shape, [48, 32])
    }

    // MARK: - Hand-built graphs

    /// Conv → Relu → MaxPool → BatchNormalization (ε 1e-3) → GlobalAveragePool → Flatten →
    /// MatMul → Add: the spec, PyTorch's names (the implied flatten before dense counts), the
    /// weights in PyTorch's layouts, ε folded into the running variance, the metadata.
    func testChainImportsWithPyTorchNamesLayoutsAndMetadata() throws {
        var graph = GraphBuilder(input: [nil, 3, 6, 6])
        graph.conv("/conv", from: "x", to: "c", out: 4, kernel: 3, pads: [1, 1, 1, 1])
        graph.node("Relu", name: "/relu", inputs: ["c"], outputs: ["r"])
        graph.node("MaxPool", name: "/pool", inputs: ["r"], outputs: ["p"], ints: ["kernel_shape": [2, 2], "strides": [2, 2]])
        for (name, value) in [("gamma", 2), ("beta", 0.5), ("mean", 0.25), ("var", 1.5)] as [(String, Float)] {
            graph.weight(name, [4], [Float](repeating: value, count: 4))
        }
        graph.node("BatchNormalization", name: "/bn", inputs: ["p", "gamma", "beta", "mean", "var"], outputs: ["b"], float: ["epsilon": 1e-3])
        graph.node("GlobalAveragePool", name: "/gap", inputs: ["b"], outputs: ["g"])
        graph.node("Flatten", name: "/flatten", inputs: ["g"], outputs: ["f"])
        graph.weight("W", [4, 2], [1, 2, 3, 4, 5, 6, 7, 8])
        graph.weight("bias", [2], [-1, 1])
        graph.node("MatMul", name: "/fc/MatMul", inputs: ["f", "W"], outputs: ["m"])
        graph.node("Add", name: "/fc/Add", inputs: ["m", "bias"], outputs: ["y"])
        graph.output("y")
        var entry = Onnx_StringStringEntryProto()
        entry.key = "author"
        entry.value = "ollie tests"
        graph.model.metadataProps = [entry]
        let imported = try ONNXImport.network(from: graph.model, source: "chain.onnx")
        XCTAssertEqual(imported.spec.text, "conv 3 4 relu | pool 2 | batchnorm | gap | dense 2")
        XCTAssertEqual(imported.inputShape, [3, 6, 6])
        XCTAssertEqual(imported.classes, 2)
        XCTAssertEqual(imported.metadata, ["author": "ollie tests"])
        XCTAssertEqual(Set(imported.tensors.keys), ["0.weight", "0.bias", "3.weight", "3.bias", "3.running_mean", "3.running_var",
                                                    "3.num_batches_tracked", "6.weight", "6.bias"])
        XCTAssertEqual(imported.tensors["0.bias"]?.data, [0, 0, 0, 0])
        XCTAssertEqual(imported.tensors["6.weight"]?.shape, [2, 4])
        XCTAssertEqual(imported.tensors["6.weight"]?.data, [1, 3, 5, 7, 2, 4, 6, 8])
        XCTAssertEqual(imported.tensors["6.bias"]?.data, [-1, 1])
        XCTAssertEqual(imported.tensors["3.running_var"]?.data[0] ?? 0, 1.5 + 1e-3 - 1e-5, accuracy: 1e-7)
        let model = try ONNXImport.model(imported, seed: 3)
        XCTAssertEqual(model.parameters.first { $0.name == "6.weight" }?.value.data, [1, 3, 5, 7, 2, 4, 6, 8])
    }

    /// MatMul + Add → Relu → Gemm (transB 0): ollie's forward is x·W₁ + b₁, relu, ·W₂ + b₂.
    func testDenseLayersComputeWhatTheGraphSays() throws {
        var graph = GraphBuilder(input: [nil, 3])
        graph.weight("W1", [3, 2], [0.5, -1, 2, 0.25, -0.5, 1])
        graph.weight("b1", [2], [0.1, -0.2])
        graph.weight("W2", [2, 2], [1, -2, 3, 0.5])
        graph.weight("b2", [2], [0.3, 0.4])
        graph.node("MatMul", name: "mm", inputs: ["x", "W1"], outputs: ["m"])
        graph.node("Add", name: "add", inputs: ["b1", "m"], outputs: ["a"])
        graph.node("Relu", name: "relu", inputs: ["a"], outputs: ["r"])
        graph.node("Gemm", name: "gemm", inputs: ["r", "W2", "b2"], outputs: ["y"])
        graph.output("y")
        let imported = try ONNXImport.network(from: graph.model, source: "mlp.onnx")
        XCTAssertEqual(imported.spec.text, "dense 2 relu | dense 2")
        let model = try ONNXImport.model(imported, seed: 1)
        let x: [[Float]] = [[1, 2, 3], [-1, 0.5, 2]]
        let logits = model.forward(Tensor([2, 3], x.flatMap { $0 }), training: false)
        for (n, row) in x.enumerated() {
            let hidden = (0..<2).map { j in max(0, (0..<3).reduce(Float(0)) { $0 + row[$1] * [[0.5, -1], [2, 0.25], [-0.5, 1]][$1][j] } + [0.1, -0.2][j]) }
            for k in 0..<2 {
                let expected = (0..<2).reduce(Float(0)) { $0 + hidden[$1] * [[1, -2], [3, 0.5]][$1][k] } + [0.3, 0.4][k]
                XCTAssertEqual(logits.data[n * 2 + k], expected, accuracy: 1e-5)
            }
        }
    }

    /// x.view(x.size(0), -1) with a symbolic batch: Shape → Gather → Unsqueeze → Concat → Reshape
    /// is a flatten (implied before the dense); Dropout and Identity drop out.
    func testReshapeSizedFromTheBatchIsAFlatten() throws {
        var graph = GraphBuilder(input: [nil, 3, 4, 4])
        graph.conv("conv", from: "x", to: "c", out: 2, kernel: 3, pads: [1, 1, 1, 1])
        graph.node("Dropout", name: "drop", inputs: ["c"], outputs: ["d"])
        graph.node("Shape", name: "shape", inputs: ["d"], outputs: ["s"])
        graph.model.graph.initializer.append(Onnx_TensorProto(name: "zero", shape: [], int64s: [0]))
        graph.model.graph.initializer.append(Onnx_TensorProto(name: "axes", shape: [1], int64s: [0]))
        graph.model.graph.initializer.append(Onnx_TensorProto(name: "rest", shape: [1], int64s: [-1]))
        graph.node("Gather", name: "batch", inputs: ["s", "zero"], outputs: ["n"])
        graph.node("Unsqueeze", name: "unsqueeze", inputs: ["n", "axes"], outputs: ["n1"])
        graph.node("Concat", name: "concat", inputs: ["n1", "rest"], outputs: ["target"], int: ["axis": 0])
        graph.node("Reshape", name: "reshape", inputs: ["d", "target"], outputs: ["f"])
        graph.node("Identity", name: "same", inputs: ["f"], outputs: ["i"])
        graph.weight("W", [2, 32], [Float](repeating: 0.5, count: 64))
        graph.node("Gemm", name: "fc", inputs: ["i", "W"], outputs: ["y"], int: ["transB": 1])
        graph.output("y")
        let imported = try ONNXImport.network(from: graph.model, source: "view.onnx")
        XCTAssertEqual(imported.spec.text, "conv 3 2 | dense 2")
        XCTAssertEqual(Set(imported.tensors.keys), ["0.weight", "0.bias", "2.weight", "2.bias"])
    }

    // MARK: - Refusals (hand-built graphs)

    /// Activation constants and pooling modes ollie does not have are named with their value.
    func testLeakySlopesAndPaddedAveragesOllieLacksAreNamed() throws {
        var leaky = GraphBuilder(input: [nil, 3, 8, 8])
        leaky.conv("conv", from: "x", to: "c", out: 4, kernel: 3, pads: [1, 1, 1, 1])
        leaky.node("LeakyRelu", name: "/leaky", inputs: ["c"], outputs: ["y"], float: ["alpha": 0.2])
        leaky.output("y")
        XCTAssertThrowsError(try ONNXImport.network(from: leaky.model, source: "m.onnx")) {
            XCTAssertTrue("\($0)".contains("node '/leaky' (LeakyRelu): LeakyRelu alpha 0.2"), "\($0)")
        }
        var average = GraphBuilder(input: [nil, 3, 8, 8])
        average.node("AveragePool", name: "/avg", inputs: ["x"], outputs: ["y"],
                     ints: ["kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]], int: ["count_include_pad": 1])
        average.output("y")
        XCTAssertThrowsError(try ONNXImport.network(from: average.model, source: "m.onnx")) {
            XCTAssertTrue("\($0)".contains("node '/avg' (AveragePool): an average that counts the padding"), "\($0)")
        }
        var ceil = GraphBuilder(input: [nil, 3, 8, 8])
        ceil.node("MaxPool", name: "/max", inputs: ["x"], outputs: ["y"], ints: ["kernel_shape": [3, 3], "strides": [2, 2]], int: ["ceil_mode": 1])
        ceil.output("y")
        XCTAssertThrowsError(try ONNXImport.network(from: ceil.model, source: "m.onnx")) {
            XCTAssertTrue("\($0)".contains("node '/max' (MaxPool): ceil_mode 1 rounds"), "\($0)")
        }
    }

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
        graph.node("GRU", name: "/rnn/GRU", inputs: ["xt", "W", "R"], outputs: ["y", "h"], int: ["hidden_size": 2])
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

    /// Imports `name` as scripts/torch_to_onnx.py exported it, runs ollie's forward on the
    /// script's 32 inputs and requires onnxruntime's logits within 1e-4 (or within torch's own
    /// distance from them, where that is larger) and the same argmax.
    /// Returns the import and the largest difference.
    func importAndCompare(_ name: String) throws -> (ImportedNetwork, Float) {
        let python = repository + "/.venv-onnx/bin/python"
        // On a machine with too little disk for torch, test-peers.sh says so here instead.
        if let reason = try? String(contentsOfFile: repository + "/.venv-onnx/torch-skipped", encoding: .utf8) {
            throw XCTSkip(reason.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard FileManager.default.isExecutableFile(atPath: python) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("no .venv-onnx: bash scripts/test-peers.sh installs it") }
            throw XCTSkip("no .venv-onnx/bin/python (bash scripts/test-peers.sh installs torch, torchvision, onnxruntime)")
        }
        if ONNXImportTests.exports == nil {
            let shared = NSTemporaryDirectory() + "onnx-import-exports-\(UUID().uuidString)"
            ONNXImportTests.exports = Result {
                try run(python, [repository + "/scripts/torch_to_onnx.py", ONNXImportTests.models.joined(separator: ","), shared,
                                 "--inputs", "32", "--seed", "7"])
                return shared
            }
        }
        let out = try ONNXImportTests.exports!.get() + "/" + name
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
        // 1e-4, unless onnxruntime and torch themselves differ by more (float32 through a deep
        // net: mobilenet_v2's two references are ~1e-4 apart): then within their disagreement.
        let references = zip(try floats(out + "/torch.bin"), expected).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(difference, max(1e-4, references), "\(name): onnxruntime vs torch \(references); \(imported.spec.text)")
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

    mutating func node(_ op: String, name: String, inputs: [String], outputs: [String], ints: [String: [Int]] = [:],
                       int: [String: Int] = [:], float: [String: Float] = [:]) {
        var node = Onnx_NodeProto()
        node.opType = op
        node.name = name
        node.input = inputs
        node.output = outputs
        for (key, values) in ints.sorted(by: { $0.key < $1.key }) {
            var attribute = Onnx_AttributeProto()
            attribute.name = key
            attribute.type = .ints
            attribute.ints = values.map(Int64.init)
            node.attribute.append(attribute)
        }
        for (key, value) in int.sorted(by: { $0.key < $1.key }) {
            var attribute = Onnx_AttributeProto()
            attribute.name = key
            attribute.type = .int
            attribute.i = Int64(value)
            node.attribute.append(attribute)
        }
        for (key, value) in float.sorted(by: { $0.key < $1.key }) {
            var attribute = Onnx_AttributeProto()
            attribute.name = key
            attribute.type = .float
            attribute.f = value
            node.attribute.append(attribute)
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
