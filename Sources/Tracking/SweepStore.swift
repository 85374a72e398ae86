import Foundation
import GRDB

/// How a sweep chose its configurations: every combination, draws from the seed, or either
/// of those trained by successive halving.
public enum SweepKind: String, Sendable, CaseIterable {
    case grid, random, halving
}

/// Where a sweep is: training, stopped part-way (Ctrl-C; `sweep resume` carries on), or done.
public enum SweepState: String, Sendable {
    case running, interrupted, finished
}

/// Where one configuration of a sweep is: not started, trained up to its rung, or stopped by
/// successive halving.
public enum SweepMemberStatus: String, Sendable {
    case pending, trained, pruned
}

/// One configuration of a sweep: its swept values, the run training it (nil before it
/// starts) and the epochs it has reached.
public struct SweepMember: Sendable, Equatable {
    public var config: Int
    /// The swept values in the sweep's axis order: [(name, value)].
    public var settings: [SweepValue]
    public var run: Int64?
    public var epochs: Int
    public var status: SweepMemberStatus

    public init(config: Int, settings: [SweepValue], run: Int64? = nil, epochs: Int = 0, status: SweepMemberStatus = .pending) {
        self.config = config
        self.settings = settings
        self.run = run
        self.epochs = epochs
        self.status = status
    }

    /// "lr 1e-3, batch 64".
    public var text: String { settings.map { "\($0.name) \($0.value)" }.joined(separator: ", ") }
}

/// One swept setting's value in a configuration.
public struct SweepValue: Sendable, Equatable, Codable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A sweep's row and its configurations.
public struct SweepRecord: Sendable {
    public var id: Int64
    public var created: Date
    public var finished: Date?
    public var command: String
    public var kind: SweepKind
    public var state: SweepState
    /// The rung being trained (0-based index into the plan's rungs).
    public var rung: Int
    /// The plan as the session wrote it (JSON); the store does not read inside it.
    public var plan: String
    public var dataFingerprint: String
    public var members: [SweepMember]
}

/// The sweep tables (v8). Like every write, through the one store that owns the connection.
extension RunStore {
    /// A new sweep, `running`, with one pending row per configuration.
    public func createSweep(command: String, kind: SweepKind, plan: String, dataFingerprint: String,
                            configurations: [[SweepValue]]) throws -> Int64 {
        let encoder = JSONEncoder()
        return try write { db in
            try db.execute(sql: """
                INSERT INTO sweeps (session, created, command, kind, state, rung, plan, data_fingerprint)
                VALUES (?, ?, ?, ?, 'running', 0, ?, ?)
                """, arguments: [sessionID, Date().timeIntervalSince1970, command, kind.rawValue, plan, dataFingerprint])
            let id = db.lastInsertedRowID
            for (index, values) in configurations.enumerated() {
                let json = String(decoding: try encoder.encode(values), as: UTF8.self)
                try db.execute(sql: "INSERT INTO sweep_runs (sweep, config, settings, status) VALUES (?, ?, ?, 'pending')",
                               arguments: [id, index, json])
            }
            return id
        }
    }

    /// Links a configuration to the run that trains it, and tags the run with the sweep (a
    /// `sweep` param from epoch 1, so `runs where sweep = 3` finds them).
    public func linkSweepRun(sweep: Int64, config: Int, run: Int64) throws {
        try write { db in
            try requireRun(db, run)
            try db.execute(sql: "UPDATE sweep_runs SET run = ? WHERE sweep = ? AND config = ?", arguments: [run, sweep, config])
            try db.execute(sql: "INSERT INTO params (run, name, value, from_epoch) VALUES (?, 'sweep', ?, 1)",
                           arguments: [run, String(sweep)])
        }
    }

    /// A configuration reached `epochs` (the end of its rung).
    public func setSweepMember(sweep: Int64, config: Int, epochs: Int, status: SweepMemberStatus) throws {
        try write { db in
            try db.execute(sql: "UPDATE sweep_runs SET epochs = ?, status = ? WHERE sweep = ? AND config = ?",
                           arguments: [epochs, status.rawValue, sweep, config])
        }
    }

    /// Successive halving stops configurations after a rung: their rows say `pruned`, and so do
    /// their runs (not `failed`: nothing went wrong), in one transaction with the next rung.
    public func pruneSweepMembers(sweep: Int64, configs: [Int], nextRung: Int) throws {
        try write { db in
            for config in configs {
                try db.execute(sql: "UPDATE sweep_runs SET status = 'pruned' WHERE sweep = ? AND config = ?", arguments: [sweep, config])
                try db.execute(sql: """
                    UPDATE runs SET status = 'pruned', finished = coalesce(finished, ?)
                    WHERE id = (SELECT run FROM sweep_runs WHERE sweep = ? AND config = ?)
                    """, arguments: [Date().timeIntervalSince1970, sweep, config])
            }
            try db.execute(sql: "UPDATE sweeps SET rung = ? WHERE id = ?", arguments: [nextRung, sweep])
        }
    }

    public func setSweepState(_ sweep: Int64, _ state: SweepState) throws {
        try write { db in
            try db.execute(sql: "UPDATE sweeps SET state = ?, finished = ? WHERE id = ?",
                           arguments: [state.rawValue, state == .finished ? Date().timeIntervalSince1970 : nil, sweep])
        }
    }

    public func sweep(_ id: Int64) throws -> SweepRecord {
        try read { db in
            guard let sweep = try RunStore.sweeps(db, where: "id = ?", arguments: [id]).first else {
                throw TrackingError("no sweep \(id) in \(path); list them with: sweeps")
            }
            return sweep
        }
    }

    /// Every sweep, oldest first.
    public func sweeps() throws -> [SweepRecord] {
        try read { db in try RunStore.sweeps(db) }
    }

    static func sweeps(_ db: Database, where condition: String = "1", arguments: StatementArguments = []) throws -> [SweepRecord] {
        let decoder = JSONDecoder()
        return try Row.fetchAll(db, sql: """
            SELECT id, created, finished, command, kind, state, rung, plan, data_fingerprint FROM sweeps
            WHERE \(condition) ORDER BY id
            """, arguments: arguments).map { row in
            let id: Int64 = row[0]
            let members = try Row.fetchAll(db, sql: "SELECT config, settings, run, epochs, status FROM sweep_runs WHERE sweep = ? ORDER BY config",
                                           arguments: [id]).map { m in
                let json: String = m[1]
                let values = (try? decoder.decode([SweepValue].self, from: Data(json.utf8))) ?? []
                return SweepMember(config: m[0], settings: values, run: m[2], epochs: m[3],
                                   status: SweepMemberStatus(rawValue: m[4]) ?? .pending)
            }
            let kind: String = row[4], state: String = row[5]
            return SweepRecord(id: id, created: Date(timeIntervalSince1970: row[1]),
                               finished: (row[2] as Double?).map { Date(timeIntervalSince1970: $0) },
                               command: row[3], kind: SweepKind(rawValue: kind) ?? .grid,
                               state: SweepState(rawValue: state) ?? .interrupted, rung: row[6], plan: row[7],
                               dataFingerprint: row[8], members: members)
        }
    }
}
