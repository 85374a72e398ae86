import XCTest
import Foundation
import Tensor
@testable import Session

/// Stepping through an epoch (`train N batches`, `step`) trains it exactly as one `train` would.
final class SteppingTests: SessionTestCase {
    /// 2048 images in batches of 32: 64 batches an epoch, shuffled, with input noise, so both
    /// of the trainer's streams (the epoch's order, the step's noise) must be where they belong.
    func loadSteppingData() {
        session.workbench = .data(quadrants(train: 2048, test: 64))
        session.settings.batchSize = 32
        session.settings.target = 2
        session.settings.noise = 0.1
    }

    var weights: [[Float]] { session.model!.parameters.map(\.value.data) }

    /// Every recorded number of an epoch but its timings.
    func recordedMetrics(run: Int64) throws -> [[String]] {
        try session.store!.query("""
            SELECT epoch, name, printf('%.17g', value) FROM metrics WHERE run = \(run)
            AND name NOT LIKE '%seconds%' AND name != 'images_per_second' ORDER BY epoch, name
            """).rows
    }

    func testAnEpochFinishedAcrossCallsRecordsTheTimeOfAllOfThem() throws {
        loadSteppingData()
        run("build conv; train 63 batches")
        let before = session.trainer!.epochProgress!.seconds
        XCTAssertGreaterThan(before, 0)
        run("train")   // the epoch's 64th batch
        let recorded = Double(try session.store!.query("SELECT value FROM metrics WHERE run = 1 AND name = 'epoch_seconds'").rows[0][0])!
        // Before, epoch_seconds was the last call's alone: one batch of the 64.
        XCTAssertGreaterThanOrEqual(recorded, before)
    }

    func testThreeTrainsOfTenBatchesThenTrainEqualOneTrainBitForBit() throws {
        loadSteppingData()
        run("build conv")
        for next in [11, 21, 31] {
            let text = run("train 10 batches")
            XCTAssertTrue(text.contains("stopped in epoch 1 after batch \(next - 1)/64, as asked"), text)
            XCTAssertTrue(text.contains("over 10 batches; train continues epoch 1 at batch \(next)"), text)
        }
        XCTAssertEqual(session.trainer!.stepsDone, 30)
        let finished = run("train")
        XCTAssertTrue(finished.contains("[1] test accuracy"), finished)
        XCTAssertEqual(session.trainer!.stepsDone, 64, "the epoch's last 34 batches, not a whole epoch more")
        XCTAssertNil(session.trainer!.epochProgress)
        let stepped = weights
        run("build conv; train")
        XCTAssertEqual(session.runID, 2)
        XCTAssertEqual(weights, stepped, "the same weights to the last bit")
        let metrics = try recordedMetrics(run: 1)
        XCTAssertTrue(metrics.contains { $0[1] == "train_loss" }, "\(metrics)")
        XCTAssertEqual(metrics, try recordedMetrics(run: 2))
    }

    /// Each stop prints the mean loss of the batches it ran: together they make the epoch's.
    func testEachStepPrintsTheMeanLossOfItsBatches() throws {
        loadSteppingData()
        run("build conv")
        var means: [Double] = []
        func mean(_ text: String, of batches: Int) -> Double? {
            guard let range = text.range(of: "mean loss [0-9.]+ over \(batches) batch", options: .regularExpression) else { return nil }
            return Double(text[range].split(separator: " ")[2])
        }
        for _ in 0..<6 {
            let text = run("step 10")
            means += [try XCTUnwrap(mean(text, of: 10), text)]
        }
        let one = run("step")
        XCTAssertTrue(one.contains("stopped in epoch 1 after batch 61/64"), one)
        means += [try XCTUnwrap(mean(one, of: 1), one)]
        let last = run("step 3")
        XCTAssertTrue(last.contains("over 3 batches; epoch 1 is complete"), last)
        means += [try XCTUnwrap(mean(last, of: 3), last)]
        let counts = [10, 10, 10, 10, 10, 10, 1, 3]
        let recomputed = zip(means, counts).reduce(0) { $0 + $1.0 * Double($1.1) } / 64
        let recorded = try XCTUnwrap(Double(session.store!.query("SELECT value FROM metrics WHERE run = 1 AND name = 'train_loss'").rows[0][0]))
        XCTAssertEqual(recomputed, recorded, accuracy: 1e-4, "printed means are rounded to 4 places")
    }

    /// A state saved inside an epoch keeps its place: restored, the epoch carries on from there.
    func testASaveInsideAnEpochRestoresItsPosition() throws {
        loadSteppingData()
        let path = folder + "/inside.safetensors"
        run("build conv; train 10 batches")
        XCTAssertTrue(run("save \(path)").contains("10 batches into epoch 1, 10 steps"))
        run("train")
        let straight = weights
        let straightMetrics = try recordedMetrics(run: 1)
        XCTAssertTrue(run("build conv; restore \(path)").contains("restored \(path): epoch 0, 10 batches into epoch 1, 10 steps"))
        XCTAssertEqual(session.trainer!.epochProgress?.batches, 10)
        XCTAssertTrue(run("train").contains("[1] test accuracy"))
        XCTAssertEqual(session.trainer!.stepsDone, 64)
        XCTAssertEqual(weights, straight)
        XCTAssertEqual(try recordedMetrics(run: 2), straightMetrics)
    }

    /// A Ctrl-C that lands in the epoch after one that started half-way is replayed by the
    /// transcript's commands exactly.
    func testTheReplayOfAnInterruptedTrainFromInsideAnEpochRedoesItExactly() throws {
        loadSteppingData()
        run("build conv; train 10 batches")
        let polls = PollCounter()
        session.isInterrupted = { polls.count += 1; return polls.count == 60 }
        session.execute("train 3", console: console)
        session.isInterrupted = { false }
        // 53 polls in epoch 1 (none after its last batch), the 60th after batch 7 of epoch 2.
        let replay = try XCTUnwrap(session.replayOfInterruptedCommand)
        XCTAssertEqual(replay, ["train 3 stop 61"])
        XCTAssertTrue(console.text.contains("over 61 batches"), console.text)
        let interrupted = weights
        let steps = session.trainer!.stepsDone
        run("build conv; train 10 batches; " + replay.joined(separator: "; "))
        XCTAssertEqual(session.trainer!.stepsDone, steps)
        XCTAssertEqual(session.trainer!.epochProgress?.batches, 7)
        XCTAssertEqual(weights, interrupted)
    }
}

extension SteppingTests {
    /// Under a schedule that spans the `train` call (cosine, onecycle) the replay asks for the
    /// whole call, so the rates it anneals over are the interrupted call's, and stops at its batch.
    func testTheReplayOfAnInterruptedCosineCallRetracesItsRates() throws {
        loadSteppingData()
        for schedule in ["cosine", "onecycle 0.01"] {
            run("set schedule \(schedule); build conv")
            let polls = PollCounter()
            session.isInterrupted = { polls.count += 1; return polls.count == 70 }
            session.execute("train 3", console: console)
            session.isInterrupted = { false }
            let replay = try XCTUnwrap(session.replayOfInterruptedCommand)
            XCTAssertEqual(replay, ["train 3 stop 71"], schedule)   // 63 polls in epoch 1, the 70th after batch 7 of epoch 2
            let interrupted = weights
            let rate = session.trainer!.lastStepRate
            let span = session.trainer!.scheduleSpan
            XCTAssertTrue(run("build conv; " + replay.joined(separator: "; ")).contains("interrupted (stop 71)"))
            XCTAssertEqual(session.trainer!.scheduleSpan, span, schedule)
            XCTAssertEqual(session.trainer!.lastStepRate, rate, schedule)
            XCTAssertEqual(weights, interrupted, schedule)
            // What the replay left is the same session: both go on to the same end.
            run("train 2")
            XCTAssertEqual(session.trainer!.epochsDone, 3)
        }
    }

    func testStopIsCheckedLikeAnyCount() {
        loadSteppingData()
        run("build conv")
        for bad in ["train 2 stop 0", "train 2 stop x", "train 2 halt 3", "train 2 batches stop"] {
            XCTAssertTrue(run(bad, ok: false).contains("error:"), bad)
        }
        XCTAssertEqual(session.trainer!.stepsDone, 0)
    }
}

/// Counts the training loop's polls for Ctrl-C (only the training thread touches it).
final class PollCounter: @unchecked Sendable {
    var count = 0
}
