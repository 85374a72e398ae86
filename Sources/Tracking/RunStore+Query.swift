import Foundation
import GRDB
import GRDBSQLite

/// What a user's query (`sql`) may cost: a runaway one (a recursive CTE without end, a cross
/// join of the metrics) is stopped after `seconds`, and at most `rows` rows are kept in memory;
/// the rest are only counted.
public struct QueryLimits: Sendable {
    public var seconds: Double
    public var rows: Int

    public init(seconds: Double = 30, rows: Int = 1000) {
        self.seconds = seconds
        self.rows = rows
    }
}

/// A user's query's answer: every value as text (NULL as "NULL").
public struct QueryResult: Sendable {
    public var columns: [String]
    /// The first `QueryLimits.rows` rows.
    public var rows: [[String]]
    /// Rows beyond those kept; a lower bound when `countStopped`.
    public var rowsNotShown: Int
    /// The time limit or Ctrl-C came while only counting the rows not shown.
    public var countStopped: Bool
}

extension RunStore {
    /// A user's read-only SQL (the `sql` command). Three guards: the text must start with
    /// SELECT, WITH, VALUES, EXPLAIN or a PRAGMA without `=`; SQLite must judge the statement
    /// read-only; and it runs on a connection opened with SQLITE_OPEN_READONLY. A progress
    /// handler stops it at `limits.seconds` or when `isInterrupted` (Ctrl-C) says so.
    public func query(_ sql: String, limits: QueryLimits = QueryLimits(),
                      isInterrupted: @escaping @Sendable () -> Bool = { false }) throws -> QueryResult {
        try RunStore.checkReadOnly(sql)
        let watch = QueryWatch(deadline: Date().addingTimeInterval(limits.seconds), isInterrupted: isInterrupted)
        var columns: [String] = [], rows: [[String]] = [], notShown = 0
        do {
            try pool.read { db in
                let statement = try db.makeStatement(sql: sql)
                guard statement.isReadonly else { throw RunStore.refusal }
                columns = statement.columnNames
                try watch.watching(db) {
                    let cursor = try Row.fetchCursor(statement)
                    while let row = try cursor.next() {
                        if rows.count < limits.rows { rows.append(RunStore.texts(row)) } else { notShown += 1 }
                    }
                }
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_INTERRUPT {
            // Stopped while only counting what is not shown: the rows kept are still an answer.
            if rows.count == limits.rows, limits.rows > 0 {
                return QueryResult(columns: columns, rows: rows, rowsNotShown: notShown, countStopped: true)
            }
            throw watch.stopReason(limits)
        } catch let error as DatabaseError {
            throw TrackingError("sql: \(error.message ?? "\(error.resultCode)")")
        }
        return QueryResult(columns: columns, rows: rows, rowsNotShown: notShown, countStopped: false)
    }

    static func texts(_ row: Row) -> [String] {
        (0..<row.count).map { i in
            switch (row[i] as DatabaseValue).storage {
            case .null: "NULL"
            case .int64(let v): String(v)
            case .double(let v): String(format: "%.6g", v)
            case .string(let s): s
            case .blob(let d): "<\(d.count) bytes>"
            }
        }
    }

    static let refusal = TrackingError("sql: only read-only queries run here (SELECT, WITH, PRAGMA name, EXPLAIN); the database is changed only by ollie's own commands")

    static func checkReadOnly(_ sql: String) throws {
        // Skip leading blanks and comments to find the first keyword.
        var rest = Substring(sql)
        while true {
            rest = rest.drop(while: { $0.isWhitespace })
            if rest.hasPrefix("--") { rest = rest.drop(while: { $0 != "\n" }) }
            else if rest.hasPrefix("/*"), let end = rest.range(of: "*/") { rest = rest[end.upperBound...] }
            else { break }
        }
        let keyword = rest.prefix(while: { $0.isLetter }).uppercased()
        guard !keyword.isEmpty else { throw TrackingError("sql: nothing to run; e.g. sql SELECT id, best_accuracy FROM runs") }
        switch keyword {
        case "SELECT", "WITH", "VALUES", "EXPLAIN":
            return
        case "PRAGMA":
            // `PRAGMA x = v` and `PRAGMA x(v)` set things; only the listed ones take an argument to read.
            let name = rest.dropFirst(6).drop(while: { $0.isWhitespace })
                .prefix(while: { $0.isLetter || $0 == "_" || $0 == "." }).split(separator: ".").last.map { $0.lowercased() } ?? ""
            if rest.contains("=") || (rest.contains("(") && !readablePragmas.contains(name)) { throw refusal }
            return
        default:
            throw refusal
        }
    }

    /// Pragmas whose argument names what to read.
    static let readablePragmas: Set<String> = [
        "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
        "foreign_key_check", "integrity_check", "quick_check",
    ]
}

/// SQLite's progress handler for one query: every `instructions` virtual-machine steps it asks
/// whether the deadline has passed or Ctrl-C came, and a yes makes the statement fail with
/// SQLITE_INTERRUPT on that connection only (`sqlite3_interrupt` would stop every connection).
final class QueryWatch: @unchecked Sendable {
    let deadline: Date
    let isInterrupted: @Sendable () -> Bool
    private(set) var interruptedByUser = false
    static let instructions: Int32 = 10_000

    init(deadline: Date, isInterrupted: @escaping @Sendable () -> Bool) {
        self.deadline = deadline
        self.isInterrupted = isInterrupted
    }

    func shouldStop() -> Bool {
        if isInterrupted() { interruptedByUser = true; return true }
        return Date() >= deadline
    }

    /// Runs `body` with the handler installed on `db`, and removes it after.
    func watching(_ db: Database, _ body: () throws -> Void) throws {
        let context = Unmanaged.passUnretained(self).toOpaque()
        sqlite3_progress_handler(db.sqliteConnection, QueryWatch.instructions, { context in
            Unmanaged<QueryWatch>.fromOpaque(context!).takeUnretainedValue().shouldStop() ? 1 : 0
        }, context)
        defer { sqlite3_progress_handler(db.sqliteConnection, 0, nil, nil) }
        try withExtendedLifetime(self) { try body() }
    }

    func stopReason(_ limits: QueryLimits) -> TrackingError {
        interruptedByUser
            ? TrackingError("sql: interrupted (Ctrl-C); the query was stopped and the database is unchanged")
            : TrackingError("sql: stopped after \(String(format: "%g", limits.seconds)) s, the time limit for one query; narrow it (WHERE, LIMIT) or check a recursive query ends")
    }
}
