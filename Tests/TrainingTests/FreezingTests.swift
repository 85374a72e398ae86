import XCTest
import Datasets
import NN
import Tensor
@testable import Training

/// Freezing in the trainer: frozen parameters and batchnorm statistics stay bit for bit, the
/// rest trains; the feature cache changes no bit; Adam's per-parameter steps; rate scales.
final class FreezingTests: XCTestCase {
    /// Modules: 0 conv, 1 relu, 2 batchnorm, 3 pool, 4 conv, 5 relu, 6 dropout, 7 flatten (implied), 8 dense.
    static let spec = "conv 3 8 relu | batchnorm | pool 2 | conv 3 8 relu | dropout 0.25 | dense 4"

    func makeTrainer(spec: String = FreezingTests.spec, frozen: Set<Int>, noise: Float = 0, threads: Int = 2,
                     data: Dataset = quadrantDataset(train: 256, test: 64)) throws -> Trainer {
        var settings = Hyperparameters()
        settings.batchSize = 32
        settings.target = 2
        settings.noise = noise
        settings.threads = threads
        settings.frozenModules = frozen
        let model = try ModelSpec(parsing: spec).compile(inputShape: [1, 8, 8], classes: 4, seed: 5)
        return try Trainer(model: model, dataset: data, settings: settings)
    }

    func values(_ parameters: [Parameter]) -> [[Float]] { parameters.map(\.value.data) }

    func prefixTensors(_ model: Model) -> [Parameter] {
        (model.parameters + model.buffers).filter { ["0.", "2."].contains(where: $0.name.hasPrefix) }
    }

    func testFrozenWeightsAndBatchNormStatisticsStayBitForBitWhileTheRestTrains() throws {
        // With noise the prefix runs every step (no cache); without, from the cache.
        for noise: Float in [0.1, 0] {
            let trainer = try makeTrainer(frozen: [0, 1, 2], noise: noise)
            let frozenBefore = values(prefixTensors(trainer.model))
            let rest = trainer.model.parameters.filter { !["0.", "2."].contains(where: $0.name.hasPrefix) }
            let restBefore = values(rest)
            trainer.train(epochs: 1) { _ in }
            XCTAssertEqual(trainer.featureCacheModules, noise == 0 ? 0..<4 : nil)
            XCTAssertEqual(values(prefixTensors(trainer.model)), frozenBefore, "noise \(noise)")
            XCTAssertEqual(trainer.model.buffers.first { $0.name == "2.num_batches_tracked" }?.value.data, [0])
            for (before, after) in zip(restBefore, values(rest)) { XCTAssertNotEqual(before, after) }
        }
    }

    func testUnfrozenBatchNormUpdatesItsStatisticsAgain() throws {
        let trainer = try makeTrainer(frozen: [0, 1, 2])
        trainer.train(epochs: 1) { _ in }
        trainer.live.values.frozenModules = []
        trainer.train(epochs: 1) { _ in }
        XCTAssertEqual(trainer.model.buffers.first { $0.name == "2.num_batches_tracked" }?.value.data, [8])   // 256 / 32 batches
        XCTAssertNil(trainer.featureCacheModules)
    }

    func testBackwardStopsAtTheFirstTrainedLayer() throws {
        try BLAS.load()
        let model = try ModelSpec(parsing: FreezingTests.spec).compile(inputShape: [1, 8, 8], classes: 4, seed: 5)
        model.freeze([0, 1, 2, 3])
        // Engine layers: 0 conv+relu, 2 batchnorm, 3 pool, 4 conv+relu, 6 dropout, 7 flatten, 8 dense.
        XCTAssertEqual(model.firstTrainedLayer, 3)
        XCTAssertEqual(model.trainableParameters.map(\.name), ["4.weight", "4.bias", "8.weight", "8.bias"])
        let x = Tensor([1, 5, 8, 8], (0..<320).map { Float($0 % 7) / 7 })
        let logits = model.forward(x, training: true)
        model.backward(Tensor(logits.shape, repeating: 0.1))
        for p in model.parameters {
            let touched = p.grad.data.contains { $0 != 0 }
            XCTAssertEqual(touched, !["0.", "2."].contains(where: p.name.hasPrefix), p.name)
        }
    }

    /// Same seed, threads and data, shuffling off: training over the cached prefix outputs
    /// gives the same bits as running the prefix every step. The cache is made in slices the
    /// size of a training shard, so each sample sits where it sits in its training slice: its
    /// convolution is an im2col GEMM over the slice, and which OpenBLAS micro-kernel (a full
    /// tile or an edge one, accumulating in another order) computes a column depends on the
    /// column's place in the slice, so a sample moved within its slice can come out 1 ulp apart.
    func testTrainingOverTheCacheGivesTheSameBitsAsWithout() throws {
        for threads in [1, 2] {
            let (cached, uncached) = try pair(threads: threads, shuffle: false, optimizer: .adam)
            XCTAssertEqual(cached.featureCacheModules, 0..<4)
            XCTAssertNil(uncached.featureCacheModules)
            XCTAssertTrue(values(cached.model.parameters) == values(uncached.model.parameters), "threads \(threads)")
            XCTAssertEqual(cached.evaluate(cached.dataset.test).predictions, uncached.evaluate(uncached.dataset.test).predictions)
        }
    }

    /// Shuffled, a sample's place in its slice differs from its place when the cache was made:
    /// the last bit of some prefix outputs (see above), nothing more. SGD passes those on
    /// without amplifying them (Adam's m/√v turns a 1-ulp change in a near-zero gradient into
    /// a change of up to lr).
    func testShuffledTrainingOverTheCacheDiffersOnlyByRounding() throws {
        let (cached, uncached) = try pair(threads: 2, shuffle: true, optimizer: .sgd)
        let gap = zip(cached.model.parameters.flatMap(\.value.data), uncached.model.parameters.flatMap(\.value.data))
            .map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(gap, 1e-6)
    }

    /// Two trainers of the same model, data and settings, one over the cache, trained 2 epochs.
    func pair(threads: Int, shuffle: Bool, optimizer: OptimizerKind) throws -> (cached: Trainer, uncached: Trainer) {
        let cached = try makeTrainer(frozen: [0, 1, 2], threads: threads)
        let uncached = try makeTrainer(frozen: [0, 1, 2], threads: threads)
        uncached.cachesFeatures = false
        var losses: [[Double]] = [[], []]
        for (i, trainer) in [cached, uncached].enumerated() {
            trainer.live.values.shuffle = shuffle
            trainer.live.values.optimizer = optimizer
            trainer.train(epochs: 2) { if case .epochFinished(let m) = $0 { losses[i].append(m.trainLoss) } }
        }
        if !shuffle { XCTAssertEqual(losses[0], losses[1]) }
        return (cached, uncached)
    }

    func testTheCacheIsDroppedWhenTheFrozenSetTheWeightsOrTheDataChange() throws {
        let trainer = try makeTrainer(frozen: [0, 1, 2])
        let built = try XCTUnwrap(trainer.updateFeatureCache())
        XCTAssertEqual(built.modules, 0..<4)
        XCTAssertEqual(built.samples, 256 + 64)
        XCTAssertEqual(built.bytes, (256 + 64) * 8 * 4 * 4 * 4)   // 8 channels of 4×4 after the pool
        XCTAssertNil(trainer.updateFeatureCache(), "still valid: not built again")
        // The frozen set.
        trainer.live.values.frozenModules = [0, 1]   // the batchnorm trains: a prefix of modules 0-1 only
        XCTAssertNil(trainer.featureCacheModules)
        trainer.live.values.frozenModules = [0, 1, 2]
        XCTAssertNotNil(trainer.updateFeatureCache())
        // The prefix's weights (what restore does to them).
        trainer.model.parameters[0].value.data[0] += 1
        XCTAssertNil(trainer.featureCacheModules)
        XCTAssertNotNil(trainer.updateFeatureCache())
        // The data: a validation split changes what training steps over.
        trainer.live.values.validationFraction = 0.25
        XCTAssertEqual(trainer.updateFeatureCache()?.samples, 192 + 64 + 64)
        // Noise makes every step's inputs different: no cache.
        trainer.live.values.noise = 0.1
        XCTAssertNil(trainer.updateFeatureCache())
        XCTAssertNil(trainer.featureCacheModules)
    }

    func testDropoutOrATrainedLayerEndsTheCachedPrefix() throws {
        // Frozen dropout still acts: the prefix stops before it.
        let trainer = try makeTrainer(frozen: [0, 1, 2, 3, 4, 5, 6])
        XCTAssertEqual(trainer.updateFeatureCache()?.modules, 0..<6)
        // A frozen conv after a trained one is not a prefix.
        let middle = try makeTrainer(frozen: [4, 5])
        XCTAssertNil(middle.updateFeatureCache())
    }

    func testAdamCountsStepsPerParameter() throws {
        let adam = Adam(learningRate: 0.1)
        let p = Parameter(name: "p", value: Tensor([1], [1])), q = Parameter(name: "q", value: Tensor([1], [1]))
        for _ in 0..<5 {
            p.grad.data = [1]
            adam.step([p])   // q frozen
        }
        XCTAssertEqual(adam.state(for: [p, q])["q.step"]?.data, [0])
        XCTAssertNil(adam.state(for: [p, q])["p.step"], "a parameter stepped every time needs no count of its own")
        p.grad.data = [1]; q.grad.data = [1]
        adam.step([p, q])
        // Its first step: m̂/√v̂ = 1, so it moves by lr, as a fresh Adam would move it.
        XCTAssertEqual(q.value.data[0], 0.9, accuracy: 1e-6)
        // The counts survive a checkpoint.
        let copy = Adam(learningRate: 0.1)
        let (p2, q2) = (Parameter(name: "p", value: Tensor([1], p.value.data)), Parameter(name: "q", value: Tensor([1], q.value.data)))
        try copy.restore(adam.state(for: [p, q]), stepCount: adam.stepCount, for: [p2, q2])
        for (optimizer, params) in [(adam as Optimizer, [p, q]), (copy, [p2, q2])] {
            for x in params { x.grad.data = [0.5] }
            optimizer.step(params)
        }
        XCTAssertEqual(p.value.data, p2.value.data)
        XCTAssertEqual(q.value.data, q2.value.data)
    }

    func testRateScalesMultiplyEachParametersStep() {
        let sgd = SGD(learningRate: 0.5)
        let p = Parameter(name: "p", value: Tensor([2], [1, 1])), q = Parameter(name: "q", value: Tensor([1], [1]))
        p.grad.data = [2, 4]; q.grad.data = [2]
        sgd.step([p, q], rateScales: [0.01, 1])
        let (lr, scale): (Float, Float) = (0.5, 0.01)
        XCTAssertEqual(p.value.data, [1 - lr * scale * 2, 1 - lr * scale * 4])
        XCTAssertEqual(q.value.data, [0])
    }

    func testTheTrainerScalesEachModulesRate() throws {
        // SGD, one step, multipliers 0.01 for module 0 and 1 for the rest: module 0's step is a
        // hundredth of what it is with no multipliers, to rounding.
        func firstStep(_ multipliers: [Int: Float]) throws -> [[Float]] {
            let trainer = try makeTrainer(frozen: [], threads: 1)
            trainer.live.values.optimizer = .sgd
            trainer.live.values.learningRateMultipliers = multipliers
            let before = values(trainer.model.parameters)
            trainer.train(.batches(1)) { _ in }
            return zip(before, values(trainer.model.parameters)).map { zip($0, $1).map { $1 - $0 } }
        }
        let plain = try firstStep([:]), scaled = try firstStep([0: 0.01])
        let names = try makeTrainer(frozen: []).model.parameters.map(\.name)
        for (name, (a, b)) in zip(names, zip(plain, scaled)) {
            let factor: Float = name.hasPrefix("0.") ? 0.01 : 1
            for (x, y) in zip(a, b) { XCTAssertEqual(y, factor * x, accuracy: 1e-6 * max(1, abs(x)), name) }
        }
    }
}
