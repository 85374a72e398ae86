import Foundation
import GRDB

/// The run database: one SQLite file (WAL, busy timeout, foreign keys), opened with the
/// migrations in `Schema`. The only type that writes SQL. Each write is one short transaction,
/// so a killed process leaves whole epochs or nothing, and two processes can train at once.
public final class RunStore: @unchecked Sendable {
    public let path: String
    /// This process's row in `sessions`.
    public let sessionID: Int64
    let pool: DatabasePool

    /// $OLLIE_DB, or ./ollie.sqlite.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let path = environment["OLLIE_DB"], !path.isEmpty { return path }
        return "ollie.sqlite"
    }

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(10)
        do {
            pool = try RunStore.openPool(path: path, configuration: config)
            let host = ProcessInfo.processInfo.hostName
            let pid = Int(getpid())
            sessionID = try pool.writeWithoutTransaction { db in
                try db.execute(sql: "INSERT INTO sessions (started, pid, host) VALUES (?, ?, ?)",
                               arguments: [Date().timeIntervalSince1970, pid, host])
                return db.lastInsertedRowID
            }
            try markCrashedRuns()
        } catch let error as DatabaseError {
            throw RunStore.explain(error, path: path)
        }
    }

    /// Opens and migrates. Two processes creating the same file at once can see SQLITE_BUSY
    /// straight away (switching to WAL, or upgrading the migrator's read to a write, does not
    /// wait on the busy timeout), or both try the same migration; such an open is retried.
    static func openPool(path: String, configuration: Configuration) throws -> DatabasePool {
        var attempt = 0
        while true {
            do {
                let pool = try DatabasePool(path: path, configuration: configuration)
                try Schema.migrator.migrate(pool)
                return pool
            } catch let error as DatabaseError where attempt < 50 && (
                [.SQLITE_BUSY, .SQLITE_LOCKED].contains(error.resultCode)
                // The other process applied the same migration between our read and our write.
                || (error.message ?? "").contains("already exists")) {
                attempt += 1
                usleep(100_000)
            }
        }
    }

    static func explain(_ error: DatabaseError, path: String) -> TrackingError {
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return TrackingError("the run database \(path) is locked by another program; close it or use --db PATH")
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN, .SQLITE_AUTH:
            return TrackingError("cannot write the run database \(path) (\(error.message ?? "read-only")); choose a writable file with --db PATH or OLLIE_DB")
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return TrackingError("\(path) is not a valid ollie database; move it away or use --db PATH")
        default:
            return TrackingError("run database \(path): \(error.message ?? "\(error.resultCode)")")
        }
    }

    /// Runs a write transaction, turning SQLite errors into one-line TrackingErrors.
    /// IMMEDIATE takes the write lock up front, so a second process waits out the busy timeout
    /// instead of failing when a deferred transaction cannot upgrade from read to write.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch let error as DatabaseError {
            throw RunStore.explain(error, path: path)
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try pool.read(body) } catch let error as DatabaseError {
            throw RunStore.explain(error, path: path)
        }
    }

    /// Runs left `running` by a process on this host that no longer exists become `crashed`.
    func markCrashedRuns() throws {
        let host = ProcessInfo.processInfo.hostName
        try write { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT runs.id, sessions.pid FROM runs JOIN sessions ON sessions.id = runs.session
                WHERE runs.status = 'running' AND sessions.host = ? AND runs.session != ?
                """, arguments: [host, sessionID])
            for row in rows {
                let pid: Int = row[1]
                if kill(pid_t(pid), 0) != 0 && errno == ESRCH {
                    try db.execute(sql: "UPDATE runs SET status = 'crashed', finished = ? WHERE id = ?",
                                   arguments: [Date().timeIntervalSince1970, row[0] as Int64])
                }
            }
        }
    }

    // MARK: - Writing

    public func recordCommand(_ text: String, started: Date, seconds: Double, error: String?) throws {
        try write { db in
            try db.execute(sql: "INSERT INTO commands (session, time, command, seconds, failed, error) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [sessionID, started.timeIntervalSince1970, text, seconds, error != nil, error])
        }
    }

    /// A new run with one `params` row per setting, effective from epoch 1.
    public func startRun(dataset: String, model: String, parameterCount: Int, seed: UInt64,
                         params: [(name: String, value: String)], fromEpoch: Int = 1) throws -> Int64 {
        try write { db in
            let now = Date().timeIntervalSince1970
            try db.execute(sql: """
                INSERT INTO runs (session, created, status, dataset, model, parameter_count, seed)
                VALUES (?, ?, 'running', ?, ?, ?, ?)
                """, arguments: [sessionID, now, dataset, model, parameterCount, String(seed)])
            let run = db.lastInsertedRowID
            for p in params {
                try db.execute(sql: "INSERT INTO params (run, name, value, from_epoch) VALUES (?, ?, ?, ?)",
                               arguments: [run, p.name, p.value, fromEpoch])
            }
            return run
        }
    }

    public func setStatus(run: Int64, _ status: RunStatus) throws {
        try write { db in
            try db.execute(sql: "UPDATE runs SET status = ?, finished = NULL WHERE id = ?", arguments: [status.rawValue, run])
        }
    }

    /// An epoch's metrics, events, automatic setting changes and the run's summary columns,
    /// in one transaction.
    public func recordEpoch(run: Int64, _ record: EpochRecord) throws {
        try write { db in
            let now = Date().timeIntervalSince1970
            for (name, value) in record.metrics.sorted(by: { $0.key < $1.key }) where value.isFinite {
                try db.execute(sql: "INSERT OR REPLACE INTO metrics (run, epoch, name, value, time) VALUES (?, ?, ?, ?, ?)",
                               arguments: [run, record.epoch, name, value, now])
            }
            for event in record.events {
                try db.execute(sql: "INSERT INTO events (run, epoch, kind, detail, time) VALUES (?, ?, ?, ?, ?)",
                               arguments: [run, record.epoch, event.kind, event.detail, now])
            }
            for change in record.paramChanges {
                try db.execute(sql: "INSERT INTO params (run, name, value, from_epoch) VALUES (?, ?, ?, ?)",
                               arguments: [run, change.name, change.value, record.epoch + 1])
            }
            if !record.metrics.isEmpty {
                try db.execute(sql: """
                    UPDATE runs SET epochs = max(epochs, ?), train_seconds = train_seconds + ?,
                        final_loss = coalesce(?, final_loss), best_accuracy = coalesce(?, best_accuracy),
                        best_epoch = coalesce(?, best_epoch)
                    WHERE id = ?
                    """, arguments: [record.epoch, record.seconds ?? 0, record.trainLoss, record.bestAccuracy, record.bestEpoch, run])
            }
        }
    }

    /// A setting changed by the user; it applies from `fromEpoch`.
    public func recordParamChange(run: Int64, name: String, value: String, fromEpoch: Int) throws {
        try write { db in
            try db.execute(sql: "INSERT INTO params (run, name, value, from_epoch) VALUES (?, ?, ?, ?)",
                           arguments: [run, name, value, fromEpoch])
        }
    }

    public func recordEvent(run: Int64, epoch: Int, kind: String, detail: String) throws {
        try write { db in
            try db.execute(sql: "INSERT INTO events (run, epoch, kind, detail, time) VALUES (?, ?, ?, ?, ?)",
                           arguments: [run, epoch, kind, detail, Date().timeIntervalSince1970])
        }
    }

    public func finishRun(run: Int64, status: RunStatus, checkpoint: String?) throws {
        try write { db in
            try db.execute(sql: "UPDATE runs SET status = ?, finished = ?, checkpoint = coalesce(?, checkpoint) WHERE id = ?",
                           arguments: [status.rawValue, Date().timeIntervalSince1970, checkpoint, run])
        }
    }

    public func setNote(run: Int64, _ text: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE runs SET note = ? WHERE id = ?", arguments: [text, run])
        }
    }

    // MARK: - Reading

    public func runs(_ filter: RunFilter = RunFilter()) throws -> [RunSummary] {
        try read { db in
            let (sql, arguments) = filter.sql()
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(RunStore.summary)
        }
    }

    public func sessionRunIDs() throws -> [Int64] {
        try read { db in
            try Int64.fetchAll(db, sql: "SELECT id FROM runs WHERE session = ? ORDER BY id", arguments: [sessionID])
        }
    }

    public func comparison(of ids: [Int64]) throws -> Comparison {
        try read { db in
            let details = try ids.map { id -> RunDetail in
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE id = ?", arguments: [id]) else {
                    throw TrackingError("no run \(id); list them with: runs")
                }
                var params: [ParamHistory] = []
                for p in try Row.fetchAll(db, sql: "SELECT name, value, from_epoch FROM params WHERE run = ? ORDER BY rowid", arguments: [id]) {
                    let name: String = p[0]
                    if let i = params.firstIndex(where: { $0.name == name }) {
                        params[i].values.append((p[1], p[2]))
                    } else {
                        params.append(ParamHistory(name: name, values: [(p[1], p[2])]))
                    }
                }
                var metrics: [String: [(epoch: Int, value: Double)]] = [:]
                for m in try Row.fetchAll(db, sql: "SELECT name, epoch, value FROM metrics WHERE run = ? ORDER BY epoch", arguments: [id]) {
                    metrics[m[0], default: []].append((m[1], m[2]))
                }
                let events = try Row.fetchAll(db, sql: "SELECT epoch, kind, detail FROM events WHERE run = ? ORDER BY rowid", arguments: [id])
                    .map { (epoch: $0[0] as Int, kind: $0[1] as String, detail: $0[2] as String) }
                return RunDetail(summary: RunStore.summary(row), params: params, metrics: metrics, events: events)
            }
            return Comparison(runs: details)
        }
    }

    /// A read-only query for `sql`: anything that would write is refused before it runs.
    public func query(_ sql: String) throws -> (columns: [String], rows: [[String]]) {
        do {
            return try pool.read { db in
                let statement = try db.makeStatement(sql: sql)
                guard statement.isReadonly else {
                    throw TrackingError("sql runs read-only queries (SELECT …); the database is changed only by ollie's commands")
                }
                let rows = try Row.fetchAll(statement)
                return (statement.columnNames, rows.map { row in
                    (0..<row.count).map { i in
                        switch (row[i] as DatabaseValue).storage {
                        case .null: "NULL"
                        case .int64(let v): String(v)
                        case .double(let v): String(format: "%.6g", v)
                        case .string(let s): s
                        case .blob(let d): "<\(d.count) bytes>"
                        }
                    }
                })
            }
        } catch let error as DatabaseError {
            throw TrackingError("sql: \(error.message ?? "\(error.resultCode)")")
        }
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    public func integrityCheck() throws -> String {
        try read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
    }

    static func summary(_ row: Row) -> RunSummary {
        RunSummary(id: row["id"], session: row["session"], created: Date(timeIntervalSince1970: row["created"]),
                   finished: (row["finished"] as Double?).map(Date.init(timeIntervalSince1970:)),
                   status: row["status"], dataset: row["dataset"], model: row["model"],
                   parameterCount: row["parameter_count"], seed: row["seed"], bestAccuracy: row["best_accuracy"],
                   bestEpoch: row["best_epoch"], finalLoss: row["final_loss"], epochs: row["epochs"],
                   trainSeconds: row["train_seconds"], checkpoint: row["checkpoint"], note: row["note"])
    }
}
