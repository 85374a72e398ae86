import Foundation
import Files
import NN
import Tracking
import Training

/// Runs a sweep: every configuration is a normal recorded run (fresh weights from the seed, a
/// fresh optimizer, the sweep's base settings plus its values), trained rung by rung. Where it
/// got to is in the database after every step, so Ctrl-C, a crash or another process can
/// carry on with `sweep resume`; a run continued between rungs is resumed from its recorded
/// state (`resume`), never restarted.
extension Session {
    /// Checks the words, records the sweep, then trains it.
    func startSweep(_ args: [String], text: String, _ console: Console) throws {
        if let group = sweepGroup {
            return try sweepOverRanks(group, console) { try self.recordSweep(args, text: text, console) }
        }
        try runSweep(try recordSweep(args, text: text, console), console)
    }

    /// Checks the words, records the sweep and says what it will train; its id.
    func recordSweep(_ args: [String], text: String, _ console: Console) throws -> Int64 {
        let store = try requireStore()
        let data = try requireDataset()
        let sweepsBuild = args.contains { $0.lowercased() == SweepPlan.buildAxis }
        if !sweepsBuild { _ = try requireModel() }
        let (plan, configurations) = try SweepPlan.parse(
            args, base: live.chosen, spec: modelSpec?.text, load: datasetSource,
            checkSpec: { spec in _ = try self.makeModel([spec], for: data, seed: self.settings.seed) })
        let id = try store.createSweep(command: text, kind: plan.kind, plan: plan.json, dataFingerprint: fingerprint(of: data),
                                       configurations: configurations)
        let grid = configurations.count * plan.epochs
        let budget = plan.halving
            ? "successive halving after \(plan.rungs.dropLast().map(String.init).joined(separator: ", ")) epoch\(plan.rungs.count == 2 ? "" : "s"): at most \(plan.epochBudget(configurations: configurations.count)) epochs (all of them: \(grid))"
            : "\(grid) epochs"
        console.write(fold("sweep \(id): \(configurations.count) configuration\(configurations.count == 1 ? "" : "s") (\(plan.kind.rawValue)) of \(plan.epochs) epoch\(plan.epochs == 1 ? "" : "s") each, \(budget)"))
        return id
    }

    /// `sweep resume ID`: checks the data, then carries on where the record says.
    func resumeSweep(_ word: String, _ console: Console) throws {
        if let group = sweepGroup {
            return try sweepOverRanks(group, console) { try self.resumableSweep(word) }
        }
        try runSweep(try resumableSweep(word), console)
    }

    /// The sweep `word` names, which must not be finished.
    func resumableSweep(_ word: String) throws -> Int64 {
        let id = try parseSweepID(word)
        guard try requireStore().sweep(id).state != .finished else {
            throw CommandError("sweep \(id) is finished; see it with: sweep show \(id)")
        }
        return id
    }

    func parseSweepID(_ word: String) throws -> Int64 {
        guard let id = Int64(word), id > 0 else {
            throw CommandError("sweep ids are whole numbers ≥ 1 (got '\(word)'); list them with: sweeps")
        }
        return id
    }

    /// Trains what is left of sweep `id`, rung by rung, in configuration order; after each
    /// rung but the last, successive halving prunes the worse half (SweepRanking).
    func runSweep(_ id: Int64, _ console: Console) throws {
        let store = try requireStore()
        var sweep = try store.sweep(id)
        let plan = try SweepPlan.decode(sweep.plan, sweep: id)
        try checkSweepData(sweep, plan: plan)
        try store.setSweepState(id, .running)
        let quiet = MutedConsole()
        for rung in sweep.rung..<plan.rungs.count {
            let target = plan.rungs[rung]
            for i in sweep.members.indices where sweep.members[i].status != .pruned && sweep.members[i].epochs < target {
                if isInterrupted() { return try stopSweep(id, console) }
                let member = sweep.members[i]
                let run = try takeUpSweepRun(member, plan: plan, sweep: id, console: console, quiet: quiet)
                sweep.members[i].run = run
                let trainer = try requireTrainer()
                let from = trainer.epochsDone
                if from < target {
                    console.write("sweep \(id) [\(i + 1)/\(sweep.members.count)] run \(run): \(member.text); epoch\(target - from == 1 ? "" : "s") \(from + 1)\(target - from == 1 ? "" : "–\(target)")")
                    let reason = try train(.epochs(target - from), console)
                    if case .interrupted = reason { return try stopSweep(id, console) }
                }
                sweep.members[i].epochs = target
                sweep.members[i].status = .trained
                try store.setSweepMember(sweep: id, config: member.config, epochs: target, status: .trained)
            }
            guard rung + 1 < plan.rungs.count else { break }
            try halve(&sweep, after: rung, plan: plan, console)
        }
        try store.setSweepState(id, .finished)
        try finishSweep(id, console)
    }

    /// The sweep's data must be loaded, and be the data it started on.
    func checkSweepData(_ sweep: SweepRecord, plan: SweepPlan) throws {
        let load = plan.load.isEmpty ? "its data" : plan.load.joined(separator: " ")
        guard let data = dataset else {
            throw CommandError("sweep \(sweep.id) trains on data that is not loaded; load it first: load \(load)")
        }
        let now = fingerprint(of: data)
        guard now == sweep.dataFingerprint else {
            throw CommandError("sweep \(sweep.id) trained on other data (fingerprint \(sweep.dataFingerprint), loaded: \(now)); load its data first: load \(load)")
        }
    }

    /// Successive halving after rung `rung`: the better half by the ranking goes on to the
    /// next rung, the rest are pruned.
    func halve(_ sweep: inout SweepRecord, after rung: Int, plan: SweepPlan, _ console: Console) throws {
        let id = sweep.id, target = plan.rungs[rung]
        let alive = sweep.members.filter { $0.status != .pruned }
        let ranked = try rank(alive)
        let keep = max(1, alive.count / 2)
        let pruned = ranked.dropFirst(keep).map(\.member)
        try requireStore().pruneSweepMembers(sweep: id, configs: pruned.map(\.config), nextRung: rung + 1)
        for p in pruned { if let j = sweep.members.firstIndex(where: { $0.config == p.config }) { sweep.members[j].status = .pruned } }
        let runs = { (members: [SweepMember]) in members.compactMap(\.run).map(String.init).joined(separator: ", ") }
        console.write(fold("sweep \(id): after \(target) epoch\(target == 1 ? "" : "s") the better \(keep) of \(alive.count) go on (runs \(runs(ranked.prefix(keep).map(\.member)))); pruned: runs \(runs(pruned))"))
    }

    /// Makes configuration `member`'s run the session's: a new run from fresh weights, or its
    /// recorded run resumed from its last recorded epoch (its optimizer, counters, settings).
    func takeUpSweepRun(_ member: SweepMember, plan: SweepPlan, sweep: Int64, console: Console, quiet: Console) throws -> Int64 {
        let store = try requireStore()
        if let run = member.run {
            if try store.lastRecordedEpoch(run: run) > 0 {
                try resume(String(run), quiet)
                return run
            }
            // Stopped inside its first epoch: nothing to resume, so it starts afresh as the same run.
            try buildSweepModel(member, plan: plan)
            try store.claim(run: run)
            runID = run
            return run
        }
        return try newSweepRun(member, plan: plan, sweep: sweep, console: console)
    }

    /// Configuration `member`'s first run: built from its settings, its row made as `train`
    /// makes one, and linked to the sweep.
    func newSweepRun(_ member: SweepMember, plan: SweepPlan, sweep: Int64, console: Console) throws -> Int64 {
        try buildSweepModel(member, plan: plan)
        guard let run = startRunIfNeeded(console) else {
            throw CommandError("sweep \(sweep) could not record its run (is the database writable?), so it stopped; continue it with: sweep resume \(sweep)")
        }
        try requireStore().linkSweepRun(sweep: sweep, config: member.config, run: run)
        return run
    }

    /// What `build` does for a new run, with the configuration's settings in force first (the
    /// seed makes the weights; the trainer takes its optimizer from the settings).
    func buildSweepModel(_ member: SweepMember, plan: SweepPlan) throws {
        try buildSweepModel(settings: try plan.settings(for: member.settings, startingFrom: live.chosen), spec: try plan.spec(for: member))
    }

    /// The same from the settings and spec themselves (what rank 0 sends another rank).
    func buildSweepModel(settings h: Hyperparameters, spec: String) throws {
        let data = try requireDataset()
        // Both copies: a policy's LR drop in the last run must not leak into this one.
        live.values = h
        live.chosen = h
        _ = try install(try makeModel([spec], for: data, seed: h.seed))
    }

    /// Ctrl-C: the sweep says where it stopped; the interrupted run keeps its recorded epochs.
    func stopSweep(_ id: Int64, _ console: Console) throws {
        try requireStore().setSweepState(id, .interrupted)
        // What ran is in the sweep's record; `sweep resume` does the rest.
        replayOfInterruptedCommand = []
        console.write("sweep \(id) stopped (\(interruptionName()))\(runID.map { " in run \($0)" } ?? ""); continue it with: sweep resume \(id)")
    }

    /// The sweep's configurations with their runs' details, best first.
    func rank(_ members: [SweepMember]) throws -> [(member: SweepMember, detail: RunDetail?, score: Double?)] {
        let ids = members.compactMap(\.run)
        let details = try requireStore().comparison(of: ids).runs
        let byRun = Dictionary(details.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let rows = members.map { m in
            let detail = m.run.flatMap { byRun[$0] }
            return (member: m, detail: detail, score: detail.flatMap(SweepRanking.score))
        }
        let maximize = SweepRanking.monitor(of: details).maximize
        return rows.sorted { SweepRanking.ranksBefore(($0.score, $0.member.config), ($1.score, $1.member.config), maximize: maximize) }
    }

    /// The end: the leaderboard, and the session on the best run (`train` continues it).
    func finishSweep(_ id: Int64, _ console: Console) throws {
        let sweep = try requireStore().sweep(id)
        let plan = try SweepPlan.decode(sweep.plan, sweep: id)
        let ranked = try rank(sweep.members)
        let epochs = ranked.compactMap { $0.detail?.summary.epochs }.reduce(0, +)
        let grid = sweep.members.count * plan.epochs
        let spent = plan.halving ? " (\(Int((Double(epochs) / Double(max(grid, 1)) * 100).rounded()))% of the \(grid) without halving)" : ""
        console.write("sweep \(id) finished: \(sweep.members.count) run\(sweep.members.count == 1 ? "" : "s"), \(epochs) epoch\(epochs == 1 ? "" : "s")\(spent)")
        console.write(sweepTable(sweep, plan: plan, ranked: ranked))
        guard let best = ranked.first, let run = best.member.run, best.score != nil else {
            _ = endRun()
            return
        }
        let order = ranked.compactMap { $0.member.run.map(String.init) }
        console.write(fold("best: run \(run) (\(best.member.text))"))
        // A line of its own, so the command is never cut by wrapping.
        console.write("side by side, best first: compare \(order.prefix(8).joined(separator: " "))")
        try resume(String(run), MutedConsole())
        console.write("the session holds run \(run) again: train continues it")
    }

    func sweepTable(_ sweep: SweepRecord, plan: SweepPlan, ranked: [(member: SweepMember, detail: RunDetail?, score: Double?)]) -> String {
        let rows = ranked.map { r in
            SweepTable.Row(run: r.member.run, values: r.member.settings.map(\.value), score: r.score,
                           epochs: r.detail?.summary.epochs ?? 0,
                           status: r.member.status == .pending ? "pending" : r.detail?.summary.status ?? r.member.status.rawValue)
        }
        return SweepTable.render(axes: plan.axes.map(\.name), rows: rows,
                                 metric: SweepRanking.metricLabel(ranked.compactMap(\.detail)), width: min(terminalWidth(), 100))
    }

    // MARK: - Looking at sweeps

    func showSweep(_ word: String, _ console: Console) throws {
        let id = try parseSweepID(word)
        let sweep = try requireStore().sweep(id)
        let plan = try SweepPlan.decode(sweep.plan, sweep: id)
        let started = sweep.members.filter { $0.run != nil }.count
        console.write(fold("sweep \(id) (\(sweep.kind.rawValue), \(sweep.state.rawValue)): \(sweep.command)"))
        console.write("\(sweep.members.count) configurations, \(started) started; data fingerprint \(sweep.dataFingerprint)")
        console.write(sweepTable(sweep, plan: plan, ranked: try rank(sweep.members)))
        if sweep.state != .finished { console.write("continue it with: sweep resume \(id)") }
    }

    func listSweeps(_ console: Console) throws {
        let sweeps = try requireStore().sweeps()
        guard !sweeps.isEmpty else {
            console.write("no sweeps recorded yet; start one: sweep lr 1e-4,1e-3 train 3")
            return
        }
        let header = ["id", "kind", "state", "runs"]
        let rows = sweeps.map { s in
            [String(s.id), s.kind.rawValue, s.state.rawValue, "\(s.members.filter { $0.run != nil }.count)/\(s.members.count)"]
        }
        // The command gets what the other columns leave of the screen.
        let used = header.indices.map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }.reduce(0, +) + 2 * header.count
        let room = max(20, min(terminalWidth(), 100) - used)
        var table = TextTable(header: header + ["command"], alignRight: [true, false, false, true, false])
        for (s, row) in zip(sweeps, rows) {
            table.add(row + [s.command.count > room ? String(s.command.prefix(room - 1)) + "…" : s.command])
        }
        console.write(table.render())
    }

    /// `sweep report ID FILE.html`: the runs' HTML page with the parallel-coordinates chart.
    func reportSweep(_ args: [String], _ console: Console) throws {
        guard args.count == 2, args[1].lowercased().hasSuffix(".html") else {
            throw CommandError("usage: sweep report ID FILE.html, e.g. sweep report 1 reports/sweep-1.html")
        }
        let id = try parseSweepID(args[0])
        let (html, count) = try sweepReportHTML(id)
        do { try SafeFile.write(Data(html.utf8), to: args[1]) } catch { throw CommandError("\(error)") }
        console.write("wrote \(ResolvedPath.shown(args[1])): \(count) runs, best first, and settings against the metric")
    }

    /// A sweep's HTML page (its runs best first, the parallel-coordinates chart) and how many
    /// runs it shows: all the sweep's runs, or those of `only`.
    func sweepReportHTML(_ id: Int64, only: Set<Int64>? = nil) throws -> (html: String, runs: Int) {
        let sweep = try requireStore().sweep(id)
        let plan = try SweepPlan.decode(sweep.plan, sweep: id)
        let ranked = try rank(sweep.members).filter { r in r.detail != nil && only.map { r.member.run.map($0.contains) ?? false } ?? true }
        guard !ranked.isEmpty else { throw CommandError("sweep \(id) has no runs yet; train it first: sweep resume \(id)") }
        let details = ranked.compactMap(\.detail)
        let axes = plan.axes.enumerated().map { i, axis in
            SweepReport.Axis(name: axis.name, isLog: axis.scale == .log || Session.spansDecades(ranked.map { $0.member.settings[i].value }))
        }
        let lines = ranked.compactMap { r in
            r.score.map { SweepReport.Line(label: "run \(r.member.run!)", values: r.member.settings.map(\.value), score: $0) }
        }
        let html = SweepReport.html(Comparison(monitoring: details), title: "ollie sweep \(id): \(sweep.command)", axes: axes, lines: lines,
                                    metric: "best " + SweepRanking.metricName(details))
        return (html, details.count)
    }

    /// The sweep every run of `comparison` belongs to (their recorded `sweep` param), if one does.
    func commonSweep(_ comparison: Comparison) -> Int64? {
        let ids = Set(comparison.runs.map { $0.params.first { $0.name == "sweep" }?.values.first?.value })
        guard ids.count == 1, let only = ids.first, let text = only, let id = Int64(text) else { return nil }
        return id
    }

    /// Listed values over a decade or more (lr 1e-4,3e-4,1e-3) read best on a log axis.
    static func spansDecades(_ values: [String]) -> Bool {
        let numbers = values.compactMap(Double.init)
        guard numbers.count == values.count, let low = numbers.min(), let high = numbers.max(), low > 0 else { return false }
        return high / low >= 10
    }
}

/// Swallows what the commands a sweep runs for it (`resume`) would say: the sweep says it in one line.
final class MutedConsole: Console {
    func write(_ line: String) {}
    func progress(_ line: String) {}
    var isInteractive: Bool { false }
}
