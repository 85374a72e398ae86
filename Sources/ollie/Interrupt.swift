import Glibc
import Synchronization

/// Signals as flags: the handlers only store; the training loop polls between minibatches,
/// the prompt and the line loops look after each command.
/// - SIGINT (Ctrl-C) stops the command at hand (training after the current batch) and the
///   rest of its line; the session goes on.
/// - SIGTERM and SIGHUP stop the command at hand the same way, then ollie records what was
///   done, writes the transcript and exits (status 128 + the signal, as shells report).
/// - SIGPIPE is ignored: a closed output (`ollie … | head`) stops printing, not training.
/// - SIGXFSZ is ignored: a write past the file-size limit (`ulimit -f`) fails with EFBIG and is
///   reported like a full disk, instead of killing the process mid-epoch.
enum Interrupt {
    static let flag = Atomic<Bool>(false)
    /// SIGTERM or SIGHUP, once received; 0 before.
    static let ending = Atomic<Int32>(0)

    static func install() {
        // Initialize the globals before a handler can run.
        _ = flag.load(ordering: .relaxed)
        _ = ending.load(ordering: .relaxed)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in Interrupt.flag.store(true, ordering: .relaxed) }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGINT, &action, nil)
        // No SA_RESTART: a blocking read of the next line returns (EINTR), so an idle session ends too.
        var end = sigaction()
        end.__sigaction_handler.sa_handler = { signal in
            _ = Interrupt.ending.compareExchange(expected: 0, desired: signal, ordering: .relaxed)
            Interrupt.flag.store(true, ordering: .relaxed)
        }
        sigemptyset(&end.sa_mask)
        end.sa_flags = 0
        sigaction(SIGTERM, &end, nil)
        sigaction(SIGHUP, &end, nil)
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
    }

    static var isSet: Bool { flag.load(ordering: .relaxed) }
    /// Clears Ctrl-C; a request to end stays.
    static func clear() { flag.store(ending.load(ordering: .relaxed) != 0, ordering: .relaxed) }
    /// Reads and clears Ctrl-C.
    static func take() -> Bool {
        let was = flag.exchange(false, ordering: .relaxed)
        clear()
        return was
    }

    /// The signal asking ollie to end, if one came.
    static var endingSignal: Int32? {
        let signal = ending.load(ordering: .relaxed)
        return signal == 0 ? nil : signal
    }

    static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        case SIGINT: "SIGINT"
        default: "signal \(signal)"
        }
    }
}
