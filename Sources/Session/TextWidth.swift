/// Text fitted to a column: cut to `width` characters, with … where it was cut. Paths keep
/// their end (`keepingEnd`), which tells them apart.
func cut(_ text: String, to width: Int, keepingEnd: Bool = false) -> String {
    guard text.count > width else { return text }
    guard width > 1 else { return String(text.prefix(width)) }
    return keepingEnd ? "…" + String(text.suffix(width - 1)) : String(text.prefix(width - 1)) + "…"
}

/// A spec after `lead` ("built ", "model: "), wrapped at its top-level `|` to `width`
/// columns, later lines indented under the first layer:
///
///     built conv 3 16 relu | res(conv 3 16 relu | conv 3 16) | relu
///           | res(conv 3 32 stride 2 relu | conv 3 32) | relu | gap | dense 10
///
/// A single layer longer than a line stays whole (cutting it would change what it says).
func wrapSpec(_ spec: String, after lead: String, width: Int = 80) -> String {
    var pieces: [String] = [], current = "", depth = 0
    for character in spec {
        if character == "(" { depth += 1 } else if character == ")" { depth -= 1 }
        if character == "|", depth == 0 {
            pieces.append(current.trimmingCharacters(in: .whitespaces))
            current = ""
        } else {
            current.append(character)
        }
    }
    pieces.append(current.trimmingCharacters(in: .whitespaces))
    let indent = String(repeating: " ", count: lead.count)
    var lines: [String] = [], line = lead + pieces[0]
    for piece in pieces.dropFirst() {
        if line.count + 3 + piece.count > width {
            lines.append(line)
            line = indent + "| " + piece
        } else {
            line += " | " + piece
        }
    }
    lines.append(line)
    return lines.joined(separator: "\n")
}

/// Each line of `text` filled to at most `width` columns, broken between words only: a word
/// longer than a line (a path) stays whole on a line of its own, since a cut path is useless.
func fold(_ text: String, width: Int = 80) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { paragraph in
        var lines: [String] = [], line = ""
        for word in paragraph.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }.joined(separator: "\n")
}
