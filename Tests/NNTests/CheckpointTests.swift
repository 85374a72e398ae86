import Foundation
import XCTest
@testable import NN
import Tensor

/// Model + optimizer checkpoints: names, shapes, optimizer state, exact resumption, clear errors.
final class CheckpointTests: XCTestCase {
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
        XCTAssertEqual(Set(weights.keys), ["0.weight", "0.bias", "3.weight", "3.bias",
                                           "6.weight", "6.bias", "10.weight", "10.bias"])
        XCTAssertEqual(tensors["0.weight"]?.shape, [16, 1, 3, 3])
        XCTAssertEqual(tensors["0.bias"]?.shape, [16])
        XCTAssertEqual(tensors["3.weight"]?.shape, [32, 16, 3, 3])
        XCTAssertEqual(tensors["6.weight"]?.shape, [32, 32, 3, 3])
        XCTAssertEqual(tensors["10.weight"]?.shape, [10, 288])
        XCTAssertEqual(tensors["10.bias"]?.shape, [10])
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
        XCTAssertEqual(metadata["ollie.model"], model.description)
        XCTAssertEqual(try Checkpoint.load(from: file).tensors.count, tensors.count)
    }

    /// Trains A for k steps, saves, trains n more. B resumes from the file with loadWeights and
    /// loadOptimizer (a new optimizer of the saved kind), C with apply into a fresh optimizer of
    /// the same kind at another learning rate; both must end bit-identical to A.
    private func resume(_ makeOptimizer: () -> Optimizer, stateSuffixes: [String], k: Int = 2, n: Int = 3,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try Model.referenceConvNet(seed: 1)
        let optA = makeOptimizer()
        for step in 0..<k { trainStep(a, optA, step: step) }
        let checkpoint = path("resume-\(optA.kind).safetensors")
        try Checkpoint.save(model: a, optimizer: optA, to: checkpoint)
        for step in k..<(k + n) { trainStep(a, optA, step: step) }

        let (tensors, metadata) = try Checkpoint.load(from: checkpoint)
        XCTAssertEqual(metadata["ollie.optimizer_steps"], String(k), file: file, line: line)
        let stateKeys = Set(tensors.keys.filter { $0.hasPrefix(Checkpoint.optimizerPrefix) })
        XCTAssertEqual(stateKeys, Set(a.parameters.flatMap { p in stateSuffixes.map { "optimizer.\(p.name).\($0)" } }),
                       file: file, line: line)
        for p in a.parameters {
            for suffix in stateSuffixes {
                XCTAssertEqual(tensors["optimizer.\(p.name).\(suffix)"]?.shape, p.value.shape, file: file, line: line)
            }
        }

        let b = try Model.referenceConvNet(seed: 99)
        XCTAssertNotEqual(b.parameters[0].value.data, a.parameters[0].value.data, "B starts elsewhere", file: file, line: line)
        try Checkpoint.loadWeights(tensors, into: b)
        let optB = try XCTUnwrap(try Checkpoint.loadOptimizer(tensors, metadata: metadata, for: b))
        XCTAssertEqual(optB.kind, optA.kind, file: file, line: line)
        XCTAssertEqual(optB.stepCount, k, file: file, line: line)
        XCTAssertEqual(optB.learningRate, optA.learningRate, file: file, line: line)
        for step in k..<(k + n) { trainStep(b, optB, step: step) }

        let c = try Model.referenceConvNet(seed: 98)
        let optC = makeOptimizer()
        optC.learningRate = 1
        try Checkpoint.apply(tensors, metadata: metadata, to: c, optimizer: optC)
        XCTAssertEqual(optC.stepCount, k, file: file, line: line)
        XCTAssertEqual(optC.learningRate, optA.learningRate, "apply restores the learning rate", file: file, line: line)
        for step in k..<(k + n) { trainStep(c, optC, step: step) }

        for (resumed, optimizer, how) in [(b, optB, "loadWeights + loadOptimizer"), (c, optC, "apply")] {
            XCTAssertEqual(optimizer.stepCount, optA.stepCount, how, file: file, line: line)
            for (pa, pr) in zip(a.parameters, resumed.parameters) {
                XCTAssertEqual(pa.value.data.map(\.bitPattern), pr.value.data.map(\.bitPattern),
                               "\(pa.name) after resuming with \(how)", file: file, line: line)
            }
        }
    }

    func testResumingAdamFromACheckpointIsBitIdentical() throws {
        try resume({ Adam(learningRate: 2e-3) }, stateSuffixes: ["m", "v"])
    }

    func testResumingSGDWithMomentumFromACheckpointIsBitIdentical() throws {
        try resume({ SGD(learningRate: 0.05, momentum: 0.9) }, stateSuffixes: ["momentum"])
    }

    func testResumingPlainSGDFromACheckpointIsBitIdentical() throws {
        try resume({ SGD(learningRate: 0.05) }, stateSuffixes: [])
    }

    func testLoadWeightsWithAMissingTensorThrowsAClearModelError() throws {
        let model = try Model.referenceConvNet(seed: 1)
        var tensors: [String: Tensor] = [:]
        for p in model.parameters { tensors[p.name] = Tensor(p.value.shape, repeating: 0.25) }
        tensors["10.bias"] = nil
        let target = try Model.referenceConvNet(seed: 2)
        let before = target.parameters.map { $0.value.data }
        let message = NNTestSupport.assertModelError("missing fc.bias") { try Checkpoint.loadWeights(tensors, into: target) }
        XCTAssertTrue(message?.contains("10.bias") == true, message ?? "")
        XCTAssertEqual(target.parameters.map { $0.value.data }, before, "a failed load changes nothing")
    }

    func testLoadWeightsWithAWrongShapeThrowsAClearModelError() throws {
        let model = try Model.referenceConvNet(seed: 1)
        var tensors: [String: Tensor] = [:]
        for p in model.parameters { tensors[p.name] = Tensor(p.value.shape, repeating: 0.25) }
        tensors["10.weight"] = Tensor([10, 100])
        let before = model.parameters.map { $0.value.data }
        let message = NNTestSupport.assertModelError("fc weight 10×100") { try Checkpoint.loadWeights(tensors, into: model) }
        XCTAssertTrue(message?.contains("10.weight") == true, message ?? "")
        XCTAssertTrue(message?.contains("10×100") == true && message?.contains("10×288") == true, message ?? "")
        XCTAssertEqual(model.parameters.map { $0.value.data }, before, "a failed load changes nothing")

        // Same count, different layout: still rejected (PyTorch's shapes are exact).
        tensors["10.weight"] = Tensor([288, 10])
        NNTestSupport.assertModelError("10.weight transposed") { try Checkpoint.loadWeights(tensors, into: model) }
        tensors["10.weight"] = Tensor([10, 288])
        tensors["0.weight"] = Tensor([16, 9])
        NNTestSupport.assertModelError("0.weight flat") { try Checkpoint.loadWeights(tensors, into: model) }
    }

    func testLoadingAMissingFileThrowsAModelError() {
        let message = NNTestSupport.assertModelError("no file") { _ = try Checkpoint.load(from: self.path("nope.safetensors")) }
        XCTAssertTrue(message?.contains("no checkpoint") == true, message ?? "")
    }

    /// apply checks everything (weights, optimizer kind, its state) before it changes anything.
    func testApplyRejectsMissingTensorsWrongShapesAndAnotherOptimizer() throws {
        let model = try Model.mlp(inputShape: [1, 28, 28], hidden: [32], classes: 10, seed: 1)
        let file = path("mlp.safetensors")
        try Checkpoint.save(model: model, optimizer: Adam(), to: file)
        var (tensors, metadata) = try Checkpoint.load(from: file)

        let other = try Model.mlp(inputShape: [1, 28, 28], hidden: [16], classes: 10, seed: 1)
        let before = other.parameters.map { $0.value.copy() }
        XCTAssertThrowsError(try Checkpoint.apply(tensors, metadata: metadata, to: other, optimizer: Adam())) { error in
            XCTAssertTrue("\(error)".contains("'1.weight' is 32×784 in the checkpoint but 16×784"), "\(error)")
        }
        XCTAssertEqual(other.parameters.map(\.value.data), before.map(\.data), "a failed apply changes nothing")
        XCTAssertThrowsError(try Checkpoint.apply(tensors, metadata: metadata, to: try Model.referenceConvNet(seed: 1), optimizer: nil)) { error in
            XCTAssertTrue("\(error)".contains("no '0.weight'"), "\(error)")
        }
        XCTAssertThrowsError(try Checkpoint.apply(tensors, metadata: metadata, to: model, optimizer: SGD(learningRate: 0.1))) { error in
            XCTAssertTrue("\(error)".contains("adam optimizer state"), "\(error)")
        }
        tensors["optimizer.3.bias.m"] = nil
        XCTAssertThrowsError(try Checkpoint.apply(tensors, metadata: metadata, to: model, optimizer: Adam())) { error in
            XCTAssertTrue("\(error)".contains("3.bias.m"), "\(error)")
        }
        metadata["ollie.optimizer"] = "lion"
        XCTAssertThrowsError(try Checkpoint.loadOptimizer(tensors, metadata: metadata, for: model))
    }
}
