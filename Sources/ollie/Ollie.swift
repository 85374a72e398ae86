import ArgumentParser
import Cluster
import Foundation
import Session
import Tensor

@main
struct Ollie: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ollie",
        abstract: "A notebook-style REPL for training neural networks step by step, every run on record.",
        discussion: """
            With no arguments, an interactive session (type help). With FILEs, replays them as scripts \
            and exits (non-zero at the first failing line). Data are looked for in $OLLIE_DATA_PATH, \
            ./data, ../shared/datasets and /usr/share/datasets.
            """)

    @Option(name: .customLong("db"), help: "The run database (default: $OLLIE_DB or ./ollie.sqlite).")
    var database: String?

    @Option(name: .short, help: "Run these commands (separated by ;) and exit.")
    var commands: String?

    @Flag(help: "No colours or progress bars, even on a terminal.")
    var plain = false

    @Argument(help: "Session scripts to replay, in order.")
    var scripts: [String] = []

    func run() throws {
        Interrupt.install()
        do { try Kernels.load() } catch {   // OLLIE_KERNELS names a set this CPU cannot run
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if MPIWorld.isLaunched {   // under mpirun: one rank of a data-parallel job
            return try ClusterMode.run(database: database, commands: commands, scripts: scripts)
        }
        let stdinIsTerminal = isatty(STDIN_FILENO) != 0
        let stdoutIsTerminal = isatty(STDOUT_FILENO) != 0 && !plain
        let session = Session(databasePath: database)
        session.isInterrupted = { Interrupt.isSet }
        session.interruptionName = { Interrupt.endingSignal.map(Interrupt.name) ?? "Ctrl-C" }
        let terminal = TerminalConsole(interactive: stdoutIsTerminal)
        if let problem = session.storeProblem { terminal.write("warning: \(problem)") }
        defer {
            Interrupt.clear()   // a Ctrl-C from before is not one for this wait
            session.finishMLflow(terminal)
        }

        if let commands {
            let succeeded = session.execute(commands, console: terminal)
            try finish(session, console: terminal)
            guard succeeded else { throw ExitCode(1) }
            return
        }
        if !scripts.isEmpty {
            for script in scripts {
                do { try session.runScript(script, console: terminal) } catch {
                    terminal.write("error: \(error)")
                    try finish(session, console: terminal)
                    throw ExitCode(1)
                }
                if session.quitRequested { break }
            }
            try finish(session, console: terminal)
            return
        }
        try repl(session, terminal: terminal, interactive: stdinIsTerminal)
    }

    /// The end of a session, however it came: what the database has not taken yet is tried a
    /// last time (or said), the current run's lease is given up, and a SIGTERM or SIGHUP is
    /// reported and becomes the exit status (128 + the signal).
    func finish(_ session: Session, console: Console) throws {
        session.close(console)
        if let signal = Interrupt.endingSignal {
            console.write("stopped by \(Interrupt.name(signal)); what was done is recorded")
            throw ExitCode(128 + signal)
        }
    }

    /// Reads and runs lines until quit or end of input. An interactive session is written as it
    /// goes to sessions/ as a replayable script.
    func repl(_ session: Session, terminal: TerminalConsole, interactive: Bool) throws {
        let editor = LineEditor(interactive: interactive, session: session)
        var console: Console = terminal
        var transcript: TranscriptConsole?
        if interactive {
            let folder = Ollie.transcriptFolder()
            do {
                transcript = try TranscriptConsole.create(terminal: terminal, folder: folder, stamp: Ollie.transcriptStamp())
                console = transcript!
                session.commandObserver = transcript
                terminal.write("ollie — type help for the commands, quit or Ctrl-D to leave (session: \(transcript!.path))")
            } catch {
                terminal.write("warning: cannot write a session transcript in \(folder): \(error)")
            }
        }
        if interactive {
            session.confirm = { question in
                let answer = editor.readLine(prompt: question)?.trimmingCharacters(in: .whitespaces).lowercased()
                return answer == "y" || answer == "yes"
            }
        }
        var failed = false
        while !session.quitRequested, Interrupt.endingSignal == nil, let line = editor.readLine(prompt: "ollie> ") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            Interrupt.clear()
            if !session.execute(trimmed, console: console) { failed = true }
        }
        if interactive { print("") }
        try finish(session, console: console)
        // Piped input behaves like a script: a failed command makes the exit status non-zero.
        if failed && !interactive { throw ExitCode(1) }
    }

    /// sessions/, or $OLLIE_SESSIONS.
    static func transcriptFolder() -> String { ProcessInfo.processInfo.environment["OLLIE_SESSIONS"] ?? "sessions" }

    /// YYYY-MM-DD-HHMMSS, the transcript's name (TranscriptConsole adds -2, -3… when taken).
    static func transcriptStamp() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd-HHmmss"
        return formatter.string(from: Date())
    }
}
