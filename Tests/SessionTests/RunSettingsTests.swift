import XCTest
import Foundation
import Tracking
import Training
@testable import Session

/// A run's policy changes belong to that run; the next run starts from what the user set. And
/// `train` says when the policy's choices rest on the test set or on too small a validation split.
final class RunSettingsTests: SessionTestCase {
    func rows(_ sql: String) throws -> [[String]] { try session.store!.query(sql).rows }

    func testANewRunStartsFromTheUsersSettingsNotTheLastRunsDrop() throws {
        try writeQuadrantIDX(to: folder + "/noise", train: 256, test: 64, seed: 1, randomLabels: true)
        run("load idx \(folder)/noise; set batch 32; build conv; set patience 1; train 5")
        let dropped = try rows("SELECT value FROM params WHERE run = 1 AND name = 'lr' ORDER BY from_epoch DESC, rowid DESC LIMIT 1")[0][0]
        XCTAssertNotEqual(dropped, "3e-3", "the test needs run 1's policy to drop the rate")
        let shown = run("show")
        XCTAssertTrue(shown.contains("lr             \(dropped) * (in run 1; you set 3e-3)"), shown)
        let built = run("build conv")
        XCTAssertTrue(built.contains("the next run starts from your settings: lr 3e-3 (your setting; run 1's policy had it at \(dropped))"), built)
        run("train 1")
        // Before: run 2 started at run 1's dropped rate, without a word.
        XCTAssertEqual(try rows("SELECT value FROM params WHERE run = 2 AND name = 'lr'"), [["3e-3"]])
        XCTAssertEqual(try rows("SELECT printf('%.4g', value) FROM metrics WHERE run = 2 AND name = 'learning_rate'"), [["0.003"]])
        XCTAssertFalse(run("show").contains("you set"))
    }

    func testDefaultsAreShuffledEpochsWithoutNoiseAndTheReferenceSetsConvJlsRecipe() throws {
        let defaults = Hyperparameters()
        XCTAssertEqual(defaults.noise, 0)
        XCTAssertTrue(defaults.shuffle)
        let reference = try String(contentsOfFile: #filePath.components(separatedBy: "/Tests/")[0] + "/examples/reference.ollie", encoding: .utf8)
        let lines = reference.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let train = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("train") })
        for line in ["set noise 0.1", "set shuffle off", "set val 0"] {
            XCTAssertTrue(lines[..<train].contains(line), "examples/reference.ollie must say \(line) before it trains")
        }
    }

    func testAUsersSetDuringARunIsKeptForTheNext() throws {
        loadQuadrants()
        run("build conv; train 1; set lr 1e-3; train 1; build conv; train 1")
        XCTAssertEqual(try rows("SELECT value FROM params WHERE run = 2 AND name = 'lr'"), [["1e-3"]])
    }

    /// A `set` after a run's last epoch is recorded as applying from its next epoch; when a new
    /// run begins instead, that epoch never comes, so compare and the MLflow export leave the
    /// change out of the ended run (while the run is live, the pending change is shown).
    func testASetAfterARunsLastEpochIsNotShownAsItsOwnOnceItEnds() throws {
        loadQuadrants()
        run("build conv; train 1; set lr 1e-3")
        XCTAssertTrue(run("compare 1").contains("3e-3 → 1e-3@2"), "pending on the live run: \(run("compare 1"))")
        run("build conv; train 1")
        let compared = run("compare 1 2")
        XCTAssertFalse(compared.contains("→"), compared)
        XCTAssertEqual(try session.store!.comparison(of: [1]).runs[0].params.first { $0.name == "lr" }?.values.map(\.value), ["3e-3"])
        XCTAssertEqual(try session.store!.exportSnapshot(run: 1).params.first { $0.name == "lr" }?.values.map(\.value), ["3e-3"])
        // The rows stay in the database, as written.
        XCTAssertEqual(try rows("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'lr' ORDER BY from_epoch"), [["3e-3", "1"], ["1e-3", "2"]])
    }

    func testClipIsRecordedWithTheRunShownAndKeptByResume() throws {
        try writeQuadrantIDX(to: folder + "/a", train: 256, test: 64, seed: 1)
        XCTAssertTrue(run("set clip 1").contains("clip = 1 (was off)"))
        for bad in ["-1", "0", "nan", "inf", "big"] {
            let refused = run("set clip \(bad)", ok: false)
            XCTAssertTrue(refused.contains("clip must be a number > 0") && refused.contains("or off"), refused)
            XCTAssertEqual(refused.split(separator: "\n").count, 1, refused)
        }
        XCTAssertEqual(session.settings.clipNorm, 1)
        XCTAssertTrue(run("show").contains("clip           1 *"), run("show"))
        run("load idx \(folder)/a; set batch 32; set target off; build conv; train 1")
        XCTAssertEqual(try rows("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'clip'"), [["1", "1"]])
        run("set clip 0.5; train 1")
        XCTAssertEqual(try rows("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'clip' ORDER BY from_epoch"),
                       [["1", "1"], ["0.5", "2"]])
        session.close(BufferConsole())   // that process ends, giving the run up
        // Another process, whose own setting is off: the run's setting comes back with it.
        let other = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        let console = BufferConsole()
        XCTAssertTrue(other.execute("resume 1; show", console: console), console.text)
        XCTAssertEqual(other.settings.clipNorm, 0.5)
        XCTAssertTrue(console.text.contains("clip           0.5 *"), console.text)
        XCTAssertTrue(other.execute("set clip off; train 1", console: console), console.text)
        XCTAssertEqual(try rows("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'clip' ORDER BY from_epoch"),
                       [["1", "1"], ["0.5", "2"], ["off", "3"]])
    }

    func testTrainSaysOnceThatItSelectsOnTheTestSet() {
        loadQuadrants()
        let first = run("build conv; train 1")
        XCTAssertTrue(first.contains("chosen on the test set") && first.contains("set val 0.1"), first)
        XCTAssertFalse(run("train 1").contains("chosen on the test set"))
        XCTAssertFalse(run("set val 0.25; build conv; train 1").contains("chosen on the test set"))
    }

    func testAValidationSplitTooSmallToSelectOnIsWarned() {
        loadQuadrants()   // 256 training images, 4 classes
        let small = run("set val 0.1; build conv; train 1")
        XCTAssertTrue(small.contains("warning: the validation split holds 25 images (5 in its smallest class)"), small)
        XCTAssertFalse(run("train 1").contains("warning: the validation split"), "said once a run")
        XCTAssertFalse(run("set val 0.25; build conv; train 1").contains("warning: the validation split"))
    }
}
