import XCTest
import Datasets
import NN
import Tensor
@testable import Training

/// Training with the recipes: the objective follows the settings, class weights normalise by
/// the whole batch's weight (so the thread count changes only rounding), top-K is scored.
final class RecipeTrainingTests: XCTestCase {
    private func train(epochs: Int = 1, _ configure: (inout Hyperparameters) -> Void) throws -> (weights: [Float], metrics: EpochMetrics, trainer: Trainer) {
        var settings = Hyperparameters()
        settings.batchSize = 32
        settings.target = 2
        settings.shuffle = false
        configure(&settings)
        let model = try Model.referenceConvNet(inputShape: [1, 8, 8], classes: 4, seed: 1)
        let trainer = try Trainer(model: model, dataset: quadrantDataset(), settings: settings)
        var metrics: EpochMetrics?
        trainer.train(epochs: epochs) { if case .epochFinished(let m) = $0 { metrics = m } }
        return (trainer.model.parameters.flatMap(\.value.data), try XCTUnwrap(metrics), trainer)
    }

    /// Equal weights w change nothing but rounding: Σ w·loss / Σ w is the plain mean. Were the
    /// slices divided by the batch size instead, weights of 2 would double every SGD step.
    func testEqualClassWeightsTrainAsNoWeights() throws {
        let plain = try train { $0.optimizer = .sgd; $0.learningRate = 0.1 }
        let doubled = try train { $0.optimizer = .sgd; $0.learningRate = 0.1; $0.classWeights = .given([2, 2, 2, 2]) }
        for (a, b) in zip(plain.weights, doubled.weights) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        XCTAssertEqual(doubled.metrics.trainLoss, plain.metrics.trainLoss, accuracy: 1e-5)
        // The evaluation loss stays plain cross-entropy.
        XCTAssertEqual(doubled.metrics.scoredLoss, plain.metrics.scoredLoss, accuracy: 1e-4)
    }

    /// Weighted, smoothed training: the same threads give the same bits; one and two threads
    /// differ only by the order the slices' gradients are summed in.
    func testWeightedSmoothedTrainingIsThreadCountIndependentUpToRounding() throws {
        func run(threads: Int) throws -> [Float] {
            try train { $0.threads = threads; $0.classWeights = .given([1, 3, 0.5, 2]); $0.labelSmoothing = 0.1; $0.optimizer = .adamw; $0.weightDecay = 0.01 }.weights
        }
        XCTAssertEqual(try run(threads: 2).map(\.bitPattern), try run(threads: 2).map(\.bitPattern))
        let one = try run(threads: 1), two = try run(threads: 2)
        XCTAssertNotEqual(one, try train { $0.threads = 1 }.weights, "the recipe must change the training")
        XCTAssertLessThan(zip(one, two).map { abs($0 - $1) }.max() ?? 0, 1e-2)   // as for the plain loss (TrainerTests)
    }

    /// The optimizer and objective follow the live settings between calls.
    func testTheObjectiveAndOptimizerFollowTheLiveSettings() throws {
        let run = try train { $0.optimizer = .rmsprop; $0.weightDecay = 1e-3; $0.labelSmoothing = 0.2 }
        XCTAssertEqual(run.trainer.optimizer.kind, "rmsprop")
        XCTAssertEqual(run.trainer.optimizer.weightDecay, 1e-3)
        XCTAssertEqual((run.trainer.objective as? SoftmaxCrossEntropy)?.smoothing, 0.2)
        run.trainer.live.values.classWeights = .balanced
        run.trainer.live.values.optimizer = .nesterov
        let objective = try XCTUnwrap(try run.trainer.makeObjective() as? SoftmaxCrossEntropy)
        let labels = run.trainer.trainingSplit.labels
        let counts = (0..<4).map { c in labels.filter { $0 == c }.count }
        XCTAssertEqual(objective.classWeights, counts.map { Float(Double(labels.count) / (4 * Double($0))) })
        XCTAssertEqual(run.trainer.optimizer.kind, "nesterov")
        run.trainer.live.values.classWeights = .given([1, 2])
        XCTAssertThrowsError(try run.trainer.makeObjective()) {
            XCTAssertEqual("\($0)", "class-weights: 2 weights for the data's 4 classes; give 4 or use balanced")
        }
    }

    func testTopKAccuracyIsScoredWhenAskedAndBelowTheClassCount() throws {
        let off = try train { _ in }
        XCTAssertNil(off.metrics.topK)
        XCTAssertNil(off.metrics.topKAccuracy)
        let two = try train { $0.topK = 2 }
        XCTAssertEqual(two.metrics.topK, 2)
        let top2 = try XCTUnwrap(two.metrics.topKAccuracy)
        XCTAssertGreaterThanOrEqual(top2, two.metrics.accuracy)
        XCTAssertLessThanOrEqual(top2, 1)
        XCTAssertEqual(two.weights, off.weights, "scoring top-K changes no weight")
        XCTAssertNil(try train { $0.topK = 4 }.metrics.topKAccuracy, "K ≥ classes is always 1: not scored")
    }

    func testBalancedWeightsAreSklearnsAndClassWeightsParse() throws {
        XCTAssertEqual(try ClassWeights.balanced.resolve(classes: 3, labels: [0, 0, 1, 2]), [Float(4.0 / 6), Float(4.0 / 3), Float(4.0 / 3)])
        XCTAssertThrowsError(try ClassWeights.balanced.resolve(classes: 3, labels: [0, 1]))
        XCTAssertEqual(try ClassWeights(parsing: "1,2.5,0"), .given([1, 2.5, 0]))
        XCTAssertEqual(try ClassWeights(parsing: "1,2.5,0").text, "1,2.5,0")
        XCTAssertEqual(try ClassWeights(parsing: "Balanced"), .balanced)
        for bad in ["1", "1,-2", "0,0", "1,,2", "a,b", "1,inf"] {
            XCTAssertThrowsError(try ClassWeights(parsing: bad), bad)
        }
    }
}
