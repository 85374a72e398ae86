/// Splits a typed line into commands and words: `#` starts a comment, `;` separates commands,
/// and "double" or 'single' quotes keep spaces inside one word.
enum LineParser {
    struct ParseError: Error { let message: String }

    static func commands(in line: String) throws -> [[String]] {
        var commands: [[String]] = []
        var words: [String] = []
        var word = ""
        var inWord = false
        var quote: Character?
        for ch in line {
            if let q = quote {
                if ch == q { quote = nil } else { word.append(ch) }
                continue
            }
            switch ch {
            case "\"", "'":
                quote = ch
                inWord = true
            case "#":
                if inWord { words.append(word) }
                if !words.isEmpty { commands.append(words) }
                return commands
            case ";":
                if inWord { words.append(word) }
                if !words.isEmpty { commands.append(words) }
                words = []; word = ""; inWord = false
            case " ", "\t", "\r", "\n":
                if inWord { words.append(word); word = ""; inWord = false }
            default:
                word.append(ch)
                inWord = true
            }
        }
        if quote != nil { throw ParseError(message: "unclosed \(quote!) quote; close it or remove it") }
        if inWord { words.append(word) }
        if !words.isEmpty { commands.append(words) }
        return commands
    }
}
