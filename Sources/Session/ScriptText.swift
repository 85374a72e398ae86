import Files

/// A script's lines, read as the user's editor wrote them: UTF-8 text, lines ending in "\n",
/// "\r\n" (Windows) or "\r", an optional byte-order mark. Swift's String holds "\r\n" as ONE
/// Character, so splitting on "\n" alone would read a Windows file as a single line.
enum ScriptText {
    /// The lines of the script at `path`; an unreadable file or one that is not UTF-8 is a
    /// CommandError saying which, and where.
    static func lines(ofFile path: String) throws -> [Substring] {
        let bytes: [UInt8]
        do { bytes = try FileContents.read(path, limit: 64 << 20) } catch {
            throw CommandError("\(error) (scripts are plain text, one command per line)")
        }
        return try lines(of: bytes, path: path)
    }

    static func lines(of bytes: [UInt8], path: String) throws -> [Substring] {
        if let offset = firstInvalidUTF8(bytes) {
            let line = bytes[..<offset].filter { $0 == UInt8(ascii: "\n") }.count + 1
            throw CommandError("\(path) is not UTF-8 text (an invalid byte at offset \(offset), line \(line)); save it as UTF-8 and run it again")
        }
        var text = String(decoding: bytes, as: UTF8.self)[...]
        if text.first == "\u{FEFF}" { text = text.dropFirst() }
        return text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
    }

    /// The byte offset of the first byte that does not belong to valid UTF-8, or nil.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .error: return offset
            case .emptyInput: return nil
            }
        }
    }
}
