import Files
import Foundation
import NN
import Tracking
import Training

extension Session {
    static let trainingCommands: [Command] = [
        Command("train", usage: "train [N] | train N batches [stop S]",
                summary: "Train N more epochs (default 1) with the reference policy; an unfinished epoch is finished first and counts as one. `train N batches` trains the next N batches and stops inside the epoch; the next train continues there. Ctrl-C stops after the current batch. `stop S` stops as Ctrl-C would, after S batches of the N asked for (a cosine or one-cycle schedule still spans all N): how a transcript replays a Ctrl-C.",
                example: "train 5", arity: 0...4) { session, args, console in
            var args = args
            var stopAfter: Int?
            if args.count >= 2, args[args.count - 2].lowercased() == "stop" {
                stopAfter = try parseInt(args[args.count - 1], "the batches before stop", 1...100_000_000)
                args.removeLast(2)
            }
            let usage = "usage: train [N] | train N batches [stop S]"
            if args.count == 2 {
                guard ["batches", "batch"].contains(args[1].lowercased()) else {
                    throw CommandError("\(usage) (got '\(args[1])'), e.g. train 100 batches")
                }
                try session.train(.batches(try parseInt(args[0], "the batch count", 1...100_000_000)), stopAfter: stopAfter, console)
            } else if args.count <= 1 {
                try session.train(.epochs(try args.first.map { try parseInt($0, "the epoch count", 1...100_000) } ?? 1), stopAfter: stopAfter, console)
            } else {
                throw CommandError("\(usage) (got '\(args.joined(separator: " "))'), e.g. train 12 stop 500")
            }
        },
        Command("step", usage: "step [N]",
                summary: "Train the next N batches (default 1) and print their mean loss: short for `train N batches`.",
                example: "step 10", arity: 0...1) { session, args, console in
            try session.train(.batches(try args.first.map { try parseInt($0, "the batch count", 1...100_000_000) } ?? 1), console)
        },
        Command("accuracy", usage: "accuracy [test|train|val]", summary: "Accuracy of the current model on the test (default) or training set, or the validation split (set val).",
                example: "accuracy train", arity: 0...1, completion: .words(["test", "train", "val"])) { session, args, console in
            let (name, evaluation) = try session.evaluate(args.first)
            let correct = Int((evaluation.accuracy * Double(evaluation.predictions.count)).rounded())
            console.write("\(name) accuracy \(String(format: "%.4f", evaluation.accuracy)) (\(correct)/\(evaluation.predictions.count))")
        },
        Command("loss", usage: "loss [test|train|val]", summary: "Mean cross-entropy loss of the current model (no noise).",
                example: "loss test", arity: 0...1, completion: .words(["test", "train", "val"])) { session, args, console in
            let (name, evaluation) = try session.evaluate(args.first)
            console.write("\(name) loss \(String(format: "%.4f", evaluation.loss))")
        },
    ]

    func evaluate(_ which: String?) throws -> (String, Evaluation) {
        let trainer = try requireTrainer()
        switch which?.lowercased() ?? "test" {
        case "test": return ("test", trainer.evaluate(trainer.dataset.test))
        case "train": return ("train", trainer.evaluate(trainer.dataset.train))
        case "val", "validation":
            guard let validation = trainer.validationSplit else {
                throw CommandError("no validation split; hold one out first: set val 0.1")
            }
            return ("val", trainer.evaluate(validation))
        default: throw CommandError("choose test, train or val (got '\(which ?? "")')")
        }
    }

    @discardableResult
    func train(_ amount: Trainer.Amount, stopAfter: Int? = nil, _ console: Console) throws -> StopReason {
        checkRanksAgree(before: "train")
        let trainer = try requireTrainer()
        // Class weights that no longer fit the data (loaded after `set class-weights`) stop here.
        do { _ = try trainer.makeObjective() } catch { throw CommandError("\(error)") }
        // A batch's activations, their gradients and the layers' caches (~16 bytes a value) must fit.
        let bytes = Double(trainer.model.activationsPerSample) * Double(settings.batchSize) * 16
        let memory = Double(ProcessInfo.processInfo.physicalMemory)
        if bytes > memory / 2 {
            let fits = max(1, Int(memory / 2 / (Double(trainer.model.activationsPerSample) * 16)))
            throw CommandError(String(format: "a batch of %d would need about %.1f GB for activations, more than half this machine's %.0f GB; set batch %d or smaller, or build a smaller model",
                                      settings.batchSize, bytes / 1e9, memory / 1e9, fits))
        }
        if let problem = settings.monitor.problem(validationFraction: settings.validationFraction) { throw CommandError(problem) }
        if let line = selectionWarning(trainer) { console.write(line) }
        if let built = trainer.updateFeatureCache() { console.write(featureCacheLine(built)) }
        let run = startRunIfNeeded(console)
        if let run { recordRun(.started, run: run, console) }
        let epochsBefore = trainer.epochsDone
        var stoppedAtBatch = 0
        // This call's batches (for the mean loss, and where a replay of a Ctrl-C stops).
        var lossSum = 0.0, batchesRun = 0
        var recorder = EpochRecorder()
        // Clips are counted as clips; a best found on the validation split says so.
        let unit = trainer.dataset.frames > 1 ? "clips/s" : "img/s"
        let bestOf = trainer.validationSplit == nil ? "" : "val "
        let monitor = settings.monitor
        // `stop S` stops where a Ctrl-C did: after the S-th batch of this call.
        let reason = trainer.train(amount, shouldStop: { self.isInterrupted() || stopAfter.map { batchesRun >= $0 } ?? false }) { event in
            switch event {
            case .batchFinished(let p):
                lossSum += p.loss
                batchesRun += 1
                if console.isInteractive { console.progress(progressLine(p, unit: unit)) }
                _ = recorder.add(event, trainer: trainer)   // a moving schedule's rate, kept for the epoch's record
                return
            case .epochFinished:
                if let line = eventLine(event, unit: unit, bestOf: bestOf) { console.write(line) }
            case .newBest(let epoch, _):
                let monitored = monitor == .scoredAccuracy ? nil : trainer.policy.bestValue.map { (monitor.metric, $0) }
                if let line = eventLine(event, unit: unit, bestOf: bestOf, monitored: monitored) { console.write(line) }
                saveBest(trainer, epoch: epoch, console)
            case .epochClosed(let epoch):
                // The state goes to disk before the epoch's record: a recorded epoch can always be resumed.
                if let run {
                    do {
                        try saveEpochState(trainer, run: run, epoch: epoch)
                        journalFile(epoch: epoch, bestEpoch: trainer.policy.bestEpoch, path: epochStatePath(run: run, epoch: epoch))
                    } catch {
                        console.write("warning: could not save epoch \(epoch)'s state (resume and fork need it): \(error)")
                    }
                }
            case .interrupted(_, let batch, _), .partialEpoch(_, let batch, _):
                stoppedAtBatch = batch
                if let line = eventLine(event, unit: unit, bestOf: bestOf) { console.write(line) }
            default:
                if let line = eventLine(event, unit: unit, bestOf: bestOf) { console.write(line) }
            }
            if let run, let done = recorder.add(event, trainer: trainer) { recordRun(.epoch(EpochEntry(done), testScore: false), run: run, console) }
        }
        if let run, let done = recorder.take() { recordRun(.epoch(EpochEntry(done), testScore: false), run: run, console) }
        if let run {
            let status: RunStatus = switch reason {
            case .interrupted, .partialEpoch: .interrupted
            case .nanStop: .failed
            default: .finished
            }
            recordRun(.finished(status: status.rawValue), run: run, console)
        }
        let fullEpochs = trainer.epochsDone - epochsBefore
        // With a validation split the policy never looked at the test set: score it once now,
        // recorded with the last epoch trained.
        if trainer.validationSplit != nil && fullEpochs > 0 {
            let started = Date()
            let test = trainer.evaluate(trainer.dataset.test)
            let topK = trainer.settings.topK.flatMap { k in test.topKAccuracy.map { (k, $0) } }
            console.write("test accuracy \(String(format: "%.4f", test.accuracy))  loss \(String(format: "%.4f", test.loss))"
                + (topK.map { "  top\($0.0) \(String(format: "%.4f", $0.1))" } ?? "") + " after epoch \(trainer.epochsDone)")
            if let run {
                var metrics = [Metric.testAccuracy.rawValue: test.accuracy, Metric.testLoss.rawValue: test.loss,
                               Metric.testSeconds.rawValue: Date().timeIntervalSince(started)]
                if let topK { metrics[Metric.topK(topK.0, on: .test)] = topK.1 }
                let score = EpochRecord(epoch: trainer.epochsDone, metrics: metrics,
                                        bestAccuracy: nil, bestEpoch: nil, trainLoss: nil, seconds: nil)
                recordRun(.epoch(EpochEntry(score), testScore: true), run: run, console)
            }
        }
        let meanLoss = "mean loss \(String(format: "%.4f", lossSum / Double(max(batchesRun, 1)))) over \(batchesRun) batch\(batchesRun == 1 ? "" : "es")"
        let continues = "train continues epoch \(trainer.epochsDone + 1) at batch \(stoppedAtBatch + 1)"
        switch reason {
        case .interrupted:
            // What really happened, as a command that redoes it exactly (for the transcript): the
            // call as asked, so a cosine or one-cycle schedule spans the same steps, stopped at the
            // same batch.
            let asked = switch amount {
            case .epochs(let n): "train \(n)"
            case .batches(let n): "train \(n) batches"
            }
            replayOfInterruptedCommand = ["\(asked) stop \(batchesRun)"]
            let by = stopAfter.map { batchesRun >= $0 } ?? false ? "stop \(batchesRun)" : interruptionName()
            // Two lines, each within 80 columns.
            console.write("interrupted (\(by)); the model keeps its weights (\(trainer.epochsDone) full epoch\(trainer.epochsDone == 1 ? "" : "s"))\n\(meanLoss); \(continues)")
        case .partialEpoch:
            console.write("\(meanLoss); \(continues)")
        case .finishedEpochs:
            // Batches that happened to end an epoch: their loss still goes with them.
            if case .batches = amount { console.write("\(meanLoss); epoch \(trainer.epochsDone) is complete") }
        default:
            break
        }
        return reason
    }

    /// The run param holding `Dataset.fingerprint` of the data the run trained on.
    static let dataFingerprintParam = "data_fingerprint"

    /// Smallest validation split worth selecting on: below it one image more or less right
    /// moves the accuracy by more than the differences the policy acts on.
    static let smallestValidation = (images: 50, perClass: 5)

    /// A note when the policy's choices (best checkpoint, LR drops, early stop) rest on the test
    /// set, said once a session, or on a validation split too small to tell epochs apart, said
    /// once a run.
    func selectionWarning(_ trainer: Trainer) -> String? {
        guard let validation = trainer.validationSplit else {
            guard !saidSelectingOnTest else { return nil }
            saidSelectingOnTest = true
            return "note: the best checkpoint, LR drops and early stop are chosen on the test set\n"
                + "(val 0), so its accuracy is optimistic; hold out a validation split: set val 0.1"
        }
        guard runID == nil else { return nil }
        let perClass = Dictionary(grouping: validation.labels, by: { $0 }).values.map(\.count).min() ?? 0
        let small = Session.smallestValidation
        guard validation.count < small.images || perClass < small.perClass else { return nil }
        return "warning: the validation split holds \(validation.count) images (\(perClass) in its smallest class),\n"
            + "too few to select epochs on (want ≥ \(small.images), ≥ \(small.perClass) a class); raise val or load more data"
    }

    /// Creates the database row for the current run on its first `train`.
    func startRunIfNeeded(_ console: Console) -> Int64? {
        if let runID { return runID }
        guard let store, !store.isReadOnly, let trainer, let dataset, let model else {
            if let storeProblem, store?.isReadOnly ?? true { console.write("warning: \(storeProblem)") }
            return nil
        }
        do {
            let params = Setting.recorded.map { (name: $0.name, value: $0.value(in: settings)) }
                + [(name: "model", value: model.description), (name: Session.dataFingerprintParam, value: fingerprint(of: dataset)),
                   // The sample shape as the model takes it (C×H×W, or C×T×H×W for clips).
                   (name: "input", value: dataset.sampleShape.map(String.init).joined(separator: "×"))]
                + clusterParams
            let id = try store.startRun(dataset: dataset.name, model: model.description,
                                        parameterCount: model.parameterCount, seed: settings.seed, params: params,
                                        fromEpoch: trainer.epochsDone + 1, parent: pendingLineage)
            let lineage = pendingLineage.map { ", forked from \($0.run)@\($0.epoch)" } ?? ""
            runID = id
            pendingLineage = nil
            console.write("run \(id) started (\(dataset.name), epoch \(trainer.epochsDone + 1)\(lineage))")
            return id
        } catch {
            console.write("warning: not recorded in the run database: \(error)")
            return nil
        }
    }

    /// Leaves the current run (the next `train` starts a new one) and gives up its lease, so
    /// another process may resume it. The new run starts from the user's settings: what the
    /// last run's policy changed (an LR drop) stays with that run. Returns a line saying so.
    @discardableResult
    func endRun() -> String? {
        let ended = runID
        if let runID { releaseLease(runID) }
        runID = nil
        pendingLineage = nil
        guard let before = live.startNewRun() else { return nil }
        let changed = Setting.all.filter { $0.value(in: before) != $0.value(in: settings) }
            .map { "\($0.name) \($0.value(in: settings)) (your setting; \(ended.map { "run \($0)" } ?? "the last run")'s policy had it at \($0.value(in: before)))" }
        return changed.isEmpty ? nil : "the next run starts from your settings: " + changed.joined(separator: ", ")
    }

    func releaseLease(_ run: Int64) {
        guard let store, !store.isReadOnly else { return }
        try? store.release(run: run)
    }

    func bestCheckpointPath(_ run: Int64?) -> String? {
        guard let run else { return nil }
        let path = "\(checkpointDirectory)/run-\(run)-best.safetensors"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    private func saveBest(_ trainer: Trainer, epoch: Int, _ console: Console) {
        let name = runID.map { "run-\($0)-best" } ?? "best"
        let path = "\(checkpointDirectory)/\(name).safetensors"
        do {
            try saveCheckpoint(trainer, to: path)
            journalFile(epoch: nil, bestEpoch: epoch, path: path)
            console.write(" -> saved to \(ResolvedPath.shown(path))")
        } catch {
            console.write("warning: could not save the best model: \(error)")
        }
    }
}

/// Gathers one epoch's metrics, events and automatic setting changes into one record, written
/// in one transaction as soon as the epoch is closed.
struct EpochRecorder {
    private var pending: EpochRecord?
    /// The last finished epoch's scored split: what it predicted, and which split it was.
    private var scored: (epoch: Int, predictions: [Int32], split: ScoredSplit)?
    /// The rate of each step since the last record, when a schedule moves it (step, rate).
    private var stepRates: [(step: Int, name: String, value: Double)] = []

    /// Hands the steps gathered so far to the record being made.
    private mutating func attachSteps() {
        pending?.stepMetrics.append(contentsOf: stepRates)
        stepRates = []
    }

    /// Adds an event; returns the previous epoch's record once an event of a later epoch shows
    /// it is complete.
    mutating func add(_ event: TrainingEvent, trainer: Trainer) -> EpochRecord? {
        switch event {
        case .batchFinished(let p):
            if trainer.settings.schedule.movesPerStep(warmupSteps: trainer.settings.warmupSteps) {
                stepRates.append((p.step, Metric.learningRate.rawValue, Double(p.learningRate)))
            }
            return nil
        case .epochClosed:
            return take()
        case .epochFinished(let m):
            let done = pending
            scored = (m.epoch, m.scoredPredictions, m.scored)
            let scored: Metric.Split = m.scored == .validation ? .validation : .test
            pending = EpochRecord(
                epoch: m.epoch,
                metrics: [Metric.trainLoss: m.trainLoss, .trainAccuracy: m.trainAccuracy, scored.accuracy: m.accuracy,
                          .learningRate: Double(m.learningRate), .epochSeconds: m.epochSeconds,
                          .imagesPerSecond: m.imagesPerSecond, scored.seconds: m.scoringSeconds]
                    .merging(m.scored == .validation ? [.valLoss: m.scoredLoss] : [:]) { a, _ in a }
                    .reduce(into: [:]) { $0[$1.key.rawValue] = $1.value },
                events: [], paramChanges: [],
                bestAccuracy: trainer.policy.bestAccuracy, bestEpoch: trainer.policy.bestEpoch,
                trainLoss: m.trainLoss, seconds: m.epochSeconds)
            if let k = m.topK, let value = m.topKAccuracy { pending?.metrics[Metric.topK(k, on: scored)] = value }
            // The epoch's last batch is always measured; recorded only when asked.
            if trainer.settings.recordsLayerStatistics, let stats = trainer.lastStatistics, stats.epoch == m.epoch {
                pending?.metrics.merge(LayerStatisticsTable.metrics(stats, model: trainer.model)) { a, _ in a }
            }
            attachSteps()
            return done
        case .learningRateDropped(let epoch, let from, let to):
            pending?.paramChanges.append((name: "lr", value: formatRate(to)))
            return appendEvent(event, epoch: epoch, detail: "\(formatRate(from)) → \(formatRate(to))")
        case .newBest(let epoch, let accuracy):
            pending?.bestAccuracy = trainer.policy.bestAccuracy
            pending?.bestEpoch = trainer.policy.bestEpoch
            let done = appendEvent(event, epoch: epoch, detail: String(format: "%.4f", accuracy))
            if let scored, scored.epoch == epoch, let detail = BestConfusion.detail(scored.predictions, of: trainer, split: scored.split) {
                pending?.events.append((kind: BestConfusionRecord.eventKind, detail: detail))
            }
            return done
        case .earlyExit(let epoch, let accuracy, let target):
            return appendEvent(event, epoch: epoch, detail: "\(String(format: "%.4f", accuracy)) ≥ \(formatRate(target))")
        case .converged(let epoch, let idle):
            return appendEvent(event, epoch: epoch, detail: "\(idle) epochs without improvement")
        case .nanStop(let epoch):
            return appendEvent(event, epoch: epoch, detail: "NaN parameters")
        case .interrupted(let epoch, let batch, let count), .partialEpoch(let epoch, let batch, let count):
            return appendEvent(event, epoch: epoch, detail: "batch \(batch)/\(count)")
        }
    }

    private mutating func appendEvent(_ event: TrainingEvent, epoch: Int, detail: String) -> EpochRecord? {
        var done: EpochRecord?
        if pending == nil || pending?.epoch != epoch {
            // An event outside a finished epoch (NaN, Ctrl-C): a record with no metrics.
            done = pending
            pending = EpochRecord(epoch: epoch, metrics: [:], events: [], paramChanges: [],
                                  bestAccuracy: nil, bestEpoch: nil, trainLoss: nil, seconds: nil)
            attachSteps()
        }
        pending?.events.append((kind: event.kind, detail: detail))
        return done
    }

    mutating func take() -> EpochRecord? {
        defer { pending = nil }
        return pending
    }
}

/// `[3] test accuracy 0.9871  loss 0.041  lr 3e-3  6.2 s  13,393 img/s` and the event lines
/// under it; `unit` counts samples ("clips/s" for clips), `bestOf` names the split a new best
/// was found on when it is not the test set ("val ").
/// `monitored`: the monitor's metric and best value, when it is not the scored accuracy.
func eventLine(_ event: TrainingEvent, unit: String = "img/s", bestOf: String = "",
               monitored: (metric: String, value: Double)? = nil) -> String? {
    switch event {
    case .batchFinished, .epochClosed:
        return nil
    case .epochFinished(let m):
        var topK = ""
        if let k = m.topK, let value = m.topKAccuracy { topK = " top\(k) \(String(format: "%.4f", value))" }
        return "[\(m.epoch)] \(m.scored.rawValue) accuracy \(String(format: "%.4f", m.accuracy))\(topK)  loss \(String(format: "%.4f", m.trainLoss))  "
            + "lr \(formatRate(m.learningRate))  \(String(format: "%.1f", m.epochSeconds)) s  \(grouped(Int(m.imagesPerSecond))) \(unit)"
    case .newBest(_, let accuracy):
        if let monitored {
            return " -> new best \(monitored.metric) \(String(format: "%.4f", monitored.value)) (\(bestOf)accuracy \(String(format: "%.4f", accuracy)))"
        }
        return " -> new best \(bestOf)accuracy \(String(format: "%.4f", accuracy))"
    case .learningRateDropped(_, _, let to):
        return " -> no improvement for a while; learning rate dropped to \(formatRate(to))"
    case .earlyExit(_, _, let target):
        return " -> reached the target accuracy \(formatRate(target)); stopping early"
    case .converged(_, let idle):
        return " -> \(idle) epochs without improvement; calling this converged"
    case .nanStop(let epoch):
        return " -> NaN parameters after epoch \(epoch); stopped (try a lower lr, then reset)"
    case .interrupted(let epoch, let batch, let count):
        return " -> interrupted in epoch \(epoch) after batch \(batch)/\(count)"
    case .partialEpoch(let epoch, let batch, let count):
        return " -> stopped in epoch \(epoch) after batch \(batch)/\(count), as asked"
    }
}

/// The in-place progress bar: `epoch 3 [#######-------] 234/469  loss 0.0412  12,345 img/s  ETA 2 s`.
func progressLine(_ p: BatchProgress, unit: String = "img/s") -> String {
    let width = 24
    let filled = p.batchCount == 0 ? 0 : width * p.batch / p.batchCount
    let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
    return "epoch \(p.epoch) \(bar) \(p.batch)/\(p.batchCount)  loss \(String(format: "%.4f", p.runningLoss))  "
        + "\(grouped(Int(p.imagesPerSecond))) \(unit)  ETA \(String(format: "%.0f", p.secondsRemaining)) s"
}
