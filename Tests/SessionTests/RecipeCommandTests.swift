import XCTest
import Foundation
import Tracking
import Training
@testable import Session

/// The recipes as a user types them: wd, smoothing, class-weights, topk and the optimizers;
/// recorded with the run and kept by resume; `metrics` and `confusion normalized`.
final class RecipeCommandTests: SessionTestCase {
    func rows(_ sql: String) throws -> [[String]] { try session.store!.query(sql).rows }

    func testBadRecipeValuesAreRefusedInOneLine() {
        loadQuadrants()   // 4 classes
        let cases: [(String, String)] = [
            ("set wd -1", "wd must be a number ≥ 0"), ("set wd x", "wd must be a number"),
            ("set smoothing 1", "smoothing must be a number ≥ 0 and < 1"), ("set smoothing -0.1", "smoothing must be"),
            ("set class-weights 1,2", "class-weights: 2 weights for quadrants's 4 classes; give 4 or use balanced"),
            ("set class-weights 1,x", "class-weights must be balanced, off, or one weight ≥ 0 per class"),
            ("set topk 0", "topk must be off or a whole number from 2 to 1000"), ("set topk 1", "topk must be"),
            ("set optimizer adamx", "optimizer must be one of adam, adamw, sgd, momentum, nesterov, rmsprop"),
        ]
        for (line, message) in cases {
            let refused = run(line, ok: false)
            XCTAssertTrue(refused.contains(message), "\(line) → \(refused)")
            XCTAssertEqual(refused.split(separator: "\n").count, 1, refused)
        }
        run("build conv")
        let bogus = run("metrics bogus", ok: false)
        XCTAssertTrue(bogus.contains("choose test, train or val"), bogus)
        XCTAssertEqual(bogus.split(separator: "\n").count, 1, bogus)
        XCTAssertEqual(session.settings.weightDecay, 0)
        XCTAssertEqual(session.settings.classWeights, .none)
    }

    /// Weights set before the data that they do not fit stop `train` in one line.
    func testClassWeightsThatNoLongerFitTheDataStopTrain() {
        run("set class-weights 1,2")
        loadQuadrants()
        run("build conv")
        let refused = run("train 1", ok: false)
        XCTAssertTrue(refused.contains("class-weights: 2 weights for the data's 4 classes; give 4 or use balanced"), refused)
        XCTAssertEqual(refused.split(separator: "\n").count, 1, refused)
        // The range test trains with the same objective: refused alike, not run unweighted.
        XCTAssertEqual(run("lr-find", ok: false), refused)
        run("set class-weights 1,2,1,1; train 1")
    }

    /// Recorded with the run (and its changes with their epoch), shown, and kept by fork: the
    /// forked run trains to the same bits as one that never stopped.
    func testRecipesAreRecordedAndAForkedRunRetracesBitForBit() throws {
        try writeQuadrantIDX(to: folder + "/a", train: 256, test: 64, seed: 1)
        let setup = "load idx \(folder)/a; set batch 32; set target off; set optimizer adamw; set wd 1e-2; set smoothing 0.1; set class-weights balanced; set topk 2; build conv"
        let trained = run(setup + "; train 2")
        XCTAssertTrue(trained.contains("top2 "), trained)
        XCTAssertEqual(try rows("SELECT name, value FROM params WHERE run = 1 AND name IN ('optimizer', 'wd', 'smoothing', 'class-weights', 'topk') ORDER BY name"),
                       [["class-weights", "balanced"], ["optimizer", "adamw"], ["smoothing", "0.1"], ["topk", "2"], ["wd", "1e-2"]])
        XCTAssertEqual(try rows("SELECT COUNT(*) FROM metrics WHERE run = 1 AND name = 'test_top2'"), [["2"]])
        let compared = run("compare")
        XCTAssertTrue(compared.contains("final test top2"), compared)
        let shown = run("show")
        XCTAssertTrue(shown.contains("wd             1e-2 *") && shown.contains("class-weights  balanced *"), shown)
        run("set wd 1e-3; set optimizer rmsprop; train 1")
        XCTAssertEqual(try rows("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'wd' ORDER BY from_epoch"), [["1e-2", "1"], ["1e-3", "3"]])
        run("train 1")
        let straight = session.trainer!.model.parameters.flatMap(\.value.data)
        session.close(BufferConsole())
        // Another process forks run 1 after epoch 3 and trains epoch 4 again.
        let other = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        let console = BufferConsole()
        XCTAssertTrue(other.execute("fork 1@3", console: console), console.text)
        XCTAssertEqual(other.settings.optimizer, .rmsprop)
        XCTAssertEqual(other.settings.weightDecay, 1e-3)
        XCTAssertEqual(other.settings.classWeights, .balanced)
        XCTAssertEqual(other.settings.topK, 2)
        XCTAssertTrue(other.execute("train 1", console: console), console.text)
        XCTAssertEqual(other.trainer!.model.parameters.flatMap(\.value.data).map(\.bitPattern), straight.map(\.bitPattern))
    }

    func testMetricsAndNormalizedConfusion() throws {
        loadQuadrants()
        run("build conv; train 1")
        let metrics = run("metrics")
        for word in ["precision", "recall", "f1-score", "support", "macro avg", "weighted avg", "accuracy"] {
            XCTAssertTrue(metrics.contains(word), metrics)
        }
        XCTAssertTrue(metrics.split(separator: "\n").allSatisfy { $0.count <= 80 }, metrics)
        let names = try XCTUnwrap(session.dataset?.classNames)
        for name in names { XCTAssertTrue(metrics.contains(name), metrics) }
        let normalized = run("confusion normalized")
        // Each class row: the name, K shares summing to 1, the class's accuracy.
        for name in names {
            let row = try XCTUnwrap(normalized.split(separator: "\n").first { $0.hasPrefix(name + " ") }, normalized)
            let cells = row.split(separator: " ").dropFirst().compactMap { Double($0) }
            XCTAssertEqual(cells.count, names.count + 1, String(row))
            XCTAssertEqual(cells.prefix(names.count).reduce(0, +), 1, accuracy: 0.03, String(row))
        }
        XCTAssertEqual(run("confusion train normalized").isEmpty, false)
        XCTAssertTrue(run("confusion test normalized extra", ok: false).contains("usage: confusion"))
    }
}
