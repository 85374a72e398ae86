import Foundation
import GRDB

/// The run database: one SQLite file opened with the numbered migrations in `Schema`, in WAL
/// mode, with a busy timeout and foreign keys on. The only type that writes SQL.
///
/// Every write is one short IMMEDIATE transaction (an epoch is one), so a process killed at
/// any moment leaves whole epochs or nothing, and two processes can write the same file: the
/// second waits up to `busyTimeout` for the first's few milliseconds of writing.
///
/// A `DatabasePool` (rather than a `DatabaseQueue`): it needs WAL, which is what lets another
/// process read and write beside us, and its reader connections are opened read-only, which
/// `query` relies on for user SQL. Every call throws only `TrackingError`.
public final class RunStore: @unchecked Sendable {
    public let path: String
    /// This process's row in `sessions`; 0 when opened read-only (nothing is written then).
    public let sessionID: Int64
    public let isReadOnly: Bool
    let pool: DatabasePool

    /// How long a write waits for another process's transaction before giving up.
    public let busyTimeout: TimeInterval

    /// $OLLIE_DB, or ./ollie.sqlite.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let path = environment["OLLIE_DB"], !path.isEmpty { return path }
        return "ollie.sqlite"
    }

    /// Opens (creating and migrating when needed) the database at `path`, adds this process's
    /// `sessions` row and marks runs whose owner process is gone as `crashed`.
    /// `readOnly`: open an existing database with SQLITE_OPEN_READONLY for reading runs only;
    /// every write then throws a TrackingError. `busyTimeout`: seconds a write waits for
    /// another process's transaction before it fails with a "locked" TrackingError.
    public init(path: String, readOnly: Bool = false, busyTimeout: TimeInterval = 5) throws {
        self.path = path
        isReadOnly = readOnly
        self.busyTimeout = busyTimeout
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(busyTimeout)
        config.readonly = readOnly
        do {
            if readOnly {
                guard FileManager.default.fileExists(atPath: path) else {
                    throw TrackingError("no run database at \(path) to open read-only; check the path given to --db or OLLIE_DB")
                }
                pool = try RunStore.openReadOnly(path: path, configuration: config)
                sessionID = 0
                openedFile = nil
                return
            }
            pool = try RunStore.openPool(path: path, configuration: config)
            openedFile = RunStore.fileIdentity(path)
            let me = ProcessIdentity.current
            sessionID = try RunStore.immediateWrite(pool) { db in
                try db.execute(sql: "INSERT INTO sessions (started, pid, host, process_start) VALUES (?, ?, ?, ?)",
                               arguments: [Date().timeIntervalSince1970, Int(me.pid), me.host, me.start])
                return db.lastInsertedRowID
            }
            try markCrashedRuns()
        } catch let error as DatabaseError {
            throw RunStore.explain(error, path: path, busyTimeout: busyTimeout)
        }
    }

    /// Opens and migrates. Two processes creating the same file at once can see SQLITE_BUSY
    /// straight away (switching to WAL, or upgrading the migrator's read to a write, does not
    /// wait on the busy timeout), or both try the same migration; such an open is retried.
    static func openPool(path: String, configuration: Configuration) throws -> DatabasePool {
        try checkIsDatabaseFile(path)
        try refuseOtherProgramsDatabase(path)
        var attempt = 0
        while true {
            do {
                let pool = try DatabasePool(path: path, configuration: configuration)
                try Schema.migrator.migrate(pool)
                return pool
            } catch let error as DatabaseError where attempt < 50 && (
                [.SQLITE_BUSY, .SQLITE_LOCKED].contains(error.resultCode)
                // The other process applied the same migration between our read and our write.
                || (error.message ?? "").contains("already exists")
                || (error.message ?? "").contains("duplicate column")) {
                attempt += 1
                usleep(100_000)
            }
        }
    }

    /// The path names a file that is or can become a database: not empty, not a folder, a
    /// device or a FIFO (SQLite would fail on them with a bare "disk I/O error", or block).
    static func checkIsDatabaseFile(_ path: String) throws {
        guard !path.isEmpty else { throw TrackingError("the run database needs a file name; e.g. --db runs.sqlite") }
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = errno
            switch reason {
            case ENOENT:
                // A new file, in a folder that must exist: ollie makes no folders the user did not ask for.
                let folder = (path as NSString).deletingLastPathComponent
                var folderInfo = stat()
                if !folder.isEmpty && stat(folder, &folderInfo) != 0 {
                    throw TrackingError("the folder \(folder) for the run database does not exist; create it (mkdir -p \(folder)) or use another --db PATH")
                }
                return
            case ENOTDIR:
                throw TrackingError("\(path): a part of this path is a file, not a folder; use another --db PATH")
            case ENAMETOOLONG:
                throw TrackingError("the run database's name is too long for the file system (\(path.utf8.count) bytes); use a shorter --db PATH")
            default:
                return   // SQLite's own error says the rest (permissions, say)
            }
        }
        let kind: String
        switch info.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: kind = "a folder"
        case S_IFCHR, S_IFBLK: kind = "a device"
        case S_IFIFO: kind = "a named pipe (FIFO)"
        default: kind = "not a regular file"
        }
        throw TrackingError("\(path) is \(kind), not a database file; give a file name with --db PATH or OLLIE_DB, e.g. --db runs.sqlite")
    }

    /// A SQLite file of another program (tables, and no migrations of ours) is left as it is:
    /// ollie never adds its tables to somebody else's database, nor switches it to WAL. Looked
    /// at read-only, before the pool opens it; a file that cannot be read so is left to the
    /// pool's own errors.
    static func refuseOtherProgramsDatabase(_ path: String) throws {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > 0 else { return }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        guard let tables = try? DatabaseQueue(path: path, configuration: configuration).read({ db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        }) else { return }
        guard !tables.isEmpty, !tables.contains("grdb_migrations") else { return }
        let shown = tables.prefix(5).joined(separator: ", ") + (tables.count > 5 ? ", …" : "")
        throw TrackingError("\(path) is a SQLite database of another program (tables: \(shown)); ollie records runs only in a file of its own, so it was left untouched: use --db NEWFILE")
    }

    /// Opens for reading only. A WAL database is read through its -shm file, which SQLite
    /// must create when no process has the database open; in a folder this user cannot write,
    /// it cannot (SQLITE_READONLY or SQLITE_CANTOPEN). Then, when there is no -wal file (every
    /// commit is in the main file), the file is opened `immutable`: read as it is, without
    /// locks, so a process writing it meanwhile is not seen.
    static func openReadOnly(path: String, configuration: Configuration) throws -> DatabasePool {
        func open(_ name: String) throws -> DatabasePool {
            let pool = try DatabasePool(path: name, configuration: configuration)
            guard try pool.read({ try Schema.migrator.hasCompletedMigrations($0) }) else {
                throw TrackingError("\(path) is not an up-to-date ollie database; open it once where it can be written to upgrade it, or use --db PATH")
            }
            return pool
        }
        do {
            return try open(path)
        } catch let error as DatabaseError where [.SQLITE_READONLY, .SQLITE_CANTOPEN].contains(error.resultCode) {
            guard !FileManager.default.fileExists(atPath: path + "-wal") else {
                throw TrackingError("cannot read the run database \(path): its latest commits are in \(path)-wal, which SQLite can only read with a \(path)-shm file it cannot create in that folder; open it once where it can be written (that folds the -wal file in), or copy the three files to a writable folder")
            }
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            let escaped = absolute.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? absolute
            return try open("file:\(escaped)?immutable=1")
        }
    }

    /// One line saying what went wrong and what to do about it.
    static func explain(_ error: DatabaseError, path: String, busyTimeout: TimeInterval = 5) -> TrackingError {
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return TrackingError("the run database \(path) stayed locked by another program for \(String(format: "%g", busyTimeout)) s; close it (an open sqlite3 transaction?) or use --db PATH", isTransient: true)
        case .SQLITE_READONLY:
            return TrackingError("the run database \(path) is read-only, so this was not recorded; make it writable or use --db PATH (or OLLIE_DB) for another file")
        case .SQLITE_PERM, .SQLITE_CANTOPEN, .SQLITE_AUTH:
            return TrackingError("cannot open or write the run database \(path) (\(error.message ?? "\(error.resultCode)")); choose a writable file with --db PATH or OLLIE_DB")
        case .SQLITE_FULL:
            return TrackingError("the disk holding the run database \(path) is full; free some space or use --db PATH", isTransient: true)
        case .SQLITE_IOERR:
            return TrackingError("cannot write the run database \(path) (\(error.message ?? "I/O error")); is its disk full, gone, or past a file-size limit (ulimit -f)? free some space or use --db PATH", isTransient: true)
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return TrackingError("\(path) is not a valid ollie database; move it away or use --db PATH")
        default:
            return TrackingError("run database \(path): \(error.message ?? "\(error.resultCode)")")
        }
    }

    /// IMMEDIATE takes the write lock up front, so a second process waits out the busy timeout
    /// instead of failing when a deferred transaction cannot upgrade from read to write.
    static func immediateWrite<T>(_ pool: DatabasePool, _ body: (Database) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    /// The file's device and inode when opened: a write checks the path still names it.
    private let openedFile: (device: UInt64, inode: UInt64)?

    static func fileIdentity(_ path: String) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    /// One write transaction, its SQLite errors turned into one-line TrackingErrors. A file
    /// deleted or replaced under its name since it was opened is not written: what went into
    /// it would be lost with it, while the path shows another file.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        if isReadOnly {
            throw TrackingError("the run database \(path) was opened read-only, so this was not recorded; open it without read-only to record runs")
        }
        if let opened = openedFile, RunStore.fileIdentity(path).map({ $0 != opened }) ?? true {
            throw TrackingError("the run database \(path) was deleted or replaced since this ollie opened it, so this was not recorded (it would have gone into the removed file); start ollie again to record into \(path)")
        }
        do { return try RunStore.immediateWrite(pool, body) } catch let error as DatabaseError {
            throw RunStore.explain(error, path: path, busyTimeout: busyTimeout)
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try pool.read(body) } catch let error as DatabaseError {
            throw RunStore.explain(error, path: path, busyTimeout: busyTimeout)
        }
    }

    /// Runs left `running` by a process on this host that no longer exists become `crashed`;
    /// their `finished` is the time of their last recorded epoch. Runs owned by other hosts
    /// are left alone: their liveness cannot be checked from here.
    func markCrashedRuns() throws {
        let host = ProcessIdentity.current.host
        try write { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT runs.id, sessions.pid, sessions.process_start FROM runs JOIN sessions ON sessions.id = runs.session
                WHERE runs.status = 'running' AND sessions.host = ? AND runs.session != ?
                """, arguments: [host, sessionID])
            for row in rows where !ProcessIdentity.isAlive(pid: row[1], start: row[2]) {
                try db.execute(sql: """
                    UPDATE runs SET status = 'crashed',
                        finished = coalesce((SELECT max(time) FROM metrics WHERE metrics.run = runs.id), created)
                    WHERE id = ?
                    """, arguments: [row[0] as Int64])
            }
        }
    }

    func requireRun(_ db: Database, _ run: Int64) throws {
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM runs WHERE id = ?", arguments: [run]) == true else {
            throw TrackingError("no run \(run) in the run database \(path); list them with: runs")
        }
    }

    // MARK: - Writing

    /// One REPL command: when it started, how long it took, and its error if it failed.
    /// `run`: the session's current run after the command, if any.
    public func recordCommand(_ text: String, started: Date, seconds: Double, error: String?, run: Int64? = nil) throws {
        try write { db in
            let known = try run.map { try Bool.fetchOne(db, sql: "SELECT 1 FROM runs WHERE id = ?", arguments: [$0]) == true } ?? false
            try db.execute(sql: "INSERT INTO commands (session, time, command, seconds, failed, error, run) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           arguments: [sessionID, started.timeIntervalSince1970, text, seconds, error != nil, error, known ? run : nil])
        }
    }

    /// A new `running` run owned by this session, with one `params` row per setting, effective
    /// from `fromEpoch` (1, or later for a run continuing another's state). `parent`: the run
    /// and epoch whose state it starts from (a fork, a restore, a model carried onto new data).
    /// The session's commands since its previous run (the `load`, `build` and `set`s that set
    /// this one up) are tagged with the new run.
    public func startRun(dataset: String, model: String, parameterCount: Int, seed: UInt64,
                         params: [(name: String, value: String)], fromEpoch: Int = 1,
                         parent: (run: Int64, epoch: Int)? = nil) throws -> Int64 {
        try write { db in
            let parentRun = try parent.flatMap { p in
                try Bool.fetchOne(db, sql: "SELECT 1 FROM runs WHERE id = ?", arguments: [p.run]) == true ? p.run : nil
            }
            try db.execute(sql: """
                INSERT INTO runs (session, holder, created, status, dataset, model, parameter_count, seed, parent_run, parent_epoch)
                VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)
                """, arguments: [sessionID, sessionID, Date().timeIntervalSince1970, dataset, model, parameterCount, String(seed),
                                 parentRun, parentRun == nil ? nil : parent?.epoch])
            let run = db.lastInsertedRowID
            for p in params {
                try db.execute(sql: "INSERT INTO params (run, name, value, from_epoch) VALUES (?, ?, ?, ?)",
                               arguments: [run, p.name, p.value, fromEpoch])
            }
            try db.execute(sql: """
                UPDATE commands SET run = ? WHERE session = ? AND run IS NULL
                    AND id > coalesce((SELECT max(id) FROM commands WHERE session = ? AND run IS NOT NULL), 0)
                """, arguments: [run, sessionID, sessionID])
            return run
        }
    }

    /// Takes the run's lease for this session (`resume`): from now on only this process writes
    /// the run's epochs, and crash detection watches it. Decided in one IMMEDIATE transaction,
    /// so of two processes claiming at the same instant exactly one wins; the other gets one
    /// line naming the holder. A holder whose process is gone (on this host) has given it up.
    public func claim(run: Int64) throws {
        let me = ProcessIdentity.current
        try write { db in
            try requireRun(db, run)
            if let holder = try Row.fetchOne(db, sql: """
                SELECT sessions.id, sessions.pid, sessions.host, sessions.process_start, sessions.started
                FROM runs JOIN sessions ON sessions.id = runs.holder WHERE runs.id = ?
                """, arguments: [run]), holder[0] as Int64 != sessionID {
                let (pid, host, start): (Int, String, Int64?) = (holder[1], holder[2], holder[3])
                // Another host's process cannot be checked from here: it keeps the run.
                if host != me.host || ProcessIdentity.isAlive(pid: pid, start: start) {
                    let since = Date(timeIntervalSince1970: holder[4]).formatted(date: .omitted, time: .shortened)
                    let place = host == me.host ? "" : " on \(host)"
                    throw TrackingError("run \(run) is held by another ollie process (pid \(pid)\(place), started \(since)), "
                        + "which trains it; wait until it quits or moves on, or branch the run: fork \(run)")
                }
            }
            try db.execute(sql: "UPDATE runs SET session = ?, holder = ? WHERE id = ?", arguments: [sessionID, sessionID, run])
        }
    }

    /// Gives up the run's lease when the session moves on (build, load, restore, resume of
    /// another run, quit); nothing happens if this session does not hold it.
    public func release(run: Int64) throws {
        try write { db in
            try db.execute(sql: "UPDATE runs SET holder = NULL WHERE id = ? AND holder = ?", arguments: [run, sessionID])
        }
    }

    /// Writes to a run's history come only from the session holding its lease.
    func requireHolder(_ db: Database, _ run: Int64) throws {
        try requireRun(db, run)
        let holder = try Int64.fetchOne(db, sql: "SELECT holder FROM runs WHERE id = ?", arguments: [run])
        guard holder == sessionID else {
            throw TrackingError("run \(run) is no longer held by this process (another one resumed it); nothing more of it is recorded here: build or fork to go on")
        }
    }

    /// The last epoch with recorded metrics (0 when none).
    public func lastRecordedEpoch(run: Int64) throws -> Int {
        try read { db in
            try requireRun(db, run)
            return try Int.fetchOne(db, sql: "SELECT max(epoch) FROM metrics WHERE run = ?", arguments: [run]) ?? 0
        }
    }

    /// One run's row.
    public func run(_ id: Int64) throws -> RunSummary {
        try read { db in
            guard let run = try RunStore.summaries(db, where: "id = ?", arguments: [id]).first else {
                throw TrackingError("no run \(id) in the run database \(path); list them with: runs")
            }
            return run
        }
    }

    /// The commands that set up and drove a run, oldest first.
    public func commands(ofRun run: Int64) throws -> [CommandRecord] {
        try read { db in
            try requireRun(db, run)
            return try Row.fetchAll(db, sql: "SELECT time, command, failed, error FROM commands WHERE run = ? ORDER BY id",
                                    arguments: [run]).map {
                CommandRecord(time: Date(timeIntervalSince1970: $0[0]), command: $0[1], failed: $0[2], error: $0[3])
            }
        }
    }

    /// A learning-rate range test (`lr-find`) and its points, in one transaction.
    public func recordLRFind(_ record: LRFindRecord) throws -> Int64 {
        try write { db in
            try db.execute(sql: """
                INSERT INTO lr_finds (session, created, dataset, model, optimizer, batch, start_lr, end_lr, steps, suggested_lr, run,
                                      outcome, planned_steps)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [sessionID, Date().timeIntervalSince1970, record.dataset, record.model, record.optimizer,
                                 record.batchSize, record.startRate, record.endRate, record.points.count,
                                 record.suggestedRate, record.run, record.outcome.rawValue, record.plannedSteps])
            let id = db.lastInsertedRowID
            for (step, point) in record.points.enumerated() where point.loss.isFinite {
                try db.execute(sql: "INSERT INTO lr_find_points (lr_find, step, lr, loss) VALUES (?, ?, ?, ?)",
                               arguments: [id, step + 1, point.rate, point.loss])
            }
            return id
        }
    }

    /// Marks a run `running` again (another `train` on it); clears `finished`.
    public func setStatus(run: Int64, _ status: RunStatus) throws {
        try write { db in
            try requireHolder(db, run)
            try db.execute(sql: "UPDATE runs SET status = ?, finished = NULL WHERE id = ?", arguments: [status.rawValue, run])
        }
    }

    /// An epoch's metrics, events, automatic setting changes and the run's summary columns
    /// (best_accuracy, best_epoch, final_loss, epochs, train_seconds), in one transaction.
    /// A record without metrics (an event outside a finished epoch) leaves the summary alone.
    public func recordEpoch(run: Int64, _ record: EpochRecord) throws {
        try write { db in
            try requireHolder(db, run)
            let now = Date().timeIntervalSince1970
            // A recorded epoch is history: nothing may write its numbers again (a later score of
            // another split, such as the test set after a validated `train`, may be added).
            let names = record.metrics.keys.sorted()
            if !names.isEmpty, try Bool.fetchOne(db, sql: "SELECT 1 FROM metrics WHERE run = ? AND epoch = ? AND name IN (\(names.map { _ in "?" }.joined(separator: ", ")))",
                                                arguments: StatementArguments([run, record.epoch] as [any DatabaseValueConvertible] + names)) == true {
                throw TrackingError("epoch \(record.epoch) of run \(run) is already recorded; it was not overwritten (fork the run to train from an earlier epoch: fork \(run)@\(record.epoch - 1))")
            }
            for (name, value) in record.metrics.sorted(by: { $0.key < $1.key }) where value.isFinite {
                try db.execute(sql: "INSERT INTO metrics (run, epoch, name, value, time) VALUES (?, ?, ?, ?, ?)",
                               arguments: [run, record.epoch, name, value, now])
            }
            // A step trained again (a run resumed from the epoch before an interrupted one) takes
            // the same rate again: the newer row replaces the older.
            for point in record.stepMetrics where point.value.isFinite {
                try db.execute(sql: "INSERT OR REPLACE INTO step_metrics (run, step, epoch, name, value) VALUES (?, ?, ?, ?, ?)",
                               arguments: [run, point.step, record.epoch, point.name, point.value])
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
                func finite(_ v: Double?) -> Double? { v.flatMap { $0.isFinite ? $0 : nil } }
                try db.execute(sql: """
                    UPDATE runs SET epochs = max(epochs, ?), train_seconds = train_seconds + ?,
                        final_loss = coalesce(?, final_loss), best_accuracy = coalesce(?, best_accuracy),
                        best_epoch = coalesce(?, best_epoch)
                    WHERE id = ?
                    """, arguments: [record.epoch, finite(record.seconds) ?? 0, finite(record.trainLoss),
                                     finite(record.bestAccuracy), record.bestEpoch, run])
            }
        }
    }

    /// A setting changed by the user (`set lr 3e-4` between two `train`s); it applies from
    /// `fromEpoch`.
    public func recordParamChange(run: Int64, name: String, value: String, fromEpoch: Int) throws {
        try write { db in
            try requireHolder(db, run)
            try db.execute(sql: "INSERT INTO params (run, name, value, from_epoch) VALUES (?, ?, ?, ?)",
                           arguments: [run, name, value, fromEpoch])
        }
    }

    /// An event on its own (one inside an epoch belongs in that epoch's `EpochRecord`).
    public func recordEvent(run: Int64, epoch: Int, kind: String, detail: String) throws {
        try write { db in
            try requireRun(db, run)
            try db.execute(sql: "INSERT INTO events (run, epoch, kind, detail, time) VALUES (?, ?, ?, ?, ?)",
                           arguments: [run, epoch, kind, detail, Date().timeIntervalSince1970])
        }
    }

    /// Ends a run with `status`; `checkpoint` (the best model's file) is kept if nil.
    public func finishRun(run: Int64, status: RunStatus, checkpoint: String?) throws {
        try write { db in
            try requireHolder(db, run)
            try db.execute(sql: "UPDATE runs SET status = ?, finished = ?, checkpoint = coalesce(?, checkpoint) WHERE id = ?",
                           arguments: [status.rawValue, Date().timeIntervalSince1970, checkpoint, run])
        }
    }

    public func setNote(run: Int64, _ text: String) throws {
        try write { db in
            try requireRun(db, run)
            try db.execute(sql: "UPDATE runs SET note = ? WHERE id = ?", arguments: [text, run])
        }
    }

    /// `name 3 cnn-lstm`: a name to find the run by (`where name = cnn-lstm`); nil removes it.
    public func setName(run: Int64, _ name: String?) throws {
        try write { db in
            try requireRun(db, run)
            try db.execute(sql: "UPDATE runs SET name = ? WHERE id = ?", arguments: [name, run])
        }
    }

    /// Adds tags (a tag the run has already is kept once); returns the run's tags.
    @discardableResult
    public func tag(run: Int64, _ tags: [String]) throws -> [String] {
        try write { db in
            try requireRun(db, run)
            for tag in tags {
                try db.execute(sql: "INSERT OR IGNORE INTO run_tags (run, tag) VALUES (?, ?)", arguments: [run, tag])
            }
            return try String.fetchAll(db, sql: "SELECT tag FROM run_tags WHERE run = ? ORDER BY rowid", arguments: [run])
        }
    }

    /// Removes tags; returns the run's tags left.
    @discardableResult
    public func untag(run: Int64, _ tags: [String]) throws -> [String] {
        try write { db in
            try requireRun(db, run)
            for tag in tags {
                try db.execute(sql: "DELETE FROM run_tags WHERE run = ? AND tag = ?", arguments: [run, tag])
            }
            return try String.fetchAll(db, sql: "SELECT tag FROM run_tags WHERE run = ? ORDER BY rowid", arguments: [run])
        }
    }

    /// Archived runs are kept but left out of lists (`runs`, `compare all`, `last N`).
    public func setArchived(run: Int64, _ archived: Bool) throws {
        try write { db in
            try requireRun(db, run)
            try db.execute(sql: "UPDATE runs SET archived = ? WHERE id = ?", arguments: [archived, run])
        }
    }

    /// Removes a run and everything recorded of it (settings, metrics, events, tags, exports;
    /// its commands and forks stay, no longer pointing at it). Refused while another live
    /// process holds the run (it may be training it). Its files are the caller's to remove.
    public func deleteRun(_ run: Int64) throws {
        let me = ProcessIdentity.current
        try write { db in
            try requireRun(db, run)
            if let holder = try Row.fetchOne(db, sql: """
                SELECT sessions.id, sessions.pid, sessions.host, sessions.process_start
                FROM runs JOIN sessions ON sessions.id = runs.holder WHERE runs.id = ?
                """, arguments: [run]), holder[0] as Int64 != sessionID {
                let (pid, host, start): (Int, String, Int64?) = (holder[1], holder[2], holder[3])
                if host != me.host || ProcessIdentity.isAlive(pid: pid, start: start) {
                    throw TrackingError("run \(run) is held by another ollie process (pid \(pid)\(host == me.host ? "" : " on \(host)")), which may be training it; it was not deleted (archive it instead: archive \(run))")
                }
            }
            try db.execute(sql: "DELETE FROM runs WHERE id = ?", arguments: [run])
        }
    }

    // MARK: - Reading

    /// The runs `filter` selects, oldest first for `last N`, best first for `best N`, in the
    /// order named for ids. A single id that is not in the database is an error naming it.
    public func runs(_ filter: RunFilter = RunFilter()) throws -> [RunSummary] {
        try read { db in
            let all = try RunStore.summaries(db)
            let known = Set(all.map(\.id))
            if let missing = filter.ids.first(where: { !known.contains($0) && !filter.rangeIDs.contains($0) }) {
                throw TrackingError("no run \(missing) in \(path); list them with: runs")
            }
            let paramKeys = filter.conditions.map(\.key).filter { !RunFilter.isColumn($0) }
            var initial: [Int64: [String: String]] = [:]
            if !paramKeys.isEmpty {
                let known = Set(try String.fetchAll(db, sql: "SELECT DISTINCT name FROM params"))
                // (An empty database has no settings yet: that is no reason to refuse.)
                if !all.isEmpty, let unknown = paramKeys.first(where: { !known.contains($0) }) {
                    let settings = known.sorted().joined(separator: ", ")
                    throw TrackingError("'\(unknown)' is neither a runs column (\(RunFilter.columnNames.joined(separator: ", "))) nor a recorded setting (\(settings.isEmpty ? "none yet" : settings)); usage: \(RunFilter.usage)")
                }
                for row in try Row.fetchAll(db, sql: "SELECT run, name, value FROM params ORDER BY run, from_epoch, rowid") {
                    let (run, name, value): (Int64, String, String) = (row[0], row[1], row[2])
                    if initial[run]?[name] == nil { initial[run, default: [:]][name] = value }
                }
            }
            return filter.apply(to: all, initialParams: initial)
        }
    }

    /// How many runs the database holds.
    public func runCount() throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM runs") ?? 0 }
    }

    /// This session's runs, oldest first.
    public func sessionRunIDs() throws -> [Int64] {
        try read { db in
            try Int64.fetchAll(db, sql: "SELECT id FROM runs WHERE session = ? ORDER BY id", arguments: [sessionID])
        }
    }

    /// A run's setting values in the order they applied, without the changes it never reached:
    /// a `set` after the run's last epoch is recorded as applying from the next one, which never
    /// comes once the run has ended (another `build`, `load` or process) and nobody holds it.
    static let appliedParamsSQL = """
        SELECT name, value, from_epoch FROM params WHERE run = ?
          AND (from_epoch <= 1 OR from_epoch <= (SELECT epochs FROM runs WHERE id = ?)
               OR (SELECT holder FROM runs WHERE id = ?) IS NOT NULL)
        ORDER BY from_epoch, rowid
        """

    /// The runs `ids`, in that order, with their settings' histories, per-epoch metrics and
    /// events. An unknown id is an error naming it.
    public func comparison(of ids: [Int64]) throws -> Comparison {
        try read { db in
            let details = try ids.map { id -> RunDetail in
                guard let summary = try RunStore.summaries(db, where: "id = ?", arguments: [id]).first else {
                    throw TrackingError("no run \(id) in \(path); list them with: runs")
                }
                var params: [ParamHistory] = []
                for p in try Row.fetchAll(db, sql: RunStore.appliedParamsSQL, arguments: [id, id, id]) {
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
                let events = try Row.fetchAll(db, sql: "SELECT epoch, kind, detail FROM events WHERE run = ? ORDER BY epoch, rowid", arguments: [id])
                    .map { (epoch: $0[0] as Int, kind: $0[1] as String, detail: $0[2] as String) }
                var detail = RunDetail(summary: summary, params: params, metrics: metrics, events: events)
                for m in try Row.fetchAll(db, sql: "SELECT name, step, value FROM step_metrics WHERE run = ? ORDER BY step", arguments: [id]) {
                    detail.stepMetrics[m[0], default: []].append((m[1], m[2]))
                }
                return detail
            }
            return Comparison(runs: details)
        }
    }

    /// "ok" when the file is sound: SQLite's `PRAGMA integrity_check`, then
    /// `PRAGMA foreign_key_check` (every params/metrics/events row belongs to a run).
    public func integrityCheck() throws -> String {
        try read { db in try RunStore.integrityCheck(db) }
    }

    /// The same check on a file, e.g. after killing a process that was writing it.
    public static func integrityCheck(path: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw TrackingError("no run database at \(path) to check") }
        do {
            var config = Configuration()
            config.busyMode = .timeout(5)
            let queue = try DatabaseQueue(path: path, configuration: config)
            return try queue.read { db in try integrityCheck(db) }
        } catch let error as DatabaseError {
            throw explain(error, path: path)
        }
    }

    static func integrityCheck(_ db: Database) throws -> String {
        let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
        guard integrity == ["ok"] else { return integrity.joined(separator: "; ") }
        let orphans = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
        guard orphans.isEmpty else {
            return "foreign key violations: " + orphans.prefix(5).map { "\($0[0] as String) rowid \($0[1] as Int64? ?? -1)" }
                .joined(separator: ", ") + (orphans.count > 5 ? ", …" : "")
        }
        return "ok"
    }

    static func summary(_ row: Row) -> RunSummary {
        RunSummary(id: row["id"], session: row["session"], created: Date(timeIntervalSince1970: row["created"]),
                   finished: (row["finished"] as Double?).map(Date.init(timeIntervalSince1970:)),
                   status: row["status"], dataset: row["dataset"], model: row["model"],
                   parameterCount: row["parameter_count"], seed: row["seed"], bestAccuracy: row["best_accuracy"],
                   bestEpoch: row["best_epoch"], finalLoss: row["final_loss"], epochs: row["epochs"],
                   trainSeconds: row["train_seconds"], checkpoint: row["checkpoint"], note: row["note"],
                   parentRun: row["parent_run"], parentEpoch: row["parent_epoch"],
                   name: row["name"], archived: row["archived"] ?? false)
    }

    /// Rows of `runs` with their tags.
    static func summaries(_ db: Database, where condition: String = "1", arguments: StatementArguments = []) throws -> [RunSummary] {
        var runs = try Row.fetchAll(db, sql: "SELECT * FROM runs WHERE \(condition) ORDER BY id", arguments: arguments).map(summary)
        guard !runs.isEmpty else { return runs }
        var tags: [Int64: [String]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT run, tag FROM run_tags ORDER BY run, rowid") {
            tags[row[0], default: []].append(row[1])
        }
        for i in runs.indices { runs[i].tags = tags[runs[i].id] ?? [] }
        return runs
    }
}

/// Who owns a session: pid, host and the process's start time, which together survive pid reuse.
struct ProcessIdentity {
    var pid: Int32
    var host: String
    var start: Int64?

    static let current = ProcessIdentity(pid: getpid(), host: ProcessInfo.processInfo.hostName, start: startTime(of: getpid()))

    /// Linux: field 22 of /proc/PID/stat, clock ticks since boot; nil elsewhere.
    static func startTime(of pid: Int32) -> Int64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // After "pid (comm)" come fields 3, 4, …; field 22 is the 20th of them.
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? Int64(fields[19]) : nil
    }

    /// A process with this pid exists (kill(pid, 0) succeeds or is refused for permission)
    /// and, when both are known, started at the recorded time.
    static func isAlive(pid: Int, start: Int64?) -> Bool {
        guard pid > 0, let pid = Int32(exactly: pid) else { return false }
        if kill(pid, 0) != 0 && errno == ESRCH { return false }
        if let start, let now = startTime(of: pid), now != start { return false }
        return true
    }
}
