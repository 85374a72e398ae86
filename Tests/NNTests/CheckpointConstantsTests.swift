import XCTest
@testable import NN
import Tensor

/// Checkpoints record the optimizer's constants (Adam's β₁, β₂, ε; SGD's momentum), so a
/// resumed run continues with the same update rule.
final class CheckpointConstantsTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        try BLAS.load()
        folder = NSTemporaryDirectory() + "ollie-constants-\(UUID().uuidString)"
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    private func saved(_ optimizer: Optimizer) throws -> (Model, [String: Tensor], [String: String]) {
        let model = try Model.mlp(inputShape: [1, 4, 4], hidden: [5], classes: 3, seed: 1)
        let path = folder + "/c.safetensors"
        try Checkpoint.save(model: model, optimizer: optimizer, to: path)
        let (tensors, metadata) = try Checkpoint.load(from: path)
        return (model, tensors, metadata)
    }

    func testAdamConstantsAreSavedAndRestored() throws {
        let (model, tensors, metadata) = try saved(Adam(learningRate: 1e-3, beta1: 0.8, beta2: 0.99, epsilon: 1e-6))
        XCTAssertEqual(metadata["ollie.optimizer.beta1"], "0.8")
        XCTAssertEqual(metadata["ollie.optimizer.beta2"], "0.99")
        XCTAssertEqual(metadata["ollie.optimizer.epsilon"], "1e-06")
        let adam = try XCTUnwrap(try Checkpoint.loadOptimizer(tensors, metadata: metadata, for: model) as? Adam)
        XCTAssertEqual([adam.beta1, adam.beta2, adam.epsilon, adam.learningRate], [0.8, 0.99, 1e-6, 1e-3])
    }

    func testMomentumIsSavedAndRestored() throws {
        let (model, tensors, metadata) = try saved(SGD(learningRate: 0.1, momentum: 0.5))
        let sgd = try XCTUnwrap(try Checkpoint.loadOptimizer(tensors, metadata: metadata, for: model) as? SGD)
        XCTAssertEqual(sgd.kind, "momentum")
        XCTAssertEqual(sgd.momentum, 0.5)
    }

    func testCheckpointsWithoutConstantsGetTheDefaults() throws {
        let (model, tensors, metadata) = try saved(Adam(beta1: 0.5))
        let old = metadata.filter { !$0.key.hasPrefix("ollie.optimizer.") }
        let adam = try XCTUnwrap(try Checkpoint.loadOptimizer(tensors, metadata: old, for: model) as? Adam)
        XCTAssertEqual([adam.beta1, adam.beta2, adam.epsilon], [0.9, 0.999, 1e-8])
    }

    func testApplyingIntoAnOptimizerWithOtherConstantsIsAClearError() throws {
        let (model, tensors, metadata) = try saved(Adam(beta1: 0.8))
        let before = model.parameters.map { $0.value.data }
        let message = NNTestSupport.assertModelError("other beta1") {
            try Checkpoint.apply(tensors, metadata: metadata, to: model, optimizer: Adam())
        }
        XCTAssertEqual(message, "the checkpoint's adam beta1 is 0.8, the optimizer here has 0.9")
        XCTAssertEqual(model.parameters.map { $0.value.data }, before, "nothing changes on a refused apply")
        XCTAssertNoThrow(try Checkpoint.apply(tensors, metadata: metadata, to: model, optimizer: Adam(beta1: 0.8)))
    }

    /// Weights only (PyTorch's files): no optimizer to rebuild. Optimizer state without the
    /// metadata that says what it is: an error, not a guess.
    func testWeightsOnlyGiveNoOptimizerAndPartialOptimizerInformationIsAnError() throws {
        let (model, tensors, metadata) = try saved(Adam())
        let weights = tensors.filter { !$0.key.hasPrefix(Checkpoint.optimizerPrefix) }
        XCTAssertNil(try Checkpoint.loadOptimizer(weights, metadata: [:], for: model))
        XCTAssertNoThrow(try Checkpoint.loadWeights(weights, into: model))
        var partial = metadata
        partial["ollie.optimizer_steps"] = nil
        let message = NNTestSupport.assertModelError("no step count") {
            _ = try Checkpoint.loadOptimizer(tensors, metadata: partial, for: model)
        }
        XCTAssertEqual(message, "the checkpoint has optimizer state but its metadata lacks the optimizer's kind, step count or learning rate")
        XCTAssertNotNil(NNTestSupport.assertModelError("no kind") {
            _ = try Checkpoint.loadOptimizer(tensors, metadata: [:], for: model)
        })
    }

    func testAConstantThatIsNotANumberIsAClearError() throws {
        let (model, tensors, metadata) = try saved(Adam())
        var broken = metadata
        broken["ollie.optimizer.beta2"] = "fast"
        let message = NNTestSupport.assertModelError("beta2 fast") {
            _ = try Checkpoint.loadOptimizer(tensors, metadata: broken, for: model)
        }
        XCTAssertEqual(message, "the checkpoint's metadata ollie.optimizer.beta2 = 'fast' is not a number")
    }
}
