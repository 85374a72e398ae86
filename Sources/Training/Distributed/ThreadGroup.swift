import Foundation

/// A process group of threads in one process: each member is one "rank" (its own trainer or
/// session on its own thread); allGather meets all of them at a barrier. The tests run the
/// distributed paths (data-parallel training, sweeps over ranks) with it, without mpirun
/// (OllieTests' MPI tests run the real thing). Nothing else uses it.
public final class ThreadGroup: @unchecked Sendable {
    public let ranks: Int
    private let condition = NSCondition()
    private var parts: [[UInt8]?]
    private var arrived = 0
    private var generation = 0
    private var result: [UInt8] = []

    public init(ranks: Int) {
        self.ranks = ranks
        parts = Array(repeating: nil, count: ranks)
    }

    func gather(_ bytes: [UInt8], rank: Int) -> [UInt8] {
        condition.lock()
        defer { condition.unlock() }
        let mine = generation
        parts[rank] = bytes
        arrived += 1
        if arrived == ranks {
            result = parts.flatMap { $0! }
            parts = Array(repeating: nil, count: ranks)
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == mine { condition.wait() }
        }
        return result
    }

    public final class Member: ProcessGroup, @unchecked Sendable {
        let group: ThreadGroup
        public let rank: Int
        public var ranks: Int { group.ranks }
        public init(_ group: ThreadGroup, rank: Int) { self.group = group; self.rank = rank }

        public func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer, during: String) {
            let all = group.gather(Array(send), rank: rank)
            all.withUnsafeBytes { receive.copyMemory(from: $0) }
        }

        public func stop(_ message: String, seenByEveryRank: Bool) -> Never { fatalError("unexpected stop: \(message)") }
    }
}
