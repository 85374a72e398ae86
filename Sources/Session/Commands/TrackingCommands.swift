import Files
import Foundation
import Tracking

extension Session {
    static let trackingCommands: [Command] = [
        Command("runs", usage: "runs [IDS | A-B | last N | best N | all | archived | where KEY OP VALUE]...",
                summary: "List recorded runs, one line each; filter by id, recency, best accuracy, a setting, a name or a tag (`all` includes archived runs).",
                example: "runs where tag = baseline", arity: 0...12,
                completion: .words(["last", "best", "all", "archived", "where"])) { session, args, console in
            let store = try session.requireStore()
            var filter = try RunFilter.parse(args)
            // `runs all` is the one list that shows archived runs beside the others.
            if filter.order == .all && filter.ids.isEmpty && filter.archived == .hidden { filter.archived = .included }
            let runs = try store.runs(filter)
            if runs.isEmpty {
                let total = try store.runCount()
                console.write(total == 0 ? "no runs recorded yet; train one: train 1"
                    : "no runs match \(args.joined(separator: " ")) (of \(total) recorded run\(total == 1 ? "" : "s")); runs all lists them all")
            } else {
                console.write(RunsTable.render(runs))
            }
            for line in session.mlflowBacklogLines() { console.write(line) }
        },
        Command("compare", usage: "compare [RUNS]",
                summary: "Side-by-side table of runs (default: this session's, else the newest): differing settings and results, best marked *. RUNS: 3 4, 1-4, last 3, all, where KEY OP VALUE.",
                example: "compare 1-4", arity: 0...32, completion: .words(["last", "best", "all", "where"])) { session, args, console in
            let comparison = try session.comparison(args, console)
            console.write(CompareTable.render(comparison, width: terminalWidth()))
        },
        Command("plot", usage: "plot [METRIC] [RUNS]",
                summary: "Chart a metric per epoch (test_accuracy, train_loss, learning_rate, …) for runs, in the terminal; `plot lr` draws a moving schedule's rate by step. RUNS as for compare.",
                example: "plot train_loss last 3", arity: 0...33,
                completion: .words(Metric.allCases.map(\.rawValue) + ["lr"])) { session, args, console in
            var words = args
            // The first word is the metric unless it already selects runs (a number, a range, last…).
            var named = words.first.flatMap { RunFilter.startsSelection($0) ? nil : $0 }
            if named != nil { words.removeFirst() }
            if named?.lowercased() == "lr" { named = Metric.learningRate.rawValue }
            let comparison = try session.comparison(words, console)
            // By default, the accuracy that chose the runs' best epochs.
            let metric = named ?? (comparison.runs.contains { $0.selectedOn == .validation } ? Metric.valAccuracy : .testAccuracy).rawValue
            // Recorded per step (a moving schedule's rate): drawn by step.
            let steps = comparison.runs.filter { !($0.stepMetrics[metric] ?? []).isEmpty }
            if !steps.isEmpty {
                let series = steps.map { run in (label: "run \(run.id)", values: run.stepMetrics[metric]!.map { (epoch: $0.step, value: $0.value) }) }
                let left = comparison.runs.count - steps.count
                console.write(TerminalPlot.render(series: series, title: "\(metric) by step", width: min(terminalWidth(), 100), height: 16,
                                                  color: console.isInteractive, bounds: 0...Double.greatestFiniteMagnitude, xLabel: "step")
                    + (left > 0 ? "\n(\(left) run\(left == 1 ? "" : "s") without a per-step \(metric): not drawn)" : ""))
                return
            }
            let series = comparison.runs.map { run in
                (label: "run \(run.id)", values: run.metricSeries(metric))
            }
            guard series.contains(where: { !$0.values.isEmpty }) else {
                throw CommandError("no '\(metric)' values for these runs; metrics: \(Metric.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            // Every metric is ≥ 0, and an accuracy ≤ 1: the axis never shows values that cannot be.
            let bounds: ClosedRange<Double> = metric.hasSuffix("accuracy") ? 0...1 : 0...Double.greatestFiniteMagnitude
            console.write(TerminalPlot.render(series: series, title: metric, width: min(terminalWidth(), 100),
                                              height: 16, color: console.isInteractive, bounds: bounds))
        },
        Command("report", usage: "report [RUNS] [md|csv [wide]|html [FILE]] | [RUNS] FILE.md|.csv|.html",
                summary: "Write the runs as Markdown, CSV (long: run,epoch,metric,value, as pandas reads; csv wide: the compare table), or a self-contained HTML page with charts.",
                example: "report html reports/lr.html", arity: 0...34, completion: .words(["md", "csv", "html"])) { session, args, console in
            try session.report(args, console)
        },
        Command("note", usage: "note TEXT", summary: "Attach a note to the current run.",
                example: "note \"lr 1e-3 looks smoother\"", arity: 1...1000) { session, args, console in
            let store = try session.requireStore()
            guard let run = session.runID else { throw CommandError("no current run; notes attach to a run: build conv, then train 1") }
            try store.setNote(run: run, args.joined(separator: " "))
            session.mlflowRunChanged(run)
            console.write("note saved on run \(run)")
        },
        Command("sql", usage: "sql SELECT ...",
                summary: "Run a read-only SQL query on the run database and print the rows (at most \(Session.queryLimits.rows); a query is stopped after \(Int(Session.queryLimits.seconds)) s or by Ctrl-C).",
                example: "sql select id, best_accuracy from runs where dataset = 'mnist' order by 2 desc limit 3",
                arity: 1...1, takesRawText: true) { session, args, console in
            let store = try session.requireStore()
            let result = try store.query(Session.queryText(args[0]), limits: Session.queryLimits, isInterrupted: session.isInterrupted)
            var table = TextTable(header: result.columns)
            for row in result.rows { table.add(row) }
            console.write(table.render() + "\n" + Session.rowCountLine(result))
        },
    ]

    /// What one `sql` query may take (documented in its help line).
    static let queryLimits = QueryLimits(seconds: 30, rows: 1000)

    /// `sql "select 1"`: a query typed as one quoted word is the text inside the quotes.
    static func queryText(_ typed: String) -> String {
        guard let first = typed.first, first == "\"" || first == "'",
              let segments = try? LineParser.segments(in: typed), segments.count == 1,
              segments[0].words.count == 1, segments[0].text == typed else { return typed }
        return segments[0].words[0]
    }

    /// "(3 rows)", or how many were left out and how to see them.
    static func rowCountLine(_ result: QueryResult) -> String {
        let shown = result.rows.count
        guard result.rowsNotShown > 0 || result.countStopped else { return "(\(shown) row\(shown == 1 ? "" : "s"))" }
        let more = result.countStopped ? "at least \(result.rowsNotShown) more (counting stopped)" : "\(result.rowsNotShown) more"
        return "(the first \(shown) rows; \(more) not shown: narrow the query with WHERE, or page with LIMIT \(shown) OFFSET \(shown))"
    }

    func requireStore() throws -> RunStore {
        guard let store else { throw CommandError(storeProblem ?? "no run database") }
        return store
    }

    /// The runs a selection names (`3 4`, `1-4`, `last 3`, `all`, `where lr < 1e-3`: one
    /// grammar, RunFilter's). With none: this session's runs or, in a process that has not
    /// recorded any (a new `ollie -c compare`), the database's newest, saying so.
    func selectedRunIDs(_ args: [String], _ console: Console) throws -> [Int64] {
        let store = try requireStore()
        let filter = try RunFilter.parse(args)
        if !filter.isEmpty {
            let ids = try store.runs(filter).map(\.id)
            guard !ids.isEmpty else { throw CommandError("no runs match '\(args.joined(separator: " "))'; see them with: runs all") }
            return ids
        }
        let mine = try store.sessionRunIDs()
        if !mine.isEmpty { return mine }
        let newest = try store.runs(RunFilter(order: .last(Session.newestShown))).map(\.id)
        guard !newest.isEmpty else { throw CommandError("no runs recorded yet; train one: train 1") }
        console.write("(no runs in this session: the newest \(newest.count) of the database; choose others with 1-4, last N, all, where KEY OP VALUE)")
        return newest
    }

    /// How many runs a selection-less `compare` shows from earlier sessions: four fit 80 columns.
    static let newestShown = 4

    func comparison(_ args: [String], _ console: Console) throws -> Comparison {
        Comparison(monitoring: try requireStore().comparison(of: try selectedRunIDs(args, console)).runs)
    }

    /// `report [IDS] [md|csv|html [FILE]]` or `report [IDS] FILE.md|.csv|.html`: a file is only
    /// ever a word after the format, or one whose extension names a format; any other word is
    /// a mistake, never a path to create.
    func report(_ args: [String], _ console: Console) throws {
        let formats = ["md": "md", "markdown": "md", "csv": "csv", "html": "html"]
        let usage = "usage: report [RUNS] [md|csv [wide]|html [FILE]], or report [RUNS] FILE.md|FILE.csv|FILE.html"
        var ids: [String] = [], format: String?, file: String?
        var afterFormat = false
        var wide = false
        var selectionWords = 0   // words still owed to `where KEY OP VALUE` or `last N`
        for word in args {
            if selectionWords > 0 {
                ids.append(word)
                // "lr<1e-3" is a whole condition in one word.
                selectionWords = RunFilter.splitOperators([word]).count >= 3 ? 0 : selectionWords - RunFilter.splitOperators([word]).count
                continue
            }
            if RunFilter.startsSelection(word) {
                ids.append(word)
                selectionWords = RunFilter.wordsAfter(word)
                continue
            }
            if format == nil, let known = formats[word.lowercased()] { format = known; afterFormat = true; continue }
            // CSV comes long (one number a row) unless the compare table's layout is asked for.
            if format == "csv", file == nil, ["wide", "long"].contains(word.lowercased()) { wide = word.lowercased() == "wide"; continue }
            let ext = URL(fileURLWithPath: word).pathExtension.lowercased()
            guard file == nil, afterFormat || formats[ext] != nil else {
                throw CommandError("'\(word)' is not a run id, a format or a file ending in .md, .csv or .html; \(usage)")
            }
            if let byName = formats[ext] {
                if let format, format != byName {
                    throw CommandError("\(word) ends in .\(ext) but the format asked for is \(format); \(usage)")
                }
                format = byName
            }
            file = word
            afterFormat = false
        }
        let chosenFormat = format ?? "md"
        let comparison = try comparison(ids, console)
        let text: String
        switch chosenFormat {
        case "csv": text = wide ? Report.csv(comparison) : Report.csvLong(comparison)
        // The runs of one sweep: the sweep's page, with its parallel-coordinates chart.
        case "html": text = try commonSweep(comparison).map { try sweepReportHTML($0, only: Set(comparison.runs.map(\.id))).html }
            ?? Report.html(comparison)
        default: text = Report.markdown(comparison)
        }
        guard let file else {
            if chosenFormat == "html" { throw CommandError("an HTML report needs a file name: report html reports/runs.html") }
            console.write(text)
            return
        }
        do { try SafeFile.write(Data(text.utf8), to: file) } catch {
            throw CommandError("\(error)")
        }
        let layout = chosenFormat == "csv" ? (wide ? " wide" : " long: run,epoch,metric,value") : ""
        console.write("wrote \(file) (\(comparison.runs.count) runs, \(chosenFormat)\(layout))")
    }
}

/// Columns of the terminal, or 80.
func terminalWidth() -> Int {
    var size = winsize()
    if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col >= 40 { return Int(size.ws_col) }
    return 80
}
