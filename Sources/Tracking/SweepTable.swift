import Foundation

/// A sweep's runs as a leaderboard: one row per configuration, best first, its swept settings
/// as columns, then the ranking metric, the epochs it trained and its status. Cells too wide
/// for the screen are cut with "…" (build specs are long).
public enum SweepTable {
    public struct Row: Sendable {
        public var run: Int64?
        public var values: [String]
        public var score: Double?
        public var epochs: Int
        public var status: String
        public init(run: Int64?, values: [String], score: Double?, epochs: Int, status: String) {
            self.run = run
            self.values = values
            self.score = score
            self.epochs = epochs
            self.status = status
        }
    }

    /// `rows` already in rank order; `metric` heads the score column ("val acc").
    public static func render(axes: [String], rows: [Row], metric: String, width: Int = 80) -> String {
        let fixed = ["#", "run"], tail = [metric, "epochs", "status"]
        var cells = rows.enumerated().map { i, row in
            [String(i + 1), row.run.map(String.init) ?? "-"] + row.values
                + [row.score.map { String(format: "%.4f", $0) } ?? "-", String(row.epochs), row.status]
        }
        // What the fixed columns take, then the swept columns share the rest.
        let header = fixed + axes + tail
        func widest(_ c: Int) -> Int { ([header] + cells).map { $0[c].count }.max() ?? 0 }
        let fixedWidth = (fixed.indices.map(widest) + (0..<tail.count).map { widest(header.count - tail.count + $0) }).reduce(0, +)
        let room = width - fixedWidth - 2 * (header.count - 1)
        let share = axes.isEmpty ? 0 : max(6, room / axes.count)
        for c in axes.indices where widest(fixed.count + c) > share {
            for r in cells.indices where cells[r][fixed.count + c].count > share {
                cells[r][fixed.count + c] = String(cells[r][fixed.count + c].prefix(share - 1)) + "…"
            }
        }
        var table = TextTable(header: header.map { $0.count > max(share, 6) && axes.contains($0) ? String($0.prefix(share - 1)) + "…" : $0 },
                              alignRight: [true, true] + axes.map { _ in false } + [true, true, false])
        for row in cells { table.add(row) }
        return table.render()
    }
}
