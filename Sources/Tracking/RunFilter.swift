import Foundation

/// Which runs `runs` lists: `last N` (the default, 20, oldest first), `best N` (by best test
/// accuracy, best first), and `where KEY OP VALUE` conditions joined by `and` (a second
/// `where` works too), in any order: `runs where dataset = mnist last 5`.
///
/// KEY is a runs column (`accuracy`, `loss`, `epochs`, `seconds`, `dataset`, `status`,
/// `model`, `seed`, …, see `columnNames`) or a recorded setting (`lr`, `batch`, …). A setting
/// is compared with the value the run STARTED with (its from_epoch-first row), not with later
/// changes: `where lr = 3e-3` finds runs started at 3e-3 even if they dropped to 3e-4.
/// `model` is the recipe ("conv"), not the full description. OP is one of < <= > >= = !=.
/// When both sides read as numbers the comparison is numeric (`lr < 1e-3` is true for "3e-4");
/// otherwise it compares text, ignoring case. < <= > >= and a numeric column need a number
/// (`lr < abc` is refused, not answered by comparing text). A run without a value for KEY
/// never matches.
public struct RunFilter: Sendable, Equatable {
    public enum Order: Sendable, Equatable { case last(Int), best(Int) }
    public struct Condition: Sendable, Equatable {
        public var key: String, op: String, value: String
        public init(key: String, op: String, value: String) {
            self.key = key
            self.op = op
            self.value = value
        }
    }

    public var order: Order = .last(20)
    public var conditions: [Condition] = []

    public init(order: Order = .last(20), conditions: [Condition] = []) {
        self.order = order
        self.conditions = conditions
    }

    public static let usage = "runs [last N | best N] [where KEY OP VALUE [and KEY OP VALUE]…], e.g. runs where lr < 1e-3 last 5"
    static let operators = ["<", "<=", ">", ">=", "=", "==", "!="]

    /// Keys that name a runs column, whether it holds numbers, and the value each takes from a run.
    static let columns: [(names: [String], isNumber: Bool, value: @Sendable (RunSummary) -> String?)] = [
        (["id"], true, { String($0.id) }),
        (["accuracy", "best_accuracy"], true, { $0.bestAccuracy.map { String($0) } }),
        (["best_epoch"], true, { $0.bestEpoch.map(String.init) }),
        (["loss", "final_loss"], true, { $0.finalLoss.map { String($0) } }),
        (["epochs"], true, { String($0.epochs) }),
        (["seconds", "train_seconds"], true, { String($0.trainSeconds) }),
        (["dataset"], false, { $0.dataset }),
        (["status"], false, { $0.status }),
        (["model"], false, { $0.modelRecipe }),
        (["seed"], false, { $0.seed }),
        (["session"], true, { String($0.session) }),
        (["parameters", "parameter_count"], true, { String($0.parameterCount) }),
        (["checkpoint"], false, { $0.checkpoint }),
        (["note"], false, { $0.note }),
    ]

    /// The column keys `where` understands.
    public static var columnNames: [String] { columns.flatMap(\.names) }

    static func isColumn(_ key: String) -> Bool { columns.contains { $0.names.contains(key) } }

    public static func parse(_ input: [String]) throws -> RunFilter {
        let words = splitOperators(input)
        var filter = RunFilter()
        var i = 0
        func count(after word: String) throws -> Int {
            guard i + 1 < words.count, let n = Int(words[i + 1]), n > 0 else {
                let got = i + 1 < words.count ? "'\(words[i + 1])'" : "nothing"
                throw TrackingError("'\(word)' needs a positive count (got \(got)), e.g. \(word) 5; usage: \(usage)")
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
                    let got = words[(i + 1)...].prefix(3).joined(separator: " ")
                    throw TrackingError("'\(word)' needs KEY OP VALUE with OP one of < <= > >= = != (got '\(got)'); usage: \(usage)")
                }
                let key = words[i + 1].lowercased()
                guard !operators.contains(key), !["last", "best", "where", "and"].contains(key) else {
                    throw TrackingError("'\(word)' needs a KEY before '\(words[i + 2])'; usage: \(usage)")
                }
                let op = words[i + 2] == "==" ? "=" : words[i + 2]
                let value = words[i + 3]
                // A number compared with a word would hold for some runs by accident (as text)
                // or for none; either way the listing would answer another question.
                let numeric = ["<", "<=", ">", ">="].contains(op) || columns.contains { $0.isNumber && $0.names.contains(key) }
                if numeric, Double(value).map({ !$0.isFinite }) ?? true {
                    throw TrackingError("'\(key) \(op) \(value)' compares \(key) with '\(value)', which is not a number; e.g. runs where \(key) \(op) 0.001 (= and != compare text settings such as dataset = mnist)")
                }
                filter.conditions.append(Condition(key: key, op: op, value: value))
                i += 4
            default:
                throw TrackingError("unexpected '\(words[i])' (expected last, best or where); usage: \(usage)")
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

    /// Whether `condition` holds for a value; nil (no value) never matches.
    static func holds(_ lhs: String?, _ op: String, _ rhs: String) -> Bool {
        guard let lhs else { return false }
        let order: ComparisonResult
        if let a = Double(lhs), let b = Double(rhs), a.isFinite, b.isFinite {
            order = a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        } else {
            order = lhs.caseInsensitiveCompare(rhs)
        }
        switch op {
        case "<": return order == .orderedAscending
        case "<=": return order != .orderedDescending
        case ">": return order == .orderedDescending
        case ">=": return order != .orderedAscending
        case "!=": return order != .orderedSame
        default: return order == .orderedSame
        }
    }

    /// `runs` (by id) narrowed by the conditions and ordered; `initialParams[run][name]` is
    /// the value each setting started with.
    func apply(to runs: [RunSummary], initialParams: [Int64: [String: String]]) -> [RunSummary] {
        let kept = runs.filter { run in
            conditions.allSatisfy { c in
                let value = RunFilter.columns.first { $0.names.contains(c.key) }.map { $0.value(run) }
                    ?? initialParams[run.id]?[c.key]
                return RunFilter.holds(value, c.op, c.value)
            }
        }
        switch order {
        case .last(let n):
            return Array(kept.sorted { $0.id < $1.id }.suffix(n))
        case .best(let n):
            return Array(kept.filter { $0.bestAccuracy != nil }
                .sorted { ($0.bestAccuracy!, -$0.id) > ($1.bestAccuracy!, -$1.id) }.prefix(n))
        }
    }
}
