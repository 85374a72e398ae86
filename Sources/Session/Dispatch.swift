import Foundation
import Tracking

extension Session {
    /// Runs one typed line (one or more commands separated by `;`). Every mistake becomes one
    /// `error: …` line and leaves the session as it was. Returns false if a command failed.
    @discardableResult
    public func execute(_ line: String, console: Console) -> Bool {
        let commands: [LineParser.Segment]
        do { commands = try LineParser.segments(in: line) } catch let error as LineParser.ParseError {
            console.write("error: \(error.message)")
            return false
        } catch { return false }
        for (index, segment) in commands.enumerated() {
            guard !quitRequested else { break }
            if !run(segment.words, text: segment.text, console: console) && !isFollower { return false }
            // Ctrl-C stops the whole line (and a script), not just the command it landed in.
            if isInterrupted() {
                let rest = commands[(index + 1)...].map(\.text)
                if !rest.isEmpty {
                    console.write("interrupted (\(interruptionName())); not run: \(rest.joined(separator: "; "))")
                    commandObserver?.commandsSkipped(rest)
                }
                return false
            }
        }
        return true
    }

    /// Finds the command, checks its arity, runs it, and records it in the run database.
    func run(_ words: [String], text typed: String, console: Console) -> Bool {
        let started = Date()
        // As typed (quotes kept), so history, the database and the transcript show what ran.
        let text = typed.isEmpty ? words.map { $0.contains(" ") || $0.isEmpty ? "\"\($0)\"" : $0 }.joined(separator: " ") : typed
        var failure: String?
        replayOfInterruptedCommand = nil
        replayOfAnsweredCommand = nil
        // History the database could not take before goes first, so every command reads a
        // record that agrees with itself.
        if !pendingWrites.isEmpty { writePending(console) }
        let name = words[0].lowercased()
        commandObserver?.commandStarted(text)
        defer {
            if name != "history" { typedHistory.append(text) }
            if let failure {
                console.write("error: \(failure)")
                if lastFailure == nil { lastFailure = "\(text): \(failure)" }
            }
            if let store {
                try? store.recordCommand(text, started: started, seconds: Date().timeIntervalSince(started), error: failure, run: runID)
            }
            let outcome: CommandOutcome
            if let failure { outcome = .failed(error: failure) }
            else if let replay = replayOfInterruptedCommand { outcome = .interrupted(replay: replay) }
            else if let replay = replayOfAnsweredCommand { outcome = .answered(replay: replay) }
            else if self.command(named: name)?.name == "run" { outcome = .expanded }
            else { outcome = .succeeded }
            commandObserver?.commandFinished(text, outcome: outcome)
        }
        guard let command = command(named: name) else {
            let names = commands.flatMap { [$0.name] + $0.aliases }
            if let guess = closestWord(to: name, in: names) {
                failure = "unknown command '\(words[0])' — did you mean '\(guess)'? (type help for the list)"
            } else {
                failure = "unknown command '\(words[0])'; type help for the list of commands"
            }
            return false
        }
        var args = Array(words.dropFirst())
        if command.takesRawText {
            // The rest of the line as typed, quotes and all (SQL needs its quotes).
            let rest = typed.dropFirst(words[0].count).trimmingCharacters(in: .whitespaces)
            args = rest.isEmpty ? [] : [rest]
        }
        guard command.arity.contains(args.count) else {
            failure = Session.arityProblem(command, given: args.count)
            return false
        }
        do {
            try command.run(self, args, console)
            return true
        } catch {
            failure = "\(error)"
            return false
        }
    }

    /// What is wrong with the number of words a command was given: its usage, and for too many
    /// (a pasted file, two commands run together) how many it takes against how many it got.
    static func arityProblem(_ command: Command, given: Int) -> String {
        let usage = "usage: \(command.usage)   (e.g. \(command.example))"
        guard given > command.arity.upperBound else { return usage }
        let most = command.arity.upperBound
        let takes = most == 0 ? "no words" : "at most \(most) word\(most == 1 ? "" : "s")"
        return "too many words for \(command.name): it takes \(takes) after its name, this line gives it \(given); \(usage)"
    }

    public func command(named name: String) -> Command? {
        let key = name.lowercased()
        return commands.first { $0.name == key || $0.aliases.contains(key) }
    }

    /// Candidates for the word being typed at the end of `line`, for tab completion.
    public func completions(for line: String) -> [String] {
        let endsWithSpace = line.last == " "
        let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let current = endsWithSpace ? "" : (words.last ?? "")
        let before = endsWithSpace ? words : Array(words.dropLast())
        guard let first = before.first else {
            return commands.flatMap { [$0.name] + $0.aliases }.filter { $0.hasPrefix(current.lowercased()) }.sorted()
        }
        guard let command = command(named: first) else { return [] }
        var candidates: [String]
        switch command.completion {
        case .none, .files: candidates = []
        case .words(let words): candidates = before.count == 1 ? words : []
        case .commands: candidates = before.count == 1 ? commands.map(\.name) : []
        case .datasets:
            if before.count == 1 { candidates = ["mnist", "fashion-mnist", "idx", "images", "videos"] }
            else if before.count >= 3, before[1].lowercased() == "images" { candidates = ["size", "gray", "rgb", "test", "skip-bad"] }
            else if before.count >= 3, before[1].lowercased() == "videos" { candidates = ["frames", "size", "gray", "rgb", "test", "skip-bad"] }
            else { candidates = [] }
        case .settings:
            if before.count == 1 { candidates = Setting.settable.map(\.name) }
            else if before.count == 2, let setting = Setting.named(before[1]) { candidates = setting.suggestions }
            else { candidates = [] }
        }
        return candidates.filter { $0.hasPrefix(current) }
    }

    /// Whether the argument being typed is a file path (completed by the line editor).
    public func completesFiles(for line: String) -> Bool {
        let words = line.split(separator: " ").map(String.init)
        guard let first = words.first, let command = command(named: first) else { return false }
        if case .files = command.completion { return true }
        if case .datasets = command.completion, words.count >= 2, ["idx", "images", "videos"].contains(words[1]) { return true }
        if command.name == "export", words.count >= 2, words[1].lowercased() == "onnx" { return true }
        return false
    }

    /// Replays a script: each line as typed, stopping at the first failing line.
    public func runScript(_ path: String, console: Console) throws {
        let lines = try ScriptText.lines(ofFile: path)
        guard scriptDepth < 8 else { throw CommandError("\(path): scripts nested too deeply (does a script run itself?)") }
        scriptDepth += 1
        defer { scriptDepth -= 1 }
        for (number, line) in lines.enumerated() {
            guard !quitRequested else { return }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if !console.isInteractive || scriptDepth > 0 { console.write("ollie> \(trimmed)") }
            if !execute(trimmed, console: console) && !isFollower {
                if isInterrupted() {
                    throw CommandError("\(path):\(number + 1): interrupted (\(interruptionName())); the rest of the script was not run")
                }
                throw CommandError("\(path):\(number + 1): stopped at the failing line above")
            }
        }
    }

    static let replCommands: [Command] = [
        Command("help", usage: "help [COMMAND]", summary: "List the commands, or show one command's usage and an example.",
                example: "help train", arity: 0...1, completion: .commands) { session, args, console in
            console.write(session.helpText(args.first))
        },
        Command("history", usage: "history", summary: "The commands run in this session, numbered.",
                example: "history", arity: 0...0) { session, _, console in
            let lines = session.typedHistory.enumerated().map { String(format: "%4d  ", $0.offset + 1) + $0.element }
            console.write(lines.isEmpty ? "no commands yet" : lines.joined(separator: "\n"))
        },
        Command("run", usage: "run FILE", summary: "Replay a session script (one command per line, # comments) in this session.",
                example: "run examples/tour.ollie", arity: 1...1, completion: .files) { session, args, console in
            try session.runScript(args[0], console: console)
        },
        Command("quit", aliases: ["exit"], usage: "quit", summary: "Leave ollie (Ctrl-D too); the transcript is already on disk.",
                example: "quit", arity: 0...0) { session, _, _ in
            session.quitRequested = true
        },
    ]

    func helpText(_ name: String?) -> String {
        if let name {
            guard let c = command(named: name) else {
                let guess = closestWord(to: name, in: commands.map(\.name)).map { " — did you mean '\($0)'?" } ?? ""
                return "no command '\(name)'\(guess); type help for the list"
            }
            var lines = hangingIndent("usage:   ", c.usage) + hangingIndent("         ", c.summary) + hangingIndent("example: ", c.example)
            if !c.aliases.isEmpty { lines.append("also:    \(c.aliases.joined(separator: ", "))") }
            if c.name == "build" { lines.append(Session.buildHelp) }
            if c.name == "set" {
                lines.append("settings:")
                lines += Setting.settable.flatMap { hangingIndent("  \($0.name.padding(toLength: 11, withPad: " ", startingAt: 0)) ", $0.summary) }
            }
            return lines.joined(separator: "\n")
        }
        // Usages longer than the column show the command's name, and each summary its first
        // sentence (help COMMAND has the rest), wrapped between words within 80 columns: the
        // list stays one screen a command or two, not a manual.
        let shown = min(commands.map(\.usage.count).max() ?? 0, 24)
        var lines = ["Commands (help COMMAND for usage, the whole summary and an example):"]
        for c in commands {
            let usage = c.usage.count > shown ? c.name : c.usage
            lines += hangingIndent("  " + usage.padding(toLength: shown, withPad: " ", startingAt: 0) + "  ", firstSentence(c.summary))
        }
        lines += wrapWords("Lines: `;` separates commands, `#` starts a comment, quotes group words. Ctrl-C stops training after the current batch.", width: 80)
        return lines.joined(separator: "\n")
    }

    /// A summary's first sentence: up to the first `. ` or `; ` outside parentheses, not the
    /// one in "e.g." or "i.e.".
    func firstSentence(_ text: String) -> String {
        var depth = 0
        var previous: Character = " ", beforePrevious: Character = " "
        var end = text.endIndex
        for index in text.indices {
            let ch = text[index]
            if ch == "(" { depth += 1 } else if ch == ")" { depth = max(0, depth - 1) }
            let next = text.index(after: index)
            let atSpace = next == text.endIndex || text[next] == " "
            let abbreviation = ch == "." && previous.isLetter && beforePrevious == "."
            if depth == 0, atSpace, ch == ";" || (ch == "." && !abbreviation && text[..<index].suffix(3) != " e.g" && text[..<index].suffix(3) != " i.e") {
                end = index
                break
            }
            beforePrevious = previous
            previous = ch
        }
        return String(text[..<end]).trimmingCharacters(in: .whitespaces) + (end == text.endIndex ? "" : ".")
    }
}
