import XCTest
import Foundation
import GRDB
@testable import Tracking

/// What --db may name: ollie opens its own SQLite files and new ones, and leaves alone what is
/// not a database file or is another program's database.
final class DatabaseFileTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "ollie-dbfile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func refusal(_ path: String) -> String {
        do { _ = try RunStore(path: path); return "opened" } catch { return "\(error)" }
    }

    func testAFolderADeviceAFIFOAndNoNameAreRefusedInOneLine() throws {
        XCTAssertTrue(refusal(folder).contains("is a folder, not a database file; give a file name with --db PATH"), refusal(folder))
        XCTAssertTrue(refusal("/dev/null").contains("/dev/null is a device, not a database file"), refusal("/dev/null"))
        let fifo = folder + "/pipe.sqlite"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        XCTAssertTrue(refusal(fifo).contains("is a named pipe (FIFO), not a database file"), refusal(fifo))
        XCTAssertTrue(refusal("").contains("the run database needs a file name"), refusal(""))
        XCTAssertTrue(refusal(folder + "/no/such/runs.sqlite").contains("the folder \(folder)/no/such for the run database does not exist; create it"), refusal(folder + "/no/such/runs.sqlite"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/no"), "no folder made that nobody asked for")
        let long = folder + "/" + String(repeating: "a", count: 300) + ".sqlite"
        XCTAssertTrue(refusal(long).contains("name is too long for the file system"), refusal(long))
        var info = stat()
        XCTAssertEqual(stat("/dev/null", &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFCHR, "/dev/null is still a device")
    }

    func testAnotherProgramsDatabaseIsLeftUntouched() throws {
        let path = folder + "/notes.sqlite"
        let theirs = try DatabaseQueue(path: path)
        try theirs.write { db in
            try db.execute(sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('mine')")
        }
        try theirs.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let message = refusal(path)
        XCTAssertTrue(message.contains("is a SQLite database of another program (tables: notes)"), message)
        XCTAssertTrue(message.contains("use --db NEWFILE"), message)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before, "not a byte changed (no tables added, no WAL)")
        // An empty file and ollie's own file open as before.
        XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/empty.sqlite", contents: nil))
        XCTAssertEqual(refusal(folder + "/empty.sqlite"), "opened")
        XCTAssertEqual(refusal(folder + "/empty.sqlite"), "opened")
    }

    func testAFileDeletedOrReplacedUnderItsNameIsNotWrittenInto() throws {
        for replace in [false, true] {
            let path = folder + "/gone-\(replace).sqlite"
            let store = try RunStore(path: path)
            let run = try store.startRun(dataset: "d", model: "m", parameterCount: 1, seed: 1, params: defaultParams)
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            if replace { _ = try RunStore(path: path) }   // a new database now has the name
            XCTAssertThrowsError(try store.recordEpoch(run: run, epoch(1, accuracy: 0.5, loss: 1))) { error in
                XCTAssertTrue("\(error)".contains("was deleted or replaced since this ollie opened it, so this was not recorded"), "\(error)")
                XCTAssertFalse((error as? TrackingError)?.isTransient ?? true, "waiting does not bring the file back")
            }
        }
    }
}
