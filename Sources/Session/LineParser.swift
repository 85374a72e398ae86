import Foundation

/// Splits a typed line into commands and words: `#` starts a comment, `;` separates commands,
/// "double" or 'single' quotes keep spaces inside one word, and an unquoted `~/` at the start of
/// a word is the home folder, as in a shell (a user who types `save ~/net.safetensors`
/// means their home, not a folder named `~` here).
enum LineParser {
    struct ParseError: Error { let message: String }

    /// One command: its words, and its text as typed (for commands such as `sql` that take the
    /// rest of the line verbatim, quotes included).
    struct Segment: Equatable {
        var words: [String]
        var text: String
    }

    static func commands(in line: String) throws -> [[String]] {
        try segments(in: line).map(\.words)
    }

    static func segments(in line: String, home: String? = ProcessInfo.processInfo.environment["HOME"]) throws -> [Segment] {
        var commands: [Segment] = []
        var text = ""
        var words: [String] = []
        var word = ""
        var inWord = false
        /// The word began with an unquoted `~`.
        var startsWithTilde = false
        var quote: Character?
        func endWord() {
            if startsWithTilde, let home, !home.isEmpty, word.hasPrefix("~/") {
                word = home + word.dropFirst()
            }
            words.append(word); word = ""; inWord = false; startsWithTilde = false
        }
        func finish() {
            if inWord { endWord() }
            if !words.isEmpty { commands.append(Segment(words: words, text: text.trimmingCharacters(in: .whitespaces))) }
            words = []; word = ""; inWord = false; text = ""
        }
        for ch in line {
            if let q = quote {
                text.append(ch)
                if ch == q { quote = nil } else { word.append(ch) }
                continue
            }
            switch ch {
            case "\"", "'":
                text.append(ch)
                quote = ch
                inWord = true
            case "#":
                finish()
                return commands
            case ";":
                finish()
            case " ", "\t", "\r", "\n":
                text.append(ch)
                if inWord { endWord() }
            default:
                text.append(ch)
                if !inWord && ch == "~" { startsWithTilde = true }
                word.append(ch)
                inWord = true
            }
        }
        if quote != nil { throw ParseError(message: "unclosed \(quote!) quote; close it or remove it") }
        finish()
        return commands
    }
}
