import Foundation
import Tracking

/// Writes to a run's history (its status, epochs, setting changes, its end) in the order they
/// happened. A write the database cannot take now (locked past the wait, disk full) is kept,
/// with everything after it, and tried again before the next write and at the start of every
/// command; so the run row never claims an epoch whose metrics are not there, and an epoch
/// is never shown as recorded until it is. At the end of the session what is still waiting
/// is said, and the run is marked failed if the database takes that much.
extension Session {
    struct PendingWrite {
        var run: Int64
        /// What it records, for the warnings ("epoch 3 of run 1").
        var what: String
        var write: (RunStore) throws -> Void
    }

    /// Queues a write to `run`'s history behind any waiting ones and writes all it can.
    func recordInOrder(_ console: Console, run: Int64, _ what: String, _ write: @escaping (RunStore) throws -> Void) {
        guard store != nil else { return }
        pendingWrites.append(PendingWrite(run: run, what: what, write: write))
        writePending(console)
    }

    /// Writes the waiting history, oldest first, stopping at the first the database refuses
    /// for now. A write refused for good (a run another process took over, say) is dropped
    /// with its reason. Returns true when nothing is left waiting.
    @discardableResult
    func writePending(_ console: Console) -> Bool {
        guard let store else { pendingWrites.removeAll(); return true }
        var changed: Set<Int64> = []
        defer { for run in changed.sorted() { mlflowRunChanged(run) } }
        while let next = pendingWrites.first {
            do {
                try next.write(store)
                pendingWrites.removeFirst()
                changed.insert(next.run)
            } catch let error as TrackingError where error.isTransient {
                // Named: the newest write, which is what the user just saw happen.
                let waiting = pendingWrites.count
                console.write("warning: \(pendingWrites.last!.what) is not recorded yet: \(error); it is kept and written once the database takes it"
                    + (waiting > 1 ? " (\(waiting) writes waiting)" : ""))
                return false
            } catch {
                console.write("warning: \(next.what) was not recorded: \(error)")
                pendingWrites.removeFirst()
            }
        }
        return true
    }

    /// The end of the session (quit, end of input, a signal): one last try, then what could
    /// not be recorded is said, and each run it belongs to is marked failed, if the database
    /// takes that; if not, the next process to open it finds the run crashed.
    public func close(_ console: Console) {
        if !writePending(console) {
            let runs = Array(Set(pendingWrites.map(\.run))).sorted()
            for run in runs {
                let lost = pendingWrites.filter { $0.run == run }.map(\.what)
                let marked: String
                do {
                    try store?.recordEvent(run: run, epoch: 0, kind: "unrecorded", detail: lost.joined(separator: ", "))
                    try store?.finishRun(run: run, status: .failed, checkpoint: nil)
                    marked = "it is marked failed"
                } catch {
                    marked = "the next ollie to open the database marks it crashed"
                }
                console.write("error: run \(run) could not be fully recorded (\(lost.joined(separator: ", ")) never reached the database); "
                    + "its recorded epochs stand, and \(marked)")
            }
            pendingWrites.removeAll()
        }
        if let runID { releaseLease(runID) }
    }
}
