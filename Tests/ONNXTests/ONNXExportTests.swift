import Foundation
import NN
import ONNX
import ONNXProto
import Tensor
import XCTest

/// Exported models run in onnxruntime (the PyPI peer in .venv-onnx, which scripts/test-peers.sh
/// installs) and give ollie's logits: on 32 random samples, max |Δ| ≤ 1e-4 and the same argmax.
final class ONNXExportTests: XCTestCase {
    var folder = ""
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let python = repository + "/.venv-onnx/bin/python"

    override func setUpWithError() throws {
        try BLAS.load()
        folder = NSTemporaryDirectory() + "onnx-export-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    // MARK: - The networks

    func testReferenceConvNetGivesOlliesLogitsInONNXRuntime() throws {
        let model = try Model.referenceConvNet(seed: 7)
        XCTAssertTrue(model.layers.contains { $0.layer is ConvolutionThenPool }, "the fused layers are what is exported")
        let proto = try assertRunsTheSame(model, "reference convnet")
        XCTAssertEqual(proto.opsetImport.map(\.version), [17])
        XCTAssertEqual(proto.irVersion, 8)
        XCTAssertEqual(proto.producerName, "ollie")
        XCTAssertEqual(proto.graph.input.map(\.name), ["input"])
        XCTAssertEqual(proto.graph.input[0].type.tensorType.shape.dim.map(\.dimParam), ["N", "", "", ""])
        XCTAssertEqual(proto.graph.input[0].type.tensorType.shape.dim.dropFirst().map(\.dimValue), [1, 28, 28])
        XCTAssertEqual(proto.graph.output.map(\.name), ["logits"])
        XCTAssertEqual(proto.graph.output[0].type.tensorType.shape.dim.map(\.dimValue), [0, 10])
        XCTAssertEqual(Set(proto.graph.initializer.map(\.name)), Set(model.parameters.map(\.name)),
                       "ollie's names, nothing else: \(proto.graph.initializer.map(\.name))")
        XCTAssertEqual(proto.graph.node.filter { $0.opType == "MaxPool" }.count, 3)
    }

    func testResidualNetWithBatchnormAndAProjectionShortcutRunsTheSame() throws {
        let model = try compile("conv 3 8 relu | res(conv 3 16 stride 2 | batchnorm | relu | conv 3 16 | batchnorm) | relu "
            + "| res(conv 3 16 relu | conv 3 16) | gap | dense 4", input: [3, 12, 12], classes: 4)
        XCTAssertTrue(model.parameters.contains { $0.name == "2.shortcut.0.weight" })
        try trainStatistics(model)
        let proto = try assertRunsTheSame(model, "residual + batchnorm")
        XCTAssertEqual(proto.graph.node.filter { $0.opType == "BatchNormalization" }.count, 3, "two in the body, one on the shortcut")
        XCTAssertEqual(proto.graph.node.filter { $0.opType == "Add" }.count, 2)
        let variance = try XCTUnwrap(proto.graph.initializer.first { $0.name == "2.body.1.running_var" })
        XCTAssertFalse(try variance.floatValues().allSatisfy { $0 == 1 }, "running statistics, not the initial ones")
    }

    func testEveryActivationFlatFeaturesAndOneDimensionalLayersRunTheSame() throws {
        let flat = try compile("dense 32 gelu | dropout 0.3 | batchnorm | dense 32 tanh | dense 16 sigmoid | dense 16 leakyrelu | dense 5",
                               input: [24], classes: 5)
        try trainStatistics(flat)
        let proto = try assertRunsTheSame(flat, "flat, every activation")
        XCTAssertEqual(proto.graph.input[0].type.tensorType.shape.dim.count, 2, "flat features: [N, F]")
        XCTAssertFalse(proto.graph.node.contains { $0.opType == "Dropout" }, "inference: no dropout")
        XCTAssertTrue(proto.graph.node.contains { $0.opType == "Erf" })
        let line = try compile("conv 5 8 stride 2 leakyrelu | pool 2 avg | conv 3 8 gelu | pool 3 stride 2 | dense 4",
                               input: [4, 40], classes: 4)
        try assertRunsTheSame(line, "1-D convolutions, avg and strided pools")
        // Nothing but dropout: the logits are the input, through an Identity.
        let identity = try assertRunsTheSame(try compile("dropout 0.5", input: [4], classes: 4), "the identity")
        XCTAssertEqual(identity.graph.node.map(\.opType), ["Identity"])
    }

    /// ResNet's padded stem and MobileNet's depthwise blocks: Conv's group, the pools' pads (average
    /// dividing by the cells inside, ONNX's count_include_pad 0), relu6 as Clip(0, 6).
    func testGroupedConvolutionsPaddedPoolsAndRelu6RunTheSame() throws {
        let model = try compile("conv 7 16 stride 2 pad 3 | batchnorm | relu | pool 3 stride 2 pad 1 "
            + "| res(conv 1 32 relu6 | conv 3 32 groups 32 relu6 | conv 1 16 | batchnorm) | conv 3 24 stride 2 groups 4 relu6 "
            + "| pool 3 stride 1 pad 1 avg | gap | dense 5", input: [3, 16, 16], classes: 5)
        // Large weights before the relu6s, so their inputs pass 6 and the clip's top matters.
        let scaled = model.parameters.filter { $0.name == "4.body.0.weight" || $0.name == "5.weight" }
        XCTAssertEqual(scaled.count, 2)
        for p in scaled { for i in 0..<p.value.count { p.value.data[i] *= 20 } }
        try trainStatistics(model)
        let proto = try assertRunsTheSame(model, "groups, padded pools, relu6")
        let groups = proto.graph.node.filter { $0.opType == "Conv" }.map { $0.attribute.first { $0.name == "group" }?.i }
        XCTAssertEqual(groups, [1, 1, 32, 1, 4])
        XCTAssertEqual(proto.graph.node.filter { $0.opType == "Clip" }.count, 3)
        XCTAssertEqual(proto.graph.node.first { $0.opType == "AveragePool" }?.attribute.first { $0.name == "pads" }?.ints, [1, 1, 1, 1])
    }

    func testThreeDimensionalConvNetOverClipsRunsTheSame() throws {
        let model = try compile("conv 3 8 relu | pool 2 | conv 1x3x3 8 stride 1x2x2 tanh | batchnorm | pool 1x2x2 avg | gap | dense 3",
                                input: [2, 6, 12, 12], classes: 3)
        try trainStatistics(model)
        let proto = try assertRunsTheSame(model, "3-D conv over clips")
        XCTAssertEqual(proto.graph.input[0].type.tensorType.shape.dim.dropFirst().map(\.dimValue), [2, 6, 12, 12])
    }

    func testCNNLSTMRunsTheSame() throws {
        let model = try compile("frames(conv 3 8 relu | pool 2 | dense 16 relu) | lstm 16 | dense 5", input: [1, 6, 12, 12], classes: 5)
        let proto = try assertRunsTheSame(model, "CNN-LSTM")
        XCTAssertEqual(proto.graph.node.filter { $0.opType == "LSTM" }.count, 1)
        XCTAssertTrue(proto.graph.initializer.contains { $0.name == "1.weight_ih_l0" })
    }

    func testBidirectionalGRUSequenceWithAttentionRunsTheSame() throws {
        let model = try compile("frames(conv 3 4 relu | pool 2 | dense 8 relu) | gru 8 bi seq | attention | dense 5",
                                input: [1, 6, 12, 12], classes: 5)
        let proto = try assertRunsTheSame(model, "GRU bi seq + attention")
        let gru = try XCTUnwrap(proto.graph.node.first { $0.opType == "GRU" })
        XCTAssertTrue(gru.attribute.contains { $0.name == "linear_before_reset" && $0.i == 1 })
        XCTAssertTrue(gru.attribute.contains { $0.name == "direction" && $0.s == Data("bidirectional".utf8) })
    }

    func testLSTMSequenceThenMeanOverTimeRunsTheSame() throws {
        let model = try compile("frames(conv 3 4 relu | pool 2 | dense 8 relu) | lstm 8 seq | gap | dense 5", input: [1, 6, 12, 12], classes: 5)
        let proto = try assertRunsTheSame(model, "LSTM seq + gap")
        XCTAssertTrue(proto.graph.node.contains { $0.opType == "ReduceMean" })
    }

    /// The bidirectional last step is the forward direction's last ⊕ the reverse's first: ONNX's Y_h.
    func testStackedBidirectionalRecurrentLayersOverAResidualFrameNetRunTheSame() throws {
        let model = try compile("frames(conv 3 4 | batchnorm | leakyrelu | res(conv 3 4 relu | conv 3 4) | pool 2 avg | dense 8 tanh) "
            + "| lstm 6 bi seq | gru 6 seq | lstm 5 bi | dropout 0.2 | dense 5", input: [3, 5, 10, 10], classes: 5)
        try trainStatistics(model)
        try assertRunsTheSame(model, "stacked bidirectional")
    }

    /// `backbone SOURCE` compiles to a chain under its own index ("0.3.weight").
    func testANetworkOnABackboneRunsTheSame() throws {
        let whole = try compile("conv 3 8 relu | pool 2 | conv 3 8 relu | gap | dense 10", input: [1, 12, 12], classes: 10)
        let backbone = try Backbone(source: "digits.safetensors", network: try XCTUnwrap(whole.spec), inputShape: [1, 12, 12],
                                    tensors: Dictionary(uniqueKeysWithValues: whole.parameters.map { ($0.name, $0.value) }))
        let spec = try ModelSpec(parsing: "backbone digits.safetensors | dense 16 relu | dense 4").resolvingBackbones { _ in backbone }
        let model = try spec.compile(inputShape: [1, 12, 12], classes: 4, seed: 2)
        XCTAssertTrue(model.parameters.contains { $0.name == "0.3.weight" }, "\(model.parameters.map(\.name))")
        let proto = try assertRunsTheSame(model, "backbone + head")
        XCTAssertEqual(proto.metadataProps.first { $0.key == "ollie.spec" }?.value, "backbone digits.safetensors | dense 16 relu | dense 4")
    }

    // MARK: - Back into ollie

    /// What ONNXImport reads (no GELU, frames or attention yet) comes back as the same network: every tensor under its name with
    /// its values, and the same logits (the import builds the layers the export was made from).
    func testExportedConvolutionalNetworksImportBackAsTheSameNetworks() throws {
        for (spec, input, classes) in [("conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 10", [1, 28, 28], 10),
                                       ("conv 3 8 relu | res(conv 3 16 stride 2 | batchnorm | relu | conv 3 16 | batchnorm) | relu "
                                        + "| res(conv 3 16 relu | conv 3 16) | gap | dense 4", [3, 12, 12], 4),
                                       ("conv 3 8 relu | pool 2 | conv 1x3x3 8 stride 1x2x2 tanh | batchnorm | pool 1x2x2 avg | gap | dense 3",
                                        [2, 6, 12, 12], 3),
                                       ("conv 7 16 stride 2 pad 3 | batchnorm | relu | pool 3 stride 2 pad 1 | res(conv 1 32 relu6 "
                                        + "| conv 3 32 groups 32 relu6 | conv 1 16 | batchnorm) | pool 3 stride 1 pad 1 avg | gap | dense 5",
                                        [3, 16, 16], 5)] {
            let model = try compile(spec, input: input, classes: classes)
            try trainStatistics(model)
            let imported = try ONNXImport.network(from: try ONNXExport.model(model, metadata: [:]), source: "exported.onnx")
            XCTAssertEqual(imported.inputShape, input, spec)
            XCTAssertEqual(imported.metadata["ollie.spec"], model.spec?.text)
            for p in model.parameters + model.buffers where !p.name.hasSuffix("num_batches_tracked") {
                XCTAssertEqual(imported.tensors[p.name]?.data, p.value.data, "\(spec): \(p.name)")
            }
            let again = try ONNXImport.model(imported, seed: 99)
            var random = Random(seed: 4)
            let x = olliesLayout((0..<(8 * input.reduce(1, *))).map { _ in random.uniform(-1, 1) }, sample: input, count: 8)
            XCTAssertEqual(again.forward(x, training: false).data, model.forward(x, training: false).data, spec)
        }
    }

    // MARK: - What cannot be exported

    func testAModelWithoutASpecIsAOneLineError() throws {
        var random = Random(seed: 1)
        let handMade = try Model(inputShape: [6], layers: [("0", Dense(6, 3, random: &random))])
        XCTAssertThrowsError(try ONNXExport.model(handMade, metadata: [:])) { error in
            XCTAssertTrue("\(error)".contains("not built from a spec"), "\(error)")
            XCTAssertFalse("\(error)".contains("\n"))
        }
    }

    func testALayerONNXCannotExpressIsNamedInOneLine() throws {
        var random = Random(seed: 1)
        let model = try Model(inputShape: [6], layers: [("0", Dense(6, 4, random: &random)), ("1", Halving()), ("2", Dense(4, 3, random: &random))],
                              spec: try ModelSpec(parsing: "dense 4 | dense 3"))
        XCTAssertThrowsError(try ONNXExport.model(model, metadata: [:])) { error in
            XCTAssertEqual("\(error)", "ONNX export cannot express layer 1 (halving) yet; export a model without it")
        }
    }

    func testMetadataHoldsWhatTheCallerPassesAndTheSpec() throws {
        let model = try compile("dense 8 relu | dense 3", input: [5], classes: 3)
        let proto = try ONNXExport.model(model, metadata: ["ollie.class_names": "[\"a\",\"b\",\"c\"]", "ollie.spec": "not this"])
        let entries = Dictionary(uniqueKeysWithValues: proto.metadataProps.map { ($0.key, $0.value) })
        XCTAssertEqual(entries, ["ollie.class_names": "[\"a\",\"b\",\"c\"]", "ollie.spec": "dense 8 relu | dense 3"])
        let path = folder + "/m.onnx"
        try ONNXFile.write(proto, to: path)
        XCTAssertEqual(try ONNXFile.read(path).metadataProps.map(\.key), ["ollie.class_names", "ollie.spec"])
    }

    // MARK: - Helpers

    func compile(_ spec: String, input: [Int], classes: Int) throws -> Model {
        let model = try ModelSpec(parsing: spec).compile(inputShape: input, classes: classes, seed: 11)
        // Zero biases and unit batchnorm scales would hide a bias or a scale left out.
        var random = Random(seed: 5)
        for p in model.parameters { for i in 0..<p.value.count { p.value.data[i] += random.uniform(-0.1, 0.1) } }
        return model
    }

    /// A few training-mode forwards on shifted data, so batchnorm's running statistics are far
    /// from their initial 0 and 1.
    func trainStatistics(_ model: Model) throws {
        var random = Random(seed: 9)
        for _ in 0..<3 {
            let batch = (0..<(16 * model.inputShape.reduce(1, *))).map { _ in random.uniform(0, 2) }
            _ = model.forward(olliesLayout(batch, sample: model.inputShape, count: 16), training: true)
        }
    }

    /// [N, C, D…] values → ollie's [C, N, D…] tensor ([N, F] stays).
    func olliesLayout(_ values: [Float], sample: [Int], count n: Int) -> Tensor {
        guard sample.count > 1 else { return Tensor([n] + sample, values) }
        let c = sample[0], volume = sample.dropFirst().reduce(1, *)
        var out = [Float](repeating: 0, count: values.count)
        for b in 0..<n {
            for ch in 0..<c {
                for k in 0..<volume { out[(ch * n + b) * volume + k] = values[(b * c + ch) * volume + k] }
            }
        }
        return Tensor([c, n] + sample.dropFirst(), out)
    }

    /// Exports `model`, runs it in onnxruntime on 32 random samples and compares with ollie's
    /// inference forward; returns the exported proto.
    @discardableResult
    func assertRunsTheSame(_ model: Model, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws -> Onnx_ModelProto {
        try requirePeer()
        let proto = try ONNXExport.model(model, metadata: [:])
        let path = folder + "/model.onnx"
        try ONNXFile.write(proto, to: path)
        let n = 32
        var random = Random(seed: 21)
        let samples = (0..<(n * model.inputShape.reduce(1, *))).map { _ in random.uniform(-1, 1) }
        let ours = model.forward(olliesLayout(samples, sample: model.inputShape, count: n), training: false)
        let classes = ours.shape[1]
        let theirs = try runInONNXRuntime(path, samples)
        XCTAssertEqual(theirs.count, n * classes, what, file: file, line: line)
        guard theirs.count == n * classes else { return proto }
        let delta = zip(ours.data, theirs).map { abs($0 - $1) }.max() ?? .infinity
        print("ONNX export, \(what): max |Δ| = \(delta) over \(n) samples × \(classes) classes")
        XCTAssertLessThanOrEqual(delta, 1e-4, what, file: file, line: line)
        func argmax(_ v: ArraySlice<Float>) -> Int { v.indices.max { v[$0] < v[$1] }! - v.startIndex }
        for b in 0..<n {
            let row = (b * classes)..<((b + 1) * classes)
            XCTAssertEqual(argmax(ours.data[row]), argmax(theirs[row]), "\(what): sample \(b)", file: file, line: line)
        }
        return proto
    }

    func requirePeer() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("no \(Self.python): bash scripts/test-peers.sh installs it") }
            throw XCTSkip("no \(Self.python) with onnxruntime (bash scripts/test-peers.sh installs it)")
        }
    }

    /// scripts/onnxruntime_run.py --check on `samples` (the model's input layout); its logits.
    func runInONNXRuntime(_ model: String, _ samples: [Float]) throws -> [Float] {
        let input = folder + "/input.bin", output = folder + "/output.bin"
        try samples.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: input))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [Self.repository + "/scripts/onnxruntime_run.py", "--check", model, input, output]
        let errors = Pipe(), printed = Pipe()
        process.standardError = errors
        process.standardOutput = printed
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stdout = String(decoding: printed.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ONNXError("onnxruntime failed: \(message)") }
        XCTAssertEqual(stdout, "", "the script prints nothing on success")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: output))
        return bytes.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
    }
}

/// A layer ONNX export knows nothing of: y = x / 2.
final class Halving: Layer {
    var parameters: [Parameter] { [] }
    var description: String { "halving" }
    func outputShape(for input: [Int]) throws -> [Int] { input }
    func forward(_ x: Tensor, training: Bool) -> Tensor { Tensor(x.shape, x.data.map { $0 / 2 }) }
    func backward(_ dout: Tensor) -> Tensor { Tensor(dout.shape, dout.data.map { $0 / 2 }) }
    func replica() -> Layer { Halving() }
}
