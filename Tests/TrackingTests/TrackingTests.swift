import XCTest
import Foundation
import GRDB
@testable import Tracking

/// A fresh folder for one test's database files, removed when the test ends.
func temporaryFolder() -> String {
    let folder = NSTemporaryDirectory() + "ollie-tracking-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    TemporaryFolders.shared.add(folder)
    return folder
}

final class TemporaryFolders: @unchecked Sendable {
    static let shared = TemporaryFolders()
    private let lock = NSLock()
    private var folders: [String] = []
    func add(_ folder: String) { lock.withLock { folders.append(folder) } }
    func removeAll() {
        for folder in lock.withLock({ defer { folders = [] }; return folders }) {
            try? FileManager.default.removeItem(atPath: folder)
        }
    }
}

/// Removes the test's temporary folders after it.
class TrackingTestCase: XCTestCase {
    override func tearDown() {
        TemporaryFolders.shared.removeAll()
        super.tearDown()
    }
}

func temporaryDatabase() -> String { temporaryFolder() + "/runs.sqlite" }

let defaultParams: [(name: String, value: String)] = [("lr", "3e-3"), ("batch", "128"), ("optimizer", "adam")]

func epoch(_ n: Int, accuracy: Double, loss: Double, best: Double? = nil, events: [(kind: String, detail: String)] = [],
           changes: [(name: String, value: String)] = []) -> EpochRecord {
    EpochRecord(epoch: n, metrics: ["test_accuracy": accuracy, "train_loss": loss, "learning_rate": 3e-3,
                                    "epoch_seconds": 2, "images_per_second": 30000],
                events: events, paramChanges: changes, bestAccuracy: best ?? accuracy, bestEpoch: n, trainLoss: loss, seconds: 2)
}

/// A raw connection for arranging states the store itself never writes.
func rawQueue(_ path: String) throws -> DatabaseQueue {
    var config = Configuration()
    config.busyMode = .timeout(5)
    return try DatabaseQueue(path: path, configuration: config)
}

final class RunStoreTests: TrackingTestCase {
    func testSchemaHasTheDocumentedTablesAndColumns() throws {
        let store = try RunStore(path: temporaryDatabase())
        let expected: [String: [String]] = [
            "runs": ["id", "session", "created", "finished", "status", "dataset", "model", "parameter_count", "seed",
                     "best_accuracy", "best_epoch", "final_loss", "epochs", "train_seconds", "checkpoint", "note",
                     "parent_run", "parent_epoch", "holder", "name", "archived"],
            "run_tags": ["run", "tag"],
            "params": ["run", "name", "value", "from_epoch"],
            "metrics": ["run", "epoch", "name", "value", "time"],
            "events": ["run", "epoch", "kind", "detail", "time"],
            "commands": ["id", "session", "time", "command", "seconds", "failed", "error", "run"],
            "sessions": ["id", "started", "pid", "host", "process_start"],
            "lr_finds": ["id", "session", "created", "dataset", "model", "optimizer", "batch", "start_lr", "end_lr", "steps",
                         "suggested_lr", "run", "outcome", "planned_steps"],
            "lr_find_points": ["lr_find", "step", "lr", "loss"],
            "database_identity": ["uuid"],
            "mlflow_exports": ["run", "server", "experiment", "mlflow_run", "sent_state", "sent", "error", "error_time"],
        ]
        for (table, columns) in expected {
            let found = try store.query("SELECT name FROM pragma_table_info('\(table)')").rows.map { $0[0] }
            XCTAssertEqual(found, columns, table)
        }
        XCTAssertEqual(try store.query("SELECT journal_mode FROM pragma_journal_mode").rows, [["wal"]])
        XCTAssertEqual(try store.query("PRAGMA foreign_keys").rows, [["1"]])
        XCTAssertEqual(try store.pool.write { try Int.fetchOne($0, sql: "PRAGMA busy_timeout") }, 5000)
        XCTAssertEqual(try store.integrityCheck(), "ok")
    }

    func testMigrationsAreIdempotentOnReopen() throws {
        let path = temporaryDatabase()
        for _ in 0..<3 { _ = try RunStore(path: path) }
        let store = try RunStore(path: path)
        XCTAssertEqual(try store.query("SELECT identifier FROM grdb_migrations ORDER BY identifier").rows, [["v1"], ["v2"], ["v3"], ["v4"], ["v5"], ["v6"], ["v7"], ["v8"], ["v9"]])
        XCTAssertEqual(try store.query("SELECT count(*) FROM sessions").rows, [["4"]])
    }

    func testAVersionOneDatabaseIsUpgradedKeepingItsRuns() throws {
        let path = temporaryDatabase()
        let queue = try rawQueue(path)
        try Schema.migrator.migrate(queue, upTo: "v1")
        try queue.write { db in
            try db.execute(sql: "INSERT INTO sessions (started, pid, host) VALUES (0, 1, 'elsewhere')")
            try db.execute(sql: """
                INSERT INTO runs (session, created, status, dataset, model, parameter_count, seed)
                VALUES (1, 0, 'finished', 'mnist', 'conv', 10, '1')
                """)
        }
        let store = try RunStore(path: path)
        XCTAssertEqual(try store.runs().map(\.dataset), ["mnist"])
        XCTAssertEqual(try store.query("SELECT process_start IS NULL FROM sessions WHERE id = 1").rows, [["1"]])
        XCTAssertEqual(try store.query("SELECT process_start IS NOT NULL FROM sessions WHERE id = ?".replacingOccurrences(of: "?", with: "\(store.sessionID)")).rows, [["1"]])
    }

    func testReopeningKeepsRunsAndAddsASession() throws {
        let path = temporaryDatabase()
        let first = try RunStore(path: path)
        let run = try first.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        try first.finishRun(run: run, status: .finished, checkpoint: nil)
        let second = try RunStore(path: path)
        XCTAssertNotEqual(first.sessionID, second.sessionID)
        XCTAssertEqual(try second.runs().map(\.id), [run])
        XCTAssertEqual(try second.sessionRunIDs(), [])
        XCTAssertEqual(try first.sessionRunIDs(), [run])
    }

    func testAnEpochRecordUpdatesMetricsEventsParamsAndTheSummary() throws {
        let store = try RunStore(path: temporaryDatabase())
        let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        try store.recordEpoch(run: run, epoch(1, accuracy: 0.97, loss: 0.3, events: [("new_best", "0.97")]))
        try store.recordEpoch(run: run, epoch(2, accuracy: 0.96, loss: 0.2, best: 0.97, events: [("lr_dropped", "3e-3 → 3e-4")],
                                              changes: [("lr", "3e-4")]))
        try store.recordParamChange(run: run, name: "batch", value: "64", fromEpoch: 3)
        try store.finishRun(run: run, status: .finished, checkpoint: "checkpoints/x.safetensors")
        let summary = try XCTUnwrap(store.runs().first)
        XCTAssertEqual(summary.epochs, 2)
        XCTAssertEqual(summary.bestAccuracy, 0.97)
        XCTAssertEqual(summary.finalLoss, 0.2)
        XCTAssertEqual(summary.trainSeconds, 4)
        XCTAssertEqual(summary.status, "finished")
        XCTAssertNotNil(summary.finished)
        XCTAssertEqual(summary.checkpoint, "checkpoints/x.safetensors")
        let detail = try store.comparison(of: [run]).runs[0]
        XCTAssertEqual(detail.params.first { $0.name == "lr" }?.text, "3e-3 → 3e-4@3")
        XCTAssertEqual(detail.params.first { $0.name == "batch" }?.text, "128 → 64@3")
        XCTAssertEqual(detail.metricSeries("test_accuracy").map(\.value), [0.97, 0.96])
        XCTAssertEqual(detail.events.map(\.kind), ["new_best", "lr_dropped"])
        // The params table itself: one row per setting from epoch 1, one per change.
        XCTAssertEqual(try store.query("SELECT name, value, from_epoch FROM params WHERE run = \(run) ORDER BY rowid").rows,
                       [["lr", "3e-3", "1"], ["batch", "128", "1"], ["optimizer", "adam", "1"], ["lr", "3e-4", "3"], ["batch", "64", "3"]])
    }

    func testStartingFromALaterEpochRecordsThatEpoch() throws {
        let store = try RunStore(path: temporaryDatabase())
        let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: [("lr", "1e-3")], fromEpoch: 6)
        XCTAssertEqual(try store.query("SELECT from_epoch FROM params WHERE run = \(run)").rows, [["6"]])
    }

    func testAnEpochIsOneTransactionAllOrNothing() throws {
        let path = temporaryDatabase()
        let store = try RunStore(path: path)
        let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        try store.recordEpoch(run: run, epoch(1, accuracy: 0.9, loss: 0.5))
        // Make the last statement of the next epoch fail: nothing of that epoch may remain.
        try rawQueue(path).write { db in
            try db.execute(sql: "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused'); END")
        }
        XCTAssertThrowsError(try store.recordEpoch(run: run, epoch(2, accuracy: 0.95, loss: 0.1, events: [("new_best", "0.95")],
                                                                   changes: [("lr", "3e-4")]))) { error in
            XCTAssertTrue(error is TrackingError, "\(error)")
        }
        XCTAssertEqual(try store.query("SELECT count(*) FROM metrics WHERE epoch = 2").rows, [["0"]])
        XCTAssertEqual(try store.query("SELECT count(*) FROM params WHERE from_epoch = 3").rows, [["0"]])
        let summary = try XCTUnwrap(store.runs().first)
        XCTAssertEqual(summary.epochs, 1)
        XCTAssertEqual(summary.finalLoss, 0.5)
    }

    func testAnEventOnlyRecordAndNaNMetricsLeaveTheSummaryAlone() throws {
        let store = try RunStore(path: temporaryDatabase())
        let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        try store.recordEpoch(run: run, epoch(1, accuracy: 0.9, loss: 0.5))
        try store.recordEpoch(run: run, EpochRecord(epoch: 2, metrics: [:], events: [("interrupted", "batch 3/469")],
                                                    bestAccuracy: nil, bestEpoch: nil, trainLoss: nil, seconds: nil))
        try store.recordEpoch(run: run, EpochRecord(epoch: 3, metrics: ["train_loss": .nan, "test_accuracy": 0.1],
                                                    events: [("nan_stop", "NaN parameters")],
                                                    bestAccuracy: 0.9, bestEpoch: 1, trainLoss: .nan, seconds: 1))
        let summary = try XCTUnwrap(store.runs().first)
        XCTAssertEqual(summary.finalLoss, 0.5)
        XCTAssertEqual(summary.epochs, 3)
        XCTAssertEqual(try store.query("SELECT count(*) FROM metrics WHERE name = 'train_loss'").rows, [["1"]])
        XCTAssertEqual(try store.query("SELECT kind FROM events ORDER BY rowid").rows, [["interrupted"], ["nan_stop"]])
    }

    func testWritingToAnUnknownRunIsAClearError() throws {
        let store = try RunStore(path: temporaryDatabase())
        XCTAssertThrowsError(try store.recordEpoch(run: 42, epoch(1, accuracy: 0.9, loss: 0.1))) { error in
            XCTAssertEqual((error as? TrackingError)?.message.hasPrefix("no run 42"), true, "\(error)")
        }
        XCTAssertThrowsError(try store.comparison(of: [42])) { XCTAssertTrue("\($0)".contains("no run 42"), "\($0)") }
    }

    func testCommandsAreRecordedWithTheirErrors() throws {
        let store = try RunStore(path: temporaryDatabase())
        try store.recordCommand("load mnist", started: Date(timeIntervalSince1970: 100), seconds: 0.5, error: nil)
        try store.recordCommand("set lr fast", started: Date(timeIntervalSince1970: 101), seconds: 0, error: "lr must be a number")
        XCTAssertEqual(try store.query("SELECT session, time, command, failed, error FROM commands ORDER BY id").rows,
                       [["\(store.sessionID)", "100", "load mnist", "0", "NULL"],
                        ["\(store.sessionID)", "101", "set lr fast", "1", "lr must be a number"]])
    }

    func testRunsLeftRunningByADeadProcessAreMarkedCrashed() throws {
        let path = temporaryDatabase()
        let store = try RunStore(path: path)
        let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        try store.recordEpoch(run: run, epoch(1, accuracy: 0.9, loss: 0.1))
        let finished = run + 1
        XCTAssertEqual(try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: []), finished)
        try store.finishRun(run: finished, status: .finished, checkpoint: nil)
        // Pretend the runs' owner was a process that is gone.
        try rawQueue(path).write { try $0.execute(sql: "UPDATE sessions SET pid = 999999999 WHERE id = ?", arguments: [store.sessionID]) }
        let reopened = try RunStore(path: path)
        let runs = try reopened.runs()
        XCTAssertEqual(runs.first { $0.id == run }?.status, "crashed")
        XCTAssertEqual(runs.first { $0.id == finished }?.status, "finished")
        // finished = when its last epoch was written, not when the crash was noticed.
        XCTAssertEqual(try reopened.query("SELECT runs.finished = (SELECT max(time) FROM metrics) FROM runs WHERE id = \(run)").rows, [["1"]])
    }

    func testAPidReusedByAnotherProcessIsNotALiveOwner() throws {
        let path = temporaryDatabase()
        let store = try RunStore(path: path)
        let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        // Our pid is alive, but a process that started at another time owned the run.
        try rawQueue(path).write { try $0.execute(sql: "UPDATE sessions SET process_start = process_start + 1 WHERE id = ?", arguments: [store.sessionID]) }
        XCTAssertEqual(try RunStore(path: path).runs().first { $0.id == run }?.status, "crashed")
    }

    func testALiveOwnersRunAndAnotherHostsRunStayRunning() throws {
        let path = temporaryDatabase()
        let store = try RunStore(path: path)
        let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        let other = try RunStore(path: path)   // same process: alive
        XCTAssertEqual(try other.runs().first { $0.id == run }?.status, "running")
        try rawQueue(path).write { try $0.execute(sql: "UPDATE sessions SET pid = 999999999, host = 'another-host' WHERE id = ?", arguments: [store.sessionID]) }
        XCTAssertEqual(try RunStore(path: path).runs().first { $0.id == run }?.status, "running")
    }

    func testThreeWritersAtOnceLoseNothing() throws {
        let path = temporaryDatabase()
        _ = try RunStore(path: path)
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            do {
                let store = try RunStore(path: path)
                let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
                for e in 1...60 {
                    try store.recordEpoch(run: run, epoch(e, accuracy: 0.9, loss: 0.1, events: [("new_best", "0.9")]))
                    try store.recordCommand("train 1", started: Date(), seconds: 0.1, error: nil)
                }
                try store.finishRun(run: run, status: .finished, checkpoint: nil)
            } catch { errors.add(error) }
        }
        XCTAssertEqual(errors.all.map { "\($0)" }, [])
        let store = try RunStore(path: path)
        XCTAssertEqual(try store.query("SELECT count(*) FROM metrics").rows, [["900"]])
        XCTAssertEqual(try store.query("SELECT count(*) FROM events").rows, [["180"]])
        XCTAssertEqual(try store.query("SELECT count(*) FROM commands").rows, [["180"]])
        XCTAssertEqual(try store.runs().map(\.epochs), [60, 60, 60])
        XCTAssertEqual(try store.runs().map(\.status), ["finished", "finished", "finished"])
        XCTAssertEqual(try RunStore.integrityCheck(path: path), "ok")
    }

    func testALockedDatabaseIsAClearErrorAndTheStoreWorksAfterwards() throws {
        let path = temporaryDatabase()
        let store = try RunStore(path: path, busyTimeout: 0.2)
        let queue = try rawQueue(path)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            XCTAssertThrowsError(try store.recordCommand("train 1", started: Date(), seconds: 1, error: nil)) { error in
                XCTAssertTrue(error is TrackingError)
                XCTAssertTrue("\(error)".contains("locked"), "\(error)")
                XCTAssertFalse("\(error)".contains("\n"))
            }
            try db.execute(sql: "ROLLBACK")
        }
        try store.recordCommand("train 1", started: Date(), seconds: 1, error: nil)
    }

    func testAnUnwritableDatabaseIsAClearError() {
        XCTAssertThrowsError(try RunStore(path: "/nonexistent-folder/ollie.sqlite")) { error in
            XCTAssertTrue(error is TrackingError)
            XCTAssertTrue("\(error)".contains("--db PATH"), "\(error)")
        }
        let notADatabase = temporaryDatabase()
        _ = FileManager.default.createFile(atPath: notADatabase, contents: Data(repeating: 0x41, count: 4096))
        XCTAssertThrowsError(try RunStore(path: notADatabase)) { error in
            XCTAssertTrue("\(error)".contains("not a valid ollie database"), "\(error)")
        }
        let readOnly = RunStore.explain(DatabaseError(resultCode: .SQLITE_READONLY), path: "x.sqlite")
        XCTAssertTrue(readOnly.message.contains("read-only") && readOnly.message.contains("--db PATH"), readOnly.message)
    }

    func testAReadOnlyStoreReadsRunsAndRefusesWritesClearly() throws {
        let path = temporaryDatabase()
        let writer = try RunStore(path: path)
        let run = try writer.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        try writer.recordEpoch(run: run, epoch(1, accuracy: 0.9, loss: 0.1))
        let reader = try RunStore(path: path, readOnly: true)
        XCTAssertEqual(reader.sessionID, 0)
        XCTAssertEqual(try reader.runs().map(\.id), [run])
        XCTAssertEqual(try reader.comparison(of: [run]).runs[0].metricSeries("train_loss").map(\.value), [0.1])
        XCTAssertThrowsError(try reader.recordEpoch(run: run, epoch(2, accuracy: 0.9, loss: 0.1))) { error in
            XCTAssertTrue(error is TrackingError)
            XCTAssertTrue("\(error)".contains("read-only"), "\(error)")
        }
        XCTAssertThrowsError(try reader.startRun(dataset: "mnist", model: "conv", parameterCount: 1, seed: 1, params: []))
        XCTAssertEqual(try writer.query("SELECT count(*) FROM sessions").rows, [["1"]])
        XCTAssertThrowsError(try RunStore(path: temporaryFolder() + "/missing.sqlite", readOnly: true)) { error in
            XCTAssertTrue("\(error)".contains("no run database at"), "\(error)")
        }
    }

    func testSQLRunsSelectsAndRefusesWrites() throws {
        let store = try RunStore(path: temporaryDatabase())
        _ = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        let result = try store.query("select id, dataset from runs")
        XCTAssertEqual(result.columns, ["id", "dataset"])
        XCTAssertEqual(result.rows, [["1", "mnist"]])
        XCTAssertEqual(try store.query("  -- a comment\nWITH r AS (SELECT id FROM runs) SELECT count(*) FROM r").rows, [["1"]])
        XCTAssertEqual(try store.query("PRAGMA table_info(params)").rows.count, 4)
        XCTAssertEqual(try store.query("pragma main.index_list('runs')").rows.count, 2)
        XCTAssertEqual(try store.query("PRAGMA foreign_keys").rows, [["1"]])
        for statement in ["DELETE FROM runs", "DROP TABLE runs", "UPDATE runs SET note = 'x'", "INSERT INTO runs (id) VALUES (5)",
                          "ATTACH DATABASE '/tmp/x' AS x", "PRAGMA user_version = 7", "PRAGMA journal_mode=delete",
                          "PRAGMA foreign_keys(0)", "PRAGMA main.user_version(3)", "pragma busy_timeout (1)",
                          "WITH r AS (SELECT 1) DELETE FROM runs", "BEGIN", "VACUUM", "/* hi */ DELETE FROM runs",
                          "SELECT 1; DELETE FROM runs", "REPLACE INTO params VALUES (1, 'a', 'b', 1)", "CREATE TABLE t (x)"] {
            XCTAssertThrowsError(try store.query(statement), statement) { error in
                XCTAssertTrue(error is TrackingError, statement)
                XCTAssertTrue("\(error)".hasPrefix("sql:"), "\(error)")
            }
        }
        XCTAssertEqual(try store.runs().count, 1)
        XCTAssertEqual(try store.query("PRAGMA user_version").rows, [["0"]])
        // The last guard: the connection `query` uses cannot write at all.
        XCTAssertThrowsError(try store.pool.read { try $0.execute(sql: "DELETE FROM runs") })
        XCTAssertThrowsError(try store.query("SELEC 1")) { XCTAssertTrue("\($0)".hasPrefix("sql:"), "\($0)") }
        XCTAssertThrowsError(try store.query("   ")) { XCTAssertTrue("\($0)".contains("nothing to run"), "\($0)") }
    }

    static let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"

    func testARunawayQueryIsStoppedAtTheTimeLimit() throws {
        let store = try RunStore(path: temporaryDatabase())
        let started = Date()
        XCTAssertThrowsError(try store.query(RunStoreTests.endless, limits: QueryLimits(seconds: 0.3))) { error in
            XCTAssertTrue("\(error)".contains("stopped after 0.3 s"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        // The connection is usable afterwards, with no handler left behind.
        XCTAssertEqual(try store.query("SELECT 1").rows, [["1"]])
    }

    func testAQueryStopsWhenInterrupted() throws {
        let store = try RunStore(path: temporaryDatabase())
        let asked = Date().addingTimeInterval(0.3)
        XCTAssertThrowsError(try store.query(RunStoreTests.endless, isInterrupted: { Date() > asked })) { error in
            XCTAssertTrue("\(error)".contains("interrupted (Ctrl-C)"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(asked), 5)
    }

    func testAHugeResultKeepsTheFirstRowsAndCountsTheRest() throws {
        let store = try RunStore(path: temporaryDatabase())
        let result = try store.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 250000) SELECT x FROM c",
                                     limits: QueryLimits(seconds: 30, rows: 100))
        XCTAssertEqual(result.rows.count, 100)
        XCTAssertEqual(result.rows.last, ["100"])
        XCTAssertEqual(result.rowsNotShown, 249_900)
        XCTAssertFalse(result.countStopped)
        // Stopped while only counting: the kept rows are still the answer, the count a lower bound.
        let endless = try store.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
                                      limits: QueryLimits(seconds: 0.3, rows: 10))
        XCTAssertEqual(endless.rows.count, 10)
        XCTAssertTrue(endless.countStopped)
        XCTAssertGreaterThan(endless.rowsNotShown, 0)
    }

    func testIntegrityCheckFindsRowsWithoutARun() throws {
        let path = temporaryDatabase()
        let store = try RunStore(path: path)
        XCTAssertEqual(try RunStore.integrityCheck(path: path), "ok")
        let missing = temporaryFolder() + "/missing.sqlite"
        XCTAssertThrowsError(try RunStore.integrityCheck(path: missing))
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing))
        try rawQueue(path).writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            try db.execute(sql: "INSERT INTO metrics (run, epoch, name, value, time) VALUES (77, 1, 'train_loss', 1, 0)")
        }
        let report = try store.integrityCheck()
        XCTAssertTrue(report.hasPrefix("foreign key violations: metrics"), report)
    }

    func testDefaultPathIsTheEnvironmentOrTheCurrentFolder() {
        XCTAssertEqual(RunStore.defaultPath(environment: ["OLLIE_DB": "/data/runs.sqlite"]), "/data/runs.sqlite")
        XCTAssertEqual(RunStore.defaultPath(environment: ["OLLIE_DB": ""]), "ollie.sqlite")
        XCTAssertEqual(RunStore.defaultPath(environment: [:]), "ollie.sqlite")
    }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    func add(_ e: Error) { lock.withLock { errors.append(e) } }
    var all: [Error] { lock.withLock { errors } }
}

final class RunFilterTests: TrackingTestCase {
    func makeStore() throws -> RunStore {
        let store = try RunStore(path: temporaryDatabase())
        for (i, lr) in ["3e-3", "1e-3", "3e-4", "1e-4"].enumerated() {
            let run = try store.startRun(dataset: i == 3 ? "fashion-mnist" : "mnist", model: i == 2 ? "mlp — Chain(Dense(…))" : "conv — Chain(…)",
                                         parameterCount: 10, seed: 1, params: [("lr", lr), ("batch", "128")])
            try store.recordEpoch(run: run, epoch(1, accuracy: 0.9 + Double(i) / 100, loss: 0.1))
        }
        return store
    }

    func testParsesLastBestAndWhere() throws {
        XCTAssertEqual(try RunFilter.parse([]).order, .last(20))
        XCTAssertEqual(try RunFilter.parse(["last", "3"]).order, .last(3))
        XCTAssertEqual(try RunFilter.parse(["best", "2"]).order, .best(2))
        let f = try RunFilter.parse(["where", "lr<1e-3", "and", "dataset", "=", "mnist", "last", "5"])
        XCTAssertEqual(f.conditions, [.init(key: "lr", op: "<", value: "1e-3"), .init(key: "dataset", op: "=", value: "mnist")])
        XCTAssertEqual(f.order, .last(5))
        XCTAssertEqual(try RunFilter.parse(["last", "2", "where", "epochs", "==", "3"]).conditions, [.init(key: "epochs", op: "=", value: "3")])
        XCTAssertEqual(try RunFilter.parse(["WHERE", "LR", "!=", "3e-3"]).conditions, [.init(key: "lr", op: "!=", value: "3e-3")])
    }

    func testBadSyntaxSaysWhatWasExpectedAndShowsTheUsage() {
        for bad in [["last"], ["last", "x"], ["best", "0"], ["where", "lr"], ["where", "lr", "~", "3"], ["where", "lr", "<"],
                    ["sideways"], ["where", "<", "<", "3"]] {
            XCTAssertThrowsError(try RunFilter.parse(bad), "\(bad)") { error in
                XCTAssertTrue(error is TrackingError)
                XCTAssertTrue("\(error)".contains("usage: runs"), "\(error)")
            }
        }
        XCTAssertThrowsError(try RunFilter.parse(["last", "x"])) { XCTAssertTrue("\($0)".contains("got 'x'"), "\($0)") }
    }

    func testANumericComparisonWithAWordIsRefused() {
        for bad in [["where", "lr", "<", "abc"], ["where", "accuracy", ">=", "high"], ["where", "epochs", "=", "three"],
                    ["where", "lr<nan"]] {
            XCTAssertThrowsError(try RunFilter.parse(bad), "\(bad)") { error in
                XCTAssertTrue("\(error)".contains("is not a number"), "\(error)")
            }
        }
        // Text settings still compare as text with = and !=.
        XCTAssertNoThrow(try RunFilter.parse(["where", "optimizer", "=", "adam", "and", "dataset", "!=", "mnist"]))
    }

    func testFiltersSelectTheRightRuns() throws {
        let store = try makeStore()
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "lr", "<", "1e-3"])).map(\.id), [3, 4])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "lr", ">=", "1e-3"])).map(\.id), [1, 2])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "lr", "=", "0.001"])).map(\.id), [2])
        XCTAssertEqual(try store.runs(RunFilter.parse(["last", "2"])).map(\.id), [3, 4])
        XCTAssertEqual(try store.runs(RunFilter.parse(["best", "2"])).map(\.id), [4, 3])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "dataset", "=", "mnist", "best", "1"])).map(\.id), [3])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "dataset", "=", "MNIST", "last", "1"])).map(\.id), [3])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "accuracy", ">", "0.915"])).map(\.id), [3, 4])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "model", "=", "mlp"])).map(\.id), [3])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "status", "=", "running", "and", "batch", "=", "128"])).map(\.id), [1, 2, 3, 4])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "note", "=", "x"])).map(\.id), [])
    }

    func testIdsRangesAllAndArchivedSelectRuns() throws {
        let store = try makeStore()
        func ids(_ words: String) throws -> [Int64] {
            try store.runs(RunFilter.parse(words.split(separator: " ").map(String.init))).map(\.id)
        }
        XCTAssertEqual(try ids("1-3"), [1, 2, 3])
        XCTAssertEqual(try ids("4 2"), [4, 2], "named runs come in the order named")
        XCTAssertEqual(try ids("2-9"), [2, 3, 4], "a range skips ids that are not there")
        XCTAssertEqual(try ids("1-4 where lr < 1e-3"), [3, 4])
        XCTAssertEqual(try ids("1-4 last 1"), [4])
        XCTAssertThrowsError(try ids("2 9")) { XCTAssertTrue("\($0)".contains("no run 9"), "\($0)") }
        XCTAssertThrowsError(try ids("3-1")) { XCTAssertTrue("\($0)".contains("lower id first"), "\($0)") }
        XCTAssertThrowsError(try ids("1-99999"), "a range in order but too wide is not told to put the lower id first") {
            XCTAssertTrue("\($0)".contains("'1-99999' spans more than 10000 runs"), "\($0)")
        }
        try store.setArchived(run: 2, true)
        XCTAssertEqual(try ids("all"), [1, 3, 4])
        XCTAssertEqual(try ids("last 2"), [3, 4])
        XCTAssertEqual(try store.runs().map(\.id), [1, 3, 4])
        XCTAssertEqual(try ids("archived"), [2])
        XCTAssertEqual(try ids("2"), [2], "a run named by id is shown, archived or not")
        XCTAssertEqual(try ids("1-4"), [1, 2, 3, 4])
        try store.setArchived(run: 2, false)
        XCTAssertEqual(try ids("all"), [1, 2, 3, 4])
    }

    func testNamesAndTagsAreFoundByWhere() throws {
        let store = try makeStore()
        try store.setName(run: 3, "cnn-lstm")
        XCTAssertEqual(try store.tag(run: 1, ["baseline", "small"]), ["baseline", "small"])
        XCTAssertEqual(try store.tag(run: 3, ["baseline", "baseline"]), ["baseline"])
        func ids(_ words: [String]) throws -> [Int64] { try store.runs(RunFilter.parse(words)).map(\.id) }
        XCTAssertEqual(try ids(["where", "tag", "=", "baseline"]), [1, 3])
        XCTAssertEqual(try ids(["where", "tag", "!=", "baseline"]), [2, 4])
        XCTAssertEqual(try ids(["where", "tag=small"]), [1])
        XCTAssertEqual(try ids(["where", "name", "=", "CNN-LSTM"]), [3])
        XCTAssertEqual(try store.untag(run: 1, ["baseline"]), ["small"])
        XCTAssertEqual(try ids(["where", "tag", "=", "baseline"]), [3])
        XCTAssertEqual(try store.run(3).name, "cnn-lstm")
        try store.setName(run: 3, nil)
        XCTAssertEqual(try ids(["where", "name", "=", "cnn-lstm"]), [])
        XCTAssertThrowsError(try store.tag(run: 9, ["x"])) { XCTAssertTrue("\($0)".contains("no run 9"), "\($0)") }
    }

    func testDeleteRemovesEveryRowOfTheRunAndNothingElse() throws {
        let store = try makeStore()
        try store.tag(run: 2, ["gone"])
        try store.recordEvent(run: 2, epoch: 1, kind: "new_best", detail: "x")
        try store.release(run: 2)
        try store.deleteRun(2)
        XCTAssertEqual(try store.runs().map(\.id), [1, 3, 4])
        for table in ["params", "metrics", "events", "run_tags"] {
            XCTAssertEqual(try store.query("SELECT count(*) FROM \(table) WHERE run = 2").rows, [["0"]], table)
        }
        XCTAssertEqual(try store.query("SELECT count(*) FROM params").rows, [["6"]])
        XCTAssertEqual(try store.integrityCheck(), "ok")
        XCTAssertThrowsError(try store.deleteRun(2)) { XCTAssertTrue("\($0)".contains("no run 2"), "\($0)") }
    }

    func testARunHeldByALiveProcessIsNotDeleted() throws {
        let path = temporaryDatabase()
        let trainer = try RunStore(path: path)
        let run = try trainer.startRun(dataset: "mnist", model: "conv", parameterCount: 1, seed: 1, params: [])
        // Another session of a live process (this one) holds it.
        let other = try RunStore(path: path)
        XCTAssertThrowsError(try other.deleteRun(run)) { XCTAssertTrue("\($0)".contains("held by another ollie process"), "\($0)") }
        XCTAssertEqual(try other.runs().map(\.id), [run])
        try trainer.release(run: run)
        try other.deleteRun(run)
        XCTAssertEqual(try other.runs().map(\.id), [])
    }

    func testASettingIsComparedWithTheValueTheRunStartedWith() throws {
        let store = try makeStore()
        try store.recordEpoch(run: 1, epoch(2, accuracy: 0.9, loss: 0.1, changes: [("lr", "3e-4")]))
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "lr", "=", "3e-3"])).map(\.id), [1])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "lr", "=", "3e-4"])).map(\.id), [3])
    }

    func testAnUnknownKeyNamesTheKeysThereAre() throws {
        let store = try makeStore()
        XCTAssertThrowsError(try store.runs(RunFilter.parse(["where", "lrr", "<", "1"]))) { error in
            XCTAssertTrue(error is TrackingError)
            let message = "\(error)"
            XCTAssertTrue(message.contains("'lrr'") && message.contains("accuracy") && message.contains("batch, lr"), message)
        }
    }

    func testAnEmptyDatabaseListsNothingRatherThanRefusingASetting() throws {
        let store = try RunStore(path: temporaryDatabase())
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "lr", "<", "1e-3"])).count, 0)
    }

    func testManyRunsAreCutToTheNewestTwenty() throws {
        let store = try RunStore(path: temporaryDatabase())
        for _ in 0..<25 { _ = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 1, seed: 1, params: []) }
        XCTAssertEqual(try store.runs().map(\.id), Array(6...25))
    }
}

final class RenderingTests: TrackingTestCase {
    func comparison(_ count: Int, history: Bool = false) throws -> Comparison {
        let store = try RunStore(path: temporaryDatabase())
        var ids: [Int64] = []
        for i in 0..<count {
            let run = try store.startRun(dataset: "mnist", model: "conv — Chain(…)", parameterCount: 16938, seed: 1,
                                         params: [("lr", ["3e-3", "1e-3", "3e-4", "1e-4", "3e-5", "1e-5"][i % 6]), ("batch", "128"),
                                                  ("model", "conv")])
            for e in 1...3 {
                try store.recordEpoch(run: run, epoch(e, accuracy: 0.95 + Double(i) / 100 + Double(e) / 1000, loss: 0.3 / Double(e + i),
                                                      changes: history && e == 2 ? [("lr", "1e-5")] : []))
            }
            if history { try store.recordParamChange(run: run, name: "noise", value: "0.\(i + 1)", fromEpoch: 2) }
            try store.finishRun(run: run, status: .finished, checkpoint: nil)
            ids.append(run)
        }
        return try store.comparison(of: ids)
    }

    func testNotesNamesAndTagsAppearInCompareAndReports() throws {
        let store = try RunStore(path: temporaryDatabase())
        var ids: [Int64] = []
        for lr in ["3e-3", "1e-3"] {
            let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: [("lr", lr)])
            try store.recordEpoch(run: run, epoch(1, accuracy: 0.9, loss: 0.2))
            ids.append(run)
        }
        try store.setNote(run: ids[0], "smoother loss, try longer")
        try store.setName(run: ids[1], "fast")
        try store.tag(run: ids[1], ["baseline"])
        let comparison = try store.comparison(of: ids)
        let text = CompareTable.render(comparison, width: 80)
        XCTAssertTrue(text.contains("note of run 1: smoother loss, try longer"), text)
        XCTAssertFalse(text.contains("note of run 2"), text)
        XCTAssertTrue(text.split(separator: "\n").contains { $0.hasPrefix("name") && $0.contains("fast") }, text)
        XCTAssertTrue(text.split(separator: "\n").contains { $0.hasPrefix("tags") && $0.contains("baseline") }, text)
        XCTAssertTrue(Report.markdown(comparison).contains("| note | smoother loss, try longer | - |"), Report.markdown(comparison))
        XCTAssertTrue(Report.html(comparison).contains("<td>smoother loss, try longer</td>"))
        let runs = RunsTable.render(try store.runs(), width: 120)
        XCTAssertTrue(runs.contains("fast #baseline"), runs)
    }

    func testCompareShowsDifferingSettingsAndMarksTheBest() throws {
        let text = CompareTable.render(try comparison(2), width: 80)
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("lr ") && $0.contains("3e-3") && $0.contains("1e-3") }, text)
        XCTAssertTrue(text.contains("common: dataset mnist, parameters 16938, batch 128, model conv, seed 1"), text)
        let best = try XCTUnwrap(lines.first { $0.hasPrefix("best test accuracy") })
        XCTAssertTrue(best.hasSuffix("0.9630 *"), best)
        XCTAssertFalse(best.contains("0.9530 *"), best)
        let loss = try XCTUnwrap(lines.first { $0.hasPrefix("final loss") })
        XCTAssertTrue(loss.hasSuffix("0.0750 *"), loss)     // lower loss is better
        XCTAssertTrue(lines.contains { $0.hasPrefix("  at epoch") }, text)
        // Ties (every run took as long) mark nothing; marks keep the numbers aligned.
        XCTAssertFalse(try XCTUnwrap(lines.first { $0.hasPrefix("seconds") }).contains("*"), text)
        XCTAssertTrue(best.contains("0.9530    "), best)
        XCTAssertEqual(best.count, loss.count)
    }

    func testCompareShowsASettingsHistory() throws {
        let text = CompareTable.render(try comparison(2, history: true), width: 80)
        XCTAssertTrue(text.contains("3e-3 → 1e-5@3"), text)
        XCTAssertTrue(text.contains("0.1 → 0.2@2") == false && text.contains("0.2"), text)
    }

    func testFourRunsFitEightyColumnsAndMoreWrap() throws {
        let four = CompareTable.render(try comparison(4, history: true), width: 80)
        XCTAssertLessThanOrEqual(four.split(separator: "\n").map(\.count).max() ?? 0, 80, four)
        XCTAssertEqual(four.components(separatedBy: "best test accuracy").count - 1, 1, four)
        XCTAssertTrue(four.contains("run 4"), four)
        let six = CompareTable.render(try comparison(6, history: true), width: 80)
        XCTAssertLessThanOrEqual(six.split(separator: "\n").map(\.count).max() ?? 0, 80, six)
        XCTAssertGreaterThan(six.components(separatedBy: "best test accuracy").count - 1, 1, six)
        XCTAssertTrue(six.contains("run 6"), six)
    }

    func testCompareCutsWhatCannotFit() throws {
        let store = try RunStore(path: temporaryDatabase())
        let long = String(repeating: "a-very-long-setting-name-", count: 4)
        let a = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 1, seed: 1, params: [(long, String(repeating: "x", count: 200))])
        let b = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 1, seed: 1, params: [(long, "y")])
        let text = CompareTable.render(try store.comparison(of: [a, b]), width: 40)
        XCTAssertLessThanOrEqual(text.split(separator: "\n").map(\.count).max() ?? 0, 40, text)
        XCTAssertTrue(text.contains("a-very-long-setting-nam…  xxx"), text)
    }

    /// Model specs are long: the table shows their start, so four runs still fit side by side, and
    /// writes each in full under it.
    func testLongSpecsAreCutInTheTableAndSpelledOutBelow() throws {
        let store = try RunStore(path: temporaryDatabase())
        let specs = ["conv 3x3x3 16 relu | pool 1x2x2 | conv 3x3x3 32 relu | pool 2 | gap | dense 5",
                     "conv 1x3x3 16 relu | conv 3x1x1 16 relu | pool 1x2x2 | gap | dense 5",
                     "conv 1x3x3 16 relu | pool 1x2x2 | gap | dense 5", "conv 3x3 16 relu | pool 2 | gap | dense 5"]
        let ids = try specs.map { try store.startRun(dataset: "tricks", model: $0, parameterCount: 1, seed: 1, params: [("model", $0)]) }
        let text = CompareTable.render(try store.comparison(of: ids), width: 80)
        XCTAssertLessThanOrEqual(text.split(separator: "\n").map(\.count).max() ?? 0, 80, text)
        XCTAssertEqual(text.components(separatedBy: "run 4").count - 1, 2, "one block, and run 4's spelled-out line: \(text)")
        XCTAssertTrue(text.contains("model of run 2: conv 1x3x3 16 relu | conv 3x1x1 16 relu | pool 1x2x2 | gap |\n  dense 5"), text)
    }

    func testRunsTableHasOneLinePerRunWithinTheWidth() throws {
        let now = Date()
        let runs = [RunSummary(id: 1, session: 1, created: now, status: "finished", dataset: "mnist",
                               model: "conv — Chain(Conv(1→16), …)", parameterCount: 16938, seed: "1", bestAccuracy: 0.9912,
                               bestEpoch: 7, epochs: 9, trainSeconds: 125, note: String(repeating: "long note ", count: 20)),
                    RunSummary(id: 12, session: 2, created: now.addingTimeInterval(-400 * 86400), status: "crashed",
                               dataset: "fashion-mnist", model: "mlp", parameterCount: 1, seed: "1")]
        let text = RunsTable.render(runs, width: 80, now: now)
        let lines = text.split(separator: "\n").map(String.init)
        let wide = RunsTable.render(runs, width: 120, now: now).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4, text)
        XCTAssertTrue(lines[0].hasPrefix("id  when") && lines[0].contains("best acc"), text)
        XCTAssertTrue(lines[2].contains("conv ") && lines[2].contains("0.9912") && lines[2].contains("2m05s"), text)
        XCTAssertFalse(text.contains("note"), text)   // no room at 80 columns
        XCTAssertTrue(wide[0].hasSuffix("note") && wide[2].contains("long note") && wide[2].hasSuffix("…"), wide.joined(separator: "\n"))
        XCTAssertLessThanOrEqual(wide.map(\.count).max() ?? 0, 120)
        XCTAssertFalse(lines[2].contains("Chain"), text)
        XCTAssertTrue(lines[3].contains("crashed") && lines[3].contains("-"), text)
        XCTAssertLessThanOrEqual(lines.map(\.count).max() ?? 0, 80, text)
        XCTAssertEqual(RunsTable.render([]), "no runs")
    }

    func testCSVQuotesFieldsAndDropsMarks() throws {
        XCTAssertEqual(Report.csvField("a,b"), "\"a,b\"")
        XCTAssertEqual(Report.csvField("say \"hi\""), "\"say \"\"hi\"\"\"")
        XCTAssertEqual(Report.csvField("two\nlines"), "\"two\nlines\"")
        XCTAssertEqual(Report.csvField("plain"), "plain")
        let csv = Report.csv(try comparison(2))
        XCTAssertTrue(csv.hasPrefix("setting,run 1,run 2\n"), csv)
        XCTAssertFalse(csv.contains("*"), csv)
        XCTAssertTrue(csv.contains("\nbatch,128,128\n"), csv)
        XCTAssertTrue(csv.contains("\nlr,3e-3,1e-3\n"), csv)
    }

    func testCSVQuotesAValueHoldingACommaOrAQuote() throws {
        let store = try RunStore(path: temporaryDatabase())
        let a = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 1, seed: 1, params: [("layers", "conv 3x3, pool")])
        let b = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 1, seed: 1, params: [("layers", "say \"x\"")])
        let csv = Report.csv(try store.comparison(of: [a, b]))
        XCTAssertTrue(csv.contains("\nlayers,\"conv 3x3, pool\",\"say \"\"x\"\"\"\n"), csv)
    }

    func testMarkdownIsATable() throws {
        let md = Report.markdown(try comparison(2))
        XCTAssertTrue(md.hasPrefix("| | run 1 | run 2 |\n|---|---:|---:|\n"), md)
        XCTAssertTrue(md.contains("| best test accuracy | 0.9530 | 0.9630 \\* |"), md)
        XCTAssertTrue(md.contains("Common to all runs: dataset mnist"), md)
    }

    func testHTMLIsSelfContainedWithOneLinePerRunInEachChart() throws {
        let html = Report.html(try comparison(3))
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.hasSuffix("</body></html>\n"))
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 2)
        XCTAssertEqual(html.components(separatedBy: "</svg>").count - 1, 2)
        XCTAssertEqual(html.components(separatedBy: "<polyline").count - 1, 6)
        XCTAssertEqual(html.components(separatedBy: "<table>").count, html.components(separatedBy: "</table>").count)
        XCTAssertFalse(html.lowercased().contains("<script"))
        XCTAssertFalse(html.contains("https://"))
        XCTAssertFalse(html.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http://"))
        XCTAssertTrue(html.contains(">epoch</text>") && html.contains(">test accuracy</text>") && html.contains(">train loss</text>"))
        for id in 1...3 { XCTAssertEqual(html.components(separatedBy: ">run \(id)</text>").count - 1, 2, "legend of run \(id)") }
        XCTAssertTrue(html.contains("<td class=\"best\">0.9730</td>"), html)
    }

    /// A run selected on a validation split: val accuracy every epoch, test once after each train.
    func validatedComparison() throws -> (store: RunStore, ids: [Int64]) {
        let store = try RunStore(path: temporaryDatabase())
        var ids: [Int64] = []
        for i in 0..<2 {
            let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: [("lr", ["3e-3", "1e-3"][i])])
            for e in 1...4 {
                let val = [0.90, 0.93, 0.95, 0.94][e - 1] + Double(i) / 100
                try store.recordEpoch(run: run, EpochRecord(epoch: e, metrics: ["val_accuracy": val, "train_loss": 0.4 / Double(e)],
                                                          bestAccuracy: min(val, 0.95 + Double(i) / 100), bestEpoch: min(e, 3),
                                                          trainLoss: 0.4 / Double(e), seconds: 1))
            }
            try store.recordEpoch(run: run, EpochRecord(epoch: 4, metrics: ["test_accuracy": 0.91 + Double(i) / 100],
                                                      bestAccuracy: nil, bestEpoch: nil, trainLoss: nil, seconds: nil))
            ids.append(run)
        }
        return (store, ids)
    }

    func testValidationAndTestAreSeparateRowsNamingTheSplitThatSelected() throws {
        let (store, ids) = try validatedComparison()
        let text = CompareTable.render(try store.comparison(of: ids), width: 80)
        let lines = text.split(separator: "\n").map(String.init)
        func row(_ label: String) -> String? { lines.first { $0.hasPrefix(label + " ") } }
        XCTAssertEqual(row("selected on").map { $0.contains("val") }, true, text)
        XCTAssertEqual(row("best val accuracy").map { $0.contains("0.9500") && $0.contains("0.9600 *") }, true, text)
        XCTAssertEqual(row("final test accuracy").map { $0.contains("0.9100") && $0.contains("0.9200 *") }, true, text)
        XCTAssertNil(row("best test accuracy"), "a run selected on validation has no best test accuracy: \(text)")
        // Before: "best accuracy" showed the validation score and the test score was nowhere.
        XCTAssertFalse(lines.contains { $0.hasPrefix("best accuracy") }, text)
        let diff = RunDiff.render(try store.comparison(of: ids).runs[0], try store.comparison(of: ids).runs[1], commands: ([], []))
        let epoch2 = try XCTUnwrap(diff.split(separator: "\n").first { $0.hasPrefix("    2 ") }, diff)
        XCTAssertTrue(epoch2.contains("0.9300") && epoch2.contains("0.9400"), diff)
        XCTAssertTrue(diff.contains("val 1") && diff.contains("test 1"), diff)
    }

    func testHTMLChartsValidationApartAndSpansTheRunsEpochs() throws {
        let (store, ids) = try validatedComparison()
        let html = Report.html(try store.comparison(of: ids))
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 3)
        XCTAssertTrue(html.contains("validation accuracy per epoch"), html)
        XCTAssertTrue(html.contains(">val accuracy</text>"), html)
        // The test scores sit at epoch 4 of an axis from 1 to 4, not on an axis of their own (4 to 5).
        for e in 1...4 { XCTAssertTrue(html.contains("text-anchor=\"middle\">\(e)</text>"), "tick \(e)") }
        XCTAssertFalse(html.contains("text-anchor=\"middle\">5</text>"), html)
    }

    func testHTMLEscapesTextAndSkipsMissingValues() {
        let summary = RunSummary(id: 1, session: 1, created: Date(), status: "finished", dataset: "<mnist>", model: "a & b",
                                 parameterCount: 1, seed: "1")
        let run = RunDetail(summary: summary, params: [], metrics: ["train_loss": [(1, 0.5), (2, .nan), (3, 0.25)]], events: [])
        let html = Report.html(Comparison(runs: [run]), title: "<runs>")
        XCTAssertFalse(html.contains("<mnist>") || html.contains("<runs>") || html.contains("nan"), html)
        XCTAssertTrue(html.contains("&lt;mnist&gt;") && html.contains("test accuracy per epoch: no data"), html)
        XCTAssertEqual(html.components(separatedBy: "<polyline").count - 1, 1)
    }

    func testNiceTicksAreRoundAndCoverTheRange() {
        XCTAssertEqual(Report.niceTicks(0, 1), [0, 0.25, 0.5, 0.75, 1])
        XCTAssertEqual(Report.niceTicks(0.05, 0.95, count: 6), [0.2, 0.4, 0.6, 0.8])
        XCTAssertEqual(Report.niceTicks(1, 10, count: 8), [2, 4, 6, 8, 10])
        XCTAssertEqual(Report.niceTicks(3, 3), [3])
    }

    func testTerminalPlotHasTheAskedSizeAndALegend() throws {
        let c = try comparison(2)
        let text = TerminalPlot.render(series: c.runs.map { ("run \($0.id)", $0.metricSeries("test_accuracy")) },
                                       title: "test_accuracy", width: 60, height: 10)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.first, "test_accuracy")
        XCTAssertEqual(lines.count, 1 + 10 + 2 + 1)   // title, rows, axis and epochs, legend
        XCTAssertTrue(lines.last!.contains("* run 1") && lines.last!.contains("o run 2"), text)
        XCTAssertTrue(text.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) }, text)
        XCTAssertLessThanOrEqual(lines.map(\.count).max() ?? 0, 60)
        XCTAssertTrue(lines[11].contains("└") && lines[11].contains("┬"), text)
        XCTAssertTrue(lines[12].contains("1") && lines[12].hasSuffix("3") && lines[12].contains("epoch"), text)
    }

    func testTerminalPlotSeriesDifferWithoutColourAndColourAddsEscapes() {
        let a = (label: "run 1", values: (1...20).map { (epoch: $0, value: Double($0)) })
        let b = (label: "run 2", values: (1...20).map { (epoch: $0, value: 20 - Double($0)) })
        let plain = TerminalPlot.render(series: [a, b], title: "t", width: 70, height: 12)
        let plot = plain.split(separator: "\n").dropFirst().prefix(12).joined()
        XCTAssertTrue(plot.contains("*") && plot.contains("o"), plain)
        XCTAssertFalse(plain.contains("\u{1B}["))
        let coloured = TerminalPlot.render(series: [a, b], title: "t", width: 70, height: 12, color: true)
        XCTAssertTrue(coloured.contains("\u{1B}[34m") && coloured.contains("\u{1B}[31m"), coloured)
    }

    func testTerminalPlotSurvivesNaNFlatAndEmptySeries() {
        let flat = TerminalPlot.render(series: [("run 1", [(1, 0.5), (2, .nan), (3, 0.5)])], title: "loss", width: 40, height: 5)
        XCTAssertEqual(flat.split(separator: "\n").count, 1 + 5 + 2 + 1, flat)
        XCTAssertEqual(TerminalPlot.render(series: [("run 1", [])], title: "loss"), "loss: no data")
        let many = (1...9).map { (label: "run \($0)", values: [(epoch: 1, value: Double($0))]) }
        let text = TerminalPlot.render(series: many, title: "x", width: 40, height: 4)
        XCTAssertLessThanOrEqual(text.split(separator: "\n").map(\.count).max() ?? 0, 40, text)
    }

    /// A one-epoch run's accuracy: the axis stays within [0, 1] (it used to run 0.47–1.47) and
    /// the only epoch labelled is the one there is.
    func testTerminalPlotOfOneEpochStaysWithinTheMetricsRange() {
        let text = TerminalPlot.render(series: [("run 1", [(1, 0.97)])], title: "test_accuracy", width: 60, height: 8, bounds: 0...1)
        let labels = text.split(separator: "\n").dropFirst().compactMap { line -> Double? in
            guard line.contains("┤") else { return nil }
            return Double(line.split(separator: " ").first ?? "")
        }
        XCTAssertEqual(labels.count, 3, text)
        XCTAssertLessThanOrEqual(labels.max() ?? 2, 1, text)
        XCTAssertGreaterThan(labels.min() ?? 0, 0.9, text)
        let axis = text.split(separator: "\n").first { $0.contains("epoch") }!
        XCTAssertEqual(axis.split(separator: " ").map(String.init), ["epoch", "1"], text)
    }
}
