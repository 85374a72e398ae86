import XCTest
@testable import Training

final class PolicyTests: XCTestCase {
    var settings = Hyperparameters()

    func testEveryImprovementIsANewBestAndTiesCount() {
        var policy = Policy()
        XCTAssertEqual(policy.decide(epoch: 1, accuracy: 0.90, learningRate: 3e-3, settings: settings), [.newBest])
        XCTAssertEqual(policy.decide(epoch: 2, accuracy: 0.90, learningRate: 3e-3, settings: settings), [.newBest])
        XCTAssertEqual(policy.decide(epoch: 3, accuracy: 0.89, learningRate: 3e-3, settings: settings), [])
        XCTAssertEqual(policy.bestEpoch, 2)
        XCTAssertEqual(policy.bestAccuracy, 0.90)
    }

    func testLearningRateDropsAfterPatienceEpochsWithoutImprovement() {
        var policy = Policy()
        _ = policy.decide(epoch: 1, accuracy: 0.95, learningRate: 3e-3, settings: settings)
        for epoch in 2...5 {
            XCTAssertEqual(policy.decide(epoch: epoch, accuracy: 0.94, learningRate: 3e-3, settings: settings), [])
        }
        XCTAssertEqual(policy.decide(epoch: 6, accuracy: 0.94, learningRate: 3e-3, settings: settings),
                       [.dropLearningRate(to: 3e-4)])
        // The drop restarts the count: the next drop comes `patience` epochs later.
        for epoch in 7...10 {
            XCTAssertEqual(policy.decide(epoch: epoch, accuracy: 0.94, learningRate: 3e-4, settings: settings), [])
        }
        XCTAssertEqual(policy.decide(epoch: 11, accuracy: 0.94, learningRate: 3e-4, settings: settings),
                       [.dropLearningRate(to: 3e-4 * 0.1)])
    }

    func testLearningRateNeverDropsBelowTheMinimum() {
        var policy = Policy()
        _ = policy.decide(epoch: 1, accuracy: 0.95, learningRate: 2e-6, settings: settings)
        for epoch in 2...5 { _ = policy.decide(epoch: epoch, accuracy: 0.9, learningRate: 2e-6, settings: settings) }
        XCTAssertEqual(policy.decide(epoch: 6, accuracy: 0.9, learningRate: 2e-6, settings: settings),
                       [.dropLearningRate(to: 1e-6)])
    }

    func testConvergedAfterStopAfterEpochsOnceTheRateIsAtTheFloor() {
        var policy = Policy()
        _ = policy.decide(epoch: 1, accuracy: 0.95, learningRate: 1e-6, settings: settings)
        for epoch in 2...10 {
            XCTAssertEqual(policy.decide(epoch: epoch, accuracy: 0.9, learningRate: 1e-6, settings: settings), [])
        }
        XCTAssertEqual(policy.decide(epoch: 11, accuracy: 0.9, learningRate: 1e-6, settings: settings),
                       [.converged(epochsWithoutImprovement: 10)])
    }

    func testReachingTheTargetSavesTheBestThenExits() {
        var policy = Policy()
        XCTAssertEqual(policy.decide(epoch: 1, accuracy: 0.9995, learningRate: 3e-3, settings: settings),
                       [.newBest, .earlyExit])
    }

    func testShardsCoverTheBatchInOrder() {
        XCTAssertEqual(shardBounds(count: 128, parts: 2), [0..<64, 64..<128])
        XCTAssertEqual(shardBounds(count: 5, parts: 2), [0..<3, 3..<5])
        XCTAssertEqual(shardBounds(count: 1, parts: 3), [0..<1, 1..<1, 1..<1])
    }
}
