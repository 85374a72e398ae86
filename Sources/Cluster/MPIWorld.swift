import CMPI
import Foundation
import Training

/// This process's MPI world when ollie runs under `mpirun`: Open MPI loaded at run time (see
/// CMPI), one rank per process, ollie's collectives on a communicator of its own.
///
/// Every collective waits at most `timeoutSeconds` (OLLIE_MPI_TIMEOUT, default 120): a rank
/// that died or hangs becomes one error on the ranks still alive, `onFailure` (the rank's
/// last words: rank 0 marks its run failed), and MPI_Abort, which makes mpirun end every rank.
public final class MPIWorld: ProcessGroup, @unchecked Sendable {
    public let rank: Int
    public let ranks: Int
    public let timeoutSeconds: Double
    /// Called once before the job ends on a failure or disagreement, with the one-line reason
    /// and whether every rank saw it (a disagreement: then only rank 0 need say it).
    public var onFailure: (_ reason: String, _ seenByEveryRank: Bool) -> Void = { _, _ in }
    private var collectivesDone = 0
    private let fault: TestFault?

    /// True once mpirun has asked the job to stop (Ctrl-C at mpirun, another rank lost).
    public var isStopping: Bool { ollie_mpi_stop_requested() != 0 }

    /// True when this process was started by mpirun.
    public static var isLaunched: Bool { ollie_mpi_launched() != 0 }

    /// Joins the world (MPI_Init). Throws when libmpi cannot be loaded or initialized.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        var rank: Int32 = 0, size: Int32 = 0
        guard ollie_mpi_start(&rank, &size) == OLLIE_MPI_OK else {
            throw ClusterError(String(cString: ollie_mpi_error()))
        }
        self.rank = Int(rank)
        ranks = Int(size)
        timeoutSeconds = environment["OLLIE_MPI_TIMEOUT"].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } ?? 120
        fault = TestFault(environment["OLLIE_TEST_MPI_FAULT"], rank: Int(rank))
    }

    public func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer, during: String) {
        allGather(send, into: receive, waitingAtMost: timeoutSeconds, during: during)
    }

    /// No time limit (the others may still be training); mpirun's stop still ends the wait.
    public func allGatherAfterWork(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer, during: String) {
        allGather(send, into: receive, waitingAtMost: .infinity, during: during)
    }

    private func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer, waitingAtMost seconds: Double, during: String) {
        collectivesDone += 1
        fault?.strike(at: collectivesDone)
        precondition(receive.count == send.count * ranks, "allGather: receive holds \(receive.count) bytes, not \(ranks) × \(send.count)")
        let code = ollie_mpi_allgather(send.baseAddress, send.count, receive.baseAddress, seconds)
        if code != OLLIE_MPI_OK { fail(code, during: during) }
    }

    /// Rank `root`'s bytes into every rank's `buffer` (the same size everywhere).
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int, during: String) {
        collectivesDone += 1
        let code = ollie_mpi_broadcast(buffer.baseAddress, buffer.count, Int32(root), timeoutSeconds)
        if code != OLLIE_MPI_OK { fail(code, during: during) }
    }

    private func fail(_ code: Int32, during: String) -> Never {
        let reason: String
        switch code {
        case OLLIE_MPI_TIMEOUT:
            reason = "no answer from the other MPI ranks within \(formatSeconds(timeoutSeconds)) s during \(during) (a rank died or hangs; OLLIE_MPI_TIMEOUT sets the limit); stopping every rank"
        case OLLIE_MPI_STOPPED:
            reason = "mpirun is stopping the job during \(during) (Ctrl-C, or another rank exited or failed)"
        default:
            reason = "\(String(cString: ollie_mpi_error())) during \(during); stopping every rank"
        }
        onFailure(reason, false)
        ollie_mpi_abort(1)
        exit(1)   // not reached: MPI_Abort does not return
    }

    public func stop(_ message: String, seenByEveryRank: Bool) -> Never {
        onFailure(message, seenByEveryRank)
        if seenByEveryRank {
            ollie_mpi_finish()
            exit(1)
        }
        ollie_mpi_abort(1)
        exit(1)
    }

    /// MPI_Finalize: the end of a job whose ranks all got here.
    public func finish() { ollie_mpi_finish() }

    /// Ends every rank of the job now.
    public func abort(code: Int32) -> Never {
        ollie_mpi_abort(code)
        exit(code)
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// A test hook, OLLIE_TEST_MPI_FAULT=RANK:exit:N or RANK:hang:N: that rank exits (as a crash
/// would, without MPI_Finalize) or stops answering at its Nth collective. For the tests of a
/// job losing a rank; nothing else reads it.
struct TestFault {
    enum Kind: String { case exit, hang }
    let kind: Kind
    let collective: Int

    init?(_ text: String?, rank: Int) {
        let parts = (text ?? "").split(separator: ":").map(String.init)
        guard parts.count == 3, Int(parts[0]) == rank, let kind = Kind(rawValue: parts[1]), let n = Int(parts[2]) else { return nil }
        self.kind = kind
        collective = n
    }

    func strike(at count: Int) {
        guard count == collective else { return }
        switch kind {
        case .exit: _exit(3)
        case .hang: while true { sleep(1000) }
        }
    }
}

func formatSeconds(_ s: Double) -> String { s == s.rounded() ? String(Int(s)) : String(format: "%.1f", s) }
