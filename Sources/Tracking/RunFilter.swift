import GRDB

/// Which runs `runs` lists: `last N`, `best N`, and `where KEY OP VALUE` conditions (joined by
/// AND). KEY is a runs column (accuracy, loss, epochs, seconds, dataset, status, model, seed,
/// id) or a setting (lr, batch, …), compared with the value it had when the run started.
public struct RunFilter: Sendable, Equatable {
    public enum Order: Sendable, Equatable { case last(Int), best(Int) }
    public struct Condition: Sendable, Equatable {
        public var key: String, op: String, value: String
    }

    public var order: Order = .last(20)
    public var conditions: [Condition] = []

    public init() {}

    public static let usage = "runs [last N | best N] [where KEY OP VALUE [and …]], e.g. runs where lr < 1e-3 last 5"
    static let columns = ["id": "id", "accuracy": "best_accuracy", "best_accuracy": "best_accuracy", "best_epoch": "best_epoch",
                          "loss": "final_loss", "final_loss": "final_loss", "epochs": "epochs", "seconds": "train_seconds",
                          "train_seconds": "train_seconds", "dataset": "dataset", "status": "status", "model": "model",
                          "seed": "seed", "session": "session", "parameters": "parameter_count", "parameter_count": "parameter_count"]
    static let operators = ["<", "<=", ">", ">=", "=", "==", "!="]

    public static func parse(_ input: [String]) throws -> RunFilter {
        let words = splitOperators(input)
        var filter = RunFilter()
        var i = 0
        func count(after word: String) throws -> Int {
            guard i + 1 < words.count, let n = Int(words[i + 1]), n > 0 else {
                throw TrackingError("'\(word)' needs a count, e.g. \(word) 5; usage: \(usage)")
            }
            return n
        }
        while i < words.count {
            let word = words[i].lowercased()
            switch word {
            case "last":
                filter.order = .last(try count(after: word)); i += 2
            case "best":
                filter.order = .best(try count(after: word)); i += 2
            case "where", "and":
                guard i + 3 < words.count, operators.contains(words[i + 2]) else {
                    throw TrackingError("'where' needs KEY OP VALUE with OP one of < <= > >= = !=; usage: \(usage)")
                }
                let op = words[i + 2] == "==" ? "=" : words[i + 2]
                filter.conditions.append(Condition(key: words[i + 1].lowercased(), op: op, value: words[i + 3]))
                i += 4
            default:
                throw TrackingError("unexpected '\(words[i])'; usage: \(usage)")
            }
        }
        return filter
    }

    /// "lr<1e-3" → "lr", "<", "1e-3", so spaces around operators are optional.
    static func splitOperators(_ words: [String]) -> [String] {
        words.flatMap { word -> [String] in
            guard !operators.contains(word),
                  let op = ["<=", ">=", "!=", "==", "<", ">", "="].first(where: { word.contains($0) }) else { return [word] }
            let parts = word.components(separatedBy: op)
            guard parts.count == 2 else { return [word] }
            return [parts[0], op, parts[1]].filter { !$0.isEmpty }
        }
    }

    func sql() -> (String, StatementArguments) {
        var clauses: [String] = []
        var arguments: [DatabaseValueConvertible?] = []
        for c in conditions {
            let numeric = Double(c.value) != nil
            let subject: String
            if let column = RunFilter.columns[c.key] {
                subject = column
            } else {
                subject = "(SELECT p.value FROM params p WHERE p.run = runs.id AND p.name = ? ORDER BY p.from_epoch, p.rowid LIMIT 1)"
                arguments.append(c.key)
            }
            clauses.append(numeric ? "CAST(\(subject) AS REAL) \(c.op) ?" : "\(subject) \(c.op) ?")
            arguments.append(numeric ? Double(c.value)! : c.value)
        }
        let whereClause = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let sql: String
        switch order {
        case .last(let n):
            sql = "SELECT * FROM (SELECT * FROM runs \(whereClause) ORDER BY id DESC LIMIT \(n)) ORDER BY id"
        case .best(let n):
            sql = "SELECT * FROM runs \(whereClause) \(whereClause.isEmpty ? "WHERE" : "AND") best_accuracy IS NOT NULL ORDER BY best_accuracy DESC, id LIMIT \(n)"
        }
        return (sql, StatementArguments(arguments))
    }
}
