/// Where a command's output goes: the terminal, a session transcript, a test buffer.
public protocol Console: AnyObject {
    /// One line of lasting output (a result, an epoch line, an event).
    func write(_ line: String)
    /// A transient status line (the progress bar), redrawn in place on a TTY; dropped elsewhere.
    func progress(_ line: String)
    /// True on a terminal: colours and in-place redraws are allowed.
    var isInteractive: Bool { get }
}

/// What tab completion offers for a command's arguments.
public enum ArgumentCompletion: Sendable {
    case none
    /// Fixed words for the first argument, e.g. ["test", "train"].
    case words([String])
    /// Setting names for the first argument, then that setting's known values.
    case settings
    /// Dataset names, and file paths after `idx`.
    case datasets
    case files
    case commands
}

/// A user mistake: one line saying what was wrong and what to do. The session is unchanged.
public struct CommandError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ message: String) { description = message }
}

/// One REPL command: its name, help and handler in one declaration, so `help`, completion,
/// arity checks and "did you mean" all read the same table (see `Session.commands`).
public struct Command: Sendable {
    public let name: String
    public let aliases: [String]
    public let usage: String
    public let summary: String
    public let example: String
    public let arity: ClosedRange<Int>
    public let completion: ArgumentCompletion
    /// The handler gets the rest of the line as typed, as one argument (for `sql`).
    public let takesRawText: Bool
    public let run: @Sendable (Session, [String], Console) throws -> Void

    public init(_ name: String, aliases: [String] = [], usage: String, summary: String, example: String,
                arity: ClosedRange<Int>, completion: ArgumentCompletion = .none, takesRawText: Bool = false,
                run: @escaping @Sendable (Session, [String], Console) throws -> Void) {
        self.name = name
        self.aliases = aliases
        self.usage = usage
        self.summary = summary
        self.example = example
        self.arity = arity
        self.completion = completion
        self.takesRawText = takesRawText
        self.run = run
    }
}

/// How a command ended, for the transcript: a replayable script of what really happened.
public enum CommandOutcome: Equatable, Sendable {
    case succeeded
    case failed(error: String)
    /// Stopped part-way (Ctrl-C); `replay` are the commands that redo exactly the work done
    /// (`train 2` stopped in epoch 2 after batch 273: `train 1`, `train 273 batches`).
    case interrupted(replay: [String])
    /// It asked the person at the prompt (`delete`); `replay` is what a script says to do the
    /// same (`delete 3 yes`), nothing when they said no.
    case answered(replay: [String])
    /// A `run FILE`: its own commands are reported one by one, so the line itself must not
    /// replay them a second time.
    case expanded
}

/// Told of each command the session runs, including those of a replayed script.
public protocol CommandObserver: AnyObject {
    func commandStarted(_ text: String)
    func commandFinished(_ text: String, outcome: CommandOutcome)
    /// Commands of a line that were not run because Ctrl-C stopped the line.
    func commandsSkipped(_ texts: [String])
}
