/// A plain-text table with aligned columns, for `summary`, `show`, `confusion` and the like.
struct TextTable {
    let header: [String]
    let alignRight: [Bool]
    private var rows: [[String]] = []

    init(header: [String], alignRight: [Bool]? = nil) {
        self.header = header
        self.alignRight = alignRight ?? header.map { _ in false }
    }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        let all = (header.isEmpty ? [] : [header]) + rows
        let columns = all.map(\.count).max() ?? 0
        let widths = (0..<columns).map { c in all.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
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
    func replacingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
