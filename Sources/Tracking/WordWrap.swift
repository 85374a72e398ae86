/// Text filled into lines of at most `width` characters, broken between words; a word longer
/// than a line is cut with …. Characters are counted, not bytes.
public func wrapWords(_ text: String, width: Int) -> [String] {
    let width = max(width, 2)
    var lines: [String] = [], line = ""
    for word in text.split(separator: " ") {
        let piece = word.count > width ? String(word.prefix(width - 1)) + "…" : String(word)
        if !line.isEmpty && line.count + 1 + piece.count > width {
            lines.append(line)
            line = ""
        }
        line += (line.isEmpty ? "" : " ") + piece
    }
    if !line.isEmpty { lines.append(line) }
    return lines.isEmpty ? [""] : lines
}

/// `text` wrapped after a first-line `lead`, later lines indented to the lead's width:
/// "usage:   load mnist | …" with its continuation under "load".
public func hangingIndent(_ lead: String, _ text: String, width: Int = 80) -> [String] {
    let pieces = wrapWords(text, width: width - lead.count)
    let indent = String(repeating: " ", count: lead.count)
    return [lead + pieces[0]] + pieces.dropFirst().map { indent + $0 }
}

extension TextTable {
    /// Adds a row whose cells are wrapped to `widths` (nil: as it is), over as many lines as
    /// its longest cell needs; the other cells are blank below their first line.
    public mutating func add(_ row: [String], wrappingTo widths: [Int?]) {
        let pieces = row.enumerated().map { c, cell in
            c < widths.count ? widths[c].map { wrapWords(cell, width: $0) } ?? [cell] : [cell]
        }
        let height = pieces.map(\.count).max() ?? 1
        for line in 0..<height { add(pieces.map { line < $0.count ? $0[line] : "" }) }
    }
}
