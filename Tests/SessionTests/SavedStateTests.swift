import XCTest
import Foundation
import Datasets
import NN
import Tracking
@testable import Session

/// A saved state's metadata is input like any other: checked, and trusted about its origin only
/// as far as it can be (issue 17).
final class SavedStateTests: SessionTestCase {
    func rows(_ sql: String) throws -> [[String]] { try session.store!.query(sql).rows }

    /// A copy of the checkpoint at `path` with its metadata changed.
    func rewritten(_ path: String, as name: String, _ change: (inout [String: String]) -> Void) throws -> String {
        var (tensors, metadata) = try Checkpoint.load(from: path)
        change(&metadata)
        let copy = folder + "/\(name).safetensors"
        try SafeTensors.encode(tensors, metadata: metadata).write(to: URL(fileURLWithPath: copy))
        return copy
    }

    func testDamagedCountersAreRefusedNamingTheFileAndTheKey() throws {
        loadQuadrants()
        run("build conv; train 2")
        let path = folder + "/two.safetensors"
        run("save \(path)")
        let damaged: [(key: String, value: String)] = [
            ("ollie.epochs_done", "-4"), ("ollie.epochs_done", "many"), ("ollie.epochs_done", "99999999999"),
            ("ollie.steps_done", "1e99"), ("ollie.steps_done", "1"), ("ollie.best_epoch", "7"), ("ollie.best_epoch", "-1"),
            ("ollie.last_improvement", "3"), ("ollie.best_accuracy", "1.5"), ("ollie.best_accuracy", "nan"),
            ("ollie.run", "0"), ("ollie.run", "three"), ("ollie.database", "nope"), ("ollie.data_fingerprint", "xyz"),
        ]
        for (i, (key, value)) in damaged.enumerated() {
            let copy = try rewritten(path, as: "damaged-\(i)") { $0[key] = value }
            let refused = run("restore \(copy)", ok: false)
            XCTAssertTrue(refused.hasPrefix("error: \(copy): \(key)"), "\(key) = \(value): \(refused)")
            XCTAssertEqual(refused.split(separator: "\n").count, 1, refused)
            XCTAssertEqual(session.trainer?.epochsDone, 2, "\(key) = \(value): nothing changed")
            XCTAssertEqual(session.runID, 1)
        }
    }

    func testRestoreSaysWhenDataOfTheSameNameAreNotTheDataItWasTrainedOn() throws {
        loadQuadrants()
        run("build conv; train 1")
        let path = folder + "/one.safetensors"
        run("save \(path)")
        XCTAssertFalse(run("restore \(path)").contains("not the data"))
        let other = try rewritten(path, as: "other-data") { $0["ollie.data_fingerprint"] = "0123456789abcdef" }
        let restored = run("restore \(other)")
        XCTAssertTrue(restored.contains("note: quadrants here is not the data \(other) was trained on (fingerprint 0123456789abcdef then, \(session.dataset!.fingerprint) now)"), restored)
    }

    func testARunThatIsNotInThisDatabaseIsNotRecordedAsTheParent() throws {
        loadQuadrants()
        run("build conv; train 2")
        let path = folder + "/two.safetensors"
        run("save \(path)")
        let elsewhere = try rewritten(path, as: "run-99") { $0["ollie.run"] = "99" }
        let restored = run("restore \(elsewhere)")
        XCTAssertTrue(restored.contains("\(elsewhere) holds run 99@2, but this database has no run 99 (ollie.run); no parent is recorded"), restored)
        XCTAssertFalse(restored.contains("forked from"), restored)
        let trained = run("train 1")
        XCTAssertTrue(trained.contains("run 2 started (quadrants, epoch 3)"), trained)
        XCTAssertEqual(try rows("SELECT parent_run, parent_epoch FROM runs WHERE id = 2"), [["NULL", "NULL"]])
    }

    func testACheckpointOfAnotherDatabaseGivesNoParentAndSaysWhereItCameFrom() throws {
        loadQuadrants()
        run("build conv; train 2")
        let path = folder + "/two.safetensors"
        run("save \(path)")
        // Another database with a run 1 of its own.
        let other = Session(store: try RunStore(path: folder + "/other.sqlite"), checkpointDirectory: folder + "/other-checkpoints")
        let console2 = BufferConsole()
        other.workbench = .data(quadrants())
        other.settings.batchSize = 32
        other.settings.target = 2
        XCTAssertTrue(other.execute("build conv; train 1", console: console2), console2.text)
        console2.clear()
        XCTAssertTrue(other.execute("restore \(path)", console: console2), console2.text)
        let identity = try session.store!.databaseIdentity()
        XCTAssertTrue(console2.text.contains("\(path) holds run 1@2 of another database (ollie.database \(identity)); no parent is recorded in this one"), console2.text)
        XCTAssertFalse(console2.text.contains("forked from"), console2.text)
        console2.clear()
        XCTAssertTrue(other.execute("train 1", console: console2), console2.text)
        XCTAssertTrue(console2.text.contains("run 2 started (quadrants, epoch 3)"), console2.text)
        XCTAssertEqual(try other.store!.query("SELECT parent_run FROM runs WHERE id = 2").rows, [["NULL"]])
        // In its own database the same file is run 1's state: the lineage holds.
        XCTAssertTrue(run("restore \(path)").contains("forked from 1@2"))
        // A file from before checkpoints named their database: no parent, and it says why.
        let old = try rewritten(path, as: "old") { $0["ollie.database"] = nil }
        let restored = run("restore \(old)")
        XCTAssertTrue(restored.contains("\(old) holds run 1@2 but is older than checkpoints that name their database"), restored)
        XCTAssertNil(session.pendingLineage)
    }

    /// Two databases' checkpoint folders can meet (`checkpoints/runs/` for any runs.sqlite):
    /// resume takes only its own database's states.
    func testResumeRefusesAStateWrittenByAnotherDatabasesRun() throws {
        loadQuadrants()
        run("build conv; train 2")
        let other = Session(store: try RunStore(path: folder + "/other.sqlite"), checkpointDirectory: folder + "/other-checkpoints")
        let console2 = BufferConsole()
        other.workbench = .data(quadrants())
        other.settings.batchSize = 32
        other.settings.target = 2
        XCTAssertTrue(other.execute("build conv; train 2", console: console2), console2.text)
        let theirs = folder + "/other-checkpoints/run-1/epoch-2.safetensors"
        try FileManager.default.removeItem(atPath: theirs)
        try FileManager.default.copyItem(atPath: folder + "/checkpoints/run-1/epoch-2.safetensors", toPath: theirs)
        console2.clear()
        XCTAssertFalse(other.execute("resume 1", console: console2), console2.text)
        XCTAssertTrue(console2.text.hasPrefix("error: \(theirs) was written by run 1 of another database"), console2.text)
        XCTAssertEqual(console2.text.split(separator: "\n").count, 1, console2.text)
        // fork of it trains on, with no parent, and says where the state came from.
        console2.clear()
        XCTAssertTrue(other.execute("fork 1", console: console2), console2.text)
        XCTAssertTrue(console2.text.contains("of another database"), console2.text)
        XCTAssertNil(other.pendingLineage)
    }

    func testResumeRefusesDataThatChangedAndForkSaysTheyDid() throws {
        try writeQuadrantIDX(to: folder + "/a", train: 256, test: 64, seed: 1)
        run("load idx \(folder)/a; set batch 32; build conv")
        session.settings.target = 2
        run("train 2")
        let recorded = try rows("SELECT value FROM params WHERE run = 1 AND name = 'data_fingerprint'")
        XCTAssertEqual(recorded.count, 1)
        let saved = try Checkpoint.load(from: folder + "/checkpoints/run-1/epoch-2.safetensors").metadata["ollie.data_fingerprint"]
        XCTAssertEqual(recorded.first?.first, saved)
        XCTAssertEqual(saved, session.dataset!.fingerprint)
        // Same files, another process (this one has ended): resume goes on.
        session.close(console)
        let same = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        let console2 = BufferConsole()
        XCTAssertTrue(same.execute("resume 1", console: console2), console2.text)
        same.close(console2)
        // The files change on disk (same sizes, other images and labels).
        try writeQuadrantIDX(to: folder + "/a", train: 256, test: 64, seed: 2)
        let later = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        let console3 = BufferConsole()
        XCTAssertFalse(later.execute("resume 1", console: console3), console3.text)
        XCTAssertTrue(console3.text.hasPrefix("error: the data of run 1 have changed since its epoch 2"), console3.text)
        XCTAssertTrue(console3.text.contains("fork 1"), console3.text)
        XCTAssertEqual(console3.text.split(separator: "\n").count, 1, console3.text)
        XCTAssertNil(later.runID)
        XCTAssertNil(later.cachedFingerprint, "the refused data are not kept in memory")
        XCTAssertNotNil(session.cachedFingerprint, "the session's own data keep theirs")
        console3.clear()
        XCTAssertTrue(later.execute("fork 1", console: console3), console3.text)
        XCTAssertTrue(console3.text.contains("note: the data have changed since run 1 trained on them"), console3.text)
    }
}
