import XCTest
@testable import Training

final class MonitorTests: XCTestCase {
    func testDirectionDefaultsFromTheNameAndCanBeGiven() throws {
        XCTAssertEqual(try Monitor(parsing: "val_loss"), Monitor(metric: "val_loss", maximize: false))
        XCTAssertEqual(try Monitor(parsing: "val_accuracy"), Monitor(metric: "val_accuracy", maximize: true))
        XCTAssertEqual(try Monitor(parsing: "train_loss max"), Monitor(metric: "train_loss", maximize: true))
        XCTAssertEqual(try Monitor(parsing: "train_loss max").text, "train_loss max")
        XCTAssertEqual(try Monitor(parsing: "val_loss min").text, "val_loss")
        XCTAssertEqual(Monitor.scoredAccuracy.text, "accuracy")
        XCTAssertTrue(Monitor(metric: "val_loss", maximize: false).isBetter(0.1, than: 0.2))
        XCTAssertFalse(Monitor(metric: "val_loss", maximize: false).isBetter(0.3, than: 0.2))
        XCTAssertTrue(Monitor.scoredAccuracy.isBetter(0.5, than: 0.5))   // ties count, as conv.jl's >=
    }

    func testBadMonitorWordsSayWhatToType() {
        func message(_ text: String) -> String {
            do { _ = try Monitor(parsing: text); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(message("bogus"), "unknown metric 'bogus'; monitor must be METRIC [min|max] with METRIC one of accuracy, val_loss, val_accuracy, test_accuracy, train_loss, train_accuracy, e.g. set monitor val_loss")
        XCTAssertEqual(message("val_loss up"), "monitor's direction must be min or max (got 'up'); e.g. set monitor val_loss min")
        XCTAssertEqual(Monitor(metric: "val_loss", maximize: false).problem(validationFraction: 0),
                       "monitor val_loss needs a validation split; hold one out first: set val 0.1")
        XCTAssertNil(Monitor(metric: "val_loss", maximize: false).problem(validationFraction: 0.1))
        XCTAssertNotNil(Monitor(metric: "test_accuracy", maximize: true).problem(validationFraction: 0.1))
    }

    func testPolicyFollowsALossDownward() {
        var policy = Policy()
        var h = Hyperparameters()
        h.patience = 2
        h.stopAfter = 4
        let monitor = Monitor(metric: "val_loss", maximize: false)
        // Losses 0.5, 0.3, 0.4, 0.35, 0.31: the best is epoch 2; epochs 3-4 idle drop the rate.
        XCTAssertEqual(policy.decide(epoch: 1, value: 0.5, accuracy: 0.8, monitor: monitor, learningRate: 1e-3, settings: h), [.newBest])
        XCTAssertEqual(policy.decide(epoch: 2, value: 0.3, accuracy: 0.85, monitor: monitor, learningRate: 1e-3, settings: h), [.newBest])
        XCTAssertEqual(policy.decide(epoch: 3, value: 0.4, accuracy: 0.9, monitor: monitor, learningRate: 1e-3, settings: h), [])
        XCTAssertEqual(policy.decide(epoch: 4, value: 0.35, accuracy: 0.91, monitor: monitor, learningRate: 1e-3, settings: h),
                       [.dropLearningRate(to: 1e-3 * 0.1)])
        XCTAssertEqual(policy.bestEpoch, 2)
        XCTAssertEqual(policy.bestValue, 0.3)
        XCTAssertEqual(policy.bestAccuracy, 0.85)   // the accuracy at the best epoch, not the highest
        // A loss never "reaches" `target`: early exit follows accuracies only.
        h.target = 0.1
        XCTAssertEqual(policy.decide(epoch: 5, value: 0.05, accuracy: 0.99, monitor: monitor, learningRate: 1e-4, settings: h), [.newBest])
        XCTAssertEqual(policy.bestEpoch, 5)
    }

    func testOtherSchedulesNeverDropTheRate() {
        var policy = Policy()
        var h = Hyperparameters()
        h.patience = 1
        h.stopAfter = 3
        h.schedule = .cosine
        XCTAssertEqual(policy.decide(epoch: 1, accuracy: 0.5, learningRate: 1e-3, settings: h), [.newBest])
        XCTAssertEqual(policy.decide(epoch: 2, accuracy: 0.4, learningRate: 1e-3, settings: h), [])
        XCTAssertEqual(policy.decide(epoch: 3, accuracy: 0.4, learningRate: 1e-3, settings: h), [])
        XCTAssertEqual(policy.decide(epoch: 4, accuracy: 0.4, learningRate: 1e-3, settings: h), [.converged(epochsWithoutImprovement: 3)])
    }

    func testTargetStopsOnAMonitoredAccuracy() {
        var policy = Policy()
        var h = Hyperparameters()
        h.target = 0.9
        let monitor = Monitor(metric: "train_accuracy", maximize: true)
        XCTAssertEqual(policy.decide(epoch: 1, value: 0.95, accuracy: 0.5, monitor: monitor, learningRate: 1e-3, settings: h), [.newBest, .earlyExit])
    }

    func testAnotherMonitorStartsItsBestAfresh() {
        var policy = Policy()
        let h = Hyperparameters()
        XCTAssertEqual(policy.decide(epoch: 1, accuracy: 0.9, learningRate: 1e-3, settings: h), [.newBest])
        // A loss of 0.5 is not "better" than an accuracy of 0.9: it is the first of its kind.
        let loss = Monitor(metric: "val_loss", maximize: false)
        XCTAssertEqual(policy.decide(epoch: 2, value: 0.5, accuracy: 0.8, monitor: loss, learningRate: 1e-3, settings: h), [.newBest])
        XCTAssertEqual(policy.decide(epoch: 3, value: 0.6, accuracy: 0.95, monitor: loss, learningRate: 1e-3, settings: h), [])
        XCTAssertEqual(policy.monitor, loss)
        XCTAssertEqual(policy.bestEpoch, 2)
    }
}
