import Foundation

/// A sweep's HTML report: the runs' page (`Report.html`) with a parallel-coordinates chart
/// added: one vertical axis per swept setting and one for the ranking metric, one polyline per
/// run through its values, coloured from worst (red) to best (green).
public enum SweepReport {
    public struct Axis: Sendable {
        public var name: String
        /// Values spaced by their logarithm (settings swept with `log`, or over decades).
        public var isLog: Bool
        public init(name: String, isLog: Bool) {
            self.name = name
            self.isLog = isLog
        }
    }

    public struct Line: Sendable {
        public var label: String
        /// One value per axis, as the settings table shows them.
        public var values: [String]
        public var score: Double
        public init(label: String, values: [String], score: Double) {
            self.label = label
            self.values = values
            self.score = score
        }
    }

    /// The runs' page with the chart after its title and table.
    public static func html(_ comparison: Comparison, title: String, axes: [Axis], lines: [Line], metric: String,
                            generated: Date = Date()) -> String {
        let page = Report.html(comparison, title: title, generated: generated)
        let chart = "<h2>Settings against \(Report.escapeHTML(metric))</h2>\n"
            + "<p>One line per run; the last axis is the metric the sweep ranks by.</p>\n"
            + parallelCoordinates(axes: axes, lines: lines, metric: metric) + "\n"
        guard let end = page.range(of: "</body>", options: .backwards) else { return page + chart }
        return page.replacingCharacters(in: end.lowerBound..<end.lowerBound, with: chart)
    }

    /// How one axis places values: numbers (linear or log) between their extremes, or words
    /// (an optimizer, a spec) evenly in the order they first appear.
    struct Scale {
        var position: (String) -> Double   // 0 at the bottom, 1 at the top
        var ticks: [(at: Double, text: String)]

        init(values: [String], isLog: Bool) {
            let numbers = values.compactMap(Double.init).filter(\.isFinite)
            let numeric = numbers.count == values.count && !values.isEmpty && (!isLog || numbers.allSatisfy { $0 > 0 })
            if numeric {
                let t: (Double) -> Double = isLog ? log10 : { $0 }
                let low = t(numbers.min()!), high = t(numbers.max()!)
                let span = high - low
                position = { text in span > 0 ? (t(Double(text) ?? 0) - low) / span : 0.5 }
                var marks: [Double]
                if isLog {
                    marks = (Int(ceil(low - 1e-9))...max(Int(ceil(low - 1e-9)), Int(floor(high + 1e-9)))).map { pow(10, Double($0)) }
                        .filter { t($0) >= low - 1e-9 && t($0) <= high + 1e-9 }
                    if marks.count < 2 { marks = [numbers.min()!, numbers.max()!] }
                } else {
                    marks = span > 0 ? Report.niceTicks(low, high) : [low]
                }
                ticks = marks.map { v in (span > 0 ? (t(v) - low) / span : 0.5, formatRate(v)) }
            } else {
                var categories: [String] = []
                for v in values where !categories.contains(v) { categories.append(v) }
                let count = categories.count
                position = { text in
                    let i = categories.firstIndex(of: text) ?? 0
                    return count <= 1 ? 0.5 : Double(i) / Double(count - 1)
                }
                ticks = categories.enumerated().map { i, c in
                    (count <= 1 ? 0.5 : Double(i) / Double(count - 1), c.count > 22 ? String(c.prefix(21)) + "…" : c)
                }
            }
        }
    }

    /// The chart as inline SVG. Every line is a `<polyline class="sweep-run">` titled with its
    /// run and values (a browser shows the title on hover).
    public static func parallelCoordinates(axes: [Axis], lines: [Line], metric: String) -> String {
        let count = axes.count + 1
        let (left, right, top, bottom) = (80.0, 80.0, 40.0, 40.0)
        let gap = 170.0
        let width = left + right + gap * Double(max(count - 1, 1)), height = 380.0
        let plotH = height - top - bottom
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func x(_ axis: Int) -> Double { left + gap * Double(axis) }
        func y(_ position: Double) -> Double { top + (1 - position) * plotH }
        var scales = axes.enumerated().map { i, axis in Scale(values: lines.map { $0.values[i] }, isLog: axis.isLog) }
        scales.append(Scale(values: lines.map { String($0.score) }, isLog: false))
        let names = axes.map { $0.name + ($0.isLog ? " (log)" : "") } + [metric]
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"parallel\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
            + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"settings against \(Report.escapeHTML(metric))\">\n"
        let scores = lines.map(\.score)
        let low = scores.min() ?? 0, high = scores.max() ?? 1
        for line in lines {
            let points = (0..<count).map { a -> String in
                let value = a < axes.count ? line.values[a] : String(line.score)
                return "\(f(x(a))),\(f(y(scales[a].position(value))))"
            }
            // Worst red, best green: the eye finds the winning settings first.
            let share = high > low ? (line.score - low) / (high - low) : 1
            let color = String(format: "#%02x%02x%02x", Int(214 - 170 * share), Int(39 + 121 * share), Int(40 + 4 * share))
            let title = "\(line.label): " + zip(axes, line.values).map { "\($0.name) \($1)" }.joined(separator: ", ")
                + " → \(metric) \(String(format: "%.4f", line.score))"
            svg += "<polyline class=\"sweep-run\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" stroke-opacity=\"0.8\" points=\"\(points.joined(separator: " "))\">"
                + "<title>\(Report.escapeHTML(title))</title></polyline>\n"
        }
        for a in 0..<count {
            svg += "<line x1=\"\(f(x(a)))\" x2=\"\(f(x(a)))\" y1=\"\(f(top))\" y2=\"\(f(top + plotH))\" stroke=\"#444\"/>\n"
            svg += "<text x=\"\(f(x(a)))\" y=\"\(f(top - 14))\" text-anchor=\"middle\" style=\"font-weight:bold\">\(Report.escapeHTML(names[a]))</text>\n"
            for tick in scales[a].ticks {
                svg += "<line x1=\"\(f(x(a) - 4))\" x2=\"\(f(x(a)))\" y1=\"\(f(y(tick.at)))\" y2=\"\(f(y(tick.at)))\" stroke=\"#444\"/>"
                svg += "<text x=\"\(f(x(a) - 7))\" y=\"\(f(y(tick.at) + 4))\" text-anchor=\"end\">\(Report.escapeHTML(tick.text))</text>\n"
            }
        }
        return svg + "</svg>"
    }
}
