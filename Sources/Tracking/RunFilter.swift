import Foundation

/// Which runs `runs`, `compare`, `plot`, `report` and `diff` take (one grammar for all):
/// ids and ranges (`3`, `1-4`, `2 5 7`), `last N` (the default for `runs`, 20, oldest first),
/// `best N` (by best accuracy, best first), `all` (no count limit), `archived` (only archived
/// runs), and `where KEY OP VALUE` conditions joined by `and` (a second `where` works too), in
/// any order: `runs where dataset = mnist last 5`, `compare 1-10 where lr < 1e-3`.
///
/// Named ids are taken in the order given, archived or not, and an unknown single id is an
/// error; a range skips ids that are gone. Everything else leaves archived runs out.
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
    /// `all`: every selected run, oldest first (ids and ranges alone: in the order named).
    public enum Order: Sendable, Equatable { case last(Int), best(Int), all }
    /// Archived runs are hidden from lists unless asked for (`runs archived`, or by id).
    public enum Archived: Sendable, Equatable { case hidden, only, included }
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
    /// Runs named one by one (`3`, `4`), which must exist, and by range (`1-4`), in order.
    public var ids: [Int64] = []
    public var rangeIDs: Set<Int64> = []
    public var archived: Archived = .hidden

    public init(order: Order = .last(20), conditions: [Condition] = [], ids: [Int64] = [], archived: Archived = .hidden) {
        self.order = order
        self.conditions = conditions
        self.ids = ids
        self.archived = archived
    }

    /// No word at all: the caller's default applies (this session's runs for `compare`).
    public var isEmpty: Bool { self == RunFilter() }

    public static let usage = "runs [IDS | A-B] [last N | best N | all | archived] [where KEY OP VALUE [and KEY OP VALUE]…], e.g. runs where lr < 1e-3 last 5 (compare, plot, report and diff take the same: compare 1-4)"
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
        (["name"], false, { $0.name }),
    ]

    /// The column keys `where` understands.
    public static var columnNames: [String] { columns.flatMap(\.names) }

    static func isColumn(_ key: String) -> Bool { key == "tag" || columns.contains { $0.names.contains(key) } }

    public static func parse(_ input: [String]) throws -> RunFilter {
        let words = splitOperators(input)
        var filter = RunFilter()
        var orderNamed = false
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
                filter.order = .last(try count(after: word)); i += 2; orderNamed = true
            case "best":
                filter.order = .best(try count(after: word)); i += 2; orderNamed = true
            case "all":
                filter.order = .all; i += 1; orderNamed = true
            case "archived":
                filter.archived = .only; i += 1
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
                guard let named = try idsNamed(by: words[i]) else {
                    throw TrackingError("unexpected '\(words[i])' (expected a run id, A-B, last, best, all, archived or where); usage: \(usage)")
                }
                if named.count == 1 && !words[i].contains("-") {
                    filter.ids.append(named[0])
                } else {
                    filter.ids += named
                    filter.rangeIDs.formUnion(named)
                }
                i += 1
            }
        }
        // Runs named by id are all wanted, however many, unless a count says otherwise.
        if !filter.ids.isEmpty && !orderNamed { filter.order = .all }
        return filter
    }

    /// "3" → [3], "1-4" → [1, 2, 3, 4]; nil for a word that is neither.
    static func idsNamed(by word: String) throws -> [Int64]? {
        let parts = word.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else { return nil }
        guard let first = Int64(parts[0]), let last = Int64(parts[parts.count - 1]), first >= 1 else {
            throw TrackingError("run ids are whole numbers ≥ 1 (got '\(word)'); see them with: runs")
        }
        guard first <= last else {
            throw TrackingError("'\(word)' is not a range of runs: write the lower id first, e.g. 1-4")
        }
        guard last - first < 10_000 else {
            throw TrackingError("'\(word)' spans more than 10000 runs; give a narrower range, or all, last N or where KEY OP VALUE")
        }
        return Array(first...last)
    }

    /// Whether a word begins a run selection (an id, a range or a keyword), so a command that
    /// takes other words too (`plot METRIC`, `report FILE`) can tell them apart.
    public static func startsSelection(_ word: String) -> Bool {
        ["last", "best", "all", "archived", "where", "and"].contains(word.lowercased()) || (try? idsNamed(by: word)) != nil
            || word.allSatisfy { $0.isNumber || $0 == "-" } && !word.isEmpty
    }

    /// How many words belong to a selection keyword: 1 after `last`/`best`, 3 after `where`/`and`.
    public static func wordsAfter(_ word: String) -> Int {
        switch word.lowercased() {
        case "last", "best": 1
        case "where", "and": 3
        default: 0
        }
    }

    /// "lr<1e-3" → "lr", "<", "1e-3", so spaces around operators are optional.
    public static func splitOperators(_ words: [String]) -> [String] {
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
        let named = Set(ids)
        let kept = runs.filter { run in
            if !named.isEmpty && !named.contains(run.id) { return false }
            switch archived {
            case .hidden where run.archived && named.isEmpty: return false
            case .only where !run.archived: return false
            default: break
            }
            return conditions.allSatisfy { c in
                // A run has many tags: `tag = x` holds when one of them is x, `tag != x` when none is.
                if c.key == "tag" {
                    let matches = run.tags.contains { RunFilter.holds($0, "=", c.value) }
                    return c.op == "!=" ? !matches : c.op == "=" ? matches : run.tags.contains { RunFilter.holds($0, c.op, c.value) }
                }
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
        case .all where !ids.isEmpty:
            // In the order named: `compare 4 3` puts run 4 first.
            let byID = Dictionary(kept.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            var seen = Set<Int64>()
            return ids.compactMap { id in seen.insert(id).inserted ? byID[id] : nil }
        case .all:
            return kept.sorted { $0.id < $1.id }
        }
    }
}
