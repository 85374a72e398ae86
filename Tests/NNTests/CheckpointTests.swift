import Foundation
import XCTest
@testable import NN
import Tensor

// (The classes are not called CheckpointTests: OptimizerAndCheckpointTests.swift already declares one.)

/// The safetensors byte layout, its round trip, and every corruption as a thrown ModelError.
final class SafeTensorsFormatTests: XCTestCase {
    private func headerLength(_ bytes: [UInt8]) -> Int {
        (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
    }

    func testEncodeLayoutHeaderLengthJSONFieldsAndMetadata() throws {
        let tensors = ["conv.weight": Tensor([2, 1, 1, 3], [1, 2, 3, 4, 5, 6]), "bias": Tensor([1], [-0.5])]
        let data = SafeTensors.encode(tensors, metadata: ["format": "pt", "note": "a \"quoted\" value"])
        let bytes = [UInt8](data)
        XCTAssertGreaterThanOrEqual(bytes.count, 8)
        let length = headerLength(bytes)
        XCTAssertEqual(length % 8, 0, "the header is padded to a multiple of 8")
        XCTAssertEqual(bytes.count, 8 + length + 7 * 4, "header, then exactly the tensors' bytes")

        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as? [String: Any])
        XCTAssertEqual(Set(json.keys), ["__metadata__", "conv.weight", "bias"])
        var ranges: [(String, Int, Int)] = []
        for (name, t) in tensors {
            let entry = try XCTUnwrap(json[name] as? [String: Any], name)
            XCTAssertEqual(entry["dtype"] as? String, "F32")
            XCTAssertEqual((entry["shape"] as? [NSNumber])?.map(\.intValue), t.shape)
            let offsets = try XCTUnwrap((entry["data_offsets"] as? [NSNumber])?.map(\.intValue))
            XCTAssertEqual(offsets.count, 2)
            XCTAssertEqual(offsets[1] - offsets[0], t.count * 4)
            ranges.append((name, offsets[0], offsets[1]))
            // The raw bytes at those offsets are the little-endian Float32 values.
            let body = Array(bytes[(8 + length + offsets[0])..<(8 + length + offsets[1])])
            let values = (0..<t.count).map { k -> Float in
                Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(body[4 * k + $1]) << (8 * UInt32($1)) })
            }
            XCTAssertEqual(values, t.data, name)
        }
        // The data ranges tile the body without gaps or overlaps.
        ranges.sort { $0.1 < $1.1 }
        XCTAssertEqual(ranges.first?.1, 0)
        for k in 1..<ranges.count { XCTAssertEqual(ranges[k].1, ranges[k - 1].2) }
        XCTAssertEqual(ranges.last?.2, 7 * 4)
        let metadata = try XCTUnwrap(json["__metadata__"] as? [String: String])
        XCTAssertEqual(metadata, ["format": "pt", "note": "a \"quoted\" value"])
    }

    func testDecodeOfEncodeRoundTripsValuesShapesAndMetadata() throws {
        var random = Random(seed: 1)
        var tensors: [String: Tensor] = [:]
        for (name, shape) in [("a", [3]), ("b.weight", [4, 2, 3, 3]), ("c", [1, 5]), ("d", [7])] {
            let t = Tensor(shape)
            for i in 0..<t.count { t.data[i] = random.normal() }
            tensors[name] = t
        }
        tensors["d"]!.data[0] = .greatestFiniteMagnitude
        tensors["d"]!.data[1] = -.leastNonzeroMagnitude
        tensors["d"]!.data[2] = -0.0
        tensors["d"]!.data[3] = .infinity
        let metadata = ["format": "pt", "ollie.model": "Chain(\n  relu,\n)", "empty": "", "unicode": "β₁ ✓"]
        let (decoded, decodedMetadata) = try SafeTensors.decode(SafeTensors.encode(tensors, metadata: metadata), source: "memory")
        XCTAssertEqual(Set(decoded.keys), Set(tensors.keys))
        for (name, t) in tensors {
            XCTAssertEqual(decoded[name]?.shape, t.shape, name)
            XCTAssertEqual(decoded[name]?.data.map(\.bitPattern), t.data.map(\.bitPattern), name)
        }
        XCTAssertEqual(decodedMetadata, metadata)

        // No metadata at all also round-trips.
        let (plain, plainMetadata) = try SafeTensors.decode(SafeTensors.encode(["x": Tensor([2], [1, 2])]), source: "memory")
        XCTAssertEqual(plain["x"]?.data, [1, 2])
        XCTAssertEqual(plainMetadata, [:])
    }

    /// A file with this header text (padded to a multiple of 8) and these data bytes.
    private func file(header: String, body: [UInt8] = [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]) -> Data {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(UInt8(ascii: " ")) }
        var out = Data()
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        out.append(contentsOf: body)
        return out
    }

    func testTheTestFileBuilderMakesAValidFile() throws {
        let (tensors, _) = try SafeTensors.decode(file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#),
                                                  source: "ok")
        XCTAssertEqual(tensors["x"]?.data, [1, 2])
    }

    func testFewerThan8BytesThrowsAModelError() {
        for count in 0..<8 {
            NNTestSupport.assertModelError("\(count) bytes") {
                _ = try SafeTensors.decode(Data(repeating: 1, count: count), source: "short")
            }
        }
    }

    func testHeaderLengthPastTheEndThrowsAModelError() {
        var data = file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#)
        data.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) })
        NNTestSupport.assertModelError("header length = file size") { _ = try SafeTensors.decode(data, source: "long") }
        data.replaceSubrange(0..<8, with: [UInt8](repeating: 0xff, count: 8))
        NNTestSupport.assertModelError("header length = 2⁶⁴−1") { _ = try SafeTensors.decode(data, source: "huge") }
        data.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1) << 63) { Array($0) })
        NNTestSupport.assertModelError("header length = 2⁶³") { _ = try SafeTensors.decode(data, source: "huge") }
    }

    func testHeaderThatIsNotJSONThrowsAModelError() {
        NNTestSupport.assertModelError("garbage") { _ = try SafeTensors.decode(self.file(header: "not json at all"), source: "x") }
        NNTestSupport.assertModelError("a JSON array") { _ = try SafeTensors.decode(self.file(header: "[1, 2, 3]"), source: "x") }
        NNTestSupport.assertModelError("cut JSON") {
            _ = try SafeTensors.decode(self.file(header: #"{"x":{"dtype":"F32","shape":[2],"#), source: "x")
        }
        NNTestSupport.assertModelError("empty header") { _ = try SafeTensors.decode(self.file(header: ""), source: "x") }
    }

    func testDataOffsetsOutOfRangeThrowAModelError() {
        for offsets in ["[0,12]", "[4,12]", "[8,16]", "[-4,4]", "[8,0]", "[0]", "[0,8,16]", "[0.5,8.5]", "\"0,8\""] {
            let message = NNTestSupport.assertModelError("data_offsets \(offsets)") {
                _ = try SafeTensors.decode(self.file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":"# + offsets + "}}"),
                                           source: "x")
            }
            XCTAssertTrue(message?.contains("'x'") == true, message ?? "")
        }
    }

    func testShapeThatDoesNotMatchTheOffsetsThrowsAModelError() {
        for shape in ["[3]", "[1]", "[2,2]", "[]", "[-2]", "[-1,-8]", "[9223372036854775807,2]", "\"2\""] {
            NNTestSupport.assertModelError("shape \(shape)") {
                _ = try SafeTensors.decode(self.file(header: #"{"x":{"dtype":"F32","shape":"# + shape + #","data_offsets":[0,8]}}"#),
                                           source: "x")
            }
        }
    }

    func testDtypeF16AndOtherNonF32TypesThrowAModelError() {
        for dtype in ["F16", "BF16", "F64", "I32", "U8"] {
            let message = NNTestSupport.assertModelError("dtype \(dtype)") {
                _ = try SafeTensors.decode(self.file(header: #"{"x":{"dtype":""# + dtype + #"","shape":[2],"data_offsets":[0,4]}}"#),
                                           source: "x")
            }
            XCTAssertTrue(message?.contains(dtype) == true, message ?? "")
        }
        NNTestSupport.assertModelError("no dtype") {
            _ = try SafeTensors.decode(self.file(header: #"{"x":{"shape":[2],"data_offsets":[0,8]}}"#), source: "x")
        }
    }

    func testBadMetadataThrowsAModelError() {
        NNTestSupport.assertModelError("numeric metadata") {
            _ = try SafeTensors.decode(self.file(header: #"{"__metadata__":{"steps":3}}"#), source: "x")
        }
        NNTestSupport.assertModelError("metadata not an object") {
            _ = try SafeTensors.decode(self.file(header: #"{"__metadata__":"pt"}"#), source: "x")
        }
    }

    func testTruncatingAValidFileAnywhereThrowsAModelErrorNotACrash() {
        let data = SafeTensors.encode(["a": Tensor([3], [1, 2, 3]), "b": Tensor([2], [4, 5])], metadata: ["k": "v"])
        for cut in 0..<data.count {
            NNTestSupport.assertModelError("cut at \(cut)") { _ = try SafeTensors.decode(data.prefix(cut), source: "cut") }
        }
        XCTAssertNoThrow(try SafeTensors.decode(data, source: "whole"))
    }
}

/// Model + optimizer checkpoints: names, shapes, optimizer state, exact resumption, clear errors.
final class CheckpointResumeTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        try BLAS.load()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ollie-nn-checkpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// One training step on a deterministic batch for `step`.
    private func trainStep(_ model: Model, _ optimizer: Optimizer, step: Int, batch: Int = 4) {
        var random = Random(seed: 1000, stream: UInt64(step))
        let x = Tensor([1, batch] + Array(model.inputShape[1...]))
        for i in 0..<x.count { x.data[i] = random.nextFloat() }
        let labels = (0..<batch).map { _ in Int32(random.next() % 10) }
        let g = Tensor([0])
        model.zeroGrads()
        _ = SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: labels,
                                                normalizer: Float(batch), gradient: g)
        model.backward(g)
        optimizer.step(model.parameters)
    }

    func testSavedCheckpointHasPyTorchNamesShapesAndOptimizerState() throws {
        let model = try Model.referenceConvNet(seed: 1)
        let adam = Adam(learningRate: 1e-3)
        for step in 0..<3 { trainStep(model, adam, step: step) }
        let file = path("sub/dir/model.safetensors")
        try Checkpoint.save(model: model, optimizer: adam, metadata: ["run": "7"], to: file)

        let (tensors, metadata) = try Checkpoint.load(from: file)
        let weights = tensors.filter { !$0.key.hasPrefix("optimizer.") }
        XCTAssertEqual(Set(weights.keys), ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                           "conv3.weight", "conv3.bias", "fc.weight", "fc.bias"])
        XCTAssertEqual(tensors["conv1.weight"]?.shape, [16, 1, 3, 3])
        XCTAssertEqual(tensors["conv1.bias"]?.shape, [16])
        XCTAssertEqual(tensors["conv2.weight"]?.shape, [32, 16, 3, 3])
        XCTAssertEqual(tensors["conv3.weight"]?.shape, [32, 32, 3, 3])
        XCTAssertEqual(tensors["fc.weight"]?.shape, [10, 288])
        XCTAssertEqual(tensors["fc.bias"]?.shape, [10])
        for p in model.parameters {
            XCTAssertEqual(tensors[p.name]?.data, p.value.data, "\(p.name) values")
            for suffix in ["m", "v"] {
                let key = "optimizer.\(p.name).\(suffix)"
                XCTAssertEqual(tensors[key]?.shape, p.value.shape, key)
                XCTAssertTrue(tensors[key]?.data.contains { $0 != 0 } == true, "\(key) is trained state")
            }
        }
        XCTAssertEqual(tensors.count, 8 * 3)
        XCTAssertEqual(metadata["ollie.optimizer"], "adam")
        XCTAssertEqual(metadata["ollie.optimizer_steps"], "3")
        XCTAssertEqual(metadata["ollie.learning_rate"].flatMap(Float.init), 1e-3)
        XCTAssertEqual(metadata["run"], "7")
        XCTAssertEqual(metadata["format"], "pt")
        XCTAssertEqual(try Checkpoint.load(from: file).tensors.count, tensors.count)
    }

    private func resume(_ makeOptimizer: () -> Optimizer, k: Int = 2, n: Int = 3,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try Model.referenceConvNet(seed: 1)
        let optA = makeOptimizer()
        for step in 0..<k { trainStep(a, optA, step: step) }
        let checkpoint = path("resume-\(optA.kind).safetensors")
        try Checkpoint.save(model: a, optimizer: optA, to: checkpoint)
        for step in k..<(k + n) { trainStep(a, optA, step: step) }

        let b = try Model.referenceConvNet(seed: 99)
        XCTAssertNotEqual(b.parameters[0].value.data, a.parameters[0].value.data, "B starts elsewhere", file: file, line: line)
        let (tensors, metadata) = try Checkpoint.load(from: checkpoint)
        try Checkpoint.loadWeights(tensors, into: b)
        let optB = try Checkpoint.loadOptimizer(tensors, metadata: metadata, for: b)
        XCTAssertEqual(optB.kind, optA.kind, file: file, line: line)
        XCTAssertEqual(optB.stepCount, k, file: file, line: line)
        XCTAssertEqual(optB.learningRate, optA.learningRate, file: file, line: line)
        for step in k..<(k + n) { trainStep(b, optB, step: step) }

        XCTAssertEqual(optB.stepCount, optA.stepCount, file: file, line: line)
        for (pa, pb) in zip(a.parameters, b.parameters) {
            XCTAssertEqual(pa.value.data.map(\.bitPattern), pb.value.data.map(\.bitPattern),
                           "\(pa.name) after resuming", file: file, line: line)
        }
    }

    func testResumingAdamFromACheckpointIsBitIdentical() throws {
        try resume { Adam(learningRate: 2e-3) }
    }

    func testResumingSGDWithMomentumFromACheckpointIsBitIdentical() throws {
        try resume { SGD(learningRate: 0.05, momentum: 0.9) }
    }

    func testLoadWeightsWithAMissingTensorThrowsAClearModelError() throws {
        let model = try Model.referenceConvNet(seed: 1)
        var tensors: [String: Tensor] = [:]
        for p in model.parameters { tensors[p.name] = Tensor(p.value.shape, repeating: 0.25) }
        tensors["fc.bias"] = nil
        let target = try Model.referenceConvNet(seed: 2)
        let before = target.parameters.map { $0.value.data }
        let message = NNTestSupport.assertModelError("missing fc.bias") { try Checkpoint.loadWeights(tensors, into: target) }
        XCTAssertTrue(message?.contains("fc.bias") == true, message ?? "")
        XCTAssertEqual(target.parameters.map { $0.value.data }, before, "a failed load changes nothing")
    }

    func testLoadWeightsWithAWrongShapeThrowsAClearModelError() throws {
        let model = try Model.referenceConvNet(seed: 1)
        var tensors: [String: Tensor] = [:]
        for p in model.parameters { tensors[p.name] = Tensor(p.value.shape, repeating: 0.25) }
        tensors["fc.weight"] = Tensor([10, 100])
        let before = model.parameters.map { $0.value.data }
        let message = NNTestSupport.assertModelError("fc.weight 10×100") { try Checkpoint.loadWeights(tensors, into: model) }
        XCTAssertTrue(message?.contains("fc.weight") == true, message ?? "")
        XCTAssertTrue(message?.contains("10×100") == true && message?.contains("10×288") == true, message ?? "")
        XCTAssertEqual(model.parameters.map { $0.value.data }, before, "a failed load changes nothing")

        // Same count, different layout: still rejected (PyTorch's shapes are exact).
        tensors["fc.weight"] = Tensor([288, 10])
        NNTestSupport.assertModelError("fc.weight transposed") { try Checkpoint.loadWeights(tensors, into: model) }
        tensors["fc.weight"] = Tensor([10, 288])
        tensors["conv1.weight"] = Tensor([16, 9])
        NNTestSupport.assertModelError("conv1.weight flat") { try Checkpoint.loadWeights(tensors, into: model) }
    }

    func testLoadingAMissingFileThrowsAModelError() {
        NNTestSupport.assertModelError("no file") { _ = try Checkpoint.load(from: self.path("nope.safetensors")) }
    }
}
