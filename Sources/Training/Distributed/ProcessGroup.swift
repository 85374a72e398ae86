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
    /// The same, for ranks that come to it after unequal work (a sweep's runs, each trained
    /// by one rank): no time limit, since no rank can tell how long the others' work takes. A
    /// rank that dies still ends the job (mpirun stops the others), as does Ctrl-C.
    func allGatherAfterWork(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer, during: String)
    /// Rank `root`'s bytes into every rank's `buffer` (the same size on every rank).
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int, during: String)
    /// Ends the job: the ranks cannot go on together (`message` says why, in one line).
    /// `seenByEveryRank`: every rank calls this at the same point with the same message (a
    /// disagreement they all saw), so they can end cleanly and only rank 0 says it.
    func stop(_ message: String, seenByEveryRank: Bool) -> Never
}

extension ProcessGroup {
    /// Groups without time limits (threads in tests) gather after work as at any other time.
    public func allGatherAfterWork(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer, during: String) {
        allGather(send, into: receive, during: during)
    }

    /// A broadcast made of an all-gather, for groups without one of their own.
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int, during: String) {
        let n = buffer.count
        var all = [UInt8](repeating: 0, count: n * ranks)
        all.withUnsafeMutableBytes { allGather(UnsafeRawBufferPointer(buffer), into: $0, during: during) }
        all.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[(root * n)..<((root + 1) * n)])) }
    }

    /// Rank `root`'s bytes, any count, on every rank (the count goes first). Others pass [].
    public func broadcastBytes(_ bytes: [UInt8], from root: Int, during: String) -> [UInt8] {
        var count = [Int64(bytes.count)]
        count.withUnsafeMutableBytes { broadcast($0, from: root, during: during) }
        var buffer = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count[0]))
        buffer.withUnsafeMutableBytes { broadcast($0, from: root, during: during) }
        return buffer
    }

    /// Every rank's bytes, any count each, in rank order, on every rank: the counts first,
    /// then every rank's bytes padded to the largest. `afterWork`: see allGatherAfterWork.
    public func gatherBytes(_ bytes: [UInt8], afterWork: Bool, during: String) -> [[UInt8]] {
        var counts = [Int64](repeating: 0, count: ranks)
        [Int64(bytes.count)].withUnsafeBytes { send in
            counts.withUnsafeMutableBytes { receive in
                if afterWork { allGatherAfterWork(send, into: receive, during: during) } else { allGather(send, into: receive, during: during) }
            }
        }
        let width = Int(counts.max() ?? 0)
        guard width > 0 else { return counts.map { _ in [] } }
        let padded = bytes + [UInt8](repeating: 0, count: width - bytes.count)
        let all = allGather(padded, during: during)
        return (0..<ranks).map { r in Array(all[(r * width)..<(r * width + Int(counts[r]))]) }
    }
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
