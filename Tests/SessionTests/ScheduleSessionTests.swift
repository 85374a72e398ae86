import XCTest
import Foundation
import Training
@testable import Session

/// `set schedule`, `set warmup` and `set monitor` in a session: what the optimizer takes each
/// step, what runs record, and how continuing, resuming and forking keep a schedule's span.
final class ScheduleSessionTests: SessionTestCase {
    func rows(_ sql: String) throws -> [[String]] { try session.store!.query(sql).rows }
    var weights: [[Float]] { session.model!.parameters.map(\.value.data) }

    func stepRates(run: Int64) throws -> [[String]] {
        try rows("SELECT step, epoch, printf('%.9g', value) FROM step_metrics WHERE run = \(run) AND name = 'learning_rate' ORDER BY step")
    }

    func g(_ x: Float) -> String { String(format: "%.9g", Double(x)) }

    /// 256 images in batches of 32: 8 steps an epoch.
    func testCosineWithWarmupRecordsEveryStepsRateAndEachEpochsLast() throws {
        loadQuadrants()
        run("set schedule cosine; set warmup 4; build conv; train 3")
        XCTAssertEqual(session.trainer!.scheduleSpan, ScheduleSpan(firstStep: 0, steps: 24, schedule: "cosine"))
        let span = ScheduleSpan(firstStep: 0, steps: 24, schedule: "cosine")
        let expected = (0..<24).map { Schedule.rate(step: $0, epoch: $0 / 8 + 1, base: 3e-3, schedule: .cosine, warmupSteps: 4, span: span) }
        XCTAssertEqual(expected[0], 0)
        XCTAssertEqual(expected[4], 3e-3)   // warmup over, the cosine starts at the top
        XCTAssertEqual(try stepRates(run: 1), expected.enumerated().map { [String($0.offset + 1), String($0.offset / 8 + 1), g($0.element)] })
        XCTAssertEqual(try rows("SELECT epoch, printf('%.9g', value) FROM metrics WHERE run = 1 AND name = 'learning_rate' ORDER BY epoch"),
                       [[ "1", g(expected[7])], ["2", g(expected[15])], ["3", g(expected[23])]])
        // lr is the base: the schedule does not write it.
        XCTAssertEqual(session.settings.learningRate, 3e-3)
        XCTAssertEqual(try rows("SELECT name, value FROM params WHERE run = 1 AND name IN ('schedule', 'warmup', 'monitor') ORDER BY name"),
                       [["monitor", "accuracy"], ["schedule", "cosine"], ["warmup", "4"]])
        let plot = run("plot lr")
        XCTAssertTrue(plot.contains("learning_rate by step"), plot)
        XCTAssertTrue(plot.contains("run 1"), plot)
    }

    func testStepScheduleDividesEveryNEpochsAndPlateauRecordsNoSteps() throws {
        loadQuadrants()
        run("set schedule step 2 0.5; build conv; train 5")
        XCTAssertEqual(try rows("SELECT printf('%.9g', value) FROM metrics WHERE run = 1 AND name = 'learning_rate' ORDER BY epoch"),
                       [g(3e-3), g(3e-3), g(1.5e-3), g(1.5e-3), g(7.5e-4)].map { [$0] })
        XCTAssertEqual(try rows("SELECT count(*) FROM step_metrics WHERE run = 1"), [["40"]])
        run("set schedule plateau; build conv; train 2")
        XCTAssertEqual(try rows("SELECT count(*) FROM step_metrics WHERE run = 2"), [["0"]])
        XCTAssertEqual(try rows("SELECT printf('%.9g', value) FROM metrics WHERE run = 2 AND name = 'learning_rate'"), [[g(3e-3)], [g(3e-3)]])
    }

    /// Plateau is the default and the policy's drop still writes lr, as before schedules.
    func testPlateauStillDropsTheRateIntoTheSettings() throws {
        loadQuadrants()
        run("set patience 1; set monitor train_loss max; build conv")
        let text = run("train 2")
        XCTAssertTrue(text.contains("learning rate dropped to 3e-4"), text)
        XCTAssertEqual(session.settings.learningRate, 3e-4)
        run("build conv; set schedule constant; set monitor train_loss max")
        XCTAssertFalse(run("train 2").contains("learning rate dropped"))
        XCTAssertEqual(session.settings.learningRate, 3e-3)
    }

    /// `train 20 batches` stopped after 7 and continued with `train 13 batches` anneals as one call.
    func testTrainBatchesContinuedAfterCtrlCTakesTheSameRates() throws {
        loadQuadrants()
        run("set schedule cosine; build conv; train 20 batches")
        let once = weights
        let rates = try stepRates(run: 1)
        XCTAssertEqual(rates.count, 20)
        run("build conv")
        let trainer = session.trainer!
        session.isInterrupted = { trainer.stepsDone == 7 }
        XCTAssertFalse(session.execute("train 20 batches", console: console), console.text)
        session.isInterrupted = { false }
        run("train 13 batches")
        XCTAssertEqual(trainer.scheduleSpan, ScheduleSpan(firstStep: 0, steps: 20, schedule: "cosine"))
        XCTAssertTrue(weights == once, "the same weights to the last bit")
        XCTAssertEqual(try stepRates(run: 2), rates)
        // A call that runs past the span's end anneals its rest as a new span.
        run("train 4 batches")
        XCTAssertEqual(trainer.scheduleSpan, ScheduleSpan(firstStep: 20, steps: 4, schedule: "cosine"))
        // Another schedule starts its own span at the next call.
        run("set schedule onecycle; train 3 batches")
        XCTAssertEqual(trainer.scheduleSpan, ScheduleSpan(firstStep: 24, steps: 3, schedule: "onecycle"))
    }

    func testACtrlCdTrainContinuedByTrainRetracesOneCycle() throws {
        loadQuadrants()
        run("set schedule onecycle 0.01; build conv; train 3")
        let whole = weights
        let rates = try stepRates(run: 1)
        run("build conv")
        let trainer = session.trainer!
        session.isInterrupted = { trainer.stepsDone == 10 }
        XCTAssertFalse(session.execute("train 3", console: console), console.text)
        XCTAssertEqual(trainer.stepsDone, 10)
        session.isInterrupted = { false }
        run("train 2")   // the rest of epoch 2, then epoch 3
        XCTAssertTrue(weights == whole, "the same weights to the last bit")
        XCTAssertEqual(rates.count, 24)
        XCTAssertEqual(try stepRates(run: 2), rates)
    }

    func testForkInsideASpanRetracesTheRestOfIt() throws {
        loadQuadrants()
        run("set schedule cosine; set warmup 3; build conv; train 3")
        let later = try rows("SELECT epoch, name, printf('%.17g', value) FROM metrics WHERE run = 1 AND epoch > 1 AND name IN ('train_loss', 'test_accuracy', 'learning_rate') ORDER BY epoch, name")
        run("set schedule constant; set warmup 0")   // the fork takes the run's own settings
        run("fork 1@1")
        XCTAssertEqual(session.trainer!.scheduleSpan, ScheduleSpan(firstStep: 0, steps: 24, schedule: "cosine"))
        XCTAssertEqual(session.settings.schedule, .cosine)
        run("train 2")
        XCTAssertEqual(try rows("SELECT epoch, name, printf('%.17g', value) FROM metrics WHERE run = 2 AND name IN ('train_loss', 'test_accuracy', 'learning_rate') ORDER BY epoch, name"), later)
        XCTAssertEqual(try stepRates(run: 2).count, 16)
        XCTAssertEqual(try stepRates(run: 2), try stepRates(run: 1).filter { Int($0[0])! > 8 })
    }

    func testMonitorValLossChoosesTheBestAndRestoreBestRestoresIt() throws {
        loadQuadrants()
        session.settings.shuffle = true
        var chosen: [Int] = []
        for (run, words) in [(1, "val_loss"), (2, "val_loss max")] {
            self.run("set val 0.25; set lr 0.02; set monitor \(words); build conv; train 5")
            // The recorded Doubles themselves (SQLite's printf does not round-trip 17 digits).
            let losses = try session.store!.comparison(of: [Int64(run)]).runs[0].metricSeries("val_loss")
            XCTAssertEqual(losses.count, 5)
            let maximize = words.hasSuffix("max")
            // The last of the best, as ties count.
            let best = losses.reduce(losses[0]) { (maximize ? $1.value >= $0.value : $1.value <= $0.value) ? $1 : $0 }
            XCTAssertEqual(session.trainer!.policy.bestEpoch, best.epoch, "\(words): \(losses)")
            chosen.append(best.epoch)
            XCTAssertEqual(session.trainer!.policy.bestValue, best.value)
            XCTAssertEqual(try rows("SELECT best_epoch FROM runs WHERE id = \(run)"), [[String(best.epoch)]])
            let restored = self.run("restore best")
            XCTAssertTrue(restored.contains("epoch \(best.epoch),"), restored)
            XCTAssertEqual(try session.evaluate("val").1.loss, best.value, accuracy: 1e-12)
            // The run ranks by its own monitor.
            let detail = try session.store!.comparison(of: [Int64(run)]).runs[0]
            XCTAssertEqual(detail.monitor, try Monitor(parsing: words))
            XCTAssertEqual(detail.best()?.epoch, best.epoch)
        }
        // The same losses, the other direction: another epoch (the monitor, not the accuracy, chose).
        XCTAssertNotEqual(chosen[0], chosen[1])
    }

    func testTargetAndConvergenceFollowTheMonitor() throws {
        loadQuadrants()
        // A target any accuracy passes stops the default monitor at once, never a loss.
        let accuracy = run("set target 0.01; build conv; train 2")
        XCTAssertTrue(accuracy.contains("reached the target accuracy"), accuracy)
        let loss = run("set val 0.25; set monitor val_loss; build conv; train 2")
        XCTAssertFalse(loss.contains("reached the target"), loss)
        XCTAssertEqual(session.trainer!.epochsDone, 2)
        // A falling train loss followed upward never improves after epoch 1: converged at 1 + stop-after.
        let idle = run("set target off; set monitor train_loss max; set stop-after 2; set patience 100; build conv; train 5")
        XCTAssertTrue(idle.contains("2 epochs without improvement; calling this converged"), idle)
        XCTAssertEqual(session.trainer!.epochsDone, 3)
        XCTAssertTrue(idle.contains("new best train_loss"), idle)
    }

    func testBadSettingsAreRefusedInOneLine() throws {
        loadQuadrants()
        for (line, message) in [
            ("set schedule step", "error: schedule step needs EPOCHS and FACTOR (got 0 numbers); schedule must be constant | step EPOCHS FACTOR | cosine | onecycle [MAX_LR] | plateau, e.g. set schedule step 3 0.1"),
            ("set schedule cosine 3", "error: schedule cosine takes no numbers (got '3'; it spans the `train N` that starts it); schedule must be constant | step EPOCHS FACTOR | cosine | onecycle [MAX_LR] | plateau, e.g. set schedule step 3 0.1"),
            ("set warmup -1", "error: warmup must be a whole number from 0 to 100000000 (got '-1')"),
            ("set monitor bogus", "error: unknown metric 'bogus'; monitor must be METRIC [min|max] with METRIC one of accuracy, val_loss, val_accuracy, test_accuracy, train_loss, train_accuracy, e.g. set monitor val_loss"),
        ] {
            XCTAssertEqual(run(line, ok: false), message)
        }
        XCTAssertEqual(session.settings.schedule, .plateau)
        run("set monitor val_loss; build conv")
        XCTAssertEqual(run("train", ok: false), "error: monitor val_loss needs a validation split; hold one out first: set val 0.1")
        XCTAssertEqual(session.trainer!.stepsDone, 0)
        run("set val 0.2; set monitor test_accuracy")
        XCTAssertTrue(run("train", ok: false).hasPrefix("error: monitor test_accuracy: with val > 0 the test set is scored only at the end"))
    }

    func testSettingsShowInShowAndHelp() throws {
        run("set schedule onecycle 0.01; set warmup 100; set monitor val_accuracy")
        let show = run("show")
        for row in ["schedule", "onecycle 0.01 *", "warmup", "100 *", "monitor", "val_accuracy *"] {
            XCTAssertTrue(show.contains(row), row)
        }
        XCTAssertTrue(show.split(separator: "\n").allSatisfy { $0.count <= 80 }, show)
        let help = run("help set")
        XCTAssertTrue(help.contains("  schedule"), help)
        XCTAssertTrue(help.contains("  warmup"), help)
        XCTAssertTrue(help.contains("  monitor"), help)
        XCTAssertTrue(run("help plot").contains("plot lr"))
    }

    /// A state file's span and best monitored value read back; older files have neither; a
    /// damaged span is refused in one line naming the file and the key.
    func testSavedSpanAndBestMonitorReadBackAndDamageIsRefused() throws {
        typealias Key = Session.StateKey
        let base = [Key.epochsDone: "2", Key.stepsDone: "16", Key.bestEpoch: "2", Key.bestAccuracy: "0.9", Key.lastImprovement: "2"]
        let old = try SavedCounters(base, path: "old.safetensors")
        XCTAssertNil(old.scheduleSpan)
        XCTAssertEqual(old.policy.bestValue, 0.9)
        XCTAssertEqual(old.policy.monitor, .scoredAccuracy)
        let saved = Key.metadata(policy: Policy(bestAccuracy: 0.9, bestEpoch: 2, lastImprovement: 2, bestValue: 0.25,
                                                monitor: Monitor(metric: "val_loss", maximize: false)),
                                 span: ScheduleSpan(firstStep: 8, steps: 24, schedule: "onecycle 0.01"))
        let new = try SavedCounters(base.merging(saved) { a, _ in a }, path: "new.safetensors")
        XCTAssertEqual(new.scheduleSpan, ScheduleSpan(firstStep: 8, steps: 24, schedule: "onecycle 0.01"))
        XCTAssertEqual(new.policy.bestValue, 0.25)
        XCTAssertEqual(new.policy.monitor, Monitor(metric: "val_loss", maximize: false))
        for (key, text, expected) in [
            (Key.scheduleSpan, "30 24 cosine", "a schedule span (first step ≤ steps done, steps ≥ 1, schedule)"),
            (Key.scheduleSpan, "0 24", "a schedule span (first step ≤ steps done, steps ≥ 1, schedule)"),
            (Key.bestValue, "nan", "a finite number"),
            (Key.bestMonitor, "bogus", "a monitor (METRIC [min|max])"),
        ] {
            XCTAssertThrowsError(try SavedCounters(base.merging([key: text]) { _, b in b }, path: "bad.safetensors")) { error in
                XCTAssertEqual("\(error)", "bad.safetensors: \(key) = '\(text)' is not \(expected); the file's metadata is damaged, so it was not loaded")
            }
        }
    }
}
