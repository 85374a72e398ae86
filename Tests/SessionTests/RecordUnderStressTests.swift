import XCTest
import Foundation
import Tracking
@testable import Session

/// Another program holding the run database's write lock: the sqlite3 shell in an open
/// IMMEDIATE transaction, as a user's own `sqlite3 ollie.sqlite` session can.
final class SQLiteShellLock {
    private let process = Process()
    private let input = Pipe(), output = Pipe()

    init(path: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = [path]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data("BEGIN IMMEDIATE;\nSELECT 'locked';\n".utf8))
        var seen = ""
        while !seen.contains("locked") {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw TrackingError("sqlite3 ended before taking the lock: \(seen)") }
            seen += String(decoding: chunk, as: UTF8.self)
        }
    }

    func release() {
        guard process.isRunning else { return }
        input.fileHandleForWriting.write(Data("COMMIT;\n.quit\n".utf8))
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit { release() }
}

/// A console that calls `onLine` for each line as it is written, to act mid-train.
final class HookConsole: Console {
    var lines: [String] = []
    var onLine: (String) -> Void = { _ in }
    let isInteractive = false
    func write(_ line: String) {
        lines.append(line)
        onLine(line)
    }
    func progress(_ line: String) {}
    var text: String { lines.joined(separator: "\n") }
}

/// A database that stays locked past the wait, or a full disk: epochs that cannot be recorded
/// are said so, kept and written in order once possible; the run row never claims an epoch
/// whose metrics are not there.
final class RecordUnderStressTests: XCTestCase {
    var folder = ""
    var session: Session!

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3") else {
            throw XCTSkip("the sqlite3 shell is not installed (scripts/setup.sh installs it)")
        }
        folder = NSTemporaryDirectory() + "ollie-stress-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func makeSession(database: String) throws {
        session = Session(store: try RunStore(path: database, busyTimeout: 0.2), checkpointDirectory: folder + "/checkpoints")
        session.workbench = .data(quadrants())
        session.settings.batchSize = 32
        session.settings.target = 2
    }

    func rows(_ sql: String) throws -> [[String]] { try session.store!.query(sql).rows }

    /// The run row against its metrics, right now.
    func claimed() throws -> [String] {
        try rows("SELECT epochs, coalesce(best_epoch, 0), coalesce((SELECT max(epoch) FROM metrics WHERE run = 1), 0) FROM runs WHERE id = 1")[0]
    }

    func testEpochsRecordedWhileTheDatabaseIsLockedWaitAndAreWrittenInOrder() throws {
        let database = folder + "/runs.sqlite"
        try makeSession(database: database)
        let console = HookConsole()
        var lock: SQLiteShellLock?
        var duringLock: [[String]] = []
        console.onLine = { line in
            if line.hasPrefix("[1]") { lock = try? SQLiteShellLock(path: database) }
            if line.hasPrefix("[3]") {
                // Epochs 1 and 2 are waiting: the run row claims neither.
                duringLock.append((try? self.claimed()) ?? ["read failed"])
                lock?.release()
            }
        }
        XCTAssertTrue(session.execute("build conv; train 4", console: console), console.text)
        XCTAssertNotNil(lock, "the lock was taken")
        XCTAssertEqual(duringLock, [["0", "0", "0"]], console.text)
        XCTAssertTrue(console.text.contains("warning: epoch 1 of run 1 is not recorded yet: the run database \(database) stayed locked"), console.text)
        XCTAssertTrue(console.text.contains("warning: epoch 2 of run 1 is not recorded yet"), console.text)
        XCTAssertTrue(console.text.contains("(2 writes waiting)"), console.text)
        // Once the lock went, everything was written, in order, and the run ended as it should.
        XCTAssertEqual(try rows("SELECT epochs, status FROM runs"), [["4", "finished"]])
        XCTAssertEqual(try rows("SELECT DISTINCT epoch FROM metrics ORDER BY epoch"), [["1"], ["2"], ["3"], ["4"]])
        XCTAssertEqual(try claimed()[0], try claimed()[2])
        XCTAssertEqual(try session.store!.integrityCheck(), "ok")
    }

    func testALockHeldPastTheEndOfTrainKeepsTheRunOpenUntilTheNextCommand() throws {
        let database = folder + "/runs.sqlite"
        try makeSession(database: database)
        XCTAssertTrue(session.execute("build conv; train 1", console: HookConsole()))
        let lock = try SQLiteShellLock(path: database)
        let console = HookConsole()
        XCTAssertTrue(session.execute("train 2", console: console), console.text)
        XCTAssertTrue(console.text.contains("warning: epoch 2 of run 1 is not recorded yet: the run database"), console.text)
        XCTAssertTrue(console.text.contains("(3 writes waiting)"), console.text)
        // The record still says what the first train did: neither the epochs nor the end of
        // the second are claimed while they wait.
        XCTAssertEqual(try rows("SELECT epochs, status FROM runs"), [["1", "finished"]])
        XCTAssertEqual(try rows("SELECT max(epoch) FROM metrics"), [["1"]])
        lock.release()
        let next = HookConsole()
        XCTAssertTrue(session.execute("runs", console: next), next.text)
        XCTAssertTrue(next.text.contains("finished"), next.text)
        XCTAssertEqual(try rows("SELECT epochs, status FROM runs"), [["3", "finished"]])
        XCTAssertEqual(try rows("SELECT max(epoch), count(*) FROM metrics WHERE name = 'train_loss'"), [["3", "3"]])
    }

    func testWhatNeverReachesTheDatabaseIsSaidAtTheEndAndTheRunIsNotShownAsDone() throws {
        let database = folder + "/runs.sqlite"
        try makeSession(database: database)
        XCTAssertTrue(session.execute("build conv; train 1", console: HookConsole()))
        let lock = try SQLiteShellLock(path: database)
        XCTAssertTrue(session.execute("train 1", console: HookConsole()))
        let console = HookConsole()
        session.close(console)
        XCTAssertTrue(console.text.contains("error: run 1 could not be fully recorded (the start of train on run 1, epoch 2 of run 1, the end of train on run 1 never reached the database)"), console.text)
        XCTAssertTrue(console.text.contains("the next ollie to open the database marks it crashed"), console.text)
        lock.release()
        XCTAssertEqual(try rows("SELECT epochs, status FROM runs"), [["1", "finished"]])
        XCTAssertEqual(try session.store!.integrityCheck(), "ok")
    }

    /// A real full disk: a 2 MiB tmpfs holding the database, filled up by another file while
    /// the run trains, then freed.
    func testEpochsRecordedOnAFullDiskWaitForSpace() throws {
        let mount = folder + "/small-disk"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        guard spawnStatus("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mount]) == 0 else {
            throw XCTSkip("cannot mount a small tmpfs here (needs root); the locked-database tests cover the same path")
        }
        defer { _ = spawnStatus("/bin/umount", ["-l", mount]) }
        let database = mount + "/runs.sqlite"
        try makeSession(database: database)
        let console = HookConsole()
        let filler = mount + "/filler"
        console.onLine = { line in
            if line.hasPrefix("[1]") {
                // Fill every free byte.
                let handle = FileHandle(forWritingAtPath: filler) ?? {
                    _ = FileManager.default.createFile(atPath: filler, contents: nil)
                    return FileHandle(forWritingAtPath: filler)!
                }()
                let block = Data(count: 64 * 1024)
                while (try? handle.write(contentsOf: block)) != nil {}
                try? handle.close()
            }
            if line.hasPrefix("[3]") { try? FileManager.default.removeItem(atPath: filler) }
        }
        XCTAssertTrue(session.execute("build conv; train 4", console: console), console.text)
        XCTAssertTrue(console.text.contains("is not recorded yet: the disk holding the run database") || console.text.contains("is not recorded yet: cannot write the run database"), console.text)
        XCTAssertEqual(try rows("SELECT epochs, status FROM runs"), [["4", "finished"]])
        XCTAssertEqual(try rows("SELECT count(DISTINCT epoch) FROM metrics"), [["4"]])
        XCTAssertEqual(try session.store!.integrityCheck(), "ok")
    }

    func spawnStatus(_ path: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func testOneSessionHoldsARunAndADeadHolderGivesItUp() throws {
        let database = folder + "/runs.sqlite"
        try makeSession(database: database)
        try writeQuadrantIDX(to: folder + "/a", train: 128, test: 32, seed: 1)
        XCTAssertTrue(session.execute("load idx \(folder)/a; build conv; train 1", console: HookConsole()))
        let other = Session(store: try RunStore(path: database), checkpointDirectory: folder + "/checkpoints")
        let console = HookConsole()
        XCTAssertFalse(other.execute("resume 1", console: console))
        XCTAssertTrue(console.text.contains("error: run 1 is held by another ollie process (pid \(getpid())"), console.text)
        XCTAssertTrue(console.text.contains("or branch the run: fork 1"), console.text)
        XCTAssertNil(other.runID)
        // The holder moves on (a new build): the run is free to resume elsewhere.
        XCTAssertTrue(session.execute("build conv", console: HookConsole()))
        XCTAssertTrue(other.execute("resume 1", console: console), console.text)
        // The first session cannot write into it any more.
        XCTAssertThrowsError(try session.store!.recordParamChange(run: 1, name: "lr", value: "1e-4", fromEpoch: 2)) { error in
            XCTAssertTrue("\(error)".contains("run 1 is no longer held by this process"), "\(error)")
        }
        // A holder whose process is gone: here, a session row of a pid that does not exist.
        let third = Session(store: try RunStore(path: database), checkpointDirectory: folder + "/checkpoints")
        XCTAssertFalse(third.execute("resume 1", console: console))
        XCTAssertEqual(spawnStatus("/usr/bin/sqlite3", [database, "UPDATE sessions SET pid = 2000000000 WHERE id = (SELECT holder FROM runs WHERE id = 1)"]), 0)
        XCTAssertTrue(third.execute("resume 1", console: console), console.text)
    }
}
