import Foundation

/// `report`: the comparison as Markdown, CSV, or one self-contained HTML page with SVG charts
/// (no JavaScript, no network).
public enum Report {
    public static func markdown(_ comparison: Comparison) -> String {
        let table = ComparisonTable(comparison)
        var lines = ["| | " + table.runLabels.joined(separator: " | ") + " |",
                     "|---|" + table.runLabels.map { _ in "---:" }.joined(separator: "|") + "|"]
        for row in table.allRows {
            lines.append("| \(escapeMarkdown(row.label.trimmingCharacters(in: .whitespaces))) | "
                         + row.cells.map(escapeMarkdown).joined(separator: " | ") + " |")
        }
        if !table.common.isEmpty { lines += ["", "Same in all runs: " + table.common.joined(separator: ", ") + "."] }
        lines += ["", "`*` marks the best value of a row."]
        return lines.joined(separator: "\n") + "\n"
    }

    public static func csv(_ comparison: Comparison) -> String {
        let table = ComparisonTable(comparison)
        var lines = [(["setting"] + table.runLabels).map(csvField).joined(separator: ",")]
        for row in table.allRows {
            let cells = row.cells.map { $0.hasSuffix(" *") ? String($0.dropLast(2)) : $0 }
            lines.append(([row.label.trimmingCharacters(in: .whitespaces)] + cells).map(csvField).joined(separator: ","))
        }
        for entry in table.common {
            let parts = entry.split(separator: " ", maxSplits: 1).map(String.init)
            lines.append(([parts[0]] + Array(repeating: parts.count > 1 ? parts[1] : "", count: table.runLabels.count)).map(csvField).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csvField(_ s: String) -> String {
        s.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    static func escapeMarkdown(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }

    static func escapeHTML(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    public static func html(_ comparison: Comparison, title: String = "ollie runs") -> String {
        let table = ComparisonTable(comparison)
        var rows = "<tr><th></th>" + table.runLabels.enumerated().map { i, label in
            "<th><span class=\"swatch\" style=\"background:\(palette[i % palette.count])\"></span>\(escapeHTML(label))</th>"
        }.joined() + "</tr>\n"
        for (index, row) in table.allRows.enumerated() {
            let cls = index == table.settingRows.count ? " class=\"first-result\"" : ""
            rows += "<tr\(cls)><th>\(escapeHTML(row.label))</th>" + row.cells.map { cell in
                cell.hasSuffix(" *") ? "<td class=\"best\">\(escapeHTML(String(cell.dropLast(2))))</td>" : "<td>\(escapeHTML(cell))</td>"
            }.joined() + "</tr>\n"
        }
        let series = { (metric: String) in comparison.runs.map { (label: "run \($0.id)", values: $0.metricSeries(metric)) } }
        let common = table.common.isEmpty ? "" : "<p class=\"common\">Same in all runs: \(escapeHTML(table.common.joined(separator: ", ")))</p>"
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escapeHTML(title))</title>
        <style>
        body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222;max-width:1100px}
        table{border-collapse:collapse;margin:1em 0}th,td{padding:4px 12px;border-bottom:1px solid #ddd;text-align:right}
        th:first-child{text-align:left}td.best{font-weight:bold;background:#e8f5e9}tr.first-result{border-top:2px solid #888}
        .swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}
        .charts{display:flex;flex-wrap:wrap;gap:24px}.common{color:#555}svg text{font-size:11px;fill:#333}
        </style></head><body>
        <h1>\(escapeHTML(title))</h1>
        <p>Made by ollie on \(escapeHTML(ISO8601DateFormatter().string(from: Date()))). Bold: the best value of a row.</p>
        <table>
        \(rows)</table>
        \(common)
        <div class="charts">
        \(svgChart(series("test_accuracy"), title: "test accuracy per epoch"))
        \(svgChart(series("train_loss"), title: "train loss per epoch"))
        </div>
        </body></html>

        """
    }

    /// A line chart: one polyline per run, axes with ticks, a legend.
    static func svgChart(_ series: [(label: String, values: [(epoch: Int, value: Double)])], title: String,
                         width: Double = 520, height: Double = 320) -> String {
        let (left, right, top, bottom) = (60.0, 90.0, 30.0, 40.0)   // the legend sits in the right margin
        let points = series.flatMap(\.values)
        guard !points.isEmpty else {
            return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"60\"><text x=\"10\" y=\"30\">\(escapeHTML(title)): no data</text></svg>"
        }
        let maxEpoch = Double(max(points.map(\.epoch).max()!, 2))
        let minEpoch = 1.0
        var low = points.map(\.value).min()!, high = points.map(\.value).max()!
        if high - low < 1e-9 { low -= 0.5; high += 0.5 }
        let pad = (high - low) * 0.05
        // Losses and accuracies are never negative: do not pad the axis below zero.
        low = low >= 0 ? max(0, low - pad) : low - pad
        high += pad
        let plotW = width - left - right, plotH = height - top - bottom
        func x(_ e: Double) -> Double { left + (e - minEpoch) / (maxEpoch - minEpoch) * plotW }
        func y(_ v: Double) -> Double { top + (1 - (v - low) / (high - low)) * plotH }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">\n"
        svg += "<text x=\"\(Int(left))\" y=\"18\" style=\"font-size:13px;font-weight:bold\">\(escapeHTML(title))</text>\n"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotW)\" height=\"\(plotH)\" fill=\"none\" stroke=\"#999\"/>\n"
        for i in 0...4 {
            let v = low + (high - low) * Double(i) / 4
            svg += "<line x1=\"\(left)\" x2=\"\(left + plotW)\" y1=\"\(y(v))\" y2=\"\(y(v))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(String(format: "%.4g", v))</text>\n"
        }
        let step = max(1, Int((maxEpoch - minEpoch) / 8.0.rounded(.up)))
        for e in stride(from: 1, through: Int(maxEpoch), by: step) {
            svg += "<text x=\"\(x(Double(e)))\" y=\"\(top + plotH + 16)\" text-anchor=\"middle\">\(e)</text>"
        }
        svg += "\n<text x=\"\(left + plotW / 2)\" y=\"\(height - 6)\" text-anchor=\"middle\">epoch</text>\n"
        for (i, s) in series.enumerated() where !s.values.isEmpty {
            let color = palette[i % palette.count]
            let coords = s.values.map { "\(String(format: "%.1f", x(Double($0.epoch)))),\(String(format: "%.1f", y($0.value)))" }
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(coords.joined(separator: " "))\"/>\n"
            for c in coords { let xy = c.split(separator: ","); svg += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"2.5\" fill=\"\(color)\"/>" }
            svg += "\n<rect x=\"\(left + plotW + 10)\" y=\"\(top + 8 + Double(i) * 16)\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(left + plotW + 25)\" y=\"\(top + 17 + Double(i) * 16)\">\(escapeHTML(s.label))</text>\n"
        }
        return svg + "</svg>"
    }
}
