import Files
import Foundation
import Tracking
import Training

/// A sweep under mpirun: its runs spread over the ranks, each rank training whole runs alone
/// on its own threads (sweeps of small models gain more from runs side by side than from
/// splitting each minibatch). Rank 0 alone holds the record: it decides, and every rank
/// follows its orders.
///
/// The sweep goes in rounds. Before each, rank 0 makes the round's runs (rows as `train`
/// makes them, so their ids are rank 0's) and sends every rank its run: settings, spec, the
/// epochs to reach and, for a run continued from an earlier rung or an earlier process, the
/// state file of its last recorded epoch. Each rank trains its run to the rung's epochs as
/// `train` would, keeping what `train` records in a journal (RunJournal). After the round
/// rank 0 gathers the journals and replays them through the same code that records a run
/// trained here, so its database and checkpoint folder hold what a one-process sweep leaves.
/// A run's numbers depend only on its configuration, seed and threads: the same as in one
/// process, bit for bit.
///
/// A job that ends mid-round (Ctrl-C: mpirun stops every rank; a rank dies) leaves that
/// round unrecorded: its runs keep the epochs of earlier rounds, the sweep is marked
/// interrupted, and `sweep resume`, under mpirun or not, trains them again from there.
final class RankSweep {
    /// The group a sweep spreads over instead of the process's MPI world: tests give each
    /// of their sessions a member of a group of threads.
    var group: ProcessGroup?
    /// True while this rank trains a sweep's run (or, rank 0, makes its rows): trainers are
    /// made outside the process group, `train` does not compare the ranks, and runs do not
    /// record `ranks`, since each is one process's alone.
    var trainsAlone = false
    /// While this rank trains a sweep's run: what `train` would have recorded.
    var journal: RunJournal?
    /// Rank 0 while a sweep runs: the sweep and the runs of the round in flight.
    var running: (sweep: Int64, runs: [Int64])?
}

/// Rank 0's order for a round, or the end of the sweep.
struct SweepOrder: Codable {
    var sweep: Int64
    /// Rank 0's database identity: the state files other ranks write name it, as rank 0's do.
    var database: String?
    var dataFingerprint: String
    /// The round's runs, the k-th for rank k; ranks past the end wait for the others.
    var runs: [SweepAssignment] = []
    /// Set on the last order.
    var end: SweepEnding?
}

/// One run for one rank to train in a round.
struct SweepAssignment: Codable {
    var run: Int64
    /// Every run setting, as rank 0 computed it for the configuration.
    var settings: [SweepValue]
    var spec: String
    /// The recorded epochs it continues from (0: fresh weights from the seed), and the rung's.
    var from: Int
    var to: Int
    /// The state after epoch `from`, for a rank that does not have the file.
    var state: Data?
}

/// How the sweep ended, and the run every rank holds afterwards (the best, as in one process).
struct SweepEnding: Codable {
    var error: String?
    var best: RunStateFile?
}

struct RunStateFile: Codable {
    var run: Int64
    var epoch: Int
    var bytes: Data?
}

/// What a rank's run did in a round.
struct SweepRunReport: Codable {
    var rank: Int
    var run: Int64
    var steps: [RunRecordStep]
    var interrupted: Bool
    /// Why the run could not be trained (nil: it was).
    var failure: String?
}

extension Session {
    /// The group a sweep spreads its runs over: the MPI world when there is more than one rank.
    var sweepGroup: ProcessGroup? {
        guard let group = rankSweep.group ?? Trainer.processGroup, group.ranks > 1 else { return nil }
        return group
    }

    /// The group a new trainer trains with: none while this rank trains a sweep's run alone.
    var trainerGroup: ProcessGroup? { rankSweep.trainsAlone ? nil : Trainer.processGroup }

    /// `sweep …` or `sweep resume ID` under mpirun. Rank 0 opens the sweep (`open`: records a
    /// new one or checks the one to resume) and leads it; the others follow its orders. Every
    /// way out of rank 0 sends the others an end, so a refusal or failure ends the sweep on
    /// every rank alike, never leaving one waiting.
    func sweepOverRanks(_ group: ProcessGroup, _ console: Console, open: () throws -> Int64) throws {
        guard group.rank == 0 else { return try followSweep(group) }
        var id: Int64 = 0
        do {
            id = try open()
            rankSweep.running = (id, [])
            defer { rankSweep.running = nil }
            try leadSweep(id, group, console)
        } catch {
            if let store, id > 0 { try? store.setSweepState(id, .interrupted) }
            send(SweepOrder(sweep: id, database: nil, dataFingerprint: "", end: SweepEnding(error: "\(error)")), group)
            throw error
        }
    }

    /// Rank 0: trains the sweep in rounds of one run per rank, records every run, prunes
    /// between rungs, and ends every rank on the best run.
    private func leadSweep(_ id: Int64, _ group: ProcessGroup, _ console: Console) throws {
        let store = try requireStore()
        var sweep = try store.sweep(id)
        let plan = try SweepPlan.decode(sweep.plan, sweep: id)
        try checkSweepData(sweep, plan: plan)
        try store.setSweepState(id, .running)
        let base = SweepOrder(sweep: id, database: databaseIdentity, dataFingerprint: sweep.dataFingerprint)
        console.write("sweep \(id) spreads its runs over \(group.ranks) MPI ranks, one run per rank at a time")
        let quiet = MutedConsole()
        for rung in sweep.rung..<plan.rungs.count {
            let target = plan.rungs[rung]
            let waiting = sweep.members.indices.filter { sweep.members[$0].status != .pruned && sweep.members[$0].epochs < target }
            for start in stride(from: 0, to: waiting.count, by: group.ranks) {
                if isInterrupted() { return try stopSweepOverRanks(id, nil, group, console) }
                var order = base
                var round: [Int] = []
                // The rows and leases first, as one process's `train` would make them.
                rankSweep.trainsAlone = true
                defer { rankSweep.trainsAlone = false }
                for i in waiting[start..<min(start + group.ranks, waiting.count)] {
                    let member = sweep.members[i]
                    let (run, from) = try sweepRunRecord(member, plan: plan, sweep: id, quiet: quiet)
                    sweep.members[i].run = run
                    guard from < target else {
                        // Recorded past its rung already (stopped before the sweep noted it).
                        try markTrained(&sweep, i, epochs: target)
                        continue
                    }
                    let k = order.runs.count
                    let settings = try plan.settings(for: member.settings, startingFrom: live.chosen)
                    order.runs.append(SweepAssignment(
                        run: run, settings: Setting.recorded.map { SweepValue(name: $0.name, value: $0.value(in: settings)) },
                        spec: try plan.spec(for: member), from: from, to: target,
                        state: k > 0 && from > 0 ? Data(try FileContents.read(epochStatePath(run: run, epoch: from))) : nil))
                    round.append(i)
                    console.write(fold("sweep \(id) [\(i + 1)/\(sweep.members.count)] run \(run) on rank \(k): \(member.text); epoch\(target - from == 1 ? "" : "s") \(from + 1)\(target - from == 1 ? "" : "–\(target)")"))
                }
                guard !round.isEmpty else { continue }
                rankSweep.running = (id, order.runs.map(\.run))
                send(order, group)
                let mine = trainSweepRun(order.runs[0], order, rank: 0)
                let gathered = gatherReports(mine, group)
                // One report per run, by rank; one that did not come is that run's failure.
                let reports = order.runs.enumerated().map { k, run in
                    gathered.first { $0.rank == k }
                        ?? SweepRunReport(rank: k, run: run.run, steps: [], interrupted: false, failure: "rank \(k) sent no report of its run")
                }
                rankSweep.running = (id, [])
                // Every run is recorded, the failed and interrupted as far as they got.
                for report in reports { recordSweepRun(report, console) }
                for (i, report) in zip(round, reports) where report.failure == nil && !report.interrupted {
                    try markTrained(&sweep, i, epochs: target)
                }
                if let failed = reports.first(where: { $0.failure != nil }) {
                    throw CommandError("sweep \(id) stopped: run \(failed.run) on rank \(failed.rank) failed: \(failed.failure!); continue it with: sweep resume \(id)")
                }
                if let stopped = reports.first(where: \.interrupted) { return try stopSweepOverRanks(id, stopped, group, console) }
            }
            guard rung + 1 < plan.rungs.count else { break }
            try halve(&sweep, after: rung, plan: plan, console)
        }
        try store.setSweepState(id, .finished)
        try finishSweep(id, console)
        // Every rank holds the best run, as rank 0 does, so the ranks go on agreeing.
        var end = base
        end.end = SweepEnding(best: try runID.map { run in
            let epoch = try store.lastRecordedEpoch(run: run)
            return RunStateFile(run: run, epoch: epoch, bytes: Data(try FileContents.read(epochStatePath(run: run, epoch: epoch))))
        })
        // Recorded whole: a job lost from here on leaves the sweep finished.
        rankSweep.running = nil
        send(end, group)
    }

    private func markTrained(_ sweep: inout SweepRecord, _ i: Int, epochs: Int) throws {
        sweep.members[i].epochs = epochs
        sweep.members[i].status = .trained
        try requireStore().setSweepMember(sweep: sweep.id, config: sweep.members[i].config, epochs: epochs, status: .trained)
    }

    /// Rank 0, before a round: configuration `member`'s run and the epochs it has recorded. A
    /// new run gets its row as `train` makes one (from the model its settings build); a run
    /// stopped inside its first epoch starts afresh as the same run; one with recorded epochs
    /// continues from the last, whose state file must be there (as for `resume`).
    func sweepRunRecord(_ member: SweepMember, plan: SweepPlan, sweep: Int64, quiet: Console) throws -> (run: Int64, from: Int) {
        let store = try requireStore()
        if let run = member.run {
            let recorded = try store.lastRecordedEpoch(run: run)
            if recorded > 0 { _ = try lastRecordedState(of: run) }
            try store.claim(run: run)
            return (run, recorded)
        }
        return (try newSweepRun(member, plan: plan, sweep: sweep, console: quiet), 0)
    }

    /// Rank 0 after a round that something stopped (Ctrl-C on a rank, or here between rounds).
    private func stopSweepOverRanks(_ id: Int64, _ report: SweepRunReport?, _ group: ProcessGroup, _ console: Console) throws {
        try requireStore().setSweepState(id, .interrupted)
        replayOfInterruptedCommand = []
        let place = report.map { " in run \($0.run) on rank \($0.rank)" } ?? ""
        console.write("sweep \(id) stopped (\(interruptionName()))\(place); continue it with: sweep resume \(id)")
        send(SweepOrder(sweep: id, database: nil, dataFingerprint: "", end: SweepEnding()), group)
    }

    /// Every rank but 0: trains the runs rank 0 sends until it sends the end.
    private func followSweep(_ group: ProcessGroup) throws {
        while true {
            let order = receiveOrder(group)
            if let database = order.database { cachedDatabaseIdentity = database }
            if let end = order.end {
                if let best = end.best { try takeUp(best) }
                if let error = end.error { throw CommandError(error) }
                return
            }
            let mine = group.rank < order.runs.count ? trainSweepRun(order.runs[group.rank], order, rank: group.rank) : nil
            _ = gatherReports(mine, group)
        }
    }

    /// Trains one run of a round as `train` would, alone, keeping its record in a journal.
    /// Never throws: a failure is the report's, so every rank still meets the others after
    /// the round and rank 0 ends the sweep for all.
    func trainSweepRun(_ run: SweepAssignment, _ order: SweepOrder, rank: Int) -> SweepRunReport {
        let journal = RunJournal()
        rankSweep.trainsAlone = true
        rankSweep.journal = journal
        // mpirun's stop ends the run after its batch (it meets no collective that would fail).
        let interrupted = isInterrupted, stopping = isStopping
        isInterrupted = { interrupted() || stopping() }
        defer {
            rankSweep.journal = nil
            rankSweep.trainsAlone = false
            isInterrupted = interrupted
        }
        var report = SweepRunReport(rank: rank, run: run.run, steps: [], interrupted: false)
        do {
            guard let data = dataset else { throw CommandError("rank \(rank) has no data loaded; every rank runs the same script") }
            let here = fingerprint(of: data)
            guard here == order.dataFingerprint else {
                throw CommandError("rank \(rank)'s data differ from the sweep's (fingerprint \(here), the sweep's \(order.dataFingerprint)); give every rank the same data")
            }
            if run.from > 0 {
                try takeUp(RunStateFile(run: run.run, epoch: run.from, bytes: run.state))
            } else {
                try buildSweepModel(settings: try SweepPlan.apply(run.settings, to: live.chosen), spec: run.spec)
                runID = run.run
            }
            // Its files go to a folder of their own until rank 0 records the round: a round cut
            // short leaves none of them beside the record.
            let home = checkpointDirectory
            checkpointDirectory = NSTemporaryDirectory() + "ollie-rank-\(rank)-sweep-\(getpid())"
            defer {
                try? FileManager.default.removeItem(atPath: checkpointDirectory)
                checkpointDirectory = home
            }
            let epochs = run.to - (trainer?.epochsDone ?? 0)
            if epochs > 0, case .interrupted = try train(.epochs(epochs), MutedConsole()) { report.interrupted = true }
            if let problem = journal.problem { throw CommandError(problem) }
        } catch {
            report.failure = "\(error)"
        }
        report.steps = journal.steps
        return report
    }

    /// Makes a run's recorded state the session's, continuing the run (as `resume` does),
    /// from the file sent with it or, when none was sent, the one already here.
    func takeUp(_ state: RunStateFile) throws {
        let path = epochStatePath(run: state.run, epoch: state.epoch)
        if let bytes = state.bytes { try SafeFile.write(bytes, to: path) }
        adopt(try readRunState(run: state.run, epoch: state.epoch, path: path), continuing: state.run)
    }

    /// Rank 0: writes what a rank's run did, as if it had trained it here, and says so.
    func recordSweepRun(_ report: SweepRunReport, _ console: Console) {
        let run = report.run
        do { try requireStore().claim(run: run) } catch {
            console.write("warning: run \(run) on rank \(report.rank) is not recorded: \(error)")
            return
        }
        for step in report.steps { applyRecord(step, run: run, console) }
        if let failure = report.failure, !report.steps.contains(where: { if case .finished = $0 { true } else { false } }) {
            recordInOrder(console, run: run, "the failure of run \(run)") { store in
                try store.recordEvent(run: run, epoch: 0, kind: "rank_failure", detail: failure)
                try store.finishRun(run: run, status: .failed, checkpoint: nil)
            }
        }
        if run != runID { releaseLease(run) }
        console.write(sweepRunLine(report))
    }

    /// `  run 3 on rank 1: [2] test accuracy 0.9219, best 0.9375 (epoch 1)`.
    func sweepRunLine(_ report: SweepRunReport) -> String {
        let head = "  run \(report.run) on rank \(report.rank)"
        if let failure = report.failure { return fold("\(head) failed: \(failure)") }
        let epochs = report.steps.compactMap { step -> EpochRecord? in
            if case .epoch(let entry, false) = step { entry.record } else { nil }
        }
        guard let last = epochs.last(where: { !$0.metrics.isEmpty }) else {
            return "\(head): \(report.interrupted ? "interrupted before an epoch ended" : "no epoch trained")"
        }
        let (name, accuracy) = last.metrics[Metric.valAccuracy.rawValue].map { ("val", $0) }
            ?? ("test", last.metrics[Metric.testAccuracy.rawValue] ?? .nan)
        let best = epochs.last { $0.bestAccuracy != nil }
        var line = "\(head): [\(last.epoch)] \(name) accuracy \(String(format: "%.4f", accuracy))"
        if let best, let value = best.bestAccuracy, let epoch = best.bestEpoch {
            line += ", best \(String(format: "%.4f", value)) (epoch \(epoch))"
        }
        return line + (report.interrupted ? "; interrupted" : "")
    }

    // MARK: - Messages

    private func send(_ order: SweepOrder, _ group: ProcessGroup) {
        let bytes = (try? JSONEncoder().encode(order)).map { Array($0) } ?? []
        _ = group.broadcastBytes(bytes, from: 0, during: "the sweep's orders")
    }

    private func receiveOrder(_ group: ProcessGroup) -> SweepOrder {
        let bytes = group.broadcastBytes([], from: 0, during: "the sweep's orders")
        do { return try JSONDecoder().decode(SweepOrder.self, from: Data(bytes)) } catch {
            group.stop("rank \(group.rank) cannot read rank 0's sweep orders (\(error)); run the same ollie on every rank", seenByEveryRank: false)
        }
    }

    /// Every rank's report of the round (rank order, idle ranks left out), on every rank.
    private func gatherReports(_ mine: SweepRunReport?, _ group: ProcessGroup) -> [SweepRunReport] {
        // (A report that cannot be encoded is missing: rank 0 counts it as that run's failure.)
        let bytes = mine.flatMap { try? JSONEncoder().encode($0) }.map { Array($0) } ?? []
        let all = group.gatherBytes(bytes, afterWork: true, during: "the end of a sweep round")
        return all.enumerated().compactMap { r, bytes in
            guard !bytes.isEmpty else { return nil }
            do { return try JSONDecoder().decode(SweepRunReport.self, from: Data(bytes)) } catch {
                group.stop("rank \(r)'s report of its sweep run cannot be read (\(error)); run the same ollie on every rank", seenByEveryRank: true)
            }
        }
    }

    /// The job is ending mid-sweep (mpirun stopping it, a rank lost): the round in flight is
    /// left unrecorded, its runs marked interrupted, and the sweep interrupted, so `sweep
    /// resume` carries on. True when a sweep was running (rank 0).
    func abandonSweepRound() -> Bool {
        guard let running = rankSweep.running, let store else { return false }
        try? store.setSweepState(running.sweep, .interrupted)
        for run in running.runs {
            try? store.claim(run: run)
            try? store.finishRun(run: run, status: .interrupted, checkpoint: nil)
            // This process writes no more of it: another may take it up at once.
            try? store.release(run: run)
        }
        return true
    }
}
