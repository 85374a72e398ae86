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
    /// The transcript's file.
    let path: String
    private let file: FileHandle
    /// The innermost command still running, while nothing has been written after its block.
    private var open: (offset: UInt64, text: String, output: [String])?

    var isInteractive: Bool { terminal.isInteractive }

    /// A transcript in a file that must not exist yet.
    init(terminal: Console, path: String) throws {
        self.terminal = terminal
        self.path = path
        file = try Self.createExclusively(path)
        append("# ollie session transcript: replay it with `ollie FILE` or `run FILE`\n")
    }

    /// A transcript named FOLDER/STAMP.ollie, or STAMP-2.ollie, STAMP-3.ollie… when that is
    /// taken: two sessions started in the same second never write into one file.
    static func create(terminal: Console, folder: String, stamp: String) throws -> TranscriptConsole {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for attempt in 1...1000 {
            let path = "\(folder)/\(stamp)\(attempt == 1 ? "" : "-\(attempt)").ollie"
            do { return try TranscriptConsole(terminal: terminal, path: path) } catch let error as TranscriptError where error.alreadyExists {
                continue
            }
        }
        throw TranscriptError(description: "\(folder) already holds 1000 transcripts named \(stamp)…; remove some", alreadyExists: false)
    }

    /// Creates `path` with O_EXCL: an existing transcript is never opened, let alone truncated.
    private static func createExclusively(_ path: String) throws -> FileHandle {
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            let code = errno
            throw TranscriptError(description: "cannot create \(path): \(String(cString: strerror(code)))", alreadyExists: code == EEXIST)
        }
        return FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
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
        case .answered(let replay):
            // A script cannot answer a prompt: it says what the person answered.
            rewrite(block, header: ["# \(text)   (" + (replay.isEmpty ? "answered no at the prompt)" : "answered yes at the prompt; a script says:)")] + replay)
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

struct TranscriptError: Error, CustomStringConvertible {
    let description: String
    let alreadyExists: Bool
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
