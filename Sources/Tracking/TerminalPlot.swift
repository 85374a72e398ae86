import Foundation

/// `plot`: line charts in the terminal with Unicode braille dots (2×4 dots a character cell),
/// one series per run, told apart by colour on a TTY and by the legend's marker elsewhere.
public enum TerminalPlot {
    static let colors = ["\u{1B}[34m", "\u{1B}[31m", "\u{1B}[32m", "\u{1B}[33m", "\u{1B}[35m", "\u{1B}[36m"]

    public static func render(series: [(label: String, values: [(epoch: Int, value: Double)])], title: String,
                              width: Int = 80, height: Int = 16, color: Bool = false) -> String {
        let points = series.flatMap(\.values)
        guard !points.isEmpty else { return "\(title): no data" }
        var low = points.map(\.value).min()!, high = points.map(\.value).max()!
        if high - low < 1e-12 { low -= 0.5; high += 0.5 }
        let minEpoch = points.map(\.epoch).min()!, maxEpoch = max(points.map(\.epoch).max()!, minEpoch + 1)
        let labelWidth = 9
        let cols = max(10, width - labelWidth - 2), rows = max(4, height)
        let dotsX = cols * 2, dotsY = rows * 4
        // cells[row][col]: braille bits and the series that drew last there.
        var bits = [[UInt8]](repeating: [UInt8](repeating: 0, count: cols), count: rows)
        var owner = [[Int]](repeating: [Int](repeating: -1, count: cols), count: rows)
        func dot(_ px: Int, _ py: Int, _ s: Int) {
            guard px >= 0, px < dotsX, py >= 0, py < dotsY else { return }
            let (cx, cy) = (px / 2, py / 4), (dx, dy) = (px % 2, py % 4)
            let map: [[UInt8]] = [[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]]
            bits[cy][cx] |= map[dy][dx]
            owner[cy][cx] = s
        }
        func px(_ epoch: Double) -> Double { (epoch - Double(minEpoch)) / Double(maxEpoch - minEpoch) * Double(dotsX - 1) }
        func py(_ v: Double) -> Double { (1 - (v - low) / (high - low)) * Double(dotsY - 1) }
        for (s, line) in series.enumerated() {
            let sorted = line.values.sorted { $0.epoch < $1.epoch }
            for (a, b) in zip(sorted, sorted.dropFirst()) {
                let (x0, y0, x1, y1) = (px(Double(a.epoch)), py(a.value), px(Double(b.epoch)), py(b.value))
                let steps = Int(max(abs(x1 - x0), abs(y1 - y0))) + 1
                for t in 0...steps {
                    let f = Double(t) / Double(steps)
                    dot(Int((x0 + (x1 - x0) * f).rounded()), Int((y0 + (y1 - y0) * f).rounded()), s)
                }
            }
            if sorted.count == 1 { dot(Int(px(Double(sorted[0].epoch))), Int(py(sorted[0].value)), s) }
        }
        // Without colour, each series' last point carries its legend number.
        var labels: [Int: [Int: Character]] = [:]
        if !color {
            for (s, line) in series.enumerated() {
                guard let last = line.values.max(by: { $0.epoch < $1.epoch }) else { continue }
                let (cx, cy) = (Int(px(Double(last.epoch)).rounded()) / 2, Int(py(last.value).rounded()) / 4)
                labels[min(cy, rows - 1), default: [:]][min(cx, cols - 1)] = Character(String((s + 1) % 10))
            }
        }
        var out = [title]
        for r in 0..<rows {
            let value = high - (high - low) * Double(r) / Double(rows - 1)
            let label = (r == 0 || r == rows - 1 || r == rows / 2) ? String(format: "%.4g", value) : ""
            var line = String(repeating: " ", count: max(0, labelWidth - label.count)) + label + " ┤"
            for c in 0..<cols {
                var ch = bits[r][c] == 0 ? " " : String(UnicodeScalar(0x2800 + UInt32(bits[r][c]))!)
                if let mark = labels[r]?[c] { ch = String(mark) }
                if color && owner[r][c] >= 0 && bits[r][c] != 0 {
                    line += colors[owner[r][c] % colors.count] + ch + "\u{1B}[0m"
                } else {
                    line += ch
                }
            }
            out.append(line)
        }
        out.append(String(repeating: " ", count: labelWidth + 1) + "└" + String(repeating: "─", count: cols))
        let axis = "epoch \(minEpoch)" + String(repeating: " ", count: max(1, cols - 12 - String(maxEpoch).count)) + "\(maxEpoch)"
        out.append(String(repeating: " ", count: labelWidth + 2) + axis)
        let legend = series.enumerated().map { s, line in
            let marker = color ? colors[s % colors.count] + "━━" + "\u{1B}[0m" : "\((s + 1) % 10) ="
            return "\(marker) \(line.label)"
        }
        out.append("  " + legend.joined(separator: "   "))
        return out.joined(separator: "\n")
    }
}
