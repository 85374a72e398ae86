import XCTest
import Foundation
import Datasets
import NN
import Tensor
@testable import Training


/// One rank's epoch lines, appended by that rank's thread only.
final class RankMetrics: @unchecked Sendable {
    var values: [EpochMetrics] = []
}

final class DistributedTrainerTests: XCTestCase {
    var spec = "conv 3 6 relu | batchnorm | pool 2 | dropout 0.25 | dense 4"
    /// The data the trainers learn: quadrants (1×8×8), or clips of them for per-frame networks.
    var clips = false

    func makeTrainer(threads: Int, group: ProcessGroup?, clip: Float? = nil) throws -> Trainer {
        var settings = Hyperparameters()
        settings.clipNorm = clip
        settings.batchSize = 30   // 512 = 17 × 30 + 2: an uneven last batch
        settings.threads = threads
        settings.shuffle = true
        settings.noise = 0.1   // the noise stream must agree across ranks too
        settings.target = 2
        let data = clips ? quadrantClips() : quadrantDataset()
        let model = try ModelSpec(parsing: spec).compile(inputShape: data.sampleShape, classes: 4, seed: 5)
        Trainer.processGroup = group
        defer { Trainer.processGroup = nil }
        return try Trainer(model: model, dataset: data, settings: settings)
    }

    /// Clips of 3 quadrant images (1×3×8×8), labelled by the middle frame's quadrant.
    func quadrantClips() -> Dataset {
        let frames = quadrantDataset(train: 3 * 512, test: 3 * 128, seed: 9)
        func split(_ images: Split) -> Split {
            let count = images.count / 3
            var pixels = [Float](repeating: 0, count: count * 3 * 64)
            for i in 0..<count {
                for f in 0..<3 { for p in 0..<64 { pixels[(i * 3 + f) * 64 + p] = images.images[(f * count + i) * 64 + p] } }
            }
            return Split(images: pixels, labels: (0..<count).map { images.labels[count + $0] })
        }
        return Dataset(name: "quadrant clips", train: split(frames.train), test: split(frames.test), height: 8, width: 8,
                       channels: 1, frames: 3, classNames: ["0", "1", "2", "3"], source: "memory")
    }

    /// Every tensor a checkpoint would hold, as bits, and the epoch metrics.
    func state(_ trainer: Trainer) -> [[UInt32]] {
        (trainer.model.parameters + trainer.model.buffers).map { $0.value.data.map(\.bitPattern) }
    }

    func trainAsRanks(_ ranks: Int, threads: Int, epochs: Int, clip: Float? = nil) throws -> (state: [[UInt32]], metrics: [EpochMetrics]) {
        let group = ThreadGroup(ranks: ranks)
        let trainers = try (0..<ranks).map { try makeTrainer(threads: threads, group: ThreadGroup.Member(group, rank: $0), clip: clip) }
        let metrics = (0..<ranks).map { _ in RankMetrics() }
        let done = DispatchGroup()
        for r in 0..<ranks {
            done.enter()
            Thread.detachNewThread { [trainers] in
                trainers[r].train(epochs: epochs) { if case .epochFinished(let m) = $0 { metrics[r].values.append(m) } }
                done.leave()
            }
        }
        done.wait()
        for r in 1..<ranks {
            XCTAssertTrue(state(trainers[r]) == state(trainers[0]), "rank \(r) holds other weights than rank 0")
        }
        return (state(trainers[0]), metrics[0].values)
    }

    func testRanksOfThreadsTrainAsOneProcessWithAllTheThreadsBitForBit() throws {
        let single = try makeTrainer(threads: 4, group: nil)
        var metrics: [EpochMetrics] = []
        single.train(epochs: 2) { if case .epochFinished(let m) = $0 { metrics.append(m) } }
        for (ranks, threads) in [(4, 1), (2, 2)] {
            let distributed = try trainAsRanks(ranks, threads: threads, epochs: 2)
            XCTAssertTrue(distributed.state == state(single), "\(ranks) ranks × \(threads) threads: other weights than 4 threads")
            XCTAssertEqual(distributed.metrics.map(\.trainLoss), metrics.map(\.trainLoss))
            XCTAssertEqual(distributed.metrics.map(\.accuracy), metrics.map(\.accuracy))
            XCTAssertEqual(distributed.metrics.map(\.scoredLoss), metrics.map(\.scoredLoss))
        }
    }

    /// The networks of today: a residual block with batchnorm in it and in its projection; a
    /// per-frame convnet into a GRU, a bidirectional LSTM and attention.
    func testResidualAndRecurrentNetworksTrainAsRanksOfThreadsBitForBit() throws {
        for (spec, clips) in [
            ("conv 3 4 relu | res(conv 3 6 stride 2 | batchnorm | relu | conv 3 6 | batchnorm) | relu | dropout 0.25 | gap | dense 4", false),
            ("frames(conv 3 4 relu | pool 2 | dense 8 relu) | gru 6 seq | lstm 5 bi seq | attention | dense 4", true),
        ] {
            self.spec = spec
            self.clips = clips
            let single = try makeTrainer(threads: 2, group: nil)
            var metrics: [EpochMetrics] = []
            single.train(epochs: 2) { if case .epochFinished(let m) = $0 { metrics.append(m) } }
            let distributed = try trainAsRanks(2, threads: 1, epochs: 2)
            XCTAssertTrue(distributed.state == state(single), "\(spec): 2 ranks × 1 thread: other weights than 2 threads")
            XCTAssertEqual(distributed.metrics.map(\.trainLoss), metrics.map(\.trainLoss), spec)
            XCTAssertEqual(distributed.metrics.map(\.accuracy), metrics.map(\.accuracy), spec)
        }
    }

    func testClippedRanksTrainAsOneProcessWithAllTheThreadsBitForBit() throws {
        // Clipped after the exchange sums the gradients: the norm of the whole batch's gradient.
        let single = try makeTrainer(threads: 4, group: nil, clip: 0.05)
        single.train(epochs: 1) { _ in }
        let distributed = try trainAsRanks(2, threads: 2, epochs: 1, clip: 0.05)
        XCTAssertTrue(distributed.state == state(single), "2 ranks × 2 threads: other weights than 4 threads")
        let unclipped = try makeTrainer(threads: 4, group: nil)
        unclipped.train(epochs: 1) { _ in }
        XCTAssertFalse(state(unclipped) == state(single), "a norm this small must clip")
    }

    func testTheSlicesOfRanksAndThreadsAreOneProcessesSlices() {
        let layout = ShardLayout(group: nil, threads: 3)
        XCTAssertEqual(layout.globalWorkers, 3)
        let shards = shardBounds(count: 10, parts: 2 * 3)
        XCTAssertEqual(shards, [0..<2, 2..<4, 4..<6, 6..<8, 8..<9, 9..<10])
        let group = ThreadGroup(ranks: 2)
        let rank1 = ShardLayout(group: ThreadGroup.Member(group, rank: 1), threads: 3)
        XCTAssertEqual((0..<3).map(rank1.globalWorker), [3, 4, 5])
    }
}
