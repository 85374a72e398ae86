import Files
import Foundation
import Tensor
import NN
import Tracking
import Training

extension Session {
    static let checkpointCommands: [Command] = [
        Command("save", usage: "save [PATH]",
                summary: "Checkpoint the model and optimizer state (safetensors; PyTorch names and layouts).",
                example: "save checkpoints/mine.safetensors", arity: 0...1, completion: .files) { session, args, console in
            let trainer = try session.requireTrainer()
            guard !session.isFollower else { return }   // under mpirun, rank 0 writes the file
            let path = args.first ?? session.defaultCheckpointPath(trainer)
            try session.saveCheckpoint(trainer, to: path)
            let inside = trainer.epochProgress.map { ", \($0.batches) batches into epoch \(trainer.epochsDone + 1)" } ?? ""
            console.write("saved \(ResolvedPath.shown(path)) (epoch \(trainer.epochsDone)\(inside), \(trainer.stepsDone) steps)")
        },
        Command("restore", usage: "restore PATH | best",
                summary: "Load a checkpoint's weights and optimizer state into the session; `best` is this run's best model (by the monitored metric: set monitor). The current run ends; the next train starts a new run forked from the checkpoint's run and epoch. A file of weights only (e.g. saved from PyTorch) loads the weights, and the optimizer starts fresh.",
                example: "restore best", arity: 1...1, completion: .files) { session, args, console in
            try session.restore(args[0], console)
        },
    ]

    func defaultCheckpointPath(_ trainer: Trainer) -> String {
        let run = runID.map { "run-\($0)" } ?? "session"
        return "\(checkpointDirectory)/\(run)-epoch-\(trainer.epochsDone).safetensors"
    }

    /// Weights, optimizer state, and what is needed to carry on: the model recipe, how the
    /// data was loaded, the counters of the reference policy, every run setting.
    func saveCheckpoint(_ trainer: Trainer, to path: String) throws {
        var metadata = [
            StateKey.spec: trainer.model.description,
            StateKey.dataset: trainer.dataset.name,
            StateKey.epochsDone: String(trainer.epochsDone),
            StateKey.stepsDone: String(trainer.stepsDone),
            StateKey.bestAccuracy: String(trainer.policy.bestAccuracy),
            StateKey.bestEpoch: String(trainer.policy.bestEpoch),
            StateKey.lastImprovement: String(trainer.policy.lastImprovement),
        ].merging(Session.metadata(of: trainer.epochProgress)) { a, _ in a }
            .merging(StateKey.metadata(policy: trainer.policy, span: trainer.scheduleSpan)) { a, _ in a }
        func json<T: Encodable>(_ value: T) -> String? { (try? JSONEncoder().encode(value)).map { String(decoding: $0, as: UTF8.self) } }
        metadata.merge(InputRecipe(loadWords: datasetSource, classNames: trainer.dataset.classNames,
                                   sampleShape: trainer.model.inputShape).metadata) { a, _ in a }
        if let runID { metadata[StateKey.run] = String(runID) }
        if let databaseIdentity { metadata[StateKey.database] = databaseIdentity }
        metadata[StateKey.dataFingerprint] = fingerprint(of: trainer.dataset)
        for s in Setting.recorded { metadata[StateKey.setting(s.name)] = s.value(in: settings) }
        do {
            try Checkpoint.save(model: trainer.model, optimizer: trainer.optimizer, metadata: metadata, to: path)
        } catch {
            throw CommandError("\(error)")
        }
    }

    /// Loads a checkpoint into the session. The current run ends: its recorded epochs stay as
    /// they are, and the next `train` starts a new run whose lineage is the checkpoint's run
    /// and epoch (to continue that run itself, `resume` it). With no data loaded, a file that
    /// records its input recipe gives a model to predict with; training waits for `load`.
    func restore(_ name: String, _ console: Console) throws {
        var path = name
        if name == "best" {
            // The current run's best; between runs, that of the run the model came from.
            let run = runID ?? pendingLineage?.run ?? (try? store?.sessionRunIDs().last) ?? nil
            guard let run, let best = bestCheckpointPath(run) else {
                throw CommandError("no best checkpoint for the current run yet; train first, or give a path: restore checkpoints/FILE.safetensors")
            }
            path = best
        }
        let candidate = try readState(path, loadData: false, allSettings: false)
        let endedRun = runID
        let previousModel = modelText
        let origin = lineage(of: candidate)
        adopt(candidate)
        pendingLineage = origin.parent
        let savedOn = candidate.savedDatasetName.map { $0 == dataset?.name ? "" : " (saved while training on \($0))" } ?? ""
        if candidate.optimizer == nil {
            console.write("restored the weights in \(path); it holds no optimizer state, so \(settings.optimizer.rawValue) starts fresh at lr \(formatRate(settings.learningRate))")
        } else {
            let inside = candidate.epochProgress.map { ", \($0.batches) batches into epoch \(candidate.epochsDone + 1)" } ?? ""
            console.write("restored \(ResolvedPath.shown(path)): epoch \(candidate.epochsDone)\(inside), \(candidate.stepsDone) steps, lr \(formatRate(settings.learningRate))\(savedOn)")
        }
        if let note = origin.note { console.write(note) }
        // Other data under the same name: the name alone would not show it.
        if let data = candidate.dataset, let then = candidate.saved.dataFingerprint, candidate.savedDatasetName == data.name,
           case let now = fingerprint(of: data), then != now {
            console.write("note: \(data.name) here is not the data \(path) was trained on (fingerprint \(then) then, \(now) now)")
        }
        if dataset == nil {
            console.write("no data loaded: the model can classify files (predict FILE, predict DIR); to train, load its data first: load \(candidate.datasetSource.joined(separator: " "))"
                + (candidate.optimizer == nil ? "" : ", then restore again to carry on from its optimizer state"))
        }
        if candidate.model.description != previousModel {
            console.write("rebuilt the checkpoint's model: \(candidate.model.description)")
        }
        if let endedRun { console.write("run \(endedRun) ended; the next train starts a new run" + (pendingLineage.map { " forked from \($0.run)@\($0.epoch)" } ?? "")) }
    }
}
