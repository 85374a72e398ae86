import Foundation
import GRDB

/// Everything of one run an export sends, read in one transaction with the state it describes
/// (`state`), so what is marked as sent is exactly what was read.
public struct RunExportSnapshot: Sendable {
    public var summary: RunSummary
    /// Every setting's history, oldest first.
    public var params: [ParamHistory]
    /// Every metric row, by epoch then name; `time` in Unix seconds.
    public var metrics: [(epoch: Int, name: String, value: Double, time: Double)]
    public var events: [(epoch: Int, kind: String, detail: String)]
    /// The database's identity (`database_identity.uuid`).
    public var databaseID: String
    /// A fingerprint of the run's rows (status, end, note, last metric/event/param rowids):
    /// equal fingerprints, nothing new to send.
    public var state: String
}

/// A run asked to be on an MLflow server (`mlflow_exports` row).
public struct MLflowExportMark: Sendable, Equatable {
    public var run: Int64
    public var server: String
    public var experiment: String
    /// The MLflow run it became, once created.
    public var mlflowRun: String?
    /// The last failure, while the run waits.
    public var error: String?
}

extension RunStore {
    /// The run's state as one comparable text; SQL so `mlflowBacklog` compares it in the query.
    /// `run` is the SQL expression of the run's id.
    static func exportStateSQL(_ run: String) -> String {
        """
        (SELECT r.status || '|' || coalesce(r.finished, '') || '|' || r.epochs || '|' || coalesce(r.note, '') || '|'
            || coalesce((SELECT max(rowid) FROM metrics WHERE run = r.id), 0) || '|'
            || coalesce((SELECT max(rowid) FROM events WHERE run = r.id), 0) || '|'
            || coalesce((SELECT max(rowid) FROM params WHERE run = r.id), 0)
         FROM runs r WHERE r.id = \(run))
        """
    }

    /// This file's identity, the same for every process that opens it.
    public func databaseIdentity() throws -> String {
        try read { db in try String.fetchOne(db, sql: "SELECT uuid FROM database_identity LIMIT 1") ?? "" }
    }

    /// One run with every setting, metric and event, for an export.
    public func exportSnapshot(run: Int64) throws -> RunExportSnapshot {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE id = ?", arguments: [run]) else {
                throw TrackingError("no run \(run) in the run database \(path); list them with: runs")
            }
            var params: [ParamHistory] = []
            for p in try Row.fetchAll(db, sql: RunStore.appliedParamsSQL, arguments: [run, run, run]) {
                let name: String = p[0]
                if let i = params.firstIndex(where: { $0.name == name }) { params[i].values.append((p[1], p[2])) }
                else { params.append(ParamHistory(name: name, values: [(p[1], p[2])])) }
            }
            let metrics = try Row.fetchAll(db, sql: "SELECT epoch, name, value, time FROM metrics WHERE run = ? ORDER BY epoch, name", arguments: [run])
                .map { (epoch: $0[0] as Int, name: $0[1] as String, value: $0[2] as Double, time: $0[3] as Double) }
            let events = try Row.fetchAll(db, sql: "SELECT epoch, kind, detail FROM events WHERE run = ? ORDER BY epoch, rowid", arguments: [run])
                .map { (epoch: $0[0] as Int, kind: $0[1] as String, detail: $0[2] as String) }
            let identity = try String.fetchOne(db, sql: "SELECT uuid FROM database_identity LIMIT 1") ?? ""
            let state = try String.fetchOne(db, sql: "SELECT \(RunStore.exportStateSQL("?"))", arguments: [run]) ?? ""
            return RunExportSnapshot(summary: RunStore.summary(row), params: params, metrics: metrics, events: events,
                                     databaseID: identity, state: state)
        }
    }

    /// Marks runs as asked to be on `server`'s `experiment` (kept until they are sent; marking
    /// again changes nothing).
    public func markForMLflow(runs: [Int64], server: String, experiment: String) throws {
        try write { db in
            for run in runs {
                try requireRun(db, run)
                try db.execute(sql: "INSERT OR IGNORE INTO mlflow_exports (run, server, experiment) VALUES (?, ?, ?)",
                               arguments: [run, server, experiment])
            }
        }
    }

    /// The run's mark for that server and experiment, if it has one.
    public func mlflowMark(run: Int64, server: String, experiment: String) throws -> MLflowExportMark? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT mlflow_run, error FROM mlflow_exports WHERE run = ? AND server = ? AND experiment = ?",
                             arguments: [run, server, experiment]).map {
                MLflowExportMark(run: run, server: server, experiment: experiment, mlflowRun: $0[0], error: $0[1])
            }
        }
    }

    /// The MLflow run a run became (recorded as soon as it exists, so it is never created twice).
    /// This and the two below change a run's mark only: a run no longer marked (`forget`) stays so.
    public func recordMLflowRun(run: Int64, server: String, experiment: String, mlflowRun: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE mlflow_exports SET mlflow_run = ? WHERE run = ? AND server = ? AND experiment = ?",
                           arguments: [mlflowRun, run, server, experiment])
        }
    }

    /// Everything in `state` reached the server.
    public func recordMLflowSent(run: Int64, server: String, experiment: String, state: String) throws {
        try write { db in
            try db.execute(sql: """
                UPDATE mlflow_exports SET sent_state = ?, sent = ?, error = NULL, error_time = NULL
                WHERE run = ? AND server = ? AND experiment = ?
                """, arguments: [state, Date().timeIntervalSince1970, run, server, experiment])
        }
    }

    /// Why the run is not on the server yet (it stays marked, to be sent later).
    public func recordMLflowFailure(run: Int64, server: String, experiment: String, error: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE mlflow_exports SET error = ?, error_time = ? WHERE run = ? AND server = ? AND experiment = ?",
                           arguments: [error, Date().timeIntervalSince1970, run, server, experiment])
        }
    }

    /// Runs marked for an MLflow server whose recorded state is not yet all there, by run.
    public func mlflowBacklog() throws -> [MLflowExportMark] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT e.run, e.server, e.experiment, e.mlflow_run, e.error FROM mlflow_exports e
                WHERE e.sent_state IS NULL OR e.sent_state != \(RunStore.exportStateSQL("e.run"))
                ORDER BY e.run, e.server, e.experiment
                """).map { MLflowExportMark(run: $0[0], server: $0[1], experiment: $0[2], mlflowRun: $0[3], error: $0[4]) }
        }
    }

    /// Drops the marks of runs waiting for `server` (`export mlflow URL forget`): they are no
    /// longer retried or listed. What already reached the server is untouched. Returns how many.
    public func forgetMLflowBacklog(server: String) throws -> Int {
        let waiting = try mlflowBacklog().filter { $0.server == server }
        try write { db in
            for mark in waiting {
                try db.execute(sql: "DELETE FROM mlflow_exports WHERE run = ? AND server = ? AND experiment = ?",
                               arguments: [mark.run, mark.server, mark.experiment])
            }
        }
        return waiting.count
    }
}
