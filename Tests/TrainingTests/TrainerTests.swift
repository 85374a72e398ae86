import XCTest
import Datasets
import NN
import Tensor
@testable import Training

/// Four classes of 8×8 images: class k lights up quadrant k (plus noise). Learnable in an epoch.
func quadrantDataset(train: Int = 512, test: Int = 128, seed: UInt64 = 7) -> Dataset {
    var random = Random(seed: seed)
    func split(_ count: Int) -> Split {
        var images = [Float](repeating: 0, count: count * 64)
        var labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let k = Int(random.next() % 4)
            labels[i] = Int32(k)
            for y in 0..<8 {
                for x in 0..<8 {
                    let lit = (y / 4) * 2 + (x / 4) == k
                    images[i * 64 + y * 8 + x] = min(max((lit ? 0.8 : 0.1) + 0.1 * random.normal(), 0), 1)
                }
            }
        }
        return Split(images: images, labels: labels)
    }
    return Dataset(name: "quadrants", train: split(train), test: split(test), height: 8, width: 8, channels: 1,
                   classNames: ["0", "1", "2", "3"], source: "memory")
}

final class TrainerTests: XCTestCase {
    func makeTrainer(_ configure: (inout Hyperparameters) -> Void = { _ in }) throws -> Trainer {
        var settings = Hyperparameters()
        settings.batchSize = 32
        settings.target = 2   // unreachable: these data are easy, and only one test wants an early exit
        settings.noise = 0.1   // conv.jl's recipe, which these tests were written against (not the defaults)
        settings.shuffle = false
        configure(&settings)
        let data = quadrantDataset()
        let model = try Model.referenceConvNet(inputShape: [1, 8, 8], classes: 4, seed: settings.seed)
        return try Trainer(model: model, dataset: data, settings: settings)
    }

    func events(_ trainer: Trainer, epochs: Int, stop: @escaping () -> Bool = { false }) -> ([TrainingEvent], StopReason) {
        var seen: [TrainingEvent] = []
        let reason = trainer.train(epochs: epochs, shouldStop: stop) { event in
            if case .batchFinished = event { return }
            seen.append(event)
        }
        return (seen, reason)
    }

    func testTheRecipeLearnsSyntheticData() throws {
        let trainer = try makeTrainer()
        let before = trainer.evaluate(trainer.dataset.test).accuracy
        let (seen, reason) = events(trainer, epochs: 3)
        XCTAssertEqual(reason, .finishedEpochs)
        let after = trainer.evaluate(trainer.dataset.test).accuracy
        XCTAssertLessThan(before, 0.6)
        XCTAssertGreaterThan(after, 0.95, "events: \(seen)")
        XCTAssertEqual(trainer.epochsDone, 3)
        XCTAssertEqual(trainer.stepsDone, 3 * 16)
    }

    func testTheRecipeLearnsAnMNISTSubset() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/datasets").path
        // The checkout's neighbour first, then ollie's own search path (OLLIE_DATA_PATH, ./data, …); never the network.
        let path = [root] + DatasetCatalog.searchPath()
        guard let mnist = try? DatasetCatalog.load("mnist", searchPath: path, allowDownload: false) else {
            throw XCTSkip("MNIST not found in \(path.joined(separator: ", "))")
        }
        let subset = Dataset(name: "mnist-subset",
                             train: Split(images: Array(mnist.train.images[0..<(3000 * 784)]), labels: Array(mnist.train.labels[0..<3000])),
                             test: Split(images: Array(mnist.test.images[0..<(1000 * 784)]), labels: Array(mnist.test.labels[0..<1000])),
                             height: 28, width: 28, channels: 1, classNames: mnist.classNames, source: mnist.source)
        let model = try Model.referenceConvNet(seed: 1)
        let trainer = try Trainer(model: model, dataset: subset, settings: Hyperparameters())
        let (seen, _) = events(trainer, epochs: 2)
        let accuracy = trainer.evaluate(subset.test).accuracy
        XCTAssertGreaterThan(accuracy, 0.85, "events: \(seen)")
    }

    func testFirstEpochIsANewBest() throws {
        let trainer = try makeTrainer()
        let (seen, _) = events(trainer, epochs: 1)
        XCTAssertEqual(seen.map(\.kind), ["epoch", "new_best", "epoch_closed"])
    }

    func testReachingTheTargetExitsEarly() throws {
        let trainer = try makeTrainer { $0.target = 0.5 }
        let (seen, reason) = events(trainer, epochs: 5)
        XCTAssertEqual(reason, .earlyExit)
        XCTAssertEqual(seen.map(\.kind), ["epoch", "new_best", "early_exit", "epoch_closed"])
        XCTAssertEqual(trainer.epochsDone, 1)
    }

    func testNoImprovementForPatienceEpochsDropsTheLearningRate() throws {
        let trainer = try makeTrainer { $0.patience = 1 }
        // An unreachable best: no epoch improves on it.
        trainer.restore(optimizer: trainer.optimizer, epochsDone: 0, stepsDone: 0,
                        policy: Policy(bestAccuracy: 2, bestEpoch: 0, lastImprovement: 0))
        let (seen, _) = events(trainer, epochs: 1)
        XCTAssertEqual(seen.map(\.kind), ["epoch", "lr_dropped", "epoch_closed"])
        XCTAssertEqual(trainer.learningRate, 3e-4, accuracy: 1e-9)
        XCTAssertEqual(trainer.settings.learningRate, 3e-4, accuracy: 1e-9)
    }

    func testNoImprovementAtTheMinimumRateIsConverged() throws {
        let trainer = try makeTrainer { $0.stopAfter = 2; $0.learningRate = 1e-6 }
        trainer.restore(optimizer: trainer.optimizer, epochsDone: 0, stepsDone: 0,
                        policy: Policy(bestAccuracy: 2, bestEpoch: 0, lastImprovement: 0))
        let (seen, reason) = events(trainer, epochs: 5)
        XCTAssertEqual(reason, .converged)
        XCTAssertEqual(seen.map(\.kind), ["epoch", "epoch_closed", "epoch", "converged", "epoch_closed"])
    }

    func testNaNParametersStopTraining() throws {
        let trainer = try makeTrainer()
        trainer.model.parameters[0].value.data[0] = .nan
        let (seen, reason) = events(trainer, epochs: 3)
        XCTAssertEqual(reason, .nanStop)
        XCTAssertEqual(seen.map(\.kind), ["nan_stop"])
    }

    func testInterruptStopsAfterTheCurrentBatchAndTrainingContinues() throws {
        let trainer = try makeTrainer()
        let (seen, reason) = events(trainer, epochs: 2, stop: { true })
        XCTAssertEqual(reason, .interrupted)
        XCTAssertEqual(seen.map(\.kind), ["interrupted"])
        if case .interrupted(let epoch, let batch, let count) = seen[0] {
            XCTAssertEqual([epoch, batch, count], [1, 1, 16])
        }
        XCTAssertEqual(trainer.epochsDone, 0)
        XCTAssertEqual(trainer.stepsDone, 1)
        let (_, again) = events(trainer, epochs: 1)
        XCTAssertEqual(again, .finishedEpochs)
        XCTAssertEqual(trainer.epochsDone, 1)
    }

    /// Twice softmax cross-entropy: the same minimum, twice the gradient.
    struct DoubledCrossEntropy: Objective {
        let plain = SoftmaxCrossEntropy()
        func lossAndGradient(logits: Tensor, labels: [Int32], normalizer: Float, gradient: Tensor) -> Double {
            let loss = plain.lossAndGradient(logits: logits, labels: labels, normalizer: normalizer, gradient: gradient)
            for i in gradient.data.indices { gradient.data[i] *= 2 }
            return 2 * loss
        }
        func loss(logits: Tensor, labels: [Int32]) -> Double { 2 * plain.loss(logits: logits, labels: labels) }
        func predictions(_ logits: Tensor) -> [Int32] { plain.predictions(logits) }
        func correctCount(_ logits: Tensor, labels: [Int32]) -> Int { plain.correctCount(logits, labels: labels) }
        func probabilities(_ logits: Tensor) -> Tensor { plain.probabilities(logits) }
    }

    func testTheTrainerMinimizesTheObjectiveItIsGiven() throws {
        func train(_ objective: any Objective, learningRate: Float) throws -> (weights: [Float], metrics: EpochMetrics?) {
            var settings = Hyperparameters()
            settings.batchSize = 32
            settings.target = 2
            settings.optimizer = .sgd
            settings.learningRate = learningRate
            let model = try Model.referenceConvNet(inputShape: [1, 8, 8], classes: 4, seed: 1)
            let trainer = try Trainer(model: model, dataset: quadrantDataset(), settings: settings, objective: objective)
            var metrics: EpochMetrics?
            trainer.train(epochs: 1) { if case .epochFinished(let m) = $0 { metrics = m } }
            return (trainer.model.parameters.flatMap(\.value.data), metrics)
        }
        // SGD on twice the gradient at half the rate takes the very same steps (halving is exact).
        let plain = try train(SoftmaxCrossEntropy(), learningRate: 0.1)
        let doubled = try train(DoubledCrossEntropy(), learningRate: 0.05)
        XCTAssertEqual(doubled.weights, plain.weights)
        let (a, b) = (try XCTUnwrap(plain.metrics), try XCTUnwrap(doubled.metrics))
        XCTAssertEqual(b.trainLoss, 2 * a.trainLoss, accuracy: 1e-9 * a.trainLoss)
        XCTAssertEqual(b.scoredLoss, 2 * a.scoredLoss, accuracy: 1e-9 * a.scoredLoss)
        XCTAssertEqual(b.accuracy, a.accuracy)
    }

    func testTheSameSeedAndThreadsGiveBitIdenticalWeights() throws {
        func weights(threads: Int) throws -> [Float] {
            let trainer = try makeTrainer { $0.threads = threads }
            _ = events(trainer, epochs: 1)
            return trainer.model.parameters.flatMap(\.value.data)
        }
        XCTAssertEqual(try weights(threads: 2), try weights(threads: 2))
        XCTAssertEqual(try weights(threads: 1), try weights(threads: 1))
        // Two workers sum the same gradients in another order: close, not identical.
        let one = try weights(threads: 1), two = try weights(threads: 2)
        let gap = zip(one, two).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(gap, 1e-2)
    }

    func testNoiseIsTheSameWhateverTheThreadCount() {
        let table = NoiseTable(seed: 3)
        var a = [Float](repeating: 0, count: 784), b = a
        a.withUnsafeMutableBufferPointer { table.addNoise(to: $0.baseAddress!, count: 784, sigma: 0.1, step: 5, image: 70) }
        b.withUnsafeMutableBufferPointer { table.addNoise(to: $0.baseAddress!, count: 784, sigma: 0.1, step: 5, image: 70) }
        XCTAssertEqual(a, b)
        let mean = a.reduce(0, +) / 784
        let std = (a.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 784).squareRoot()
        XCTAssertEqual(std, 0.1, accuracy: 0.02)
        var c = [Float](repeating: 0, count: 784)
        c.withUnsafeMutableBufferPointer { table.addNoise(to: $0.baseAddress!, count: 784, sigma: 0.1, step: 6, image: 70) }
        XCTAssertNotEqual(a, c)
    }

    func testAModelForOtherImagesIsRejectedWithAClearError() throws {
        let model = try Model.referenceConvNet(seed: 1)   // 28×28 input
        XCTAssertThrowsError(try Trainer(model: model, dataset: quadrantDataset(), settings: Hyperparameters())) { error in
            XCTAssertTrue("\(error)".contains("build the model again"), "\(error)")
        }
        // Clips are named clips, in the C×T×H×W order `summary` uses.
        let split = Split(images: [Float](repeating: 0, count: 2 * 4 * 8 * 8), labels: [0, 1])
        let clips = Dataset(name: "motion", train: split, test: split, height: 8, width: 8, channels: 1, frames: 4,
                            classNames: ["a", "b"], source: "memory")
        XCTAssertThrowsError(try Trainer(model: model, dataset: clips, settings: Hyperparameters())) { error in
            XCTAssertEqual("\(error)", "the model takes 1×28×28 inputs but motion has 1×4×8×8 clips; build the model again after `load`")
        }
    }
}
