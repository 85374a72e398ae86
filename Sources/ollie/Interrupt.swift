import Glibc
import Synchronization

/// Ctrl-C as a flag: the handler only stores `true`; the training loop polls it between
/// minibatches, and the prompt discards the line being typed.
enum Interrupt {
    static let flag = Atomic<Bool>(false)

    static func install() {
        _ = flag.load(ordering: .relaxed)   // initialize the global before the handler can run
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in Interrupt.flag.store(true, ordering: .relaxed) }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGINT, &action, nil)
    }

    static var isSet: Bool { flag.load(ordering: .relaxed) }
    static func clear() { flag.store(false, ordering: .relaxed) }
    /// Reads and clears.
    static func take() -> Bool { flag.exchange(false, ordering: .relaxed) }
}
