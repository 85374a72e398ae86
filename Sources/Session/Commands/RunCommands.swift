import Foundation
import NN
import Tracking
import Training

/// Working with recorded runs as states: continue one exactly, branch one at an epoch, set
/// two side by side in depth, and find a learning rate without touching the model.
extension Session {
    static let runCommands: [Command] = [
        Command("resume", usage: "resume RUN",
                summary: "Continue a recorded run exactly where its last recorded epoch left it (data, model, optimizer, counters, settings), under the same run id.",
                example: "resume 3", arity: 1...1) { session, args, console in
            try session.resume(args[0], console)
        },
        Command("fork", usage: "fork RUN@EPOCH | fork RUN",
                summary: "Start a new run from a recorded run's state after EPOCH (default its last); the next train is epoch EPOCH+1 of the new run.",
                example: "fork 3@2", arity: 1...1) { session, args, console in
            try session.fork(args[0], console)
        },
        Command("diff", usage: "diff A B | diff RUNS",
                summary: "Two runs in depth: settings timelines, per-epoch metrics with differences, events, and the commands behind each. RUNS as for compare, naming two runs (last 2, where tag = baseline).",
                example: "diff 3 4", arity: 1...12) { session, args, console in
            try session.diff(args, console)
        },
        Command("lr-find", usage: "lr-find [FROM TO]",
                summary: "Learning-rate range test on a copy of the model (rates rising exponentially over 100 batches, passing over small data more than once); plots loss against lr and suggests one. The session's model and optimizer are untouched.",
                example: "lr-find 1e-6 1", arity: 0...2) { session, args, console in
            try session.lrFind(args, console)
        },
    ]

    /// Commands that change the data, model, settings or weights: what `diff` lists.
    static let stateChangingCommands: Set<String> = ["load", "build", "reset", "set", "train", "step", "restore", "resume", "fork", "run"]

    func parseRunID(_ word: String) throws -> Int64 {
        guard let id = Int64(word), id > 0 else {
            throw CommandError("run ids are whole numbers ≥ 1 (got '\(word)'); see them with: runs")
        }
        return id
    }

    // MARK: - resume

    func resume(_ word: String, _ console: Console) throws {
        let store = try requireStore()
        let run = try parseRunID(word)
        let (epoch, path) = try lastRecordedState(of: run)
        // The lease first (one process trains a run at a time), then the slow load; a failed
        // load gives the lease back unless the run was already this session's.
        try store.claim(run: run)
        let candidate: Candidate
        do { candidate = try readRunState(run: run, epoch: epoch, path: path) } catch {
            if runID != run { releaseLease(run) }
            throw error
        }
        adopt(candidate, continuing: run)
        // The model's spec can be long: folded between words, as the terminal would not.
        console.write(fold("resumed run \(run) at epoch \(epoch) (\(candidate.dataset?.name ?? "no data"), \(candidate.model), "
            + "\(candidate.stepsDone) steps, lr \(formatRate(settings.learningRate))); train continues it from epoch \(epoch + 1)"))
        if candidate.saved.dataFingerprint == nil {
            console.write(fold("note: \(path) is older than data fingerprints, so whether the data changed since could not be checked"))
        }
    }

    /// Run `run`'s last recorded epoch and the file of its state, which must be there.
    func lastRecordedState(of run: Int64) throws -> (epoch: Int, path: String) {
        let store = try requireStore()
        let summary = try store.run(run)
        let epoch = try store.lastRecordedEpoch(run: run)
        guard epoch > 0 else {
            throw CommandError("run \(run) has no recorded epoch to resume from; start it afresh: load \(summary.dataset), build \(summary.modelRecipe), train")
        }
        let path = epochStatePath(run: run, epoch: epoch)
        guard FileManager.default.fileExists(atPath: path) else {
            let kept = keptEpochs(run: run)
            throw CommandError("run \(run)'s state after its last epoch (\(epoch)) is missing: \(path) was deleted or never written; "
                + (kept.isEmpty ? "no epoch of it is kept, so it cannot be continued" : "branch from a kept epoch instead: fork \(run)@\(kept.last!)"))
        }
        return (epoch, path)
    }

    /// Run `run`'s state after `epoch`, read from `path` and checked (the file's run, epoch,
    /// database and data), ready to `adopt` as the run continued. What `resume` does once it
    /// holds the lease; a sweep's rank does the same with the file rank 0 sent it.
    func readRunState(run: Int64, epoch: Int, path: String) throws -> Candidate {
        let candidate = try readState(path, loadData: true, allSettings: true)
        guard candidate.savedRun == run, candidate.epochsDone == epoch else {
            throw CommandError("\(path) does not hold run \(run)'s epoch \(epoch) (it says run \(candidate.savedRun.map(String.init) ?? "?"), epoch \(candidate.epochsDone)); it was not loaded")
        }
        if let database = candidate.saved.database, database != databaseIdentity {
            throw CommandError("\(path) was written by run \(run) of another database (\(StateKey.database) \(database)), not by this database's run \(run); it was not loaded")
        }
        // A run continues on the data it was trained on, or it is not the same run.
        guard let data = candidate.dataset else { throw CommandError("\(path) could not be given its data; load them first") }
        let now = fingerprint(of: data)
        if let then = candidate.saved.dataFingerprint, then != now {
            throw CommandError("the data of run \(run) have changed since its epoch \(epoch) (fingerprint \(then) then, \(now) now: load \(candidate.datasetSource.joined(separator: " "))); resume continues a run only on its own data; to train on these as a new run: fork \(run)")
        }
        return candidate
    }

    // MARK: - fork

    func fork(_ word: String, _ console: Console) throws {
        let store = try requireStore()
        let usage = "usage: fork RUN@EPOCH, e.g. fork 1@3 (or fork RUN for its last epoch)"
        let parts = word.split(separator: "@", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts.count == 1 || !parts[1].isEmpty else {
            throw CommandError("\(usage) (got '\(word)')")
        }
        let run = try parseRunID(parts[0])
        _ = try store.run(run)
        let recorded = try store.lastRecordedEpoch(run: run)
        guard recorded > 0 else { throw CommandError("run \(run) has no recorded epoch to fork from yet") }
        var epoch = recorded
        if parts.count == 2 {
            guard let asked = Int(parts[1]) else { throw CommandError("\(usage) (got '\(word)': the epoch is not a whole number)") }
            guard asked >= 1 else {
                throw CommandError("epochs count from 1: fork \(run)@1 branches after run \(run)'s first epoch (got \(word)); to start from fresh weights, build again")
            }
            guard asked <= recorded else {
                throw CommandError("run \(run) has \(recorded) recorded epoch\(recorded == 1 ? "" : "s"); choose one of \(run)@1 … \(run)@\(recorded) (got \(word))")
            }
            epoch = asked
        }
        let path = epochStatePath(run: run, epoch: epoch)
        guard FileManager.default.fileExists(atPath: path) else {
            let kept = keptEpochs(run: run)
            throw CommandError("run \(run)'s state after epoch \(epoch) was not kept (\(path) is not there: `set keep` bounds what stays, or it was deleted); "
                + (kept.isEmpty ? "no epoch of run \(run) is kept" : "kept epochs: \(kept.map(String.init).joined(separator: ", "))"))
        }
        let candidate = try readState(path, loadData: true, allSettings: true)
        guard candidate.epochsDone == epoch else {
            throw CommandError("\(path) holds epoch \(candidate.epochsDone), not \(epoch); it was not loaded")
        }
        let origin = lineage(of: candidate)
        guard let data = candidate.dataset else { throw CommandError("\(path) could not be given its data; load them first") }
        let now = fingerprint(of: data)
        adopt(candidate)
        pendingLineage = origin.parent
        console.write(fold("forked run \(run) at epoch \(epoch) (\(data.name), \(candidate.model), "
            + "lr \(formatRate(settings.learningRate))): the next train starts a new run from epoch \(epoch + 1)"))
        if let note = origin.note { console.write(fold(note)) }
        if let then = candidate.saved.dataFingerprint, then != now {
            console.write(fold("note: the data have changed since run \(run) trained on them (fingerprint \(then) then, \(now) now); the new run trains on them as they are now"))
        }
    }

    // MARK: - diff

    func diff(_ args: [String], _ console: Console) throws {
        let store = try requireStore()
        if args.count == 2 && args[0] == args[1] && Int64(args[0]) != nil {
            throw CommandError("diff needs two different runs (got \(args[0]) twice); see them with: runs")
        }
        let ids = try store.runs(try RunFilter.parse(args)).map(\.id)
        guard ids.count == 2 else {
            throw CommandError("diff needs exactly two runs; '\(args.joined(separator: " "))' names \(ids.count): \(ids.map(String.init).joined(separator: ", "))")
        }
        let runs = try store.comparison(of: ids).runs
        // The commands that shaped each run; looking around (runs, compare, sql…) is left out.
        let commands = try ids.map { id in
            try store.commands(ofRun: id).filter { record in
                let name = record.command.split(separator: " ").first.map { $0.lowercased() } ?? ""
                return Session.stateChangingCommands.contains(command(named: name)?.name ?? name)
            }
        }
        console.write(RunDiff.render(runs[0], runs[1], commands: (commands[0], commands[1]), width: terminalWidth()))
    }

    // MARK: - lr-find

    func lrFind(_ args: [String], _ console: Console) throws {
        checkRanksAgree(before: "lr-find")
        let trainer = try requireTrainer()
        guard args.count != 1 else { throw CommandError("usage: lr-find [FROM TO], both or neither, e.g. lr-find 1e-6 1") }
        let from = try args.first.map { try parseFloat($0, "FROM", above: 0, atMost: 100) } ?? 1e-7
        let to = try args.last.map { try parseFloat($0, "TO", above: 0, atMost: 100) } ?? 10
        guard from < to else {
            throw CommandError("lr-find needs FROM < TO (got \(args[0]) ≥ \(args[1])), e.g. lr-find 1e-6 1")
        }
        // Class weights that no longer fit the data stop here, as they stop `train`.
        do { _ = try trainer.makeObjective() } catch { throw CommandError("\(error)") }
        let data = trainer.dataset
        // A copy of the model with the same weights, and a fresh optimizer of the session's
        // kind: the range test trains the copy, never the session's model or optimizer.
        let copy = try makeModel([modelText], for: data, seed: settings.seed)
        Checkpoint.copyWeights(Dictionary(uniqueKeysWithValues: (trainer.model.parameters + trainer.model.buffers).map { ($0.name, $0.value) }), copy)
        let scratch = try Trainer(model: copy, dataset: data, live: LiveSettings(settings))
        // 100 steps whatever the data's size: 200 clips are 13 batches, too few to see a fall.
        let steps = 100
        guard trainer.batchesPerEpoch >= 1 else { throw CommandError("lr-find needs training data; there is none to step on") }
        let ratio = Double(to) / Double(from)
        let rates = (0..<steps).map { Float(Double(from) * pow(ratio, Double($0) / Double(steps - 1))) }
        var best = Double.infinity, average = 0.0, step = 0, diverged = false
        let losses = scratch.lossesAtRates(rates, shouldStop: isInterrupted) { loss in
            // fastai's rule: stop once the smoothed loss is 4× the best smoothed loss (diverged).
            step += 1
            average = 0.98 * average + 0.02 * loss
            let smooth = average / (1 - pow(0.98, Double(step)))
            best = min(best, smooth)
            diverged = !loss.isFinite || smooth > 4 * best
            return diverged
        }
        // Divergence is checked first at each step, so a step that did both counts as diverged.
        let outcome: LRFindOutcome = losses.count == steps && !diverged ? .completed : diverged ? .diverged : .interrupted
        let points = zip(rates, losses).map { (rate: Double($0), loss: $1) }
        let suggestion = LRFinder.suggest(points)
        let finding = LRFindRecord(dataset: data.name, model: modelText, optimizer: settings.optimizer.rawValue,
                                  batchSize: settings.batchSize, startRate: Double(from), endRate: Double(to),
                                  points: points, suggestedRate: suggestion.map { Double($0) }, run: runID,
                                  outcome: outcome, plannedSteps: steps)
        var recordedAs = ""
        record(console) { store in
            let id = try store.recordLRFind(finding)
            recordedAs = " (recorded as lr-find \(id))"
        }
        console.write(LRFinder.plot(points, suggested: suggestion, width: min(terminalWidth(), 100), color: console.isInteractive))
        let stopped = switch outcome {
        case .completed: ""
        case .diverged: "; stopped after \(losses.count) of \(steps) steps, the loss having diverged"
        case .interrupted: "; interrupted (Ctrl-C) after \(losses.count) of \(steps) steps, so the curve is partial"
        }
        if let suggestion {
            console.write("suggested lr \(formatRate(suggestion)) (steepest fall of the smoothed loss)\(stopped)\(recordedAs); use it with: set lr \(formatRate(suggestion))")
        } else {
            console.write("no clear suggestion: the loss did not fall over \(formatRate(from))…\(formatRate(to))\(stopped)\(recordedAs); try another range")
        }
        console.write("the session's model and optimizer are unchanged")
    }
}

/// The arithmetic of a learning-rate range test (Smith 2017; fastai's `lr_find`).
enum LRFinder {
    /// The loss smoothed as fastai does (an exponential moving average, β = 0.98, bias-corrected).
    static func smoothed(_ losses: [Double]) -> [Double] {
        var average = 0.0
        return losses.enumerated().map { i, loss in
            average = 0.98 * average + 0.02 * loss
            return average / (1 - pow(0.98, Double(i + 1)))
        }
    }

    /// The rate where the smoothed loss falls fastest against log(lr), before its minimum;
    /// nil when it never falls.
    static func suggest(_ points: [(rate: Double, loss: Double)]) -> Float? {
        guard points.count >= 3 else { return nil }
        let loss = smoothed(points.map(\.loss))
        let minimum = loss.indices.min { loss[$0] < loss[$1] }!
        guard minimum > 0 else { return nil }
        var steepest: (index: Int, slope: Double)?
        for i in 1...minimum {
            let slope = (loss[i] - loss[i - 1]) / (log10(points[i].rate) - log10(points[i - 1].rate))
            if slope < 0, slope < (steepest?.slope ?? 0) { steepest = (i, slope) }
        }
        // Two significant digits: a range test is not more precise than that.
        return steepest.map { pick in
            let rate = points[pick.index].rate
            let scale = pow(10, floor(log10(rate)) - 1)
            return Float((rate / scale).rounded() * scale)
        }
    }

    /// The smoothed loss against log(lr) over every rate tried. The y axis spans the curve up
    /// to its minimum (and a little above): after it the loss shoots up, and scaled to that
    /// tail the useful part would be a flat line; the tail leaves the plot at the top.
    static func plot(_ points: [(rate: Double, loss: Double)], suggested: Float?, width: Int, color: Bool) -> String {
        let loss = smoothed(points.map(\.loss))
        let curve = (label: "smoothed loss", points: zip(points, loss).map { (x: log10($0.rate), y: $1) })
        let xs = curve.points.map(\.x)
        let ticks = (Int(floor(xs.min() ?? 0))...Int(ceil(xs.max() ?? 0))).map { (x: Double($0), text: "1e\($0)") }
        var curves = [curve]
        if let suggested {
            let x = log10(Double(suggested))
            if let nearest = curve.points.min(by: { abs($0.x - x) < abs($1.x - x) }) {
                curves.append((label: "suggested \(formatRate(suggested))", points: [nearest]))
            }
        }
        return TerminalPlot.render(curves: curves, title: "loss against learning rate", xLabel: "lr", xTicks: ticks,
                                   width: width, height: 14, color: color, bounds: 0...yCeiling(loss))
    }

    /// The top of the plot: the highest smoothed loss up to the lowest one, plus a fifth of
    /// the fall (so the rise after the minimum shows before it leaves the plot).
    static func yCeiling(_ loss: [Double]) -> Double {
        let finite = loss.enumerated().filter { $0.element.isFinite }
        guard let minimum = finite.min(by: { $0.element < $1.element }) else { return .greatestFiniteMagnitude }
        let before = finite.filter { $0.offset <= minimum.offset }.map(\.element)
        let highest = before.max()!
        return highest + max(0.2 * (highest - minimum.element), 0.05 * abs(highest), 1e-6)
    }
}
