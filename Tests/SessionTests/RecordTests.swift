import XCTest
import Foundation
import Datasets
import NN
import Tensor
import Tracking
@testable import Session

/// Four IDX files of 8×8 quadrant images (class k lights quadrant k), for `load idx`. With
/// `randomLabels` nothing can be learned: test accuracy wanders, so the policy's patience runs out.
func writeQuadrantIDX(to folder: String, train: Int, test: Int, seed: UInt64, randomLabels: Bool = false) throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    func be(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    var random = Random(seed: seed)
    for (prefix, count) in [("train", train), ("t10k", test)] {
        var images = be(0x803) + be(count) + be(8) + be(8)
        var labels = be(0x801) + be(count)
        for _ in 0..<count {
            let k = Int(random.next() % 4)
            labels.append(UInt8(randomLabels ? Int(random.next() % 4) : k))
            for p in 0..<64 { images.append(((p / 8) / 4) * 2 + (p % 8) / 4 == k ? UInt8(150 + random.next() % 100) : UInt8(random.next() % 40)) }
        }
        try Data(images).write(to: URL(fileURLWithPath: "\(folder)/\(prefix)-images-idx3-ubyte"))
        try Data(labels).write(to: URL(fileURLWithPath: "\(folder)/\(prefix)-labels-idx1-ubyte"))
    }
}

/// The record tells the truth: what the database, `show` and checkpoints say is what happened.
final class RecordTests: SessionTestCase {
    func rows(_ sql: String) throws -> [[String]] { try session.store!.query(sql).rows }

    /// The lr each recorded epoch trained at (metrics) must be the lr the params timeline says
    /// was in force from that epoch on.
    func assertLearningRatesAgree(run: Int64, file: StaticString = #filePath, line: UInt = #line) throws {
        let timeline = try rows("SELECT value, from_epoch FROM params WHERE run = \(run) AND name = 'lr' ORDER BY from_epoch, rowid")
        let used = try rows("SELECT epoch, printf('%.9g', value) FROM metrics WHERE run = \(run) AND name = 'learning_rate' ORDER BY epoch")
        XCTAssertFalse(used.isEmpty, file: file, line: line)
        for row in used {
            let epoch = Int(row[0])!
            let inForce = timeline.last { Int($0[1])! <= epoch }![0]
            // params hold the rate as shown (3e-5); the drop computed it as 3e-4 × 0.1 in Float.
            XCTAssertEqual(Double(row[1])!, Double(inForce)!, accuracy: Double(inForce)! * 1e-6,
                           "epoch \(epoch): trained at \(row[1]), params say \(inForce)", file: file, line: line)
        }
    }

    func testAnAutomaticLRDropHoldsForTheNextTrain() throws {
        try writeQuadrantIDX(to: folder + "/noise", train: 256, test: 64, seed: 1, randomLabels: true)
        run("load idx \(folder)/noise; set batch 32; build conv; set patience 1; train 5")
        let drops = try rows("SELECT epoch FROM events WHERE run = 1 AND kind = 'lr_dropped'")
        XCTAssertFalse(drops.isEmpty, "the test needs a drop to happen in 5 epochs")
        let dropped = try rows("SELECT value FROM params WHERE run = 1 AND name = 'lr' ORDER BY from_epoch DESC, rowid DESC LIMIT 1")[0][0]
        run("set noise 0.1; train 1")
        // Before the fix the next train reset lr to the session's copy (3e-3).
        try assertLearningRatesAgree(run: 1)
        let shown = run("show")
        let latest = try rows("SELECT value FROM params WHERE run = 1 AND name = 'lr' ORDER BY from_epoch DESC, rowid DESC LIMIT 1")[0][0]
        XCTAssertTrue(shown.contains("lr             \(latest) *"), shown)
        XCTAssertNotEqual(latest, "3e-3")
        XCTAssertLessThanOrEqual(Float(latest)!, Float(dropped)!)
        XCTAssertEqual(session.trainer?.optimizer.learningRate, session.settings.learningRate)
        let saved = folder + "/after.safetensors"
        run("save \(saved)")
        XCTAssertEqual(try Checkpoint.load(from: saved).metadata["ollie.learning_rate"].flatMap(Float.init), Float(latest)!)
    }

    func testLoadingOtherDataEndsTheRunAndNeverRewritesItsEpochs() throws {
        try writeQuadrantIDX(to: folder + "/a", train: 256, test: 64, seed: 1)
        try writeQuadrantIDX(to: folder + "/b", train: 256, test: 64, seed: 2)
        run("load idx \(folder)/a; set batch 32; build conv")
        session.settings.target = 2   // unreachable: these images are easy
        run("train 2")
        let before = try rows("SELECT epoch, name, printf('%.17g', value) FROM metrics WHERE run = 1 ORDER BY epoch, name")
        let best = try Data(contentsOf: URL(fileURLWithPath: folder + "/checkpoints/run-1-best.safetensors"))
        let loaded = run("load idx \(folder)/b")
        XCTAssertTrue(loaded.contains("run 1 ended"), loaded)
        XCTAssertNil(session.runID)
        let trained = run("train 1")
        XCTAssertTrue(trained.contains("run 2 started (b, epoch 1, forked from 1@2)"), trained)
        XCTAssertEqual(try rows("SELECT epoch, name, printf('%.17g', value) FROM metrics WHERE run = 1 ORDER BY epoch, name"), before)
        XCTAssertEqual(try rows("SELECT epochs, dataset FROM runs WHERE id = 1"), [["2", "a"]])
        XCTAssertEqual(try rows("SELECT parent_run, parent_epoch, dataset FROM runs WHERE id = 2"), [["1", "2", "b"]])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder + "/checkpoints/run-1-best.safetensors")), best)
        // The same data again is not other data: the run goes on.
        run("load idx \(folder)/b")
        XCTAssertEqual(session.runID, 2)
    }

    func testARecordedEpochIsNeverWrittenAgain() throws {
        loadQuadrants()
        run("build conv; train 1")
        let record = EpochRecord(epoch: 1, metrics: ["train_loss": 9], bestAccuracy: nil, bestEpoch: nil, trainLoss: 9, seconds: 1)
        XCTAssertThrowsError(try session.store!.recordEpoch(run: 1, record)) { error in
            XCTAssertTrue("\(error)".contains("epoch 1 of run 1 is already recorded"), "\(error)")
        }
        XCTAssertNotEqual(try rows("SELECT value FROM metrics WHERE run = 1 AND name = 'train_loss'"), [["9"]])
    }

    func testRestoreStartsANewRunWhoseLineageIsTheCheckpoint() throws {
        loadQuadrants()
        run("build conv; train 2")
        let path = folder + "/two.safetensors"
        run("save \(path); train 1")
        let third = try rows("SELECT name, printf('%.17g', value) FROM metrics WHERE run = 1 AND epoch = 3 ORDER BY name")
        let restored = run("restore \(path)")
        XCTAssertTrue(restored.contains("run 1 ended; the next train starts a new run forked from 1@2"), restored)
        XCTAssertEqual(session.trainer?.epochsDone, 2)
        let trained = run("train 1")
        XCTAssertTrue(trained.contains("run 2 started (quadrants, epoch 3, forked from 1@2)"), trained)
        XCTAssertEqual(try rows("SELECT name, printf('%.17g', value) FROM metrics WHERE run = 1 AND epoch = 3 ORDER BY name"), third)
        XCTAssertEqual(try rows("SELECT epochs FROM runs WHERE id = 1"), [["3"]])
        // Nothing else changed, so the fork retraces run 1's third epoch bit for bit.
        let retraced = try rows("SELECT name, printf('%.17g', value) FROM metrics WHERE run = 2 AND epoch = 3 AND name IN ('train_loss', 'test_accuracy') ORDER BY name")
        XCTAssertEqual(retraced, third.filter { ["train_loss", "test_accuracy"].contains($0[0]) })
    }

    func testReportWritesOnlyToAPathGivenAsOne() throws {
        loadQuadrants()
        run("build conv; train 1")
        let stray = folder + "/Optional(x)"
        XCTAssertTrue(run("report 1 \(stray)", ok: false).contains("is not a run id, a format or a file ending in .md, .csv or .html"))
        XCTAssertTrue(run("report 1 csv \(folder)/a.html", ok: false).contains("ends in .html but the format asked for is csv"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: stray))
        XCTAssertEqual(run("report 1 csv \(folder)/out/table.txt"), "wrote \(folder)/out/table.txt (1 runs, csv long: run,epoch,metric,value)")
        XCTAssertEqual(run("report 1 \(folder)/r.md"), "wrote \(folder)/r.md (1 runs, md)")
    }

    func testEveryEpochStateIsKeptAndKeepBoundsThem() throws {
        loadQuadrants()
        run("build conv; train 3")
        XCTAssertEqual(session.keptEpochs(run: 1), [1, 2, 3])
        run("set keep 2; train 2")
        XCTAssertEqual(session.keptEpochs(run: 1), [4, 5])
        let refused = run("fork 1@2", ok: false)
        XCTAssertTrue(refused.contains("run 1's state after epoch 2 was not kept"), refused)
        XCTAssertTrue(refused.contains("kept epochs: 4, 5"), refused)
        run("set keep best-and-last; train 1")
        let best = session.trainer!.policy.bestEpoch
        XCTAssertEqual(session.keptEpochs(run: 1), Array(Set([best, 6])).sorted())
        XCTAssertTrue(run("set keep 0", ok: false).contains("keep must be all, best-and-last or a whole number"))
        // keep is bookkeeping, not a training setting: runs do not record it.
        XCTAssertEqual(try rows("SELECT count(*) FROM params WHERE name = 'keep'"), [["0"]])
    }

    func testResumeContinuesTheSameRunExactly() throws {
        try writeQuadrantIDX(to: folder + "/a", train: 256, test: 64, seed: 1)
        run("load idx \(folder)/a; set batch 32; build conv")
        session.settings.target = 2
        run("train 3")
        let unbroken = try rows("SELECT epoch, name, printf('%.17g', value) FROM metrics WHERE run = 1 AND name IN ('train_loss', 'test_accuracy') ORDER BY epoch, name")
        // A second session on the same database (another process, as far as the store knows).
        let other = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        let console2 = BufferConsole()
        other.settings.target = 2
        XCTAssertTrue(other.execute("load idx \(folder)/a; set batch 32; build conv; train 2", console: console2), console2.text)
        XCTAssertEqual(other.runID, 2)
        other.close(console2)   // that process ends, giving the run up
        let third = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        let console3 = BufferConsole()
        XCTAssertTrue(third.execute("resume 2", console: console3), console3.text)
        XCTAssertTrue(console3.text.contains("resumed run 2 at epoch 2"), console3.text)
        XCTAssertTrue(third.execute("train 1", console: console3), console3.text)
        let resumed = try rows("SELECT epoch, name, printf('%.17g', value) FROM metrics WHERE run = 2 AND name IN ('train_loss', 'test_accuracy') ORDER BY epoch, name")
        XCTAssertEqual(resumed, unbroken)
        XCTAssertEqual(try rows("SELECT count(*), max(epochs) FROM runs WHERE id = 2"), [["1", "3"]])
        XCTAssertEqual(third.model!.parameters.map(\.value.data), session.model!.parameters.map(\.value.data))
        XCTAssertEqual(third.trainer!.optimizer.stepCount, session.trainer!.optimizer.stepCount)
    }

    func testRunCommandsRefuseBadArgumentsAndChangeNothing() throws {
        loadQuadrants()
        run("build conv; train 3")
        let model = session.model, steps = session.trainer!.stepsDone
        for (line, message) in [
            ("fork 1@0", "epochs count from 1"),
            ("fork 1@99", "run 1 has 3 recorded epochs; choose one of 1@1 … 1@3"),
            ("fork @", "usage: fork RUN@EPOCH"),
            ("fork 1@", "usage: fork RUN@EPOCH"),
            ("fork x@1", "run ids are whole numbers"),
            ("fork 1@two", "the epoch is not a whole number"),
            ("fork 7@1", "no run 7"),
            ("resume 0", "run ids are whole numbers"),
            ("resume 9", "no run 9"),
            ("diff 1", "diff needs exactly two runs"),
            ("diff 1 1", "two different runs"),
            ("diff 1 5", "no run 5"),
            ("lr-find 1", "both or neither"),
            ("lr-find 1 1e-3", "FROM < TO"),
            ("lr-find 0 1", "FROM must be a number > 0"),
            ("lr-find a b", "FROM must be a number"),
            ("train 3 batchez", "usage: train [N] | train N batches"),
            ("train 0 batches", "the batch count must be a whole number"),
        ] {
            let text = run(line, ok: false)
            XCTAssertTrue(text.contains(message), "\(line) → \(text)")
        }
        XCTAssertTrue(session.model === model)
        XCTAssertEqual(session.trainer!.stepsDone, steps)
        XCTAssertEqual(session.runID, 1)
        try FileManager.default.removeItem(atPath: session.epochStatePath(run: 1, epoch: 3))
        let missing = run("resume 1", ok: false)
        XCTAssertTrue(missing.contains(session.epochStatePath(run: 1, epoch: 3)) && missing.contains("fork 1@2"), missing)
        let fresh = Session(store: session.store, checkpointDirectory: folder + "/checkpoints")
        let console = BufferConsole()
        XCTAssertFalse(fresh.execute("lr-find", console: console))
        XCTAssertTrue(console.text.contains("no dataset loaded"), console.text)
    }

    func testTrainBatchesStopsInsideAnEpochLikeAnInterruption() throws {
        loadQuadrants()
        run("build conv")
        let text = run("train 3 batches")
        XCTAssertTrue(text.contains("stopped in epoch 1 after batch 3/8, as asked"), text)
        XCTAssertTrue(text.contains("over 3 batches; train continues epoch 1 at batch 4"), text)
        XCTAssertEqual(session.trainer!.epochsDone, 0)
        XCTAssertEqual(session.trainer!.stepsDone, 3)
        XCTAssertEqual(try rows("SELECT status FROM runs WHERE id = 1"), [["interrupted"]])
        XCTAssertEqual(try rows("SELECT kind, detail FROM events WHERE run = 1"), [["partial_epoch", "batch 3/8"]])
        run("train 10 batches")   // epoch 1's last 5 batches, then 5 into epoch 2
        XCTAssertEqual(session.trainer!.epochsDone, 1)
        XCTAssertEqual(session.trainer!.stepsDone, 13)
    }

    func testDiffShowsSettingsEpochsEventsAndCommands() throws {
        loadQuadrants()
        run("build conv; train 2; fork 1@1; set lr 1e-3; train 1")
        let text = run("diff 1 2")
        XCTAssertTrue(text.hasPrefix("diff: run 1 against run 2"), text)
        XCTAssertTrue(text.contains("lineage  -      forked from 1@1"), text)
        XCTAssertTrue(text.contains("lr       3e-3   1e-3"), text)   // the fork started at 1e-3
        XCTAssertTrue(text.contains("    2  1.0000  1.0000      =  0.4400"), text)
        XCTAssertTrue(text.contains("Δ acc"), text)
        XCTAssertTrue(text.contains("new_best"), text)
        XCTAssertTrue(text.contains("commands of run 1: build conv · train 2"), text)
        XCTAssertTrue(text.contains("commands of run 2: fork 1@1 · set lr 1e-3 · train 1"), text)
    }

    func testLRFindLeavesTheModelAndOptimizerAsTheyWere() throws {
        session.workbench = .data(quadrants(train: 2048, test: 64))
        session.settings.batchSize = 16
        run("build conv; train 1")
        let weights = session.model!.parameters.map(\.value.data)
        let optimizer = session.trainer!.optimizer
        let moments = optimizer.state(for: session.model!.parameters).mapValues(\.data)
        let (steps, rate) = (session.trainer!.stepsDone, session.settings.learningRate)
        let text = run("lr-find 1e-5 1")
        XCTAssertTrue(text.contains("loss against learning rate"), text)
        XCTAssertTrue(text.contains("the session's model and optimizer are unchanged"), text)
        XCTAssertEqual(session.model!.parameters.map(\.value.data), weights)
        XCTAssertTrue(session.trainer!.optimizer === optimizer)
        XCTAssertEqual(optimizer.state(for: session.model!.parameters).mapValues(\.data), moments)
        XCTAssertEqual(session.trainer!.stepsDone, steps)
        XCTAssertEqual(session.settings.learningRate, rate)
        let recorded = try rows("SELECT steps, start_lr, end_lr, run FROM lr_finds")
        XCTAssertEqual(recorded.count, 1)
        XCTAssertEqual(recorded[0][1...3], ["1e-05", "1", "1"])
        XCTAssertEqual(try rows("SELECT count(*) FROM lr_find_points")[0][0], recorded[0][0])
        // Its points are not epochs of the run.
        XCTAssertEqual(try rows("SELECT max(epoch) FROM metrics WHERE run = 1"), [["1"]])
    }

    func testAnLRFindStoppedByCtrlCIsRecordedAsInterruptedNotDiverged() throws {
        session.workbench = .data(quadrants(train: 2048, test: 64))
        session.settings.batchSize = 16
        run("build conv")
        // Ctrl-C during the sixth step (the flag is polled once per step, after it).
        let polls = Counter()
        session.isInterrupted = { polls.next() >= 6 }
        let text = run("lr-find 1e-5 1e-3", ok: false)   // Ctrl-C stops the line, as in train
        XCTAssertTrue(text.contains("interrupted (Ctrl-C) after 6 of 100 steps"), text)
        XCTAssertFalse(text.contains("diverged"), text)
        XCTAssertEqual(try rows("SELECT steps, planned_steps, outcome FROM lr_finds"), [["6", "100", "interrupted"]])
        session.isInterrupted = { false }
        run("lr-find 1e-5 1e-3")
        XCTAssertEqual(try rows("SELECT steps, planned_steps, outcome FROM lr_finds WHERE id = 2"), [["100", "100", "completed"]])
    }

    func testLRFindOnSmallDataPassesOverItAgainAndSuggests() throws {
        // 208 images in batches of 16: 13 batches, too few for a range test in one pass.
        session.workbench = .data(quadrants(train: 208, test: 32))
        session.settings.batchSize = 16
        run("build conv")
        let text = run("lr-find 1e-5 1")
        XCTAssertTrue(text.contains("suggested lr"), text)
        let steps = Int(try rows("SELECT steps FROM lr_finds")[0][0])!
        XCTAssertGreaterThan(steps, 13, "more than one pass over 13 batches: \(text)")
    }

    func testLRFindPlotIsScaledToTheLossBeforeItDiverges() {
        // Falls from 2.3 to 0.5, then blows up to a million.
        let rates = (0..<60).map { pow(10, -6 + Double($0) / 59 * 6) }
        let losses = (0..<60).map { i -> Double in i < 45 ? 2.3 - 1.8 * Double(i) / 44 : 0.5 * pow(3, Double(i - 44)) }
        let plot = LRFinder.plot(Array(zip(rates, losses)).map { (rate: $0, loss: $1) }, suggested: nil, width: 80, color: false)
        let labels = plot.split(separator: "\n").compactMap { line in Double(line.split(separator: " ").first ?? "") }
        XCTAssertFalse(labels.isEmpty, plot)
        XCTAssertLessThan(labels.max()!, 4, "the y axis spans the fall, not the diverged tail: \(plot)")
        XCTAssertLessThan(LRFinder.yCeiling(LRFinder.smoothed(losses)), 4)
    }

    func testSuggestionIsTheSteepestFallBeforeTheMinimum() {
        // Loss flat, then falling fastest around 1e-3, bottoming at 1e-2, then rising.
        let rates = (0..<50).map { pow(10, -6 + Double($0) / 49 * 6) }
        let losses = rates.map { r -> Double in
            let x = log10(r)
            return x < -2 ? 2 - 1.5 / (1 + exp(-4 * (x + 3))) : 0.5 + 3 * (x + 2) * (x + 2)
        }
        let suggested = LRFinder.suggest(Array(zip(rates, losses)).map { (rate: $0, loss: $1) })
        XCTAssertNotNil(suggested)
        XCTAssertGreaterThan(suggested!, 3e-4)
        XCTAssertLessThan(suggested!, 1e-2, "before the minimum")
        XCTAssertNil(LRFinder.suggest(rates.map { (rate: $0, loss: 1 + $0) }), "a loss that only rises has no suggestion")
    }

    func testAValidationSplitIsWhatThePolicyScoresAndTheTestSetIsScoredAtTheEnd() throws {
        loadQuadrants()
        run("set val 0.25; build conv")
        let trainer = session.trainer!
        let validation = trainer.validationSplit!, training = trainer.trainingSplit
        XCTAssertEqual(validation.count + training.count, 256)
        // Stratified: each class holds out a quarter of its images (rounded).
        for k in 0..<4 {
            let members = session.dataset!.train.labels.filter { $0 == Int32(k) }.count
            XCTAssertEqual(validation.labels.filter { $0 == Int32(k) }.count, Int((Float(members) * 0.25).rounded()))
        }
        let text = run("train 2")
        XCTAssertTrue(text.contains("[1] val accuracy"), text)
        XCTAssertTrue(text.contains(" -> new best val accuracy"), "a best found on the validation split says so: \(text)")
        XCTAssertTrue(text.contains(" img/s"), text)
        XCTAssertTrue(text.contains("test accuracy") && text.contains("after epoch 2"), text)
        let metrics = try rows("SELECT epoch, name FROM metrics WHERE run = 1 AND name IN ('val_accuracy', 'val_loss', 'test_accuracy', 'test_loss') ORDER BY epoch, name")
        XCTAssertEqual(metrics, [["1", "val_accuracy"], ["1", "val_loss"], ["2", "test_accuracy"], ["2", "test_loss"],
                                 ["2", "val_accuracy"], ["2", "val_loss"]])
        XCTAssertEqual(try rows("SELECT value FROM params WHERE run = 1 AND name = 'val'"), [["0.25"]])
        XCTAssertTrue(run("accuracy val").hasPrefix("val accuracy "))
        // The same seed holds out the same images; another seed others.
        XCTAssertEqual(session.trainer!.validationSplit!.images, validation.images)
        run("set seed 2")
        XCTAssertNotEqual(session.trainer!.validationSplit!.images, validation.images)
        run("set val 0")
        XCTAssertNil(session.trainer!.validationSplit)
        XCTAssertTrue(run("accuracy val", ok: false).contains("no validation split; hold one out first: set val 0.1"))
        XCTAssertTrue(run("set val 0.95", ok: false).contains("val must be a number"))
    }
}


/// Counts calls, from 1 (for `isInterrupted` closures, which must be Sendable).
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func next() -> Int { lock.withLock { count += 1; return count } }
}
