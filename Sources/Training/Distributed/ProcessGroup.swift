/// The processes that train one model together (an MPI world): each is a rank and trains its
/// slice of every minibatch. The trainer only needs an all-gather; who implements it (MPI, a
/// test's threads) and what happens when it cannot complete is the group's business.
public protocol ProcessGroup: AnyObject, Sendable {
    /// This process's rank, 0..<ranks; rank 0 is the one that prints and records.
    var rank: Int { get }
    var ranks: Int { get }
    /// Every rank's `send` (the same byte count on every rank), in rank order, into `receive`
    /// (ranks × send.count bytes). `during` names the moment for an error message. When a
    /// rank does not answer in time this does not return: the group ends the job.
    func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer, during: String)
    /// Ends the job: the ranks cannot go on together (`message` says why, in one line).
    /// `seenByEveryRank`: every rank calls this at the same point with the same message (a
    /// disagreement they all saw), so they can end cleanly and only rank 0 says it.
    func stop(_ message: String, seenByEveryRank: Bool) -> Never
}

extension ProcessGroup {
    /// Every rank's values (the same count on each), concatenated in rank order.
    public func allGather<T: BitwiseCopyable>(_ values: [T], during: String) -> [T] {
        var gathered = [T](unsafeUninitializedCapacity: values.count * ranks) { _, count in count = values.count * ranks }
        values.withUnsafeBytes { send in
            gathered.withUnsafeMutableBytes { allGather(send, into: $0, during: during) }
        }
        return gathered
    }
}

/// Which slices of a minibatch this process's threads train: the minibatch is cut into
/// ranks × threads contiguous slices, and rank r's thread t trains global slice r·threads + t,
/// as thread r·threads + t of one process with ranks × threads threads would. So are its
/// dropout stream (the worker index) and its noise (the image's index in the minibatch).
struct ShardLayout {
    let rank: Int
    let ranks: Int
    let threads: Int

    init(group: ProcessGroup?, threads: Int) {
        rank = group?.rank ?? 0
        ranks = group?.ranks ?? 1
        self.threads = threads
    }

    var globalWorkers: Int { ranks * threads }
    /// The global index of this process's thread `local`.
    func globalWorker(_ local: Int) -> Int { rank * threads + local }
}
