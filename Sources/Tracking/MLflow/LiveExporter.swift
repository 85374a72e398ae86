import Foundation

/// Sends runs to an MLflow server from a background thread while training goes on. `enqueue`
/// only notes a run id and returns: training never waits on the network. A failed sync is
/// retried with a backoff that doubles from half a second up to `maxBackoffSeconds`, for as
/// long as the exporter runs. Nothing lives only here: each run's mark in the database says
/// what has not reached the server, so a later export or process catches up.
public final class LiveExporter: @unchecked Sendable {
    public let export: MLflowExport
    public let maxBackoffSeconds: Double

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [Int64] = []
    private var working = false
    private var stopped = false
    private var retryAt: Date?
    private var failures = 0
    private var problem: String?

    public init(store: RunStore, server: MLflowServer, experiment: String, timeoutSeconds: Double = 5,
                maxBackoffSeconds: Double = 10) {
        export = MLflowExport(store: store, server: server, experiment: experiment, timeoutSeconds: timeoutSeconds)
        self.maxBackoffSeconds = maxBackoffSeconds
        let thread = Thread { [self] in loop() }
        thread.name = "ollie MLflow export"
        thread.start()
    }

    public var server: MLflowServer { export.server }
    public var experiment: String { export.experiment }

    /// Sends `run` soon (once, however often it is asked before the thread gets to it).
    public func enqueue(_ run: Int64) {
        condition.lock()
        if !queue.contains(run) { queue.append(run) }
        condition.signal()
        condition.unlock()
    }

    /// The last failure, while runs wait for a retry; nil when the last sync went through.
    public var lastProblem: String? {
        condition.lock()
        defer { condition.unlock() }
        return problem
    }

    /// Nothing queued and nothing being sent.
    public var isIdle: Bool {
        condition.lock()
        defer { condition.unlock() }
        return queue.isEmpty && !working
    }

    /// Waits up to `seconds` for the queue to empty, unless the server is failing (then a
    /// wait would only delay the caller: the runs stay marked in the database) or
    /// `isInterrupted` says to stop. Blocks on the condition (woken by every send that ends),
    /// looking at `isInterrupted` ten times a second: Ctrl-C only sets a flag. True when idle.
    @discardableResult
    public func waitUntilSent(seconds: Double, isInterrupted: () -> Bool = { false }) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        defer { condition.unlock() }
        while !(queue.isEmpty && !working) && problem == nil && !stopped && !isInterrupted() && Date() < deadline {
            _ = condition.wait(until: min(deadline, Date().addingTimeInterval(0.1)))
        }
        return queue.isEmpty && !working
    }

    /// Stops after the request in flight; what is still queued stays marked in the database.
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            // With nothing queued, a past retry time must not become a wait that returns at
            // once (a spin): only a queued run waits for its retry time.
            while !stopped && (queue.isEmpty || (retryAt.map { $0 > Date() } ?? false)) {
                if !queue.isEmpty, let retryAt { _ = condition.wait(until: retryAt) } else { condition.wait() }
            }
            if stopped {
                condition.unlock()
                return
            }
            let run = queue.removeFirst()
            working = true
            condition.unlock()

            var failure: String?
            var retry = true
            do { try export.sync(run: run) } catch let error as MLflowError {
                failure = error.reason
            } catch {
                // The run is gone from the database (or the file is unusable): nothing to retry.
                failure = "\(error)"
                retry = !"\(error)".hasPrefix("no run ")
            }

            condition.lock()
            working = false
            if let failure {
                problem = failure
                failures += 1
                if retry && !queue.contains(run) { queue.insert(run, at: 0) }
                retryAt = Date().addingTimeInterval(min(maxBackoffSeconds, 0.5 * pow(2, Double(min(failures, 16) - 1))))
            } else {
                problem = nil
                failures = 0
                retryAt = nil
            }
            condition.broadcast()
            condition.unlock()
        }
    }
}
