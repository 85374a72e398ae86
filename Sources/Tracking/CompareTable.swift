import Foundation

/// The rows `compare` and `report` show: the settings that differ between the runs (with
/// their history when they changed mid-run), then the results, the best of each marked `*`.
public struct ComparisonTable: Sendable {
    public var runLabels: [String]
    /// (row label, one cell per run)
    public var settingRows: [(label: String, cells: [String])]
    public var resultRows: [(label: String, cells: [String])]
    /// Settings equal in every run: "lr 3e-3, batch 128, …".
    public var common: [String]

    public init(_ comparison: Comparison) {
        let runs = comparison.runs
        runLabels = runs.map { "run \($0.id)" }
        var names: [String] = []
        for run in runs { for p in run.params where !names.contains(p.name) { names.append(p.name) } }
        var settingRows: [(label: String, cells: [String])] = []
        var common: [String] = []
        func add(_ label: String, _ cells: [String]) {
            if Set(cells).count > 1 || runs.count == 1 && false { settingRows.append((label, cells)) }
            else if let first = cells.first { common.append("\(label) \(first)") }
        }
        add("dataset", runs.map(\.summary.dataset))
        for name in names {
            add(name, runs.map { run in run.params.first { $0.name == name }?.text ?? "-" })
        }
        self.settingRows = settingRows
        self.common = common

        func mark(_ values: [Double?], higherIsBetter: Bool, _ format: (Double) -> String) -> [String] {
            let present = values.compactMap { $0 }
            let best = higherIsBetter ? present.max() : present.min()
            return values.map { v in
                guard let v else { return "-" }
                return format(v) + (runs.count > 1 && v == best ? " *" : "")
            }
        }
        resultRows = [
            ("best accuracy", mark(runs.map(\.summary.bestAccuracy), higherIsBetter: true) { String(format: "%.4f", $0) }),
            ("  at epoch", runs.map { $0.summary.bestEpoch.map(String.init) ?? "-" }),
            ("final loss", mark(runs.map(\.summary.finalLoss), higherIsBetter: false) { String(format: "%.4f", $0) }),
            ("epochs", runs.map { String($0.summary.epochs) }),
            ("seconds", mark(runs.map { $0.summary.epochs > 0 ? $0.summary.trainSeconds : nil }, higherIsBetter: false) { String(format: "%.1f", $0) }),
            ("images/s", mark(runs.map(\.imagesPerSecond), higherIsBetter: true) { String(format: "%.0f", $0) }),
            ("status", runs.map(\.summary.status)),
        ]
    }

    public var allRows: [(label: String, cells: [String])] { settingRows + resultRows }
}

/// `compare` in the terminal: one column per run, wrapped into blocks to fit `width`.
public enum CompareTable {
    public static func render(_ comparison: Comparison, width: Int = 80) -> String {
        let table = ComparisonTable(comparison)
        let rows = [("", table.runLabels)] + table.allRows
        let labelWidth = rows.map { $0.0.count }.max() ?? 0
        let columnWidths = table.runLabels.indices.map { c in rows.map { $0.1[c].count }.max() ?? 0 }
        // Split the runs into blocks of columns that fit the width.
        var blocks: [[Int]] = [[]]
        var used = labelWidth
        for c in table.runLabels.indices {
            let need = 2 + columnWidths[c]
            if used + need > width && !blocks[blocks.count - 1].isEmpty {
                blocks.append([]); used = labelWidth
            }
            blocks[blocks.count - 1].append(c); used += need
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
                out.append(line)
                if index == 0 {
                    out.append(String(repeating: "─", count: line.count))
                } else if index == table.settingRows.count && !table.settingRows.isEmpty {
                    out.append(String(repeating: "·", count: line.count))   // settings above, results below
                }
            }
        }
        if !table.common.isEmpty {
            out.append("")
            out.append(wrap("same in all: " + table.common.joined(separator: ", "), width: width))
        }
        out.append("(* best of the row)")
        return out.joined(separator: "\n")
    }

    static func wrap(_ text: String, width: Int) -> String {
        var lines: [String] = [], line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width { lines.append(line); line = "  " }
            line += (line.isEmpty || line == "  " ? "" : " ") + word
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }
}

/// `runs`: one line per run.
public enum RunsTable {
    public static func render(_ runs: [RunSummary]) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        let header = ["id", "when", "dataset", "model", "status", "epochs", "best acc", "seconds", "note"]
        let rows = runs.map { r in
            [String(r.id), formatter.string(from: r.created), r.dataset, shortModel(r.model), r.status, String(r.epochs),
             r.bestAccuracy.map { String(format: "%.4f", $0) } ?? "-", String(format: "%.1f", r.trainSeconds),
             String((r.note ?? "").prefix(30))]
        }
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
        let right: Set<Int> = [0, 5, 6, 7]
        return all.enumerated().map { index, row in
            let line = row.enumerated().map { c, cell in
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return right.contains(c) ? pad + cell : cell + pad
            }.joined(separator: "  ")
            var trimmed = line
            while trimmed.last == " " { trimmed.removeLast() }
            return index == 0 ? trimmed + "\n" + String(repeating: "─", count: trimmed.count) : trimmed
        }.joined(separator: "\n")
    }

    /// "conv — Chain(Conv(…), …)" → "conv": the recipe before the full description.
    static func shortModel(_ model: String) -> String {
        let recipe = model.components(separatedBy: " — ").first ?? model
        return recipe.count <= 24 ? recipe : String(recipe.prefix(23)) + "…"
    }
}
