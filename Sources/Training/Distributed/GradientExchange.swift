import NN

/// One step's exchange between ranks: every rank's per-worker gradients and losses, gathered
/// whole, then summed by each rank in global worker order (g = g0; g += g1; g += g2 …), the
/// very float additions one process with ranks × threads threads makes, so every rank steps
/// the same weights and the result equals that process's bit for bit. (MPI_Allreduce would be
/// less traffic but its summation order is unspecified.) Rank 0's batchnorm running statistics
/// ride along: in one process only worker 0's slice updates them.
///
/// One rank's block, in Float words: for each of its threads, every parameter's gradient
/// (P values), its summed loss (a Double's bits in 2 words) and its count of correct
/// predictions (an Int32's bits in 1 word); then its buffers (B values).
final class GradientExchange {
    private let group: ProcessGroup
    private var send: [Float] = []
    private var received: [Float] = []

    init(group: ProcessGroup) { self.group = group }

    /// Replaces `master`'s gradients with the global sum and `buffers` with rank 0's; returns
    /// every global worker's loss and correct count, in order.
    func combine(master: [Parameter], buffers: [Parameter], workerGradients: [[Parameter]],
                 workerLosses: [Double], workerCorrect: [Int], shards: [Range<Int>], layout: ShardLayout,
                 step: Int) -> (losses: [Double], correct: [Int]) {
        let perWorker = master.reduce(0) { $0 + $1.grad.count } + 3
        let bufferCount = buffers.reduce(0) { $0 + $1.value.count }
        let block = layout.threads * perWorker + bufferCount
        if send.count != block { send = [Float](repeating: 0, count: block) }
        send.withUnsafeMutableBufferPointer { out in
            var at = 0
            for (w, parameters) in workerGradients.enumerated() {
                for p in parameters {
                    p.grad.data.withUnsafeBufferPointer { (out.baseAddress! + at).update(from: $0.baseAddress!, count: $0.count) }
                    at += p.grad.count
                }
                let bits = workerLosses[w].bitPattern
                out[at] = Float(bitPattern: UInt32(truncatingIfNeeded: bits))
                out[at + 1] = Float(bitPattern: UInt32(truncatingIfNeeded: bits >> 32))
                out[at + 2] = Float(bitPattern: UInt32(truncatingIfNeeded: workerCorrect[w]))
                at += 3
            }
            for b in buffers {
                b.value.data.withUnsafeBufferPointer { (out.baseAddress! + at).update(from: $0.baseAddress!, count: $0.count) }
                at += b.value.count
            }
        }
        if received.count != block * layout.ranks { received = [Float](repeating: 0, count: block * layout.ranks) }
        send.withUnsafeBytes { s in received.withUnsafeMutableBytes { group.allGather(s, into: $0, during: "training step \(step + 1)") } }

        var losses: [Double] = [], correct: [Int] = []
        received.withUnsafeBufferPointer { all in
            func workerStart(_ g: Int) -> Int { (g / layout.threads) * block + (g % layout.threads) * perWorker }
            var offset = 0
            for p in master {
                p.grad.data.withUnsafeMutableBufferPointer { sum in
                    sum.baseAddress!.update(from: all.baseAddress! + workerStart(0) + offset, count: sum.count)
                    for g in 1..<layout.globalWorkers where !shards[g].isEmpty {
                        let theirs = all.baseAddress! + workerStart(g) + offset
                        for i in 0..<sum.count { sum[i] += theirs[i] }
                    }
                }
                offset += p.grad.count
            }
            for g in 0..<layout.globalWorkers {
                let at = workerStart(g) + perWorker - 3
                let low = UInt64(all[at].bitPattern), high = UInt64(all[at + 1].bitPattern)
                losses.append(Double(bitPattern: low | high << 32))
                correct.append(Int(Int32(bitPattern: all[at + 2].bitPattern)))
            }
            var at = layout.threads * perWorker   // rank 0's buffers
            for b in buffers {
                b.value.data.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: all.baseAddress! + at, count: $0.count) }
                at += b.value.count
            }
        }
        return (losses, correct)
    }
}
