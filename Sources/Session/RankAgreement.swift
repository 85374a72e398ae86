import Foundation
import Training
import Tracking

/// Under mpirun every rank runs the same script on its own copy of the session; only their
/// training steps talk to each other. Before each `train` (and `lr-find`) the ranks compare
/// what they are about to train — data, model and weights, settings, counters — so a rank
/// that read other data, missed a file or runs another script stops the job with one line
/// instead of training something else or waiting forever.
extension Session {
    /// What one rank is about to train, in fields compared one by one (the last, the rank's
    /// latest failed command, is not compared: it explains a difference).
    func rankState() -> [String] {
        var data = "none loaded"
        if let dataset {
            var digest = ContentDigest()
            for split in [dataset.train, dataset.test] { digest.add(split.images); digest.add(split.labels) }
            data = "\(dataset.name) \(dataset.train.count)/\(dataset.test.count) \(dataset.sampleShape.map(String.init).joined(separator: "×")) #\(digest.hex)"
        }
        var model = "none built"
        if let trainer {
            var digest = ContentDigest()
            for p in trainer.model.parameters + trainer.model.buffers { digest.add(p.value.data) }
            model = "\(trainer.model.description) #\(digest.hex) after \(trainer.stepsDone) steps"
        }
        let settings = Setting.recorded.map { "\($0.name) \($0.value(in: self.settings))" }.joined(separator: ", ")
        return [data, model, settings, lastFailure ?? ""]
    }

    /// Compares every rank's `rankState`; on a difference rank 0 says which in one line, the
    /// current run is marked failed and every rank ends (they all saw the same difference).
    func checkRanksAgree(before command: String) {
        // A sweep's run is one rank's alone: the others train runs of their own.
        guard !rankSweep.trainsAlone, let group = Trainer.processGroup, group.ranks > 1 else { return }
        let width = 2048
        var mine = [UInt8](repeating: 0, count: width)
        let encoded = Array(rankState().joined(separator: "\u{1F}").utf8.prefix(width))
        mine.replaceSubrange(0..<encoded.count, with: encoded)
        let all = group.allGather(mine, during: "the ranks' check before \(command)")
        let states = (0..<group.ranks).map { r in
            String(decoding: all[(r * width)..<((r + 1) * width)].prefix { $0 != 0 }, as: UTF8.self)
                .split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        }
        let names = ["data", "model", "settings"]
        for r in 1..<group.ranks {
            for (i, name) in names.enumerated() where states[r][safe: i] != states[0][safe: i] {
                let others = (r + 1..<group.ranks).filter { s in states[s].prefix(3) != states[0].prefix(3) }.count
                let failure = states[r][safe: 3].flatMap { $0.isEmpty ? nil : " (rank \(r)'s last error: \($0))" } ?? ""
                let message = "the MPI ranks disagree before \(command): rank \(r)'s \(name) is \(short(states[r][safe: i])) but rank 0's is \(short(states[0][safe: i]))\(failure)\(others > 0 ? "; \(others) more rank\(others == 1 ? "" : "s") differ" : ""); start every rank with the same script, data and files"
                group.stop(message, seenByEveryRank: true)
            }
        }
        lastFailure = nil
    }

    /// The job is ending under this run (a rank died, hangs or disagrees): the run is marked
    /// failed with the reason as an event; the epochs already recorded stay.
    public func abandonRun(because reason: String) {
        if abandonSweepRound() { return }
        guard let store, let runID else { return }
        let epoch = (trainer?.epochsDone ?? 0) + 1
        try? store.recordEvent(run: runID, epoch: epoch, kind: "rank_failure", detail: reason)
        try? store.finishRun(run: runID, status: .failed, checkpoint: bestCheckpointPath(runID))
    }

    /// The run's parameters that say how it was spread over processes (none outside mpirun).
    var clusterParams: [(name: String, value: String)] {
        guard !rankSweep.trainsAlone, let group = Trainer.processGroup else { return [] }
        return [(name: "ranks", value: String(group.ranks))]
    }
}

private func short(_ text: String?) -> String {
    guard let text else { return "missing" }
    return text.count > 90 ? String(text.prefix(87)) + "…" : "'\(text)'"
}

fileprivate extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
