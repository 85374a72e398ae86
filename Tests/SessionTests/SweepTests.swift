import XCTest
import Foundation
import Datasets
import NN
import Tensor
import Tracking
import Training
@testable import Session

/// `sweep`: configurations as recorded runs, random draws from the seed, successive halving
/// that continues its survivors, Ctrl-C and `sweep resume`, the leaderboard and the report.
final class SweepTests: SessionTestCase {
    func rows(_ sql: String, in store: RunStore? = nil) throws -> [[String]] { try (store ?? session.store!).query(sql).rows }

    /// Every recorded metric of a run, as text, by epoch and name.
    func metrics(_ run: String, in store: RunStore? = nil) throws -> [[String]] {
        try rows("SELECT epoch, name, printf('%.9g', value) FROM metrics WHERE run = \(run) AND name NOT LIKE '%seconds' AND name != 'images_per_second' ORDER BY epoch, name", in: store)
    }

    func testAGridTrainsEveryCombinationAsARunTaggedWithTheSweep() throws {
        try loadTiny()
        let text = run("sweep lr 1e-3,3e-3 batch 16,32 train 2")
        XCTAssertTrue(text.contains("sweep 1: 4 configurations (grid) of 2 epochs each, 8 epochs"), text)
        XCTAssertTrue(text.contains("sweep 1 finished: 4 runs, 8 epochs"), text)
        // (The checkpoint lines name this test's long temporary folder.)
        for line in console.lines where !line.contains("saved to") { XCTAssertLessThanOrEqual(line.count, 80, line) }
        // The first axis changes slowest; each run records its configuration and the sweep.
        let linked = try rows("SELECT config, run, epochs, status, settings FROM sweep_runs WHERE sweep = 1 ORDER BY config")
        XCTAssertEqual(linked.count, 4)
        let expected = [("1e-3", "16"), ("1e-3", "32"), ("3e-3", "16"), ("3e-3", "32")]
        for (row, (lr, batch)) in zip(linked, expected) {
            let run = row[1]
            XCTAssertEqual(row[2...3], ["2", "trained"])
            XCTAssertEqual(try rows("SELECT name, value FROM params WHERE run = \(run) AND name IN ('lr', 'batch', 'sweep') AND from_epoch = 1 ORDER BY name"),
                           [["batch", batch], ["lr", lr], ["sweep", "1"]])
            XCTAssertEqual(try rows("SELECT status, epochs FROM runs WHERE id = \(run)"), [["finished", "2"]])
        }
        XCTAssertEqual(try session.store!.runs(try RunFilter.parse(["where", "sweep", "=", "1"])).count, 4)
        XCTAssertEqual(try rows("SELECT kind, state FROM sweeps"), [["grid", "finished"]])
        // A sweep's run is the run `build` then `train 2` makes with the same settings: same
        // initial weights from the seed, fresh optimizer, same numbers.
        let third = linked[2][1]
        run("build dense 16 relu | dense 4; set lr 3e-3; set batch 16; train 2")
        let manual = String(session.runID!)
        XCTAssertEqual(try metrics(manual).map { $0[0...1] + [$0[2]] }, try metrics(third))
    }

    func testRandomDrawsComeFromTheSeedAndStayInTheirRanges() throws {
        let words = ["lr", "1e-4..1e-2", "log", "batch", "16..64", "optimizer", "adam,sgd", "random", "40", "train", "1"]
        func draw(seed: UInt64) throws -> [[SweepValue]] {
            var base = Hyperparameters()
            base.seed = seed
            return try SweepPlan.parse(words, base: base, spec: "dense 4", load: [], checkSpec: { _ in }).configurations
        }
        let first = try draw(seed: 1)
        XCTAssertEqual(first, try draw(seed: 1))
        XCTAssertNotEqual(first, try draw(seed: 2))
        XCTAssertEqual(first.count, 40)
        let rates = first.map { Double($0[0].value)! }, batches = first.map { $0[1].value }
        XCTAssertTrue(rates.allSatisfy { (1e-4...1e-2).contains($0) }, "\(rates)")
        // Log-uniform: half the draws below 1e-3 (uniform would put 9% there).
        XCTAssertGreaterThanOrEqual(rates.filter { $0 < 1e-3 }.count, 12, "\(rates)")
        XCTAssertTrue(batches.allSatisfy { Int($0).map { (16...64).contains($0) } ?? false }, "whole numbers: \(batches)")
        XCTAssertEqual(Set(first.map { $0[2].value }), ["adam", "sgd"])
        // A list can mix with a range: values and draws both appear.
        var base = Hyperparameters()
        base.seed = 5
        let mixed = try SweepPlan.parse(["noise", "0,0.2..0.4", "random", "30", "train", "1"], base: base, spec: "dense 4",
                                        load: [], checkSpec: { _ in }).configurations.map { Double($0[0].value)! }
        XCTAssertTrue(mixed.contains(0))
        XCTAssertTrue(mixed.contains { (0.2...0.4).contains($0) })
        XCTAssertTrue(mixed.allSatisfy { $0 == 0 || (0.2...0.4).contains($0) }, "\(mixed)")
    }

    func testHalvingTrainsItsRungsAndContinuesTheSurvivors() throws {
        try loadTiny()
        let text = run("sweep lr 1e-4,3e-4,1e-3,3e-3 halving train 4")
        // Rungs at 1, 2 and 4 epochs: 4×1 + 2×1 + 1×2 = 8 of the grid's 16.
        XCTAssertTrue(text.contains("at most 8 epochs (all of them: 16)"), text)
        XCTAssertTrue(text.contains("sweep 1 finished: 4 runs, 8 epochs (50% of the 16 without halving)"), text)
        let runs = try rows("SELECT runs.id, runs.epochs, runs.status, sweep_runs.status FROM sweep_runs JOIN runs ON runs.id = sweep_runs.run ORDER BY runs.epochs, runs.id")
        XCTAssertEqual(runs.map { $0[1] }, ["1", "1", "2", "4"])
        XCTAssertEqual(runs.map { $0[2] }, ["pruned", "pruned", "pruned", "finished"])
        XCTAssertEqual(runs.map { $0[3] }, ["pruned", "pruned", "pruned", "trained"])
        // Each rung trains only its new epochs: 2 after 1, then 3–4.
        XCTAssertEqual(text.components(separatedBy: "; epoch 2\n").count - 1, 2, text)
        XCTAssertEqual(text.components(separatedBy: "; epochs 3–4\n").count - 1, 1, text)
        XCTAssertFalse(text.contains("epochs 1–"), text)
        XCTAssertTrue(run("runs").contains("pruned"))
        // The survivor was continued, not restarted: its epoch-2 state is that of an unbroken
        // 2-epoch run of its configuration, and its epochs are one history 1…4.
        let survivor = runs[3][0]
        XCTAssertEqual(try rows("SELECT count(DISTINCT epoch) FROM metrics WHERE run = \(survivor) AND name = 'train_loss'"), [["4"]])
        let lr = try rows("SELECT value FROM params WHERE run = \(survivor) AND name = 'lr' AND from_epoch = 1")[0][0]
        run("build dense 16 relu | dense 4; set lr \(lr); train 2")
        let unbroken = try Checkpoint.load(from: session.epochStatePath(run: session.runID!, epoch: 2)).tensors
        let swept = try Checkpoint.load(from: session.epochStatePath(run: Int64(survivor)!, epoch: 2)).tensors
        XCTAssertEqual(Set(unbroken.keys), Set(swept.keys))
        for (name, tensor) in unbroken { XCTAssertEqual(tensor.data, swept[name]?.data, name) }
    }

    func testCtrlCStopsTheSweepAndResumeInAnotherProcessFinishesItTheSame() throws {
        // The same sweep unbroken, in a database of its own.
        let reference = Session(store: try RunStore(path: folder + "/reference.sqlite"), checkpointDirectory: folder + "/reference")
        let quiet = BufferConsole()
        try loadTiny(into: reference, console: quiet)
        XCTAssertTrue(reference.execute("sweep lr 1e-3,3e-3,1e-2 halving train 2", console: quiet), quiet.text)

        try loadTiny()
        let polls = Counter()
        session.isInterrupted = { polls.next() >= 12 }   // 8 batches an epoch: inside the second run
        let stopped = run("sweep lr 1e-3,3e-3,1e-2 halving train 2", ok: false)
        XCTAssertTrue(stopped.contains("sweep 1 stopped (Ctrl-C) in run 2; continue it with: sweep resume 1"), stopped)
        XCTAssertEqual(try rows("SELECT state FROM sweeps"), [["interrupted"]])
        XCTAssertEqual(try rows("SELECT status FROM runs WHERE id = 2"), [["interrupted"]])
        session.isInterrupted = { false }
        _ = session.endRun()   // this process moves on, giving up run 2

        // Another process: it must load the same data first; the spec and settings come from the record.
        let other = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        let console2 = BufferConsole()
        XCTAssertFalse(other.execute("sweep resume 1", console: console2))
        XCTAssertTrue(console2.text.contains("load it first: load idx \(folder)/q"), console2.text)
        console2.clear()
        XCTAssertTrue(other.execute("load idx \(folder)/q; sweep resume 1", console: console2), console2.text)
        XCTAssertTrue(console2.text.contains("sweep 1 finished: 3 runs"), console2.text)
        XCTAssertEqual(try rows("SELECT state FROM sweeps"), [["finished"]])
        // Run by run, the same numbers as the unbroken sweep, and the same runs pruned.
        let ours = try rows("SELECT config, run, epochs, status FROM sweep_runs ORDER BY config")
        let theirs = try rows("SELECT config, run, epochs, status FROM sweep_runs ORDER BY config", in: reference.store)
        XCTAssertEqual(ours.map { [$0[0], $0[2], $0[3]] }, theirs.map { [$0[0], $0[2], $0[3]] })
        for (a, b) in zip(ours, theirs) {
            XCTAssertEqual(try metrics(a[1]), try metrics(b[1], in: reference.store), "config \(a[0])")
            XCTAssertEqual(try rows("SELECT status FROM runs WHERE id = \(a[1])"), try rows("SELECT status FROM runs WHERE id = \(b[1])", in: reference.store))
        }
    }

    func testCtrlCInALaterEpochResumesTheRunFromItsLastRecordedEpochInThisProcess() throws {
        let reference = Session(store: try RunStore(path: folder + "/reference.sqlite"), checkpointDirectory: folder + "/reference")
        let quiet = BufferConsole()
        try loadTiny(into: reference, console: quiet)
        XCTAssertTrue(reference.execute("sweep lr 1e-3,3e-3 train 2", console: quiet), quiet.text)

        try loadTiny()
        let polls = Counter()
        session.isInterrupted = { polls.next() >= 13 }   // inside run 1's second epoch
        let stopped = run("sweep lr 1e-3,3e-3 train 2", ok: false)
        XCTAssertTrue(stopped.contains("interrupted in epoch 2"), stopped)
        XCTAssertEqual(try rows("SELECT max(epoch) FROM metrics WHERE run = 1"), [["1"]])
        session.isInterrupted = { false }
        let shown = run("sweep show 1")
        XCTAssertTrue(shown.contains("sweep 1 (grid, interrupted)") && shown.contains("continue it with: sweep resume 1"), shown)
        XCTAssertTrue(run("sweeps").contains("interrupted   1/2"), console.text)
        for line in console.lines { XCTAssertLessThanOrEqual(line.count, 80, line) }
        let resumed = run("sweep resume 1")
        XCTAssertTrue(resumed.contains("sweep 1 [1/2] run 1: lr 1e-3; epoch 2"), resumed)
        XCTAssertTrue(resumed.contains("sweep 1 finished: 2 runs, 4 epochs"), resumed)
        XCTAssertTrue(run("sweep resume 1", ok: false).contains("sweep 1 is finished; see it with: sweep show 1"))
        for run in ["1", "2"] {
            XCTAssertEqual(try metrics(run), try metrics(run, in: reference.store), "run \(run)")
        }
    }

    func testBadSweepsAreRefusedInOneLineBeforeAnythingTrains() throws {
        XCTAssertTrue(run("sweep lr 1e-3,3e-3 train 1", ok: false).contains("no dataset loaded; load one first"))
        try writeQuadrantIDX(to: folder + "/q", train: 64, test: 32, seed: 1)
        run("load idx \(folder)/q")
        XCTAssertTrue(run("sweep lr 1e-3,3e-3 train 1", ok: false).contains("no model yet; build one first"))
        run("build dense 4")
        let refusals: [(String, String)] = [
            ("sweep lrr 1e-3,3e-3 train 1", "unknown setting 'lrr' — did you mean 'lr'?"),
            ("sweep zzqx 1,2 train 1", "unknown setting 'zzqx'; help sweep says what sweep takes"),
            ("sweep lr 1e-3,fast train 1", "lr must be a number"),
            ("sweep batch 16,0 train 1", "batch must be a whole number from 1"),
            ("sweep train 3", "nothing to sweep"),
            ("sweep lr 1e-3,3e-3", "end it with train N"),
            ("sweep lr 1e-4..1e-2 train 1", "draw configurations from it with random N"),
            ("sweep lr 1e-2..1e-4 random 3 train 1", "write the lower end first"),
            ("sweep lr 1e-3,,3e-3 train 1", "an empty value"),
            ("sweep keep 1,2 train 1", "keep is not a run setting"),
            ("sweep lr 1e-3,2e-3 lr 3e-3 train 1", "lr is swept twice"),
            ("sweep noise 0..0.3 log random 2 train 1", "log scale, so its values must be numbers > 0"),
            ("sweep lr 1e-3 halving train 1", "halving needs train N with N ≥ 2"),
            ("sweep build \"dense 4\",\"dense x\" train 1", "build \"dense x\""),
            ("sweep threads 1,2,3,4,5,6,7,8,9,10,11 batch 1,2,3,4,5,6,7,8,9,10,11 seed 1,2,3,4,5,6,7,8,9 train 1",
             "the grid has 1089 configurations (threads 11 × batch 11 × seed 9), more than 1000"),
            ("sweep resume 7", "no sweep 7"),
            ("sweep show x", "sweep ids are whole numbers"),
        ]
        for (line, message) in refusals {
            let text = run(line, ok: false)
            XCTAssertTrue(text.hasPrefix("error: ") && text.contains(message), "\(line) → \(text)")
            XCTAssertEqual(text.split(separator: "\n").count, 1, text)
        }
        for line in ["sweep lrr 1e-3 train 1", "sweep zzqx 1,2 train 1"] {
            XCTAssertLessThanOrEqual(run(line, ok: false).count, 81, "one screen line (and its newline): \(line)")
        }
        XCTAssertEqual(try rows("SELECT count(*) FROM sweeps"), [["0"]])
        XCTAssertEqual(try rows("SELECT count(*) FROM runs"), [["0"]])
    }

    func testTheLeaderboardIsBestFirstAndTheReportDrawsEveryRun() throws {
        try loadTiny()
        let text = run("sweep build \"dense 16 relu | dense 4\",\"dense 4\" lr 1e-4,1e-2 train 2")
        // The table after "finished": header, rule, then one row per run with its score.
        let lines = text.split(separator: "\n").map(String.init)
        let header = lines.firstIndex { $0.hasPrefix("#") && $0.contains("test acc") }!
        XCTAssertTrue(lines[header].contains("build") && lines[header].contains("lr"), lines[header])
        let scores = lines[(header + 2)..<(header + 6)].map { line in
            Double(line.split(separator: " ").first { $0.hasPrefix("0.") || $0.hasPrefix("1.") }!)!
        }
        XCTAssertEqual(scores, scores.sorted(by: >), text)
        let best = try rows("SELECT id FROM runs ORDER BY best_accuracy DESC, id LIMIT 1")[0][0]
        XCTAssertTrue(text.contains("best: run \(best) ("), text)
        XCTAssertEqual(session.runID.map(String.init), best, "the session holds the best run")
        let listed = run("sweeps")
        for line in console.lines { XCTAssertLessThanOrEqual(line.count, 80, line) }
        XCTAssertTrue(listed.contains("grid  finished   4/4  sweep build \"dense 16 relu | dense 4\",\"dense 4\""), listed)
        XCTAssertTrue(run("sweep show 1").contains("sweep 1 (grid, finished)"))
        let file = folder + "/sweep.html"
        run("sweep report 1 \(file)")
        let html = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertTrue(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"parallel\""))
        XCTAssertEqual(html.components(separatedBy: "class=\"sweep-run\"").count - 1, 4)
        XCTAssertTrue(html.contains(">lr (log)</text>"), "two decades of lr read on a log axis")
        XCTAssertTrue(html.contains("best test_accuracy"))
        // `report` of the sweep's runs is the same page; of runs from no one sweep, the plain one.
        run("report where sweep = 1 \(folder)/by-report.html")
        let byReport = try String(contentsOfFile: folder + "/by-report.html", encoding: .utf8)
        XCTAssertEqual(byReport.components(separatedBy: "class=\"sweep-run\"").count - 1, 4)
        run("report 1 2 \(folder)/two.html")
        XCTAssertEqual(try String(contentsOfFile: folder + "/two.html", encoding: .utf8).components(separatedBy: "class=\"sweep-run\"").count - 1, 2)
        run("build dense 4; train 1; report 1 5 \(folder)/mixed.html")
        XCTAssertFalse(try String(contentsOfFile: folder + "/mixed.html", encoding: .utf8).contains("class=\"parallel\""))
    }

    /// Under `set monitor val_loss` the sweep ranks by each run's lowest validation loss,
    /// lowest first, and halving keeps the lower half; `monitor` itself is not swept.
    func testTheSweepRanksByTheMonitoredMetric() throws {
        try loadTiny()
        run("set val 0.25; set monitor val_loss")
        XCTAssertTrue(run("sweep monitor val_loss,accuracy train 2", ok: false).hasPrefix("error: monitor ranks the sweep's runs"))
        let text = run("sweep lr 1e-4,3e-3,1e-2,3e-2 halving train 2")
        let lines = text.split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("#") && $0.contains("val loss") }, text)
        let losses = lines[(header + 2)..<(header + 6)].compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("0.") || $0.hasPrefix("1.") || $0.hasPrefix("2.") }.flatMap { Double($0) }
        }
        XCTAssertEqual(losses.count, 4, text)
        XCTAssertEqual(losses, losses.sorted(), "lowest loss first: \(text)")
        // Each run's score is its lowest recorded val_loss, and the survivor of the halving is the
        // run whose first-epoch val_loss was among the lower half.
        let best = try rows("SELECT run, MIN(value) FROM metrics WHERE name = 'val_loss' GROUP BY run ORDER BY MIN(value), run LIMIT 1")[0]
        XCTAssertTrue(text.contains("best: run \(best[0]) ("), text)
        let firstEpoch = try rows("SELECT run FROM metrics WHERE name = 'val_loss' AND epoch = 1 ORDER BY value, run").map { $0[0] }
        let pruned = try rows("SELECT id FROM runs WHERE status = 'pruned' ORDER BY id").map { $0[0] }
        XCTAssertEqual(Set(pruned), Set(firstEpoch.suffix(2)), "the higher half of first-epoch losses is pruned")
    }

    func testTheParallelChartPlacesLogValuesByTheirLogarithm() {
        let svg = SweepReport.parallelCoordinates(axes: [SweepReport.Axis(name: "lr", isLog: true)],
                                                  lines: [SweepReport.Line(label: "run 1", values: ["1e-4"], score: 0.5),
                                                          SweepReport.Line(label: "run 2", values: ["1e-3"], score: 0.7),
                                                          SweepReport.Line(label: "run 3", values: ["1e-2"], score: 0.9)],
                                                  metric: "acc")
        // On a log axis 1e-3 sits halfway between 1e-4 and 1e-2: y = top + plot/2 = 40 + 150.
        XCTAssertTrue(svg.contains("points=\"80.0,190.0 "), svg)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 3)
    }
}
