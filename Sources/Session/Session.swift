/// The live session: dataset, model, optimizer, settings and the current run, changed one
/// command at a time. (Being written; the REPL talks to it through `execute` and `commands`.)
public final class Session: @unchecked Sendable {
    /// Polled between minibatches; the REPL points it at its Ctrl-C flag.
    public var isInterrupted: @Sendable () -> Bool = { false }

    /// The full command table (built-ins registered by the Session itself).
    public var commands: [Command] = []

    public init() {}
}
