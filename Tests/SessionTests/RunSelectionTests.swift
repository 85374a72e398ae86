import XCTest
import Foundation
import Tracking
@testable import Session

/// compare, plot, report and diff take any recorded runs, from any process, with one grammar;
/// names, tags, archive and delete keep many runs in order.
final class RunSelectionTests: SessionTestCase {
    /// Three finished runs recorded by an earlier process (a store of its own, released).
    func recordEarlierRuns() throws {
        let earlier = try RunStore(path: folder + "/runs.sqlite")
        for (i, lr) in ["3e-3", "1e-3", "3e-4"].enumerated() {
            let run = try earlier.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: [("lr", lr)])
            for e in 1...2 {
                try earlier.recordEpoch(run: run, EpochRecord(epoch: e, metrics: ["test_accuracy": 0.9 + Double(i + e) / 100, "train_loss": 0.3 / Double(e)],
                                                          bestAccuracy: 0.9 + Double(i + e) / 100, bestEpoch: e, trainLoss: 0.3 / Double(e), seconds: 1))
            }
            try earlier.finishRun(run: run, status: .finished, checkpoint: nil)
            try earlier.release(run: run)
        }
    }

    /// The ids of the rows of a `runs` table.
    func runIDs(in table: String) -> [Int64] {
        table.split(separator: "\n").compactMap { line in line.split(separator: " ").first.flatMap { Int64($0) } }
    }

    func testCompareInANewProcessShowsTheDatabasesRuns() throws {
        try recordEarlierRuns()
        // Before: "no runs in this session yet".
        let newest = run("compare")
        XCTAssertTrue(newest.contains("the newest 3 of the database"), newest)
        XCTAssertTrue(newest.contains("run 1") && newest.contains("run 3"), newest)
        let range = run("compare 2-3")
        XCTAssertTrue(range.contains("run 2") && range.contains("run 3") && !range.contains("run 1"), range)
        let filtered = run("compare where lr < 2e-3")
        XCTAssertTrue(filtered.contains("run 2") && filtered.contains("run 3") && !filtered.contains("run 1 "), filtered)
        XCTAssertTrue(run("compare last 2").contains("run 2"))
        XCTAssertTrue(run("compare all").contains("run 1"))
        XCTAssertTrue(run("plot train_loss 1-2").contains("train_loss"))
        XCTAssertTrue(run("plot last 2").contains("test_accuracy"))
        let wide = run("report 1-3 csv wide")
        XCTAssertTrue(wide.hasPrefix("setting,run 1,run 2,run 3"), wide)
        // Long by default: one number a row, as pandas and spreadsheets pivot.
        let long = run("report 2-3 csv").split(separator: "\n").map(String.init)
        XCTAssertEqual(long.first, "run,epoch,metric,value")
        XCTAssertEqual(long.count, 1 + 2 * 2 * 2, long.joined(separator: "\n"))
        XCTAssertTrue(long.contains("3,2,test_accuracy,0.94"), long.joined(separator: "\n"))
        XCTAssertTrue(long.contains("2,1,train_loss,0.3"), long.joined(separator: "\n"))
        let conditioned = run("report where lr = 3e-4 md")
        XCTAssertTrue(conditioned.contains("| | run 3 |"), conditioned)
        XCTAssertTrue(run("diff last 2").hasPrefix("diff: run 2 against run 3"))
        XCTAssertTrue(run("diff 1-3", ok: false).contains("exactly two runs"))
        XCTAssertTrue(run("compare 7", ok: false).contains("no run 7"))
        XCTAssertTrue(run("compare where lr > 1", ok: false).contains("no runs match"))
    }

    /// Runs whose policy followed val_loss (`set monitor val_loss`) show its best (the lowest
    /// marked) and the epoch `restore best` loads, beside the best accuracy; a run that
    /// followed the scored accuracy has none, and a selection of only such runs no such row.
    func testCompareShowsTheBestOfTheMetricEachRunFollowed() throws {
        let earlier = try RunStore(path: folder + "/runs.sqlite")
        let losses: [[Double]] = [[0.50, 0.30, 0.35], [0.40, 0.45, 0.20], [0.60, 0.10, 0.50]]
        for (i, monitor) in ["val_loss", "val_loss", "accuracy"].enumerated() {
            let run = try earlier.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: [("monitor", monitor)])
            for e in 1...3 {
                let accuracy = 0.9 + Double(e) / 100
                try earlier.recordEpoch(run: run, EpochRecord(epoch: e, metrics: ["val_accuracy": accuracy, "val_loss": losses[i][e - 1]],
                                                              bestAccuracy: accuracy, bestEpoch: e, trainLoss: 0.3, seconds: 1))
            }
            try earlier.finishRun(run: run, status: .finished, checkpoint: nil)
            try earlier.release(run: run)
        }
        let lines = run("compare 1-3").split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        let row = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("best val loss") }, lines.joined(separator: "\n"))
        XCTAssertEqual(lines[row], "best val loss 0.3000 0.2000 * -")
        XCTAssertEqual(lines[row + 1], "at epoch 2 3 -")
        // The best accuracy is still there, with its own epoch.
        XCTAssertTrue(lines.contains("best val accuracy 0.9300 0.9300 0.9300"), lines.joined(separator: "\n"))
        XCTAssertFalse(run("compare 3").contains("val loss"))
    }

    func testAValidatedRunKeepsValidationTestAndTrainingAccuracyApart() throws {
        loadQuadrants()
        run("set val 0.25; build conv; train 2")
        let store = session.store!
        // Before: no train_accuracy at all; test_accuracy only after the last epoch.
        let train = try store.query("SELECT epoch, value FROM metrics WHERE run = 1 AND name = 'train_accuracy' ORDER BY epoch").rows
        XCTAssertEqual(train.map { $0[0] }, ["1", "2"])
        XCTAssertTrue(train.allSatisfy { Double($0[1])! > 0 && Double($0[1])! <= 1 }, "\(train)")
        XCTAssertEqual(try store.query("SELECT count(*) FROM metrics WHERE run = 1 AND name = 'val_accuracy'").rows, [["2"]])
        let compare = run("compare")
        for row in ["selected on", "best val accuracy", "final test accuracy", "final val accuracy", "final train accuracy"] {
            XCTAssertTrue(compare.split(separator: "\n").contains { $0.hasPrefix(row + " ") }, "\(row): \(compare)")
        }
        XCTAssertFalse(compare.contains("best test accuracy"), compare)
        let html = folder + "/r.html"
        run("report 1 html \(html)")
        XCTAssertTrue(try String(contentsOfFile: html, encoding: .utf8).contains("validation accuracy per epoch"))
        XCTAssertTrue(run("plot 1").hasPrefix("val_accuracy"), "plot shows the accuracy that selected")
    }

    func testNameTagAndArchiveChangeWhatListsShow() throws {
        try recordEarlierRuns()
        run("name 3 cnn-lstm; tag 3 baseline small; tag 1 baseline")
        XCTAssertTrue(run("runs where name = cnn-lstm").contains("cnn-lstm #baseline #small"))
        XCTAssertEqual(runIDs(in: run("runs where tag = baseline")), [1, 3])
        run("untag 3 small")
        XCTAssertFalse(run("runs").contains("#small"))
        XCTAssertTrue(run("archive 2").contains("archived run 2"))
        XCTAssertEqual(runIDs(in: run("runs")), [1, 3])
        XCTAssertFalse(run("compare all").contains("run 2"))
        XCTAssertEqual(runIDs(in: run("runs archived")), [2])
        XCTAssertEqual(runIDs(in: run("runs all")), [1, 2, 3])
        XCTAssertTrue(run("runs all").contains("(archived)"))
        XCTAssertTrue(run("compare 2").contains("run 2"), "a run named by id is shown, archived or not")
        run("unarchive 2")
        XCTAssertTrue(run("compare all").contains("run 2"))
    }

    func testDeleteAsksAtAPromptAndNeedsYesInAScript() throws {
        try recordEarlierRuns()
        let states = session.epochStateDirectory(run: 2)
        let best = session.checkpointDirectory + "/run-2-best.safetensors"
        try FileManager.default.createDirectory(atPath: states, withIntermediateDirectories: true)
        try Data([1]).write(to: URL(fileURLWithPath: states + "/epoch-1.safetensors"))
        try Data([1]).write(to: URL(fileURLWithPath: best))
        // -c and scripts: nobody to ask.
        XCTAssertTrue(run("delete 2", ok: false).contains("delete 2 yes"))
        var asked: [String] = []
        session.confirm = { asked.append($0); return false }
        XCTAssertEqual(run("delete 2"), "run 2 kept")
        XCTAssertEqual(asked.count, 1)
        XCTAssertTrue(asked[0].contains("run 2") && asked[0].contains("[y/N]"), asked[0])
        XCTAssertTrue(FileManager.default.fileExists(atPath: best))
        session.confirm = { _ in true }
        XCTAssertTrue(run("delete 2").hasPrefix("deleted run 2 and"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: best))
        XCTAssertFalse(FileManager.default.fileExists(atPath: states))
        XCTAssertEqual(try session.store!.runs(RunFilter(order: .all, archived: .included)).map(\.id), [1, 3])
        session.confirm = nil
        XCTAssertTrue(run("delete 3 yes").hasPrefix("deleted run 3"))
        XCTAssertTrue(run("delete 3 yes", ok: false).contains("no run 3"))
    }

    func testARunHeldByAnotherLiveProcessIsNotDeleted() throws {
        let other = try RunStore(path: folder + "/runs.sqlite")
        let held = try other.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: [])
        let text = run("delete \(held) yes", ok: false)
        XCTAssertTrue(text.contains("held by another ollie process"), text)
        XCTAssertEqual(try session.store!.runs().map(\.id), [held])
    }
}
