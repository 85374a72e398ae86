import Files
import Foundation
import Tracking

extension Session {
    static let trackingCommands: [Command] = [
        Command("runs", usage: "runs [last N | best N | where KEY OP VALUE]...",
                summary: "List recorded runs, one line each; filter by recency, best accuracy or a setting.",
                example: "runs where lr < 1e-3 last 5", arity: 0...12, completion: .words(["last", "best", "where"])) { session, args, console in
            let store = try session.requireStore()
            let filter = try RunFilter.parse(args)
            let runs = try store.runs(filter)
            if runs.isEmpty {
                let total = try store.runCount()
                console.write(total == 0 ? "no runs recorded yet; train one: train 1"
                    : "no runs match \(args.joined(separator: " ")) (of \(total) recorded run\(total == 1 ? "" : "s")); runs lists them all")
            } else {
                console.write(RunsTable.render(runs))
            }
            for line in session.mlflowBacklogLines() { console.write(line) }
        },
        Command("compare", usage: "compare [IDS]",
                summary: "Side-by-side table of runs (default: this session's): differing settings and results, best marked *.",
                example: "compare 3 4", arity: 0...32) { session, args, console in
            let comparison = try session.comparison(args)
            console.write(CompareTable.render(comparison, width: terminalWidth()))
        },
        Command("plot", usage: "plot [METRIC] [IDS]",
                summary: "Chart a metric per epoch (test_accuracy, train_loss, learning_rate, …) for runs, in the terminal.",
                example: "plot train_loss 3 4", arity: 0...33,
                completion: .words(["test_accuracy", "val_accuracy", "train_loss", "val_loss", "learning_rate", "epoch_seconds", "images_per_second"])) { session, args, console in
            var ids = args
            let metric = ids.first.flatMap { Int64($0) == nil ? $0 : nil } ?? "test_accuracy"
            if ids.first == metric { ids.removeFirst() }
            let comparison = try session.comparison(ids)
            let series = comparison.runs.map { run in
                (label: "run \(run.id)", values: run.metricSeries(metric))
            }
            guard series.contains(where: { !$0.values.isEmpty }) else {
                throw CommandError("no '\(metric)' values for these runs; metrics: test_accuracy, train_loss, learning_rate, epoch_seconds, images_per_second")
            }
            // Every metric is ≥ 0, and an accuracy ≤ 1: the axis never shows values that cannot be.
            let bounds: ClosedRange<Double> = metric.hasSuffix("accuracy") ? 0...1 : 0...Double.greatestFiniteMagnitude
            console.write(TerminalPlot.render(series: series, title: metric, width: min(terminalWidth(), 100),
                                              height: 16, color: console.isInteractive, bounds: bounds))
        },
        Command("report", usage: "report [IDS] [md|csv|html [FILE]] | [IDS] FILE.md|.csv|.html",
                summary: "Write the compare table as Markdown, CSV, or a self-contained HTML page with charts.",
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

    /// Runs named by id, or this session's runs when none are named.
    func comparison(_ args: [String]) throws -> Comparison {
        let store = try requireStore()
        let ids = try args.map { word -> Int64 in
            guard let id = Int64(word) else { throw CommandError("run ids are numbers (got '\(word)'); see them with: runs") }
            return id
        }
        let chosen = ids.isEmpty ? try store.sessionRunIDs() : ids
        guard !chosen.isEmpty else { throw CommandError("no runs in this session yet; name some ids (see: runs) or train one") }
        return try store.comparison(of: chosen)
    }

    /// `report [IDS] [md|csv|html [FILE]]` or `report [IDS] FILE.md|.csv|.html`: a file is only
    /// ever a word after the format, or one whose extension names a format; any other word is
    /// a mistake, never a path to create.
    func report(_ args: [String], _ console: Console) throws {
        let formats = ["md": "md", "markdown": "md", "csv": "csv", "html": "html"]
        let usage = "usage: report [IDS] [md|csv|html [FILE]], or report [IDS] FILE.md|FILE.csv|FILE.html"
        var ids: [String] = [], format: String?, file: String?
        var afterFormat = false
        for word in args {
            if Int64(word) != nil { ids.append(word); continue }   // a number is a run id, never a file
            if format == nil, let known = formats[word.lowercased()] { format = known; afterFormat = true; continue }
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
        let comparison = try comparison(ids)
        let text: String
        switch chosenFormat {
        case "csv": text = Report.csv(comparison)
        case "html": text = Report.html(comparison)
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
        console.write("wrote \(file) (\(comparison.runs.count) runs, \(chosenFormat))")
    }
}

/// Columns of the terminal, or 80.
func terminalWidth() -> Int {
    var size = winsize()
    if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col >= 40 { return Int(size.ws_col) }
    return 80
}
