import Foundation

/// `report`: the comparison as Markdown, CSV, or one self-contained HTML page (inline CSS,
/// inline SVG charts of test accuracy and train loss per epoch; no JavaScript, no network).
public enum Report {
    public typealias Series = (label: String, values: [(epoch: Int, value: Double)])

    public static func markdown(_ comparison: Comparison) -> String {
        let table = ComparisonTable(comparison)
        var lines = ["| | " + table.runLabels.map(escapeMarkdown).joined(separator: " | ") + " |",
                     "|---|" + table.runLabels.map { _ in "---:" }.joined(separator: "|") + "|"]
        for row in table.allRows {
            let cells = row.cells.map { cell -> String in
                let (text, best) = ComparisonTable.unmarked(cell)
                return escapeMarkdown(text) + (best ? " \\*" : "")
            }
            lines.append("| \(escapeMarkdown(row.label.trimmingCharacters(in: .whitespaces))) | " + cells.joined(separator: " | ") + " |")
        }
        if !table.common.isEmpty { lines += ["", "Common to all runs: " + escapeMarkdown(table.commonText) + "."] }
        if table.runLabels.count > 1 { lines += ["", "\\* marks the best value of a row."] }
        for (heading, text) in perClass(comparison) { lines += ["", heading + ":", "", "```", text, "```"] }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Each run's per-class precision, recall and F1 at its best epoch (from its recorded
    /// confusion counts; runs recorded before them, or with over 100 classes, have none).
    static func perClass(_ comparison: Comparison) -> [(heading: String, text: String)] {
        comparison.runs.compactMap { run in
            guard let (epoch, record) = run.bestConfusion, let report = record.report else { return nil }
            let split = record.split == "val" ? "the validation split" : "the test set"
            return ("Per class, run \(run.id) at its best epoch (\(epoch)), on \(split)", report.render(width: 80))
        }
    }

    /// RFC 4180 quoting with "\n" line ends: a header row ("setting", then one column per
    /// run), one row per setting and result, then the common settings repeated in every
    /// run's column. No best marks.
    public static func csv(_ comparison: Comparison) -> String {
        let table = ComparisonTable(comparison)
        var records = [["setting"] + table.runLabels]
        for row in table.allRows {
            records.append([row.label.trimmingCharacters(in: .whitespaces)] + row.cells.map { ComparisonTable.unmarked($0).text })
        }
        for entry in table.common {
            records.append([entry.name] + Array(repeating: entry.value, count: table.runLabels.count))
        }
        return records.map { $0.map(csvField).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// The long (tidy) form pandas, R and spreadsheets pivot from: a header `run,epoch,metric,value`,
    /// then one row per recorded number, by run (in the order asked), epoch and metric name.
    /// `pd.read_csv(f).pivot_table(index=["run", "epoch"], columns="metric", values="value")`.
    public static func csvLong(_ comparison: Comparison) -> String {
        var lines = ["run,epoch,metric,value"]
        for run in comparison.runs {
            let rows = run.metrics.flatMap { name, series in series.map { (epoch: $0.epoch, name: name, value: $0.value) } }
                .sorted { ($0.epoch, $0.name) < ($1.epoch, $1.name) }
            for row in rows where row.value.isFinite {
                lines.append([String(run.id), String(row.epoch), csvField(row.name), String(format: "%.9g", row.value)].joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A field quoted when it holds a comma, quote, line break or edge spaces; quotes doubled.
    static func csvField(_ s: String) -> String {
        let needsQuotes = s.contains(where: { ",\"\n\r".contains($0) }) || s.first == " " || s.last == " "
        return needsQuotes ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    static func escapeMarkdown(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    static func escapeHTML(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    public static func html(_ comparison: Comparison, title: String = "ollie runs", generated: Date = Date()) -> String {
        let table = ComparisonTable(comparison)
        var rows = "<tr><th></th>" + table.runLabels.enumerated().map { i, label in
            "<th><span class=\"swatch\" style=\"background:\(palette[i % palette.count])\"></span>\(escapeHTML(label))</th>"
        }.joined() + "</tr>\n"
        for (index, row) in table.allRows.enumerated() {
            let cls = index == table.settingRows.count && index > 0 ? " class=\"first-result\"" : ""
            rows += "<tr\(cls)><th>\(escapeHTML(row.label))</th>" + row.cells.map { cell in
                let (text, best) = ComparisonTable.unmarked(cell)
                return best ? "<td class=\"best\">\(escapeHTML(text))</td>" : "<td>\(escapeHTML(text))</td>"
            }.joined() + "</tr>\n"
        }
        let epochs = comparison.runs.map { ($0.summary.parentEpoch ?? 0) + 1...max($0.summary.epochs, ($0.summary.parentEpoch ?? 0) + 1) }
        let common = table.common.isEmpty ? "" : "<p class=\"common\">Common to all runs: \(escapeHTML(table.commonText))</p>"
        let stamp = ISO8601DateFormatter().string(from: generated)
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escapeHTML(title))</title>
        <style>
        body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222;max-width:1200px}
        table{border-collapse:collapse;margin:1em 0}th,td{padding:4px 12px;border-bottom:1px solid #ddd;text-align:right}
        th:first-child{text-align:left}td.best{font-weight:bold;background:#e8f5e9}tr.first-result{border-top:2px solid #888}
        .swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}
        .charts{display:flex;flex-wrap:wrap;gap:24px}.common{color:#555}svg text{font-size:11px;fill:#333}
        </style></head><body>
        <h1>\(escapeHTML(title))</h1>
        <p>Made by ollie at \(escapeHTML(stamp)). Highlighted: the best value of a row.</p>
        <table>
        \(rows)</table>
        \(common)
        <div class="charts">
        \(charts(comparison, epochs: epochs))
        </div>
        \(perClass(comparison).map { "<h2>\(escapeHTML($0.heading))</h2>\n<pre>\(escapeHTML($0.text))</pre>" }.joined(separator: "\n"))
        </body></html>

        """
    }

    /// The charts, one per metric recorded: validation accuracy (when a run held a split
    /// out), test accuracy, train loss. Every chart's x axis spans the runs' epochs, so a test
    /// score taken only after the last epoch sits at the end of the run, not alone on its own axis.
    static func charts(_ comparison: Comparison, epochs: [ClosedRange<Int>]) -> String {
        let span = (epochs.map(\.lowerBound).min() ?? 1)...(epochs.map(\.upperBound).max() ?? 1)
        let series = { (metric: Metric) -> [Series] in comparison.runs.map { (label: "run \($0.id)", values: $0.metricSeries(metric)) } }
        var charts: [String] = []
        if comparison.runs.contains(where: { $0.selectedOn == .validation }) {
            charts.append(svgChart(series(.valAccuracy), title: "validation accuracy per epoch (selects the best epoch)",
                                   yLabel: "val accuracy", epochs: span))
        }
        let testScoredOnce = comparison.runs.contains { $0.selectedOn == .validation }
        charts.append(svgChart(series(.testAccuracy), title: testScoredOnce ? "test accuracy (after each train)" : "test accuracy per epoch",
                               yLabel: "test accuracy", epochs: span))
        charts.append(svgChart(series(.trainLoss), title: "train loss per epoch", yLabel: "train loss", epochs: span))
        return charts.joined(separator: "\n")
    }

    /// Round tick values covering low...high: about `count` of them, at 1, 2, 2.5 or 5 × 10^k.
    static func niceTicks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
        guard high > low, low.isFinite, high.isFinite else { return [low] }
        let raw = (high - low) / Double(max(count - 1, 1))
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw * 0.999 } ?? 10 * magnitude
        let first = Int(ceil(low / step - 1e-9)), last = Int(floor(high / step + 1e-9))
        guard first <= last else { return [low] }
        // k × step, rounded to 12 digits so 3 × 0.2 reads 0.6.
        return (first...last).map { Double(String(format: "%.12g", Double($0) * step))! }
    }

    /// A line chart: one polyline per run that has values, axes with ticks and labels, a
    /// legend in the right margin. Non-finite values are skipped.
    static func svgChart(_ input: [Series], title: String, yLabel: String, epochs: ClosedRange<Int>? = nil,
                         width: Double = 560, height: Double = 320) -> String {
        let series = input.map { (label: $0.label, values: $0.values.filter { $0.value.isFinite }.sorted { $0.epoch < $1.epoch }) }
        let (left, right, top, bottom) = (64.0, 100.0, 30.0, 44.0)
        let points = series.flatMap(\.values)
        guard let firstEpoch = points.map(\.epoch).min(), let lastEpoch = points.map(\.epoch).max() else {
            return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"60\"><text x=\"10\" y=\"30\">\(escapeHTML(title)): no data</text></svg>"
        }
        let first = min(firstEpoch, epochs?.lowerBound ?? firstEpoch), last = max(lastEpoch, epochs?.upperBound ?? lastEpoch)
        let minEpoch = Double(first), maxEpoch = Double(max(last, first + 1))
        var low = points.map(\.value).min()!, high = points.map(\.value).max()!
        if high - low < 1e-9 { low -= 0.5; high += 0.5 }
        let pad = (high - low) * 0.05
        // Losses and accuracies are never negative: do not pad the axis below zero.
        low = low >= 0 ? max(0, low - pad) : low - pad
        high += pad
        let plotW = width - left - right, plotH = height - top - bottom
        func x(_ e: Double) -> Double { left + (e - minEpoch) / (maxEpoch - minEpoch) * plotW }
        func y(_ v: Double) -> Double { top + (1 - (v - low) / (high - low)) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(escapeHTML(title))\">\n"
        svg += "<text x=\"\(f(left))\" y=\"18\" style=\"font-size:13px;font-weight:bold\">\(escapeHTML(title))</text>\n"
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#999\"/>\n"
        for v in niceTicks(low, high) {
            svg += "<line x1=\"\(f(left))\" x2=\"\(f(left + plotW))\" y1=\"\(f(y(v)))\" y2=\"\(f(y(v)))\" stroke=\"#eee\"/>"
            svg += "<line x1=\"\(f(left - 5))\" x2=\"\(f(left))\" y1=\"\(f(y(v)))\" y2=\"\(f(y(v)))\" stroke=\"#666\"/>"
            svg += "<text x=\"\(f(left - 8))\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\">\(String(format: "%.4g", v))</text>\n"
        }
        for e in niceTicks(minEpoch, maxEpoch, count: 8) where e == e.rounded() {
            svg += "<line x1=\"\(f(x(e)))\" x2=\"\(f(x(e)))\" y1=\"\(f(top + plotH))\" y2=\"\(f(top + plotH + 5))\" stroke=\"#666\"/>"
            svg += "<text x=\"\(f(x(e)))\" y=\"\(f(top + plotH + 17))\" text-anchor=\"middle\">\(Int(e))</text>\n"
        }
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\">epoch</text>\n"
        svg += "<text transform=\"translate(14 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(escapeHTML(yLabel))</text>\n"
        for (i, s) in series.enumerated() where !s.values.isEmpty {
            let color = palette[i % palette.count]
            let coords = s.values.map { (x(Double($0.epoch)), y($0.value)) }
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(coords.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\"/>\n"
            svg += coords.map { "<circle cx=\"\(f($0.0))\" cy=\"\(f($0.1))\" r=\"2.5\" fill=\"\(color)\"/>" }.joined()
            svg += "\n<rect x=\"\(f(left + plotW + 12))\" y=\"\(f(top + 8 + Double(i) * 16))\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(f(left + plotW + 27))\" y=\"\(f(top + 17 + Double(i) * 16))\">\(escapeHTML(s.label))</text>\n"
        }
        return svg + "</svg>"
    }
}
