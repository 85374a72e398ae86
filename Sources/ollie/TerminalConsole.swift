@preconcurrency import Glibc
import Foundation
import Session

/// Output to the terminal: lasting lines, plus a progress line redrawn in place on a TTY.
final class TerminalConsole: Console {
    let isInteractive: Bool
    private var progressShown = false
    private var lastProgress = Date.distantPast

    init(interactive: Bool) { isInteractive = interactive }

    func write(_ line: String) {
        clearProgress()
        print(isInteractive ? line : stripANSI(line))
        fflush(stdout)
    }

    func progress(_ line: String) {
        guard isInteractive else { return }
        // ~10 redraws a second are plenty and cost nothing next to training.
        let now = Date()
        guard now.timeIntervalSince(lastProgress) > 0.1 else { return }
        lastProgress = now
        print("\r\u{1B}[2K" + line, terminator: "")
        fflush(stdout)
        progressShown = true
    }

    private func clearProgress() {
        guard progressShown else { return }
        print("\r\u{1B}[2K", terminator: "")
        progressShown = false
    }
}

/// Tees lasting output into the session transcript as `# ` comments under each command.
final class TranscriptConsole: Console {
    let terminal: Console
    private let file: FileHandle

    var isInteractive: Bool { terminal.isInteractive }

    init(terminal: Console, path: String) throws {
        self.terminal = terminal
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteNoPermission)
        }
        file = handle
    }

    func command(_ line: String) { append(line + "\n") }

    func write(_ line: String) {
        terminal.write(line)
        append(stripANSI(line).split(separator: "\n", omittingEmptySubsequences: false).map { "# \($0)" }.joined(separator: "\n") + "\n")
    }

    func progress(_ line: String) { terminal.progress(line) }

    private func append(_ text: String) {
        file.write(Data(text.utf8))   // unbuffered: the transcript is on disk as the session goes
    }
}

func stripANSI(_ s: String) -> String {
    guard s.contains("\u{1B}") else { return s }
    var out = ""
    var skipping = false
    for ch in s.unicodeScalars {
        if skipping { if (0x40...0x7E).contains(ch.value) && ch != "[" { skipping = false }; continue }
        if ch == "\u{1B}" { skipping = true; continue }
        out.unicodeScalars.append(ch)
    }
    return out
}
