import Datasets
import Foundation
import NN
import Tensor
import Training

/// Every recorded epoch's full state (weights, optimizer moments and step, the policy's
/// counters, every setting, how the data was loaded) in `checkpoints/run-N/epoch-E.safetensors`,
/// written before the epoch's database record, so that `resume` and `fork` can start from any
/// recorded epoch in any process. The noise and shuffling streams are functions of the seed and
/// the step and epoch counters, so those counters are the generator's whole state. `keep`
/// bounds how many stay on disk.
extension Session {
    func epochStateDirectory(run: Int64) -> String { "\(checkpointDirectory)/run-\(run)" }

    func epochStatePath(run: Int64, epoch: Int) -> String { "\(epochStateDirectory(run: run))/epoch-\(epoch).safetensors" }

    /// Epochs of `run` whose state is on disk, ascending.
    func keptEpochs(run: Int64) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: epochStateDirectory(run: run))) ?? []
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("epoch-"), name.hasSuffix(".safetensors") else { return nil }
            return Int(name.dropFirst(6).dropLast(12))
        }.sorted()
    }

    /// Writes the state after `epoch`, then drops what `keep` no longer wants.
    func saveEpochState(_ trainer: Trainer, run: Int64, epoch: Int) throws {
        try saveCheckpoint(trainer, to: epochStatePath(run: run, epoch: epoch))
        dropEpochStates(run: run, last: epoch, best: trainer.policy.bestEpoch)
    }

    /// Deletes the states `keep` no longer wants once `last` is written and `best` is the best.
    func dropEpochStates(run: Int64, last: Int, best: Int) {
        for old in settings.keep.epochsToDrop(keptEpochs(run: run), last: last, best: best) {
            try? FileManager.default.removeItem(atPath: epochStatePath(run: run, epoch: old))
        }
    }

    /// The checkpoint metadata keys; one place, read back by `SessionState`.
    enum StateKey {
        /// The spec's text; files of the first versions have "ollie.recipe" ("conv", "mlp 128") instead.
        static let spec = "ollie.spec", legacyRecipe = "ollie.recipe", dataset = "ollie.dataset", load = "ollie.load"
        static let epochsDone = "ollie.epochs_done", stepsDone = "ollie.steps_done", run = "ollie.run"
        static let bestAccuracy = "ollie.best_accuracy", bestEpoch = "ollie.best_epoch"
        static let lastImprovement = "ollie.last_improvement"
        /// The saving database's `database_identity.uuid`: run ids mean something only there.
        static let database = "ollie.database"
        /// `Dataset.fingerprint` of the data trained on, so `resume` can tell when it changed.
        static let dataFingerprint = "ollie.data_fingerprint"
        /// The class names in label order (JSON) and the model's input shape (JSON, C,H,W or
        /// C,T,H,W): with `load`, the input recipe that lets `restore` then `predict FILE` work
        /// with no data loaded.
        static let classNames = "ollie.class_names", inputShape = "ollie.input_shape"
        /// An unfinished epoch's position (absent between epochs): see `EpochProgress`.
        static let epochBatchesDone = "ollie.epoch_batches_done", epochImagesDone = "ollie.epoch_images_done"
        static let epochLossSum = "ollie.epoch_loss_sum", epochCorrect = "ollie.epoch_correct"
        static func setting(_ name: String) -> String { "ollie.setting.\(name)" }
    }

    /// A saved state read and checked; nothing in the session changes until `adopt`.
    struct Candidate {
        var path: String
        var tensors: [String: Tensor]
        /// What the session will work on: a trainer over the model and its data, or (restored
        /// with no data loaded) the model alone with the file's record of its inputs, enough to
        /// predict, not to train.
        var workbench: Workbench
        var dataset: Dataset? { trainer?.dataset }
        var model: Model {
            switch workbench {
            case .training(let trainer): trainer.model
            case .model(let model, _): model
            case .empty, .data: preconditionFailure("a saved state always has a model")
            }
        }
        var trainer: Trainer? {
            if case .training(let trainer) = workbench { trainer } else { nil }
        }
        var datasetSource: [String]
        var settings: Hyperparameters
        /// Nil for a file of weights only (from PyTorch, say): a fresh optimizer then.
        var optimizer: Optimizer?
        /// Its counters, origin and data fingerprint, checked.
        var saved: SavedCounters
        var epochsDone: Int { saved.epochsDone }
        var stepsDone: Int { saved.stepsDone }
        var policy: Policy { saved.policy }
        /// Where the unfinished epoch stopped, when the state was saved inside one.
        var epochProgress: EpochProgress?
        /// The run the state was saved from (nil for a file from elsewhere).
        var savedRun: Int64? { saved.run }
        /// The name of the data it was trained on, when the file says.
        var savedDatasetName: String?
    }

    /// Reads a checkpoint into a candidate session state. `loadData`: load the dataset the
    /// state was saved with (`resume`, `fork`); otherwise the session's data is used (`restore`),
    /// or, with none loaded, the file's input recipe (a model to predict with, no trainer).
    /// `allSettings`: take every recorded setting from the file (so training retraces the run),
    /// else only the optimizer's kind and learning rate.
    func readState(_ path: String, loadData: Bool, allSettings: Bool) throws -> Candidate {
        let (stored, metadata): ([String: Tensor], [String: String])
        do { (stored, metadata) = try Checkpoint.load(from: path) } catch { throw CommandError("\(error)") }
        let saved = try SavedCounters(metadata, path: path)
        var source = datasetSource
        var data = dataset
        var sameData = true
        // The data it was trained on: the session's when it is the same (or, for a file that
        // does not say how its data was loaded, has the same name), else loaded afresh.
        let sameName = dataset != nil && metadata[StateKey.load] == nil && metadata[StateKey.dataset] == dataset?.name
        if loadData && !sameName {
            source = try savedSource(metadata, path: path)
            if source != datasetSource || dataset == nil {
                data = try loadDataset(source)
                sameData = false
            }
        }
        let input: InputRecipe
        if let data {
            input = InputRecipe(loadWords: source, classNames: data.classNames, sampleShape: data.sampleShape)
        } else if let saved = savedInput(metadata) {
            input = saved
            source = saved.loadWords
        } else {
            throw CommandError("no dataset loaded, and \(path) does not say what its inputs are (saved by an older ollie); load its data first, then: restore \(path)")
        }
        let architecture = metadata[StateKey.spec] ?? metadata[StateKey.legacyRecipe] ?? "conv"
        var restored = settings
        if allSettings {
            for setting in Setting.recorded {
                guard let text = metadata[StateKey.setting(setting.name)] ?? setting.unrecordedValue else { continue }
                do { try setting.write(&restored, text) } catch {
                    throw CommandError("\(path) records \(setting.name) = '\(text)', which this ollie cannot use: \(error)")
                }
            }
        } else {
            // What is frozen and the per-module rates go with the weights: `restore` takes them too.
            for setting in Setting.all where Session.moduleSettings.contains(setting.name) {
                guard let text = metadata[StateKey.setting(setting.name)] else { continue }
                do { try setting.write(&restored, text) } catch {
                    throw CommandError("\(path) records \(setting.name) = '\(text)', which this ollie cannot use: \(error)")
                }
            }
        }
        // Same recipe and data: the session's model object is reused (its weights change only in `adopt`).
        let savedSpec = try Session.spec([architecture], classes: input.classNames.count)
        let model = try (self.model != nil && savedSpec.text == modelText && sameData && data != nil)
            ? self.model! : makeModel([savedSpec.text], inputShape: input.sampleShape, classes: input.classNames.count, seed: restored.seed)
        // Module numbers of another model mean nothing here.
        if model !== self.model && metadata[StateKey.setting("frozen")] == nil {
            restored.frozenModules = []
            restored.learningRateMultipliers = [:]
        }
        try Session.checkModuleSettings(restored, model: model, path: path)
        let tensors = Checkpoint.renamingLegacyNames(stored, for: model)
        let optimizer: Optimizer?
        do {
            optimizer = try Checkpoint.loadOptimizer(tensors, metadata: metadata, for: model)
            try Checkpoint.checkWeights(tensors, model)
        } catch {
            throw CommandError("\(error)")
        }
        if let optimizer, let kind = OptimizerKind(rawValue: optimizer.kind) {
            restored.optimizer = kind
            restored.learningRate = optimizer.learningRate
        }
        let progress = try savedEpochProgress(metadata, path: path)
        return Candidate(
            path: path, tensors: tensors,
            workbench: try data.map { .training(try Trainer(model: model, dataset: $0, live: live, group: trainerGroup)) } ?? .model(model, input: input),
            datasetSource: source, settings: restored, optimizer: optimizer,
            saved: saved, epochProgress: progress, savedDatasetName: metadata[StateKey.dataset])
    }

    /// Makes a checked candidate the session's state: data, model and weights, settings, and a
    /// trainer holding the saved optimizer and counters. The current run ends, unless it is
    /// the one `continuing` (`resume`, whose lease the caller has claimed).
    func adopt(_ candidate: Candidate, continuing: Int64? = nil) {
        if let runID, runID != continuing { releaseLease(runID) }
        Checkpoint.copyWeights(candidate.tensors, candidate.model)
        workbench = candidate.workbench
        datasetSource = candidate.datasetSource
        settings = candidate.settings
        candidate.trainer?.restore(optimizer: candidate.optimizer ?? Trainer.makeOptimizer(candidate.settings),
                                  epochsDone: candidate.epochsDone, stepsDone: candidate.stepsDone, policy: candidate.policy,
                                  epochProgress: candidate.epochProgress, scheduleSpan: candidate.saved.scheduleSpan)
        runID = continuing
        pendingLineage = nil
    }

    /// What a file says its inputs are: its `load` words, class names and input shape; nil for
    /// a file that does not say all three (older versions, weights from elsewhere).
    func savedInput(_ metadata: [String: String]) -> InputRecipe? {
        func decoded<T: Decodable>(_ key: String, as type: T.Type) -> T? {
            metadata[key].flatMap { try? JSONDecoder().decode(T.self, from: Data($0.utf8)) }
        }
        guard let words = decoded(StateKey.load, as: [String].self), !words.isEmpty,
              let names = decoded(StateKey.classNames, as: [String].self), !names.isEmpty,
              let shape = decoded(StateKey.inputShape, as: [Int].self), (3...4).contains(shape.count), shape.allSatisfy({ $0 > 0 })
        else { return nil }
        return InputRecipe(loadWords: words, classNames: names, sampleShape: shape)
    }

    /// The metadata of an unfinished epoch's position (none between epochs).
    static func metadata(of progress: EpochProgress?) -> [String: String] {
        guard let progress else { return [:] }
        // A Double's description reads back to the same bits.
        return [StateKey.epochBatchesDone: String(progress.batches), StateKey.epochImagesDone: String(progress.images),
                StateKey.epochLossSum: String(progress.lossSum), StateKey.epochCorrect: String(progress.correct)]
    }

    /// The unfinished epoch a state was saved in: nil when the file has none of its keys, an
    /// error when it has some but not all, or values that are not numbers.
    func savedEpochProgress(_ metadata: [String: String], path: String) throws -> EpochProgress? {
        let keys = [StateKey.epochBatchesDone, StateKey.epochImagesDone, StateKey.epochLossSum]
        guard keys.contains(where: { metadata[$0] != nil }) else { return nil }
        guard let batches = metadata[StateKey.epochBatchesDone].flatMap({ Int($0) }),
              let images = metadata[StateKey.epochImagesDone].flatMap({ Int($0) }),
              let lossSum = metadata[StateKey.epochLossSum].flatMap({ Double($0) }), batches > 0, images > 0 else {
            throw CommandError("\(path) has an unreadable unfinished-epoch position (\(keys.map { "\($0) = \(metadata[$0] ?? "missing")" }.joined(separator: ", ")))")
        }
        // The right-answer count came later: a file without it counts from 0.
        let correct = metadata[StateKey.epochCorrect].flatMap { Int($0) } ?? 0
        guard (0...images).contains(correct) else {
            throw CommandError("\(path) has an unreadable unfinished-epoch position (\(StateKey.epochCorrect) = \(metadata[StateKey.epochCorrect] ?? "")")
        }
        return EpochProgress(batches: batches, images: images, lossSum: lossSum, correct: correct)
    }

    /// The `load` words a state was saved with; older files name only the dataset.
    func savedSource(_ metadata: [String: String], path: String) throws -> [String] {
        if let json = metadata[StateKey.load], let words = try? JSONDecoder().decode([String].self, from: Data(json.utf8)), !words.isEmpty {
            return words
        }
        if let name = metadata[StateKey.dataset], DatasetCatalog.names.contains(name) { return [name] }
        throw CommandError("\(path) does not say how its data was loaded; load the data, then: restore \(path)")
    }
}
