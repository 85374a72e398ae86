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
                summary: "Load a checkpoint's weights and optimizer state into the session; `best` is this run's best model. The current run ends; the next train starts a new run forked from the checkpoint's run and epoch. A file of weights only (e.g. saved from PyTorch) loads the weights, and the optimizer starts fresh.",
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
        if let json = try? JSONEncoder().encode(datasetSource), !datasetSource.isEmpty {
            metadata[StateKey.load] = String(decoding: json, as: UTF8.self)
        }
        if let runID { metadata[StateKey.run] = String(runID) }
        for s in Setting.recorded { metadata[StateKey.setting(s.name)] = s.value(in: settings) }
        do {
            try Checkpoint.save(model: trainer.model, optimizer: trainer.optimizer, metadata: metadata, to: path)
        } catch {
            throw CommandError("\(error)")
        }
    }

    /// Loads a checkpoint into the session. The current run ends: its recorded epochs stay as
    /// they are, and the next `train` starts a new run whose lineage is the checkpoint's run
    /// and epoch (to continue that run itself, `resume` it).
    func restore(_ name: String, _ console: Console) throws {
        let data = try requireDataset()
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
        adopt(candidate)
        if let saved = candidate.savedRun, candidate.epochsDone > 0 { pendingLineage = (saved, candidate.epochsDone) }
        let savedOn = candidate.savedDatasetName.map { $0 == data.name ? "" : " (saved while training on \($0))" } ?? ""
        if candidate.optimizer == nil {
            console.write("restored the weights in \(path); it holds no optimizer state, so \(settings.optimizer.rawValue) starts fresh at lr \(formatRate(settings.learningRate))")
        } else {
            let inside = candidate.epochProgress.map { ", \($0.batches) batches into epoch \(candidate.epochsDone + 1)" } ?? ""
            console.write("restored \(ResolvedPath.shown(path)): epoch \(candidate.epochsDone)\(inside), \(candidate.stepsDone) steps, lr \(formatRate(settings.learningRate))\(savedOn)")
        }
        if candidate.model.description != previousModel {
            console.write("rebuilt the checkpoint's model: \(candidate.model.description)")
        }
        if let endedRun { console.write("run \(endedRun) ended; the next train starts a new run" + (pendingLineage.map { " forked from \($0.run)@\($0.epoch)" } ?? "")) }
    }
}
