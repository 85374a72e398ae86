import Foundation

/// The rows `compare` and `report` show: the settings that differ between the runs (with
/// their history when they changed mid-run, "3e-3 → 3e-4@6"), then the results, the best of
/// each marked `*`; settings equal in every run go to `common`.
public struct ComparisonTable: Sendable {
    public typealias Row = (label: String, cells: [String])
    public var runLabels: [String]
    /// One cell per run, in the order of `runLabels`.
    public var settingRows: [Row]
    public var resultRows: [Row]
    /// Settings equal in every run, in order: ("batch", "128"), …
    public var common: [(name: String, value: String)]
    /// The mark after the best value of a result row.
    public static let bestMark = " *"

    public init(_ comparison: Comparison) {
        let runs = comparison.runs
        runLabels = runs.map { "run \($0.id)" }
        var settings: [(name: String, cells: [String])] = []
        if runs.contains(where: { $0.summary.name != nil }) { settings.append(("name", runs.map { $0.summary.name ?? "-" })) }
        if runs.contains(where: { !$0.summary.tags.isEmpty }) {
            settings.append(("tags", runs.map { $0.summary.tags.isEmpty ? "-" : $0.summary.tags.joined(separator: " ") }))
        }
        settings.append(("dataset", runs.map(\.summary.dataset)))
        // The recipe is normally a recorded setting; older runs have it only in runs.model.
        if !runs.contains(where: { $0.params.contains { $0.name == "model" } }) {
            settings.append(("model", runs.map(\.summary.modelRecipe)))
        }
        settings.append(("parameters", runs.map { String($0.summary.parameterCount) }))
        if runs.contains(where: { $0.summary.parentRun != nil }) {
            settings.append(("lineage", runs.map { $0.summary.lineage ?? "-" }))
        }
        var names: [String] = []
        for run in runs { for p in run.params where !names.contains(p.name) { names.append(p.name) } }
        for name in names {
            settings.append((name, runs.map { run in run.params.first { $0.name == name }?.text ?? "-" }))
        }
        if !names.contains("seed") { settings.append(("seed", runs.map(\.summary.seed))) }
        settingRows = settings.filter { Set($0.cells).count > 1 }.map { ($0.name, $0.cells) }
        common = settings.filter { Set($0.cells).count <= 1 && !$0.cells.isEmpty }.map { ($0.name, $0.cells[0]) }

        func mark(_ values: [Double?], higherIsBetter: Bool, _ format: (Double) -> String) -> [String] {
            let present = values.compactMap { $0 }
            let best = higherIsBetter ? present.max() : present.min()
            return values.map { v in
                guard let v else { return "-" }
                // A row where every run ties has no best.
                let marked = v == best && Set(present).count > 1
                return format(v) + (marked ? ComparisonTable.bestMark : "")
            }
        }
        // Validation and test apart: the split that chose the best epoch is named, and the test
        // accuracy of a run selected on validation is its own row, never its "best".
        let accuracy = { (v: Double) in String(format: "%.4f", v) }
        var scores: [Row] = []
        if runs.contains(where: { $0.selectedOn == .validation }) {
            scores.append(("selected on", runs.map { $0.selectedOn?.rawValue ?? "-" }))
            let bestVal = runs.map { $0.selectedOn == .validation ? $0.best(.valAccuracy) : nil }
            scores.append(("best val accuracy", mark(bestVal.map { $0?.value }, higherIsBetter: true, accuracy)))
            scores.append(("  at epoch", bestVal.map { $0.map { String($0.epoch) } ?? "-" }))
        }
        let selectedOnTest = runs.map { $0.selectedOn == .test }
        if selectedOnTest.contains(true) {
            scores.append(("best test accuracy", mark(zip(runs, selectedOnTest).map { $1 ? $0.summary.bestAccuracy : nil },
                                                      higherIsBetter: true, accuracy)))
            scores.append(("  at epoch", zip(runs, selectedOnTest).map { $1 ? $0.summary.bestEpoch.map(String.init) ?? "-" : "-" }))
        }
        if scores.isEmpty { scores.append(("best test accuracy", runs.map { _ in "-" })) }
        // The metric a run's policy followed instead (`set monitor val_loss`): its best epoch is
        // the one `restore best` loads, and the LR drops and early stops went by it.
        let monitored = runs.indices.map { $0 < comparison.monitored.count ? comparison.monitored[$0] : nil }
        var followed: [(name: String, maximize: Bool)] = []
        for case let m? in monitored where !followed.contains(where: { $0.name == m.name }) { followed.append((m.name, m.maximize)) }
        for metric in followed {
            let cells = monitored.map { $0?.name == metric.name ? $0 : nil }
            scores.append(("best " + metric.name, mark(cells.map { $0?.value }, higherIsBetter: metric.maximize, accuracy)))
            scores.append(("  at epoch", cells.map { $0.map { String($0.epoch) } ?? "-" }))
        }
        // The test score after the last train: what a run selected on validation reports.
        scores.append(("final test accuracy", mark(runs.map { $0.final(.testAccuracy) }, higherIsBetter: true, accuracy)))
        if runs.contains(where: { $0.selectedOn == .validation }) {
            scores.append(("final val accuracy", mark(runs.map { $0.final(.valAccuracy) }, higherIsBetter: true, accuracy)))
        }
        // Runs recorded before training accuracy was have none.
        if runs.contains(where: { $0.final(.trainAccuracy) != nil }) {
            scores.append(("final train accuracy", mark(runs.map { $0.final(.trainAccuracy) }, higherIsBetter: true, accuracy)))
        }
        // Top-K accuracies (`set topk`), e.g. "final val top5".
        for name in Set(runs.flatMap { $0.metrics.keys.filter(Metric.isTopK) }).sorted() {
            scores.append(("final " + name.replacingOccurrences(of: "_", with: " "),
                           mark(runs.map { $0.metricSeries(name).last?.value }, higherIsBetter: true, accuracy)))
        }
        resultRows = scores + [
            ("final loss", mark(runs.map(\.summary.finalLoss), higherIsBetter: false) { String(format: "%.4f", $0) }),
            ("epochs", runs.map { String($0.summary.epochs) }),
            ("seconds", mark(runs.map { $0.summary.epochs > 0 ? $0.summary.trainSeconds : nil }, higherIsBetter: false) { String(format: "%.1f", $0) }),
            (Self.rateLabel(runs), mark(runs.map(\.imagesPerSecond), higherIsBetter: true) { String(format: "%.0f", $0) }),
            ("status", runs.map(\.summary.status)),
        ]
        notes = runs.contains { !($0.summary.note ?? "").isEmpty }
            ? [("note", runs.map { ($0.summary.note ?? "").isEmpty ? "-" : $0.summary.note! })] : []
    }

    /// The runs' notes, one row when any run has one; last, as notes are long.
    public var notes: [Row]

    public var allRows: [Row] { settingRows + resultRows + notes }

    /// "clips/s" when every run trained on clips (its recorded `input` is C×T×H×W), "images/s"
    /// when none did (or runs older than that record), "samples/s" for a mix.
    static func rateLabel(_ runs: [RunDetail]) -> String {
        let clips = runs.map { run in run.params.first { $0.name == "input" }.map { $0.text.split(separator: "×").count == 4 } ?? false }
        return clips.allSatisfy { $0 } && !clips.isEmpty ? "clips/s" : clips.contains(true) ? "samples/s" : "images/s"
    }

    /// "batch 128, optimizer adam, …"
    public var commonText: String { common.map { "\($0.name) \($0.value)" }.joined(separator: ", ") }

    /// A cell without its best mark, and whether it had one.
    public static func unmarked(_ cell: String) -> (text: String, best: Bool) {
        cell.hasSuffix(bestMark) ? (String(cell.dropLast(bestMark.count)), true) : (cell, false)
    }
}

/// `compare` in the terminal: one right-aligned column per run, as many as fit `width`
/// (four runs fit 80 columns); more runs wrap into further blocks that repeat the row labels.
public enum CompareTable {
    public static func render(_ comparison: Comparison, width: Int = 80) -> String {
        let table = ComparisonTable(comparison)
        guard !table.runLabels.isEmpty else { return "no runs to compare" }
        let width = max(width, 40)
        // A label or cell wider than it can be (a long name, a long history) is cut with "…".
        func cut(_ s: String, _ limit: Int) -> String { s.count <= limit ? s : String(s.prefix(limit - 1)) + "…" }
        let labelWidth = table.allRows.map { min($0.label.count, 24) }.max() ?? 0
        let widest = width - labelWidth - 2
        func fit(_ s: String) -> String { cut(s, widest) }
        // In a row with a best mark, the other cells get blanks in its place so numbers align.
        let pad = String(repeating: " ", count: ComparisonTable.bestMark.count)
        let results = table.resultRows.map { row in
            row.cells.contains { ComparisonTable.unmarked($0).best }
                ? (row.label, row.cells.map { ComparisonTable.unmarked($0).best ? $0 : $0 + pad }) : row
        }
        // A setting too long for a column (a model spec) shows its start in the table and is
        // written out in full under it, so several runs still fit side by side.
        let settingCell = max(10, min(22, (width - labelWidth) / max(1, min(4, table.runLabels.count)) - 2))
        var spelledOut: [String] = []
        let settings = table.settingRows.map { row -> ComparisonTable.Row in
            guard row.cells.contains(where: { $0.count > settingCell }) else { return row }
            for (label, cell) in zip(table.runLabels, row.cells) { spelledOut.append("\(row.label) of \(label): \(cell)") }
            return (row.label, row.cells.map { cut($0, settingCell) })
        }
        let rows = ([("", table.runLabels)] + settings + results).map { (cut($0.0, labelWidth), $0.1.map(fit)) }
        let columnWidths = table.runLabels.indices.map { c in rows.map { $0.1[c].count }.max() ?? 0 }
        var blocks: [[Int]] = [[]]
        var used = labelWidth
        for c in table.runLabels.indices {
            let need = 2 + columnWidths[c]
            if used + need > width && !blocks[blocks.count - 1].isEmpty {
                blocks.append([])
                used = labelWidth
            }
            blocks[blocks.count - 1].append(c)
            used += need
        }
        var out: [String] = []
        for block in blocks {
            if !out.isEmpty { out.append("") }
            for (index, row) in rows.enumerated() {
                var line = row.0.padding(toLength: labelWidth, withPad: " ", startingAt: 0)
                for c in block {
                    let cell = row.1[c]
                    line += "  " + String(repeating: " ", count: columnWidths[c] - cell.count) + cell
                }
                while line.last == " " { line.removeLast() }
                out.append(line)
                let rule = labelWidth + block.reduce(0) { $0 + 2 + columnWidths[$1] }
                if index == 0 {
                    out.append(String(repeating: "─", count: rule))
                } else if index == table.settingRows.count && !table.settingRows.isEmpty {
                    out.append(String(repeating: "·", count: rule))   // settings above, results below
                }
            }
        }
        if !spelledOut.isEmpty {
            out.append("")
            out += spelledOut.map { wrap($0, width: width) }
        }
        if !table.common.isEmpty {
            out.append("")
            out.append(wrap("common: " + table.commonText, width: width))
        }
        // Notes are sentences, too long for a column: one line each under the table.
        if let notes = table.notes.first {
            out.append("")
            for (label, note) in zip(table.runLabels, notes.cells) where note != "-" {
                out.append(wrap("note of \(label): " + note.replacingOccurrences(of: "\n", with: " "), width: width))
            }
        }
        if table.runLabels.count > 1 { out.append("(* best of the row)") }
        return out.joined(separator: "\n")
    }

    /// Words filled into lines of at most `width`, continuation lines indented by two.
    static func wrap(_ text: String, width: Int) -> String {
        var lines: [String] = [], line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width {
                lines.append(line)
                line = "  "
            }
            let piece = word.count > width - 2 ? String(word.prefix(width - 3)) + "…" : String(word)
            line += (line.isEmpty || line == "  " ? "" : " ") + piece
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }
}

/// `runs`: one line per run (id, when, dataset, model, status, epochs, best accuracy,
/// training time), the note in whatever room `width` leaves.
public enum RunsTable {
    public static func render(_ runs: [RunSummary], width: Int = 80, now: Date = Date()) -> String {
        guard !runs.isEmpty else { return "no runs" }
        var header = ["id", "when", "dataset", "model", "status", "epochs", "best acc", "time"]
        var right = [true, false, false, false, false, true, true, true]
        let showLineage = runs.contains { $0.parentRun != nil }
        if showLineage { header.append("from"); right.append(false) }
        let showLabels = runs.contains { $0.name != nil || !$0.tags.isEmpty || $0.archived }
        if showLabels { header.append("name, tags"); right.append(false) }
        var rows = runs.map { r in
            [String(r.id), when(r.created, now: now), r.dataset, shortModel(r.model), r.status, String(r.epochs),
             r.bestAccuracy.map { String(format: "%.4f", $0) } ?? "-", duration(r.trainSeconds)]
                + (showLineage ? [r.parentRun.map { "\($0)@\(r.parentEpoch ?? 0)" } ?? ""] : [])
                + (showLabels ? [labels(r)] : [])
        }
        var table = TextTable(header: header, alignRight: right)
        // Too wide for `width`: the dataset and model names give way first, to 6 characters.
        for column in [3, 2] {
            var probe = TextTable(header: header, alignRight: right)
            rows.forEach { probe.add($0) }
            let excess = probe.columnWidths.reduce(0, +) + 2 * (header.count - 1) - width
            let widest = rows.map { $0[column].count }.max() ?? 0
            guard excess > 0, widest > 6 else { continue }
            let room = max(6, widest - excess, header[column].count)
            rows = rows.map { row in
                var row = row
                if row[column].count > room { row[column] = String(row[column].prefix(room - 1)) + "…" }
                return row
            }
        }
        rows.forEach { table.add($0) }
        // The notes go last, cut to whatever room the other columns leave (none: no column).
        let used = table.columnWidths.reduce(0, +) + 2 * (header.count - 1)
        let noteRoom = width - used - 2
        guard runs.contains(where: { !($0.note ?? "").isEmpty }), noteRoom >= 8 else { return table.render() }
        var withNotes = TextTable(header: header + ["note"], alignRight: right + [false])
        for (row, run) in zip(rows, runs) {
            let note = (run.note ?? "").replacingOccurrences(of: "\n", with: " ")
            withNotes.add(row + [note.count <= noteRoom ? note : String(note.prefix(noteRoom - 1)) + "…"])
        }
        return withNotes.render()
    }

    /// "cnn-lstm #baseline #small (archived)": what the user called and tagged the run.
    static func labels(_ run: RunSummary) -> String {
        ([run.name].compactMap { $0 } + run.tags.map { "#" + $0 } + (run.archived ? ["(archived)"] : [])).joined(separator: " ")
    }

    /// Local time: "14:05" today, "Mar 03 14:05" this year, "2025-03-03" before.
    static func when(_ date: Date, now: Date) -> String {
        let calendar = Calendar.current
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        if calendar.isDate(date, inSameDayAs: now) {
            formatter.dateFormat = "HH:mm"
        } else if calendar.component(.year, from: date) == calendar.component(.year, from: now) {
            formatter.dateFormat = "MMM dd HH:mm"
        } else {
            formatter.dateFormat = "yyyy-MM-dd"
        }
        return formatter.string(from: date)
    }

    /// "42.0s", "3m05s", "1h02m".
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }

    /// "conv — Chain(Conv(…), …)" → "conv": the recipe before the full description.
    static func shortModel(_ model: String) -> String {
        let recipe = model.components(separatedBy: " — ").first ?? model
        return recipe.count <= 12 ? recipe : String(recipe.prefix(11)) + "…"
    }
}
