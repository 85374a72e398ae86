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

/// Tees lasting output into the session transcript: each command on its own line, its output
/// under it as `# ` comments, so the file replays as a script that redoes what really happened.
/// A command that failed becomes a comment with its error; one stopped by Ctrl-C is replaced
/// by the commands that redo the work it did; a `run FILE` becomes a comment above the
/// commands it ran. The file is written as the session goes; only the block of the command
/// still running is rewritten when it ends.
final class TranscriptConsole: Console, CommandObserver {
    let terminal: Console
    private let file: FileHandle
    /// The innermost command still running, while nothing has been written after its block.
    private var open: (offset: UInt64, text: String, output: [String])?

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
        append("# ollie session transcript: replay it with `ollie FILE` or `run FILE`\n")
    }

    func commandStarted(_ text: String) {
        // A command running inside another (`run FILE`): the outer one becomes a comment, so a
        // replay runs the inner commands once.
        if let outer = open { rewrite(outer, header: ["# \(outer.text)"]) }
        open = (offset: file.offsetInFile, text: text, output: [])
        append(text + "\n")
    }

    func commandFinished(_ text: String, outcome: CommandOutcome) {
        guard let block = open, block.text == text else { return }   // already rewritten as a comment
        open = nil
        switch outcome {
        case .succeeded:
            break
        case .failed:
            rewrite(block, header: ["# \(text)"])
        case .expanded:
            rewrite(block, header: ["# \(text)"])
        case .interrupted(let replay):
            let by = Interrupt.endingSignal.map(Interrupt.name) ?? "Ctrl-C"
            rewrite(block, header: ["# \(text)   (stopped by \(by); the work it did:)"] + replay)
        }
    }

    func commandsSkipped(_ texts: [String]) {
        let by = Interrupt.endingSignal.map(Interrupt.name) ?? "Ctrl-C"
        append(texts.map { "# not run (\(by)): \($0)\n" }.joined())
    }

    func write(_ line: String) {
        terminal.write(line)
        let comments = stripANSI(line).split(separator: "\n", omittingEmptySubsequences: false).map { "# \($0)" }
        open?.output += comments
        append(comments.joined(separator: "\n") + "\n")
    }

    func progress(_ line: String) { terminal.progress(line) }

    /// Replaces a block (its command line and output) with `header` and the same output.
    private func rewrite(_ block: (offset: UInt64, text: String, output: [String]), header: [String]) {
        file.truncateFile(atOffset: block.offset)
        append((header + block.output).joined(separator: "\n") + "\n")
    }

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
