import Foundation
import XCTest
@testable import NN
import Tensor

final class OptimizerTests: XCTestCase {
    private func twoSteps(_ optimizer: Optimizer) -> [Float] {
        let p = Parameter(name: "w", value: Tensor([2], [1, -2]))
        for g in [[Float(0.5), -1], [0.1, 0.2]] {
            p.grad.data = g
            optimizer.step([p])
        }
        return p.value.data
    }

    func testAdamMatchesTwoHandComputedSteps() {
        let p = twoSteps(Adam(learningRate: 0.1))
        XCTAssertEqual(p[0], 0.8196959, accuracy: 2e-6)
        XCTAssertEqual(p[1], -1.8488974, accuracy: 2e-6)
    }

    func testSGDAndMomentumMatchTwoHandComputedSteps() {
        XCTAssertEqual(twoSteps(SGD(learningRate: 0.1)), [Float(1 - 0.05 - 0.01), Float(-2 + 0.1 - 0.02)])
        let momentum = twoSteps(SGD(learningRate: 0.1, momentum: 0.9))
        XCTAssertEqual(momentum[0], 0.895, accuracy: 1e-6)
        XCTAssertEqual(momentum[1], -1.83, accuracy: 1e-6)
    }
}

final class CheckpointTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        try BLAS.load()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nn-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func testSafeTensorsRoundTripAndByteLayout() throws {
        let tensors = ["b": Tensor([3], [1, -2, 3.5]), "a.weight": Tensor([2, 1, 2], [0, 1, 2, 3])]
        let data = SafeTensors.encode(tensors, metadata: ["note": "he said \"hi\"\n"])
        let bytes = [UInt8](data)
        let headerLength = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        XCTAssertEqual(headerLength % 8, 0)
        XCTAssertEqual(bytes.count, 8 + headerLength + 7 * 4)
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any])
        let a = try XCTUnwrap(header["a.weight"] as? [String: Any])
        XCTAssertEqual(a["dtype"] as? String, "F32")
        XCTAssertEqual((a["shape"] as? [NSNumber])?.map(\.intValue), [2, 1, 2])
        XCTAssertEqual((a["data_offsets"] as? [NSNumber])?.map(\.intValue), [0, 16])
        XCTAssertEqual(((header["b"] as? [String: Any])?["data_offsets"] as? [NSNumber])?.map(\.intValue), [16, 28])
        XCTAssertEqual((header["__metadata__"] as? [String: String])?["note"], "he said \"hi\"\n")
        // little-endian float32 data right after the header
        XCTAssertEqual(Array(bytes[(8 + headerLength + 16)..<(8 + headerLength + 20)]), [0, 0, 0x80, 0x3f])

        let (decoded, metadata) = try SafeTensors.decode(data, source: "test")
        XCTAssertEqual(metadata, ["note": "he said \"hi\"\n"])
        XCTAssertEqual(decoded["a.weight"]?.shape, [2, 1, 2])
        XCTAssertEqual(decoded["a.weight"]?.data, [0, 1, 2, 3])
        XCTAssertEqual(decoded["b"]?.data, [1, -2, 3.5])
    }

    func testEveryCorruptFileIsAClearErrorNotACrash() throws {
        let good = [UInt8](SafeTensors.encode(["w": Tensor([2], [1, 2])]))
        func file(header: String, data: [UInt8] = [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]) -> Data {
            var h = Array(header.utf8)
            while h.count % 8 != 0 { h.append(32) }
            return Data((0..<8).map { UInt8((h.count >> (8 * $0)) & 0xff) } + h + data)
        }
        let cases: [(String, Data, String)] = [
            ("too short", Data(good[0..<5]), "bytes long"),
            ("header runs past the end", Data(good[0..<20]), "truncated"),
            ("data truncated", Data(good.dropLast(3)), "outside"),
            ("bad JSON", file(header: "{\"w\": [1, 2"), "not a JSON object"),
            ("not an object", file(header: "[1, 2]"), "not a JSON object"),
            ("offsets past the end", file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#), "outside"),
            ("offsets reversed", file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#), "outside"),
            ("negative offset", file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#), "outside"),
            ("shape mismatch", file(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#), "needs 12"),
            ("huge shape", file(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#), "impossible shape"),
            ("wrong dtype", file(header: #"{"w":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}"#), "F32 only"),
            ("missing fields", file(header: #"{"w":{"dtype":"F32"}}"#), "lacks"),
            ("fractional shape", file(header: #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}"#), "lacks"),
            ("bad metadata", file(header: #"{"__metadata__":{"a":1}}"#), "not a string"),
        ]
        for (name, data, expected) in cases {
            XCTAssertThrowsError(try SafeTensors.decode(data, source: "x.safetensors"), name) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(name): \(error)")
                XCTAssertTrue("\(error)".contains("x.safetensors"), "\(name): \(error)")
            }
        }
        XCTAssertThrowsError(try Checkpoint.load(from: path("missing.safetensors"))) { XCTAssertTrue("\($0)".contains("no checkpoint")) }
    }

    private func trainSteps(_ model: Model, _ optimizer: Optimizer, steps: Range<Int>) {
        let g = Tensor([0])
        for step in steps {
            let x = NNTestSupport.uniform([1, 4, 28, 28], seed: UInt64(100 + step), range: 0.5)
            model.zeroGrads()
            _ = SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: [Int32(step % 10), 1, 2, 3],
                                                    normalizer: 4, gradient: g)
            model.backward(g)
            optimizer.step(model.parameters)
        }
    }

    func testResumingFromACheckpointIsBitIdentical() throws {
        for makeOptimizer in [{ Adam(learningRate: 3e-3) as Optimizer }, { SGD(learningRate: 0.05, momentum: 0.9) }, { SGD(learningRate: 0.05) }] {
            let model = try Model.referenceConvNet(seed: 1)
            let optimizer = makeOptimizer()
            trainSteps(model, optimizer, steps: 0..<3)
            let file = path("resume-\(optimizer.kind).safetensors")
            try Checkpoint.save(model: model, optimizer: optimizer, metadata: ["ollie.dataset": "random"], to: file)
            trainSteps(model, optimizer, steps: 3..<6)

            let fresh = try Model.referenceConvNet(seed: 99)
            let freshOptimizer = makeOptimizer()
            freshOptimizer.learningRate = 1
            let (tensors, metadata) = try Checkpoint.load(from: file)
            XCTAssertEqual(metadata["ollie.dataset"], "random")
            XCTAssertEqual(metadata["ollie.optimizer_steps"], "3")
            XCTAssertEqual(metadata["ollie.model"], model.description)
            XCTAssertEqual(tensors["conv2.weight"]?.shape, [32, 16, 3, 3])
            if optimizer.kind == "adam" { XCTAssertEqual(tensors["optimizer.fc.weight.v"]?.shape, [10, 288]) }
            if optimizer.kind == "momentum" { XCTAssertNotNil(tensors["optimizer.conv1.bias.momentum"]) }
            try Checkpoint.apply(tensors, metadata: metadata, to: fresh, optimizer: freshOptimizer)
            XCTAssertEqual(freshOptimizer.stepCount, 3)
            XCTAssertEqual(freshOptimizer.learningRate, optimizer.learningRate)
            trainSteps(fresh, freshOptimizer, steps: 3..<6)
            for (a, b) in zip(model.parameters, fresh.parameters) {
                XCTAssertEqual(a.value.data, b.value.data, "\(optimizer.kind): \(a.name) differs after resuming")
            }
        }
    }

    func testApplyRejectsMissingTensorsWrongShapesAndAnotherOptimizer() throws {
        let model = try Model.mlp(inputShape: [1, 28, 28], hidden: [32], classes: 10, seed: 1)
        let file = path("mlp.safetensors")
        try Checkpoint.save(model: model, optimizer: Adam(), to: file)
        var (tensors, metadata) = try Checkpoint.load(from: file)

        let other = try Model.mlp(inputShape: [1, 28, 28], hidden: [16], classes: 10, seed: 1)
        let before = other.parameters.map { $0.value.copy() }
        XCTAssertThrowsError(try Checkpoint.apply(tensors, metadata: metadata, to: other, optimizer: Adam())) { error in
            XCTAssertTrue("\(error)".contains("'fc1.weight' is 32×784 in the checkpoint but 16×784"), "\(error)")
        }
        XCTAssertEqual(other.parameters.map(\.value.data), before.map(\.data), "a failed apply changes nothing")
        XCTAssertThrowsError(try Checkpoint.apply(tensors, metadata: metadata, to: try Model.referenceConvNet(seed: 1), optimizer: nil)) { error in
            XCTAssertTrue("\(error)".contains("no 'conv1.weight'"), "\(error)")
        }
        XCTAssertThrowsError(try Checkpoint.apply(tensors, metadata: metadata, to: model, optimizer: SGD(learningRate: 0.1))) { error in
            XCTAssertTrue("\(error)".contains("adam optimizer state"), "\(error)")
        }
        tensors["optimizer.fc2.bias.m"] = nil
        XCTAssertThrowsError(try Checkpoint.apply(tensors, metadata: metadata, to: model, optimizer: Adam())) { error in
            XCTAssertTrue("\(error)".contains("fc2.bias.m"), "\(error)")
        }
        metadata["ollie.optimizer"] = "lion"
        XCTAssertThrowsError(try Checkpoint.loadOptimizer(tensors, metadata: metadata, for: model))
    }
}
