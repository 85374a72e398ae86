import XCTest
@testable import NN
import Tensor

/// Checkpoints of every optimizer keep its kind, constants, weight decay and state; one
/// written before weight decay was recorded loads with none.
final class RecipeCheckpointTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        try BLAS.load()
        folder = NSTemporaryDirectory() + "ollie-recipes-\(UUID().uuidString)"
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func testEveryOptimizerComesBackWithItsKindConstantsWeightDecayAndState() throws {
        let model = try Model.mlp(inputShape: [1, 4, 4], hidden: [5], classes: 3, seed: 1)
        for kind in OptimizerKind.allCases {
            let optimizer = kind.make(learningRate: 0.02, weightDecay: 0.03)
            for p in model.parameters { for i in p.grad.data.indices { p.grad.data[i] = Float(i % 7) * 0.1 - 0.3 } }
            optimizer.step(model.parameters)
            let path = folder + "/\(kind).safetensors"
            try Checkpoint.save(model: model, optimizer: optimizer, to: path)
            var (tensors, metadata) = try Checkpoint.load(from: path)
            XCTAssertEqual(metadata["ollie.optimizer"], kind.rawValue)
            XCTAssertEqual(metadata["ollie.weight_decay"], "0.03")
            let loaded = try XCTUnwrap(try Checkpoint.loadOptimizer(tensors, metadata: metadata, for: model))
            XCTAssertEqual(loaded.kind, kind.rawValue)
            XCTAssertEqual(loaded.weightDecay, 0.03)
            XCTAssertEqual(loaded.constants, optimizer.constants)
            XCTAssertEqual(loaded.state(for: model.parameters).mapValues(\.data), optimizer.state(for: model.parameters).mapValues(\.data))
            // Written before weight decay was recorded: there was none.
            metadata["ollie.weight_decay"] = nil
            XCTAssertEqual(try Checkpoint.loadOptimizer(tensors, metadata: metadata, for: model)?.weightDecay, 0)
            metadata["ollie.weight_decay"] = "-1"
            XCTAssertThrowsError(try Checkpoint.loadOptimizer(tensors, metadata: metadata, for: model))
            tensors = [:]
        }
    }
}
