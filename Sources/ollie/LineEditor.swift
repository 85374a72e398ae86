@preconcurrency import CReadline
import Foundation
import Session

/// GNU readline on a terminal: editing, persistent history, tab completion from the session's
/// command table. Elsewhere (pipes, files) lines read with read(2) and no prompt.
final class LineEditor {
    let interactive: Bool
    private let historyPath: String
    private var piped = PipedLines()

    init(interactive: Bool, session: Session) {
        self.interactive = interactive
        historyPath = (ProcessInfo.processInfo.environment["HOME"] ?? ".") + "/.ollie_history"
        guard interactive else { return }
        completionSession = session
        rl_readline_name = UnsafePointer(strdup("ollie"))
        rl_attempted_completion_function = attemptedCompletion
        rl_signal_event_hook = discardLineOnInterrupt
        stifle_history(1000)
        read_history(historyPath)
        LineEditor.createPrivately(historyPath)
    }

    /// readline's `append_history` only appends to a file that exists; without this the first
    /// session's lines, and every later one's, were never saved. Mode 600: commands may name
    /// private paths.
    static func createPrivately(_ path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        if fd >= 0 { close(fd) }
    }

    /// The next line, or nil at end of input (Ctrl-D).
    func readLine(prompt: String) -> String? {
        guard interactive else { return piped.next() }
        while true {
            Interrupt.clear()
            if Interrupt.endingSignal != nil { return nil }
            let raw = readline(prompt)
            // SIGTERM or SIGHUP at the prompt: the session ends (the hook made readline return).
            if Interrupt.endingSignal != nil { raw.map { free($0) }; return nil }
            guard let raw else {
                if Interrupt.take() { print(""); continue }   // libedit reports Ctrl-C as EOF
                return nil
            }
            defer { free(raw) }
            let line = String(cString: raw)
            if !line.trimmingCharacters(in: .whitespaces).isEmpty {
                add_history(raw)
                append_history(1, historyPath)
                history_truncate_file(historyPath, 1000)
            }
            return line
        }
    }
}

// readline calls back through C function pointers that cannot capture; their state is global.
nonisolated(unsafe) private var completionSession: Session?
nonisolated(unsafe) private var completionMatches: [String] = []
nonisolated(unsafe) private var completionIndex = 0

private let matchGenerator: @convention(c) (UnsafePointer<CChar>?, Int32) -> UnsafeMutablePointer<CChar>? = { _, state in
    guard completionIndex < completionMatches.count else { return nil }
    defer { completionIndex += 1 }
    return strdup(completionMatches[completionIndex])
}

private let attemptedCompletion: @convention(c) (UnsafePointer<CChar>?, Int32, Int32) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = { text, start, end in
    guard let session = completionSession else { return nil }
    let line = String(cString: rl_line_buffer)
    let prefix = String(line.utf8.prefix(Int(end))) ?? line
    if session.completesFiles(for: prefix) {
        rl_attempted_completion_over = 0   // fall back to readline's file-name completion
        return nil
    }
    rl_attempted_completion_over = 1
    completionMatches = session.completions(for: prefix)
    completionIndex = 0
    return rl_completion_matches(text, matchGenerator)
}

/// Ctrl-C at the prompt: drop the half-typed line and show a fresh prompt, like bash.
/// SIGTERM or SIGHUP: end the prompt so the session can close.
private let discardLineOnInterrupt: @convention(c) () -> Int32 = {
    if Interrupt.endingSignal != nil {
        rl_done = 1   // SIGTERM or SIGHUP: return from readline, and the session ends
        return 0
    }
    if Interrupt.take() {
        rl_replace_line("", 0)
        rl_crlf()
        rl_on_new_line()
        rl_redisplay()
    }
    return 0
}

/// Lines of standard input when it is not a terminal. Not Swift's `readLine()`: its getline
/// retries forever when a signal interrupts the read (it spins at 100 % CPU on SIGTERM), where
/// a request to end must end the session.
struct PipedLines {
    private var buffer: [UInt8] = []
    private var atEnd = false

    mutating func next() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                defer { buffer.removeSubrange(...newline) }
                // A CRLF line ends at its CR too, as readLine() ends it.
                let end = newline > 0 && buffer[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline
                return String(decoding: buffer[..<end], as: UTF8.self)
            }
            if atEnd {
                guard !buffer.isEmpty else { return nil }
                defer { buffer.removeAll() }
                return String(decoding: buffer, as: UTF8.self)
            }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR {
                if Interrupt.endingSignal != nil { return nil }
                continue
            }
            if count <= 0 { atEnd = true; continue }
            buffer += chunk[..<count]
        }
    }
}
