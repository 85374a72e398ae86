/// A plain-text table with aligned columns and a rule under the header: `runs` here, and the
/// session's `summary`, `show`, `confusion`, `sql` and the like.
public struct TextTable: Sendable {
    public let header: [String]
    public let alignRight: [Bool]
    private var rows: [[String]] = []

    public init(header: [String], alignRight: [Bool]? = nil) {
        self.header = header
        self.alignRight = alignRight ?? header.map { _ in false }
    }

    public mutating func add(_ row: [String]) { rows.append(row) }

    /// The width of each column: its widest cell.
    public var columnWidths: [Int] {
        let all = (header.isEmpty ? [] : [header]) + rows
        let columns = all.map(\.count).max() ?? 0
        return (0..<columns).map { c in all.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
    }

    public func render() -> String {
        let widths = columnWidths, columns = widths.count
        func line(_ row: [String]) -> String {
            (0..<columns).map { c in
                let cell = c < row.count ? row[c] : ""
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return c < alignRight.count && alignRight[c] ? pad + cell : cell + pad
            }.joined(separator: "  ").replacingTrailingSpaces()
        }
        var lines = [String]()
        if !header.isEmpty {
            lines.append(line(header))
            lines.append(widths.map { String(repeating: "─", count: $0) }.joined(separator: "  "))
        }
        lines += rows.map(line)
        return lines.joined(separator: "\n")
    }
}

extension String {
    public func replacingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
