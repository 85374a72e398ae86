import Foundation

/// `plot`: a line chart in the terminal. Lines are Unicode braille dots (2×4 dots a character
/// cell); each series also puts its own ASCII marker (* o + x # @ % &) on its data points, so
/// series stay apart without colour; with `color` each series is also drawn in its own ANSI
/// colour. Y labels on the left, epochs below, a legend last.
public enum TerminalPlot {
    public typealias Series = (label: String, values: [(epoch: Int, value: Double)])
    static let colors = ["\u{1B}[34m", "\u{1B}[31m", "\u{1B}[32m", "\u{1B}[33m", "\u{1B}[35m", "\u{1B}[36m"]
    static let reset = "\u{1B}[0m"
    static let markers: [Character] = ["*", "o", "+", "x", "#", "@", "%", "&"]

    /// A series over a continuous x (lr-find: log₁₀ of the learning rate).
    public typealias Curve = (label: String, points: [(x: Double, y: Double)])

    /// The chart as lines of at most `width` columns (escape codes aside): the title, `height`
    /// plot rows, the x axis and its epoch labels, then the legend (wrapped if long).
    /// `bounds`: the values the metric can take (accuracy: 0...1); the axis stays inside them.
    /// `xLabel`: what the series' x counts ("step" for per-step values).
    public static func render(series input: [Series], title: String, width: Int = 80, height: Int = 16,
                              color: Bool = false, bounds: ClosedRange<Double>? = nil, xLabel: String = "epoch") -> String {
        let curves = input.map { (label: $0.label, points: $0.values.map { (x: Double($0.epoch), y: $0.value) }) }
        let epochs = input.flatMap(\.values).map(\.epoch)
        let low = Double(epochs.min() ?? 0), high = Double(epochs.max() ?? 0)
        let ticks = Report.niceTicks(low, max(high, low + 1), count: 8).filter { $0 == $0.rounded() }
        return render(curves: curves, title: title, xLabel: xLabel, xTicks: ticks.map { ($0, String(Int($0))) },
                      width: width, height: height, color: color, bounds: bounds)
    }

    /// The same chart over any x; `xTicks` are the labelled positions (those that collide are dropped).
    public static func render(curves input: [Curve], title: String, xLabel: String, xTicks: [(x: Double, text: String)],
                              width: Int = 80, height: Int = 16, color: Bool = false,
                              bounds: ClosedRange<Double>? = nil) -> String {
        let series = input.map { (label: $0.label, values: $0.points.filter { $0.y.isFinite && $0.x.isFinite }.sorted { $0.x < $1.x }) }
        let points = series.flatMap(\.values)
        guard let firstX = points.map(\.x).min(), let lastX = points.map(\.x).max() else {
            return "\(title): no data"
        }
        var low = points.map(\.y).min()!, high = points.map(\.y).max()!
        if high - low < 1e-12 {
            // A flat line: a little room around it (5 %, at least 0.01), not a unit either side.
            let pad = max(abs(low) * 0.05, 0.01)
            low -= pad
            high += pad
        }
        if let bounds {
            low = max(low, bounds.lowerBound)
            high = min(high, bounds.upperBound)
            if high <= low { (low, high) = (bounds.lowerBound, bounds.upperBound) }
        }
        // One x value (a one-epoch run): it sits in the middle of the axis.
        let (minX, maxX) = lastX > firstX ? (firstX, lastX) : (firstX - 0.5, firstX + 0.5)
        let rows = max(3, height)
        let labelRows = [0, rows / 2, rows - 1]
        func label(_ r: Int) -> String { String(format: "%.4g", high - (high - low) * Double(r) / Double(rows - 1)) }
        let labelWidth = max(xLabel.count, labelRows.map { label($0).count }.max()!)
        let cols = max(10, width - labelWidth - 2)
        let dotsX = cols * 2, dotsY = rows * 4

        var bits = [[UInt8]](repeating: [UInt8](repeating: 0, count: cols), count: rows)
        var owner = [[Int]](repeating: [Int](repeating: -1, count: cols), count: rows)
        var marks: [[Character?]] = Array(repeating: Array(repeating: nil, count: cols), count: rows)
        let dotBits: [[UInt8]] = [[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]]
        func dot(_ px: Int, _ py: Int, _ s: Int) {
            guard px >= 0, px < dotsX, py >= 0, py < dotsY else { return }
            bits[py / 4][px / 2] |= dotBits[py % 4][px % 2]
            owner[py / 4][px / 2] = s
        }
        func px(_ x: Double) -> Double { (x - minX) / (maxX - minX) * Double(dotsX - 1) }
        func py(_ v: Double) -> Double { (1 - (v - low) / (high - low)) * Double(dotsY - 1) }
        for (s, line) in series.enumerated() {
            for (a, b) in zip(line.values, line.values.dropFirst()) {
                let (x0, y0, x1, y1) = (px(a.x), py(a.y), px(b.x), py(b.y))
                let steps = Int(max(abs(x1 - x0), abs(y1 - y0))) + 1
                for t in 0...steps {
                    let f = Double(t) / Double(steps)
                    dot(Int((x0 + (x1 - x0) * f).rounded()), Int((y0 + (y1 - y0) * f).rounded()), s)
                }
            }
            // Markers on the data points, thinned so they stay a few cells apart; always the last.
            let every = max(1, Int((Double(line.values.count) * 4 / Double(cols)).rounded(.up)))
            // Not on points outside the y axis (lr-find's diverged tail): there is no row for them.
            for (i, p) in line.values.enumerated() where (i % every == 0 || i == line.values.count - 1) && (low...high).contains(p.y) {
                let (c, r) = (min(cols - 1, Int(px(p.x).rounded()) / 2), max(0, min(rows - 1, Int(py(p.y).rounded()) / 4)))
                marks[r][c] = markers[s % markers.count]
                owner[r][c] = s
            }
        }

        func paint(_ text: String, _ s: Int) -> String { color ? colors[s % colors.count] + text + reset : text }
        var out = [title]
        for r in 0..<rows {
            let text = labelRows.contains(r) ? label(r) : ""
            var line = String(repeating: " ", count: labelWidth - text.count) + text + (labelRows.contains(r) ? " ┤" : " │")
            for c in 0..<cols {
                if let mark = marks[r][c] {
                    line += paint(String(mark), owner[r][c])
                } else if bits[r][c] != 0 {
                    line += paint(String(UnicodeScalar(0x2800 + UInt32(bits[r][c]))!), owner[r][c])
                } else {
                    line += " "
                }
            }
            while line.last == " " { line.removeLast() }
            out.append(line)
        }
        // X axis: a tick and a label at the given positions that do not collide.
        var axis = Array(String(repeating: "─", count: cols))
        var labels = Array(repeating: Character(" "), count: cols + 8)
        var free = 0
        for tick in xTicks where tick.x >= minX - 1e-6 && tick.x <= maxX + 1e-6 {
            let c = max(0, min(cols - 1, Int(px(tick.x).rounded()) / 2))
            let text = Array(tick.text)
            let start = max(0, min(c - text.count / 2, cols - text.count))
            guard start >= free else { continue }
            axis[c] = "┬"
            for (k, ch) in text.enumerated() { labels[start + k] = ch }
            free = start + text.count + 1
        }
        out.append(String(repeating: " ", count: labelWidth + 1) + "└" + String(axis))
        let tickLabels = String(labels.prefix(cols)).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        out.append(String(repeating: " ", count: labelWidth - xLabel.count) + xLabel + "  " + tickLabels)
        // Legend, wrapped to the width.
        var legendLines: [String] = [], current = " ", currentWidth = 1
        for (s, line) in series.enumerated() {
            let entry = "\(markers[s % markers.count]) \(line.label)"
            if currentWidth > 1 && currentWidth + 3 + entry.count > width {
                legendLines.append(current)
                current = " "
                currentWidth = 1
            }
            current += (currentWidth > 1 ? "   " : " ") + paint(entry, s)
            currentWidth += (currentWidth > 1 ? 3 : 1) + entry.count
        }
        legendLines.append(current)
        return (out + legendLines).joined(separator: "\n")
    }
}
