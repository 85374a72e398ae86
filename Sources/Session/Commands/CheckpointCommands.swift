import Foundation
import Tensor
import NN
import Training

extension Session {
    static let checkpointCommands: [Command] = [
        Command("save", usage: "save [PATH]",
                summary: "Checkpoint the model and optimizer state (safetensors; PyTorch names and layouts).",
                example: "save checkpoints/mine.safetensors", arity: 0...1, completion: .files) { session, args, console in
            let trainer = try session.requireTrainer()
            let path = args.first ?? session.defaultCheckpointPath(trainer)
            try session.saveCheckpoint(trainer, to: path)
            console.write("saved \(path) (epoch \(trainer.epochsDone), \(trainer.stepsDone) steps)")
        },
        Command("restore", usage: "restore PATH | best",
                summary: "Load a checkpoint's weights and optimizer state into the session; `best` is this run's best model. A file of weights only (e.g. saved from PyTorch) loads the weights, and the optimizer starts fresh.",
                example: "restore best", arity: 1...1, completion: .files) { session, args, console in
            try session.restore(args[0], console)
        },
    ]

    func defaultCheckpointPath(_ trainer: Trainer) -> String {
        let run = runID.map { "run-\($0)" } ?? "session"
        return "\(checkpointDirectory)/\(run)-epoch-\(trainer.epochsDone).safetensors"
    }

    /// Weights, optimizer state, and what is needed to carry on: the model recipe, the
    /// counters of the reference policy, the settings.
    func saveCheckpoint(_ trainer: Trainer, to path: String) throws {
        var metadata = [
            "ollie.recipe": modelRecipe.joined(separator: " "),
            "ollie.dataset": trainer.dataset.name,
            "ollie.epochs_done": String(trainer.epochsDone),
            "ollie.steps_done": String(trainer.stepsDone),
            "ollie.best_accuracy": String(trainer.policy.bestAccuracy),
            "ollie.best_epoch": String(trainer.policy.bestEpoch),
            "ollie.last_improvement": String(trainer.policy.lastImprovement),
        ]
        if let runID { metadata["ollie.run"] = String(runID) }
        for s in Setting.all { metadata["ollie.setting.\(s.name)"] = s.value(in: settings) }
        do {
            try Checkpoint.save(model: trainer.model, optimizer: trainer.optimizer, metadata: metadata, to: path)
        } catch {
            throw CommandError("\(error)")
        }
    }

    func restore(_ name: String, _ console: Console) throws {
        let data = try requireDataset()
        var path = name
        if name == "best" {
            guard let run = runID, let best = bestCheckpointPath(run) else {
                throw CommandError("no best checkpoint for the current run yet; train first, or give a path: restore checkpoints/FILE.safetensors")
            }
            path = best
        }
        let (tensors, metadata): ([String: Tensor], [String: String])
        do { (tensors, metadata) = try Checkpoint.load(from: path) } catch { throw CommandError("\(error)") }
        // The saved architecture: the session's model if it matches, else a new one. Nothing in
        // the session changes until the whole checkpoint has been read into it.
        let savedRecipe = (metadata["ollie.recipe"] ?? "conv").split(separator: " ").map(String.init)
        let recipe = savedRecipe.isEmpty ? ["conv"] : savedRecipe
        let target = (model != nil && recipe == modelRecipe) ? model! : try makeModel(recipe)
        let optimizer: Optimizer?
        do {
            optimizer = try Checkpoint.loadOptimizer(tensors, metadata: metadata, for: target)
            try Checkpoint.loadWeights(tensors, into: target)   // checks every tensor before copying
        } catch {
            throw CommandError("\(error)")
        }
        if target !== model { try install(target, recipe: recipe, console) }
        guard let trainer else { throw CommandError("could not rebuild the model from \(path)") }
        // A file of weights only (from PyTorch, say) restores the weights; the optimizer starts
        // afresh with the session's settings.
        let weightsOnly = optimizer == nil
        let restored = optimizer ?? Trainer.makeOptimizer(settings)
        settings.learningRate = restored.learningRate
        settings.optimizer = OptimizerKind(rawValue: restored.kind) ?? settings.optimizer
        trainer.update(settings)   // before restore: a change of optimizer kind would start fresh state
        let policy = Policy(bestAccuracy: Double(metadata["ollie.best_accuracy"] ?? "") ?? 0,
                            bestEpoch: Int(metadata["ollie.best_epoch"] ?? "") ?? 0,
                            lastImprovement: Int(metadata["ollie.last_improvement"] ?? "") ?? 0)
        trainer.restore(optimizer: restored, epochsDone: Int(metadata["ollie.epochs_done"] ?? "") ?? 0,
                        stepsDone: Int(metadata["ollie.steps_done"] ?? "") ?? 0, policy: policy)
        let savedOn = metadata["ollie.dataset"].map { $0 == data.name ? "" : " (saved while training on \($0))" } ?? ""
        if weightsOnly {
            console.write("restored the weights in \(path); it holds no optimizer state, so \(restored.kind) starts fresh at lr \(formatRate(trainer.learningRate))")
            return
        }
        console.write("restored \(path): epoch \(trainer.epochsDone), \(trainer.stepsDone) steps, lr \(formatRate(trainer.learningRate))\(savedOn)")
    }
}
