import Dispatch
import Foundation
import Datasets
import NN
import Tensor

/// Trains a model on a dataset with the reference policy, one `train(epochs:)` call at a time,
/// keeping everything (weights, optimizer moments, policy counters) between calls.
///
/// Data parallel: each minibatch is cut into one contiguous slice per worker; every worker runs
/// forward and backward on its own model replica (shared weights, own gradients and buffers)
/// with single-threaded BLAS, then the gradients are summed in worker order (deterministic for
/// a given thread count) and one optimizer step updates the shared weights.
public final class Trainer: @unchecked Sendable {
    public let model: Model
    public let dataset: Dataset
    /// An objective given at init (tests), in place of the one the settings call for.
    private let givenObjective: (any Objective)?
    /// The training criterion of the steps being run: `objective` as it was when the current
    /// pass began (each `train` call and each epoch read the settings afresh).
    private var criterion: any Objective = SoftmaxCrossEntropy()
    /// The session's settings, shared (not copied): see LiveSettings.
    public let live: LiveSettings
    public var settings: Hyperparameters { live.values }
    public private(set) var policy = Policy()
    /// Completed epochs (an interrupted epoch does not count).
    public private(set) var epochsDone = 0
    /// Optimizer steps taken; also the noise stream's position.
    public private(set) var stepsDone = 0
    /// Where the unfinished epoch stopped (nil between epochs): the next `train` continues it.
    public private(set) var epochProgress: EpochProgress?
    /// The steps a cosine or one-cycle schedule anneals over (nil: none started); saved with
    /// the state so a resumed or continued run takes the same rates.
    public private(set) var scheduleSpan: ScheduleSpan?
    /// The step at which the current `train` call will have done what it was asked (while one
    /// runs): a span that ends before it is followed by a new one for the rest of the call.
    private var callEndStep: Int?
    /// The rate of the last optimizer step.
    public private(set) var lastStepRate: Float?
    /// The last measured step's per-layer numbers (`stats`): the last batch of every epoch and
    /// of every `train` call are measured (a Ctrl-C'd call's last batch is not).
    public private(set) var lastStatistics: StepStatistics?
    /// The model's layers unfused, sharing its weights: measured steps run their batch through
    /// it to see every layer's output (made at the first measured step).
    private var probeModel: Model?
    /// The outputs of the frozen prefix for every sample, while they hold (FeatureCache.swift).
    private var featureCache: FeatureCache?
    /// The cache last found too large to keep, said once.
    private var tooLargeCache: FeatureCache.Key?
    /// Off: never cache (tests compare training with and without the cache).
    var cachesFeatures = true

    /// The training and validation splits for the current `val` and seed (see `splits`).
    private var heldOut: (fraction: Float, seed: UInt64, train: Split, validation: Split)?
    private var currentOptimizer: Optimizer
    private var workers: [Worker] = []
    private var noise: NoiseTable
    /// The other processes training this model (under mpirun), or nil; see Distributed/.
    public let group: ProcessGroup?
    private let exchange: GradientExchange?

    /// The MPI world of this process, set once at start-up before any trainer exists; every
    /// trainer made afterwards trains across it.
    nonisolated(unsafe) public static var processGroup: ProcessGroup?

    /// `group`: the processes it trains with; nil trains in this process alone (a sweep's run
    /// under mpirun, which one rank trains whole).
    public init(model: Model, dataset: Dataset, live: LiveSettings,
                objective: (any Objective)? = nil, group: ProcessGroup? = Trainer.processGroup) throws {
        try BLAS.load()
        self.model = model
        self.dataset = dataset
        self.givenObjective = objective
        if let objective { criterion = objective }   // evaluation before any training reads it too
        self.live = live
        self.currentOptimizer = Trainer.makeOptimizer(live.values)
        self.noise = NoiseTable(seed: live.values.seed)
        self.group = group
        exchange = group.map(GradientExchange.init)
        try checkShapes()
    }

    /// A trainer with settings of its own (benchmarks, tests).
    public convenience init(model: Model, dataset: Dataset, settings: Hyperparameters,
                            objective: (any Objective)? = nil) throws {
        try self.init(model: model, dataset: dataset, live: LiveSettings(settings), objective: objective)
    }

    private func checkShapes() throws {
        let sample = dataset.sampleShape
        guard model.inputShape == sample else {
            throw TrainingError("the model takes \(shapeText(model.inputShape)) inputs but \(dataset.name) has \(shapeText(sample)) \(dataset.frames > 1 ? "clips" : "images"); build the model again after `load`")
        }
    }

    /// A fresh optimizer of the settings' kind, learning rate and weight decay.
    public static func makeOptimizer(_ h: Hyperparameters) -> Optimizer {
        h.optimizer.make(learningRate: h.learningRate, weightDecay: h.weightDecay)
    }

    /// The optimizer the settings call for: a change of kind (`set optimizer sgd`) starts fresh
    /// state; its learning rate and weight decay are always the settings' (never stored apart
    /// from them).
    public var optimizer: Optimizer {
        if currentOptimizer.kind != settings.optimizer.rawValue {
            currentOptimizer = Trainer.makeOptimizer(settings)
        }
        currentOptimizer.learningRate = settings.learningRate
        currentOptimizer.weightDecay = settings.weightDecay
        return currentOptimizer
    }

    /// What training minimizes and how outputs are read as classes: softmax cross-entropy with
    /// the settings' label smoothing and class weights (balanced ones counted on the training
    /// split), unless one was given at init. Throws when the class weights do not fit the data.
    public func makeObjective() throws -> any Objective {
        if let givenObjective { return givenObjective }
        let weights = try settings.classWeights.resolve(classes: dataset.classCount, labels: trainingSplit.labels)
        return SoftmaxCrossEntropy(smoothing: settings.labelSmoothing, classWeights: weights)
    }

    /// The objective in force now; a setting that does not fit the data (checked by `train`
    /// first, through makeObjective) leaves the loss unweighted.
    public var objective: any Objective {
        (try? makeObjective()) ?? SoftmaxCrossEntropy(smoothing: settings.labelSmoothing)
    }

    /// Makes the settings' objective the one the workers train with.
    private func takeObjective() {
        criterion = objective
        for worker in workers { worker.objective = criterion }
    }

    /// Restores the optimizer and counters from a checkpoint (the weights are already loaded);
    /// the optimizer's kind and learning rate become the settings'.
    public func restore(optimizer: Optimizer, epochsDone: Int, stepsDone: Int, policy: Policy,
                        epochProgress: EpochProgress? = nil, scheduleSpan: ScheduleSpan? = nil) {
        if let kind = OptimizerKind(rawValue: optimizer.kind) { live.values.optimizer = kind }
        live.values.learningRate = optimizer.learningRate
        live.values.weightDecay = optimizer.weightDecay
        currentOptimizer = optimizer
        self.epochsDone = epochsDone
        self.stepsDone = stepsDone
        self.policy = policy
        self.epochProgress = epochProgress
        self.scheduleSpan = scheduleSpan
    }

    /// The learning rate step `step` takes under the settings' schedule (Schedule.swift), from
    /// the `lr` setting. Past the end of a span, inside a `train` call that goes on, a new span
    /// covers the rest of the call.
    public func scheduledRate(step: Int) -> Float {
        let h = settings
        if h.schedule.spansCall, let span = scheduleSpan, step >= span.endStep, let end = callEndStep, end > step {
            scheduleSpan = ScheduleSpan(firstStep: step, steps: end - step, schedule: h.schedule.text)
        }
        return Schedule.rate(step: step, epoch: epochsDone + 1, base: h.learningRate, schedule: h.schedule,
                             warmupSteps: h.warmupSteps, span: h.schedule.spansCall ? scheduleSpan : nil)
    }

    /// Starts a span for a `train` call of `steps` steps when the schedule spans calls and none is
    /// under way for it (none yet, the last one finished, or `set schedule` changed).
    private func beginCall(steps: Int) {
        callEndStep = stepsDone + steps
        let h = settings
        guard h.schedule.spansCall else { return }
        if let span = scheduleSpan, span.schedule == h.schedule.text, stepsDone < span.endStep { return }
        scheduleSpan = ScheduleSpan(firstStep: stepsDone, steps: max(1, steps), schedule: h.schedule.text)
    }

    public var learningRate: Float { settings.learningRate }

    // MARK: - Training

    /// Trains up to `epochs` more epochs under the reference policy. `shouldStop` is polled
    /// after every batch (Ctrl-C); `onEvent` receives every event as it happens, on this thread.
    @discardableResult
    public func train(epochs: Int, shouldStop: () -> Bool = { false },
                      onEvent: (TrainingEvent) -> Void) -> StopReason {
        train(.epochs(epochs), shouldStop: shouldStop, onEvent: onEvent)
    }

    /// How much `train` does: whole epochs (an unfinished one is finished first and counts as
    /// one), or a number of batches (epochs as they complete, then the first batches of the next
    /// one, which stays unfinished, as after a Ctrl-C: that is how a transcript replays an
    /// interrupted `train`).
    public enum Amount: Equatable, Sendable {
        case epochs(Int)
        case batches(Int)
    }

    /// Batches in one epoch at the current batch size.
    public var batchesPerEpoch: Int {
        let batchSize = max(1, settings.batchSize)
        return (trainingSplit.count + batchSize - 1) / batchSize
    }

    /// What training steps over: the training set, less the validation split when `val` > 0.
    public var trainingSplit: Split { splits().train }
    /// The held-out validation split (nil when `val` is 0).
    public var validationSplit: Split? { splits().validation }

    /// A stratified, seeded hold-out: from each class, ⌊count·val⌉ of its images, chosen by a
    /// generator seeded with the run's seed; the rest keep the dataset's order.
    private func splits() -> (train: Split, validation: Split?) {
        let fraction = settings.validationFraction
        guard fraction > 0 else { return (dataset.train, nil) }
        if let heldOut, heldOut.fraction == fraction, heldOut.seed == settings.seed { return (heldOut.train, heldOut.validation) }
        let split = dataset.train
        var byClass: [Int32: [Int]] = [:]
        for (i, label) in split.labels.enumerated() { byClass[label, default: []].append(i) }
        var random = Random(seed: settings.seed, stream: 0x76_616C)   // "val"
        var validation = Set<Int>()
        for label in byClass.keys.sorted() {
            let members = byClass[label]!
            let order = random.permutation(members.count)
            let take = min(members.count - 1, Int((Float(members.count) * fraction).rounded()))
            for k in order.prefix(max(0, take)) { validation.insert(members[k]) }
        }
        func subset(_ indices: [Int]) -> Split {
            let features = dataset.valuesPerSample
            var images = [Float](); images.reserveCapacity(indices.count * features)
            split.images.withUnsafeBufferPointer { all in
                for i in indices { images.append(contentsOf: all[(i * features)..<((i + 1) * features)]) }
            }
            return Split(images: images, labels: indices.map { split.labels[$0] })
        }
        let train = subset((0..<split.count).filter { !validation.contains($0) })
        let held = subset(validation.sorted())
        heldOut = (fraction, settings.seed, train, held)
        return (train, held)
    }

    @discardableResult
    public func train(_ amount: Amount, shouldStop: () -> Bool = { false },
                      onEvent: (TrainingEvent) -> Void) -> StopReason {
        var epochsLeft = Int.max, batchesLeft = Int.max
        switch amount {
        case .epochs(let n):
            epochsLeft = n
            // The unfinished epoch's rest, then whole epochs.
            beginCall(steps: batchesPerEpoch - (epochProgress?.batches ?? 0) + (n - 1) * batchesPerEpoch)
        case .batches(let n):
            batchesLeft = n
            beginCall(steps: n)
        }
        defer { callEndStep = nil }
        // The frozen prefix's outputs, computed now if they are not yet (the session asks first, to say so).
        updateFeatureCache()
        let cache = featureCache
        while epochsLeft > 0 && batchesLeft > 0 {
            let epoch = epochsDone + 1
            let started = DispatchTime.now()
            // An epoch finished across several calls (train N batches, step): its earlier calls' time.
            let earlierSeconds = epochProgress?.seconds ?? 0
            let outcome = trainOneEpoch(epoch: epoch, batchLimit: batchesLeft, cache: cache, shouldStop: shouldStop, onEvent: onEvent)
            guard case .finished(let trainLoss, let trainAccuracy, let batchesRun, let imagesRun) = outcome else {
                return outcome == .interrupted ? .interrupted : .partialEpoch
            }
            epochsLeft -= 1
            batchesLeft -= batchesRun
            let trainSeconds = earlierSeconds + seconds(since: started)
            epochsDone = epoch
            if model.parameters.contains(where: { $0.value.data.contains(where: { !$0.isFinite }) }) {
                onEvent(.nanStop(epoch: epoch))
                return .nanStop
            }
            let scoringStarted = DispatchTime.now()
            let validation = validationSplit
            let test = agreedScore(evaluate(validation ?? dataset.test, cache: cache))
            // With a moving schedule, the rate of the epoch's last step; else the `lr` in force.
            let rate = settings.schedule.movesPerStep(warmupSteps: settings.warmupSteps) ? lastStepRate ?? settings.learningRate : settings.learningRate
            let metrics = EpochMetrics(
                epoch: epoch, trainLoss: trainLoss, trainAccuracy: trainAccuracy, scored: validation == nil ? .test : .validation,
                accuracy: test.accuracy, scoredLoss: test.loss, learningRate: rate,
                epochSeconds: trainSeconds, scoringSeconds: seconds(since: scoringStarted),
                imagesPerSecond: Double(earlierSeconds > 0 ? trainingSplit.count : imagesRun) / trainSeconds,
                topK: test.topKAccuracy == nil ? nil : settings.topK, topKAccuracy: test.topKAccuracy,
                scoredPredictions: test.predictions)
            onEvent(.epochFinished(metrics))
            var stop: StopReason?
            // A metric this epoch does not have (checked before training) falls back to the default.
            let monitored = settings.monitor.value(in: metrics).map { (settings.monitor, $0) } ?? (.scoredAccuracy, test.accuracy)
            let base = settings.learningRate
            for decision in policy.decide(epoch: epoch, value: monitored.1, accuracy: test.accuracy, monitor: monitored.0,
                                          learningRate: base, settings: settings) {
                switch decision {
                case .newBest:
                    onEvent(.newBest(epoch: epoch, accuracy: test.accuracy))
                case .dropLearningRate(let newRate):
                    live.values.learningRate = newRate   // the one copy: the next step, `show` and the record all see it
                    onEvent(.learningRateDropped(epoch: epoch, from: base, to: newRate))
                case .earlyExit:
                    onEvent(.earlyExit(epoch: epoch, accuracy: monitored.1, target: settings.target))
                    stop = .earlyExit
                case .converged(let idle):
                    onEvent(.converged(epoch: epoch, epochsWithoutImprovement: idle))
                    stop = .converged
                }
            }
            onEvent(.epochClosed(epoch: epoch))
            if let stop { return stop }
        }
        return .finishedEpochs
    }

    private enum EpochOutcome: Equatable {
        /// The epoch is complete; this call ran its last `batchesRun` batches (`imagesRun` images).
        case finished(meanLoss: Double, accuracy: Double, batchesRun: Int, imagesRun: Int)
        case interrupted
        case stoppedEarly
    }

    /// The rest of the current epoch (all of it, unless an earlier call stopped inside it), or
    /// its next `batchLimit` batches.
    private func trainOneEpoch(epoch: Int, batchLimit: Int, cache: FeatureCache?, shouldStop: () -> Bool,
                               onEvent: (TrainingEvent) -> Void) -> EpochOutcome {
        let split = trainingSplit
        let batchSize = max(1, settings.batchSize)
        let batchCount = batchesPerEpoch
        if noise.seed != settings.seed { noise = NoiseTable(seed: settings.seed) }
        let order: [Int]? = settings.shuffle
            ? { var r = Random(seed: settings.seed, stream: UInt64(epoch)); return r.permutation(split.count) }()
            : nil
        prepareWorkers()
        takeObjective()
        let started = DispatchTime.now()
        var progress = epochProgress ?? EpochProgress(batches: 0, images: 0, lossSum: 0)
        let imagesBefore = progress.images, batchesBefore = progress.batches
        while progress.images < split.count {
            let count = min(batchSize, split.count - progress.images)
            let isLast = progress.images + count >= split.count || progress.batches - batchesBefore + 1 == batchLimit
            let done = step(first: progress.images, count: count, order: order, cache: cache,
                            measuredAs: isLast ? (epoch, progress.batches + 1) : nil)
            let loss = done.loss
            progress.batches += 1
            progress.images += count
            progress.lossSum += loss
            progress.correct += done.correct
            epochProgress = progress
            let elapsed = seconds(since: started)
            let imagesRun = progress.images - imagesBefore
            onEvent(.batchFinished(BatchProgress(
                epoch: epoch, batch: progress.batches, batchCount: max(batchCount, progress.batches),
                step: stepsDone, learningRate: lastStepRate ?? settings.learningRate,
                loss: loss, runningLoss: progress.lossSum / Double(progress.batches),
                imagesPerSecond: Double(imagesRun) / max(elapsed, 1e-9),
                secondsRemaining: elapsed / Double(imagesRun) * Double(split.count - progress.images))))
            guard progress.images < split.count else { break }
            if shouldStop() {
                epochProgress?.seconds += elapsed
                onEvent(.interrupted(epoch: epoch, batch: progress.batches, batchCount: batchCount))
                return .interrupted
            }
            if progress.batches - batchesBefore == batchLimit {
                epochProgress?.seconds += elapsed
                onEvent(.partialEpoch(epoch: epoch, batch: progress.batches, batchCount: batchCount))
                return .stoppedEarly
            }
        }
        epochProgress = nil
        return .finished(meanLoss: progress.lossSum / Double(max(progress.batches, 1)),
                         accuracy: Double(progress.correct) / Double(max(split.count, 1)),
                         batchesRun: progress.batches - batchesBefore, imagesRun: progress.images - imagesBefore)
    }

    /// A learning-rate range test's steps: the next epochs' batches in training order, one step
    /// each at `rates[i]`, returning each minibatch's loss; small data is passed over more than
    /// once (each pass shuffled as its epoch would be), so the test has as many steps as rates.
    /// Stops early once `diverged` says so (or on Ctrl-C). Meant for a copy of the model: it
    /// trains the weights it is given.
    public func lossesAtRates(_ rates: [Float], shouldStop: () -> Bool = { false },
                              diverged: (Double) -> Bool) -> [Double] {
        let batchSize = max(1, settings.batchSize)
        let split = trainingSplit
        if noise.seed != settings.seed { noise = NoiseTable(seed: settings.seed) }
        func order(pass: Int) -> [Int]? {
            guard settings.shuffle else { return nil }
            var r = Random(seed: settings.seed, stream: UInt64(epochsDone + 1 + pass))
            return r.permutation(split.count)
        }
        prepareWorkers()
        takeObjective()
        var losses: [Double] = []
        let batches = max(1, batchesPerEpoch)
        var passOrder = order(pass: 0)
        for (index, rate) in rates.enumerated() {
            let (pass, batch) = index.quotientAndRemainder(dividingBy: batches)
            if batch == 0 && pass > 0 { passOrder = order(pass: pass) }
            live.values.learningRate = rate
            let first = batch * batchSize
            let loss = step(first: first, count: min(batchSize, split.count - first), order: passOrder, rate: rate).loss
            losses.append(loss)
            if diverged(loss) || shouldStop() { break }
        }
        return losses
    }

    /// One optimizer step on images [first, first+count) (through `order` when shuffling);
    /// returns the minibatch's mean loss and how many of its images the model got right.
    /// `cache`: start from the frozen prefix's cached outputs. `measuredAs` (epoch, batch):
    /// measure the step for `stats` (StatisticsProbe). `rate`: this rate, not the schedule's.
    private func step(first: Int, count: Int, order: [Int]?, cache: FeatureCache? = nil,
                      measuredAs: (epoch: Int, batch: Int)? = nil, rate: Float? = nil) -> (loss: Double, correct: Int) {
        let layout = ShardLayout(group: group, threads: workers.count)
        let shards = shardBounds(count: count, parts: layout.globalWorkers)
        let values = dataset.valuesPerSample
        let sigma = settings.noise
        let stepIndex = stepsDone
        let workers = self.workers
        let noise = self.noise
        let split = trainingSplit
        let seed = settings.seed
        let features = cache?.features(for: split)
        let fromLayer = features == nil ? 0 : cache!.key.layers
        let measured = measuredAs != nil
        let augmentation = settings.augmentation, data = dataset
        // Σ w[label] over the whole minibatch with class weights, else its size: every slice
        // divides by it, so the slices' gradients add up to the batch's (weighted) mean.
        let normalizer = criterion.normalizer(labels: (first..<(first + count)).lazy.map { split.labels[order?[$0] ?? $0] },
                                              count: count)
        let run: @Sendable (Int) -> Void = { w in
            let worker = workers[w]
            let global = layout.globalWorker(w)
            let range = shards[global]
            worker.correct = 0   // a worker with no images this step got none right
            guard !range.isEmpty else { return }
            worker.model.prepareStep(seed: seed, step: stepIndex, worker: global)
            let indices = range.lazy.map { order?[first + $0] ?? first + $0 }
            if let cache, let features {
                worker.loadFeatures(cache, features, of: split, indices: indices)
                // What `stats` runs through every layer.
                if measured { worker.loadBatch(split, indices: indices, channels: self.dataset.channels, features: values, into: worker.images) }
            } else {
                worker.loadBatch(split, indices: indices, channels: self.dataset.channels, features: values)
            }
            if augmentation.isOn {
                // Before the noise; a function of (seed, step, position in the minibatch) only.
                worker.input.data.withUnsafeMutableBufferPointer { x in
                    augmentation.apply(to: x.baseAddress!, count: range.count, firstPosition: range.lowerBound, step: stepIndex,
                                       seed: seed, channels: data.channels, frames: data.frames, height: data.height,
                                       width: data.width, pixels: data.normalization)
                }
            }
            if sigma > 0 {
                worker.input.data.withUnsafeMutableBufferPointer { x in
                    // Images sit along N inside each channel plane; one noise window per image.
                    for (i, b) in range.enumerated() {
                        for c in 0..<self.dataset.channels {
                            let plane = values / self.dataset.channels
                            noise.addNoise(to: x.baseAddress! + (c * range.count + i) * plane, count: plane,
                                           sigma: sigma, step: stepIndex, image: b * self.dataset.channels + c)
                        }
                    }
                }
            }
            worker.loss = worker.forwardBackward(normalizer: normalizer, fromLayer: fromLayer)
        }
        if workers.count == 1 {
            run(0)
        } else {
            DispatchQueue.concurrentPerform(iterations: workers.count, execute: run)
        }
        // Sum the replicas' gradients into the master's, in worker order.
        let master = model.parameters
        var losses = workers.map(\.loss)
        var correct = workers.map(\.correct)
        if let exchange {
            (losses, correct) = exchange.combine(master: master, buffers: model.buffers, workerGradients: workers.map(\.model.parameters),
                                                 workerLosses: losses, workerCorrect: correct, shards: shards, layout: layout,
                                                 step: stepIndex)
        } else {
            for w in 1..<max(workers.count, 1) where !shards[w].isEmpty {
                // Frozen parameters' gradients are never read.
                for (p, q) in zip(model.trainableParameters, workers[w].model.trainableParameters) {
                    p.grad.data.withUnsafeMutableBufferPointer { g in
                        q.grad.data.withUnsafeBufferPointer { r in
                            for i in 0..<g.count { g[i] += r[i] }
                        }
                    }
                }
            }
        }
        // The whole minibatch's gradient, the same on every rank: clipped here, it steps as one
        // process would.
        // Only what trains: frozen parameters have no gradient, as in PyTorch.
        let trainable = model.trainableParameters
        if let maxNorm = settings.clipNorm { GradientClipping.clip(trainable, maxNorm: maxNorm) }
        var probe: StatisticsProbe?
        if measuredAs != nil {
            let probeModel = self.probeModel ?? Model.unfusedReplica(of: model)
            self.probeModel = probeModel
            var measuring = StatisticsProbe(probe: probeModel, model: model)
            for (w, worker) in workers.enumerated() where !shards[layout.globalWorker(w)].isEmpty {
                probeModel.prepareStep(seed: seed, step: stepIndex, worker: layout.globalWorker(w))
                measuring.recordOutputs(of: probeModel, input: features == nil ? worker.input : worker.images)
            }
            measuring.recordBeforeStep()
            probe = measuring
        }
        // The schedule's rate for this step, from the settings' `lr` read now.
        let stepRate = rate ?? scheduledRate(step: stepIndex)
        let optimizer = self.optimizer
        optimizer.learningRate = stepRate
        optimizer.step(trainable, rateScales: rateScales())
        lastStepRate = stepRate
        if let probe, let measuredAs {
            lastStatistics = probe.statistics(step: stepIndex + 1, epoch: measuredAs.epoch, batch: measuredAs.batch)
        }
        for worker in workers { worker.model.zeroGrads() }
        stepsDone += 1
        return (losses.reduce(0, +) / Double(normalizer), correct.reduce(0, +))
    }

    /// What the learning rate is multiplied by for each trainable parameter (nil: 1 for all).
    private func rateScales() -> [Float]? {
        let multipliers = settings.learningRateMultipliers
        guard !multipliers.isEmpty else { return nil }
        return zip(model.parameters, model.parameterModules).compactMap { model.frozenModules.contains($0.1) ? nil : multipliers[$0.1] ?? 1 }
    }

    /// One worker per thread; worker 0 trains the master model itself. Every model replica
    /// freezes what the settings freeze.
    private func prepareWorkers() {
        let frozen = settings.frozenModules
        if model.frozenModules != frozen {
            model.freeze(frozen)
            for worker in workers where worker.model !== model { worker.model.freeze(frozen) }
            probeModel?.freeze(frozen)
        }
        let wanted = max(1, settings.threads)
        if workers.count != wanted || workers.first?.model !== model {
            BLAS.threads = 1
            workers = (0..<wanted).map { Worker(model: $0 == 0 ? model : model.replica(), objective: criterion) }
        }
    }

    // MARK: - Feature cache

    /// What a feature cache would hold now: the engine layers it replaces, the key it holds
    /// under, the top-level modules and one sample's output. Nil when none applies: no frozen
    /// deterministic prefix with parameters, input noise or augmentation on (each step's inputs
    /// differ), or a model without a spec (its layout between layers is not known).
    private func featureCachePlan() -> (key: FeatureCache.Key, modules: Range<Int>, output: SampleShape)? {
        guard cachesFeatures, settings.noise == 0, !settings.augmentation.isOn, let spec = model.spec else { return nil }
        let layers = model.deterministicFrozenPrefix
        guard layers > 0, layers < model.layers.count else { return nil }
        let modules = 0..<model.moduleRanges[layers - 1].upperBound
        // Worth it only when it saves work on frozen weights (not for a leading flatten alone).
        guard model.parameterCount(inModules: model.frozenModules.intersection(modules)) > 0,
              let planned = try? spec.plan(inputShape: model.inputShape), planned.count >= modules.upperBound else { return nil }
        let prefix = model.layers[0..<layers].flatMap { $0.layer.parameters + $0.layer.buffers }
        return (FeatureCache.Key(frozen: model.frozenModules, layers: layers, weights: weightsHash(prefix)), modules,
                planned[modules.upperBound - 1].output)
    }

    /// The splits a cache holds: what training steps over, what each epoch scores, the test set.
    private var cachedSplits: [Split] {
        let (train, validation) = splits()
        return [train, validation ?? dataset.test] + (validation == nil ? [] : [dataset.test])
    }

    /// The feature cache, if it still holds for the model as it is now; else it is dropped.
    private func currentFeatureCache() -> FeatureCache? {
        guard let cache = featureCache else { return nil }
        prepareWorkers()   // the model freezes what the settings say now
        guard let plan = featureCachePlan(), plan.key == cache.key else {
            featureCache = nil
            return nil
        }
        return cache
    }

    /// The modules whose outputs are cached now (nil: none; `train` builds it when it applies).
    public var featureCacheModules: Range<Int>? { currentFeatureCache()?.modules }

    /// Makes the feature cache match the model, settings and data: dropped when it no longer
    /// holds (the frozen modules, the prefix's weights or the splits changed), built when a
    /// frozen deterministic prefix allows one. Returns what a build did (or that it would not
    /// fit, said once per prefix); nil when nothing was built.
    @discardableResult
    public func updateFeatureCache() -> FeatureCacheReport? {
        prepareWorkers()
        guard let plan = featureCachePlan() else {
            featureCache = nil
            return nil
        }
        let splits = cachedSplits
        if let cache = featureCache, cache.key == plan.key, splits.allSatisfy({ cache.features(for: $0) != nil }) { return nil }
        featureCache = nil   // before computing the next: two might not fit
        let perSample = plan.output.dims.reduce(1, *)
        let samples = splits.reduce(0) { $0 + $1.count }
        let bytes = perSample * samples * MemoryLayout<Float>.size
        if bytes > Int(ProcessInfo.processInfo.physicalMemory / 4) {
            defer { tooLargeCache = plan.key }
            return tooLargeCache == plan.key ? nil
                : FeatureCacheReport(modules: plan.modules, samples: samples, bytes: bytes, seconds: 0, tooLarge: true)
        }
        let started = DispatchTime.now()
        let cache = FeatureCache(key: plan.key, modules: plan.modules, sampleShape: plan.output.dims,
                                 channelMajor: !plan.output.isSequence && plan.output.dims.count >= 2)
        for split in splits { cache.add(split, features: prefixOutputs(split, cache: cache)) }
        featureCache = cache
        return FeatureCacheReport(modules: plan.modules, samples: samples, bytes: cache.bytes, seconds: seconds(since: started), tooLarge: false)
    }

    /// The prefix's outputs for every sample of `split`, in inference mode, the workers taking
    /// slices the size of a training shard in turn.
    private func prefixOutputs(_ split: Split, cache: FeatureCache) -> [Float] {
        var outputs = [Float](repeating: 0, count: split.count * cache.valuesPerSample)
        let workers = self.workers
        let (channels, values, layers) = (dataset.channels, dataset.valuesPerSample, cache.key.layers)
        let shards = ShardLayout(group: group, threads: workers.count).globalWorkers
        let chunk = max(1, (settings.batchSize + shards - 1) / shards)
        let chunks = (split.count + chunk - 1) / chunk
        outputs.withUnsafeMutableBufferPointer { all in
            let all = UnsafeMutableBufferPointerBox(all)
            let body: @Sendable (Int) -> Void = { w in
                let worker = workers[w]
                for c in stride(from: w, to: chunks, by: workers.count) {
                    let range = (c * chunk)..<min((c + 1) * chunk, split.count)
                    worker.loadBatch(split, indices: range, channels: channels, features: values)
                    cache.store(worker.model.forward(worker.input, training: false, layers: 0..<layers), into: all.buffer,
                                first: range.lowerBound)
                }
            }
            if workers.count == 1 { body(0) } else {
                DispatchQueue.concurrentPerform(iterations: workers.count, execute: body)
            }
        }
        return outputs
    }

    // MARK: - Evaluation

    /// Accuracy, mean loss and the predicted class of every image of a split (no noise).
    public func evaluate(_ split: Split) -> Evaluation {
        prepareWorkers()
        return evaluate(split, cache: currentFeatureCache())
    }

    /// The same, from the prefix's cached outputs when `cache` holds the split's.
    private func evaluate(_ split: Split, cache: FeatureCache?) -> Evaluation {
        prepareWorkers()
        let features = dataset.valuesPerSample
        let cached = cache?.features(for: split)
        let fromLayer = cached == nil ? 0 : cache!.key.layers
        // Under mpirun every rank scores the whole split, as ranks × threads workers would
        // (each thread doing several workers' chunks), so every rank gets the same numbers.
        let virtualWorkers = ShardLayout(group: group, threads: workers.count).globalWorkers
        // Slices the size of a training shard: the layers' buffers are reused, not reallocated.
        let chunk = max(1, (settings.batchSize + virtualWorkers - 1) / virtualWorkers)
        var predictions = [Int32](repeating: 0, count: split.count)
        var lossPerWorker = [Double](repeating: 0, count: virtualWorkers)
        // Top-K hits per virtual worker, when asked for a K below the class count.
        let topK = settings.topK.flatMap { $0 < dataset.classCount ? $0 : nil }
        var hitsPerWorker = [Int](repeating: 0, count: virtualWorkers)
        let workers = self.workers
        let channels = dataset.channels
        let chunks = (split.count + chunk - 1) / chunk
        predictions.withUnsafeMutableBufferPointer { predicted in
            let predicted = UnsafeMutableBufferPointerBox(predicted)
            lossPerWorker.withUnsafeMutableBufferPointer { losses in
                let losses = UnsafeMutableBufferPointerBox(losses)
                hitsPerWorker.withUnsafeMutableBufferPointer { hits in
                let hits = UnsafeMutableBufferPointerBox(hits)
                let body: @Sendable (Int) -> Void = { w in
                    let worker = workers[w]
                    // (Virtual) worker v takes chunks v, v+V, v+2V…
                    for v in stride(from: w, to: virtualWorkers, by: workers.count) {
                        for c in stride(from: v, to: chunks, by: virtualWorkers) {
                            let range = (c * chunk)..<min((c + 1) * chunk, split.count)
                            if let cache, let cached {
                                worker.loadFeatures(cache, cached, of: split, indices: range)
                            } else {
                                worker.loadBatch(split, indices: range, channels: channels, features: features)
                            }
                            let result = worker.predict(fromLayer: fromLayer, topK: topK)
                            losses.buffer[v] += result.lossSum
                            hits.buffer[v] += result.topKHits
                            for (i, p) in result.predictions.enumerated() { predicted.buffer[range.lowerBound + i] = p }
                        }
                    }
                }
                if workers.count == 1 { body(0) } else {
                    DispatchQueue.concurrentPerform(iterations: workers.count, execute: body)
                }
                }
            }
        }
        let correct = zip(predictions, split.labels).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) }
        return Evaluation(accuracy: split.count == 0 ? 0 : Double(correct) / Double(split.count),
                          loss: lossPerWorker.reduce(0, +) / Double(max(split.count, 1)),
                          predictions: predictions,
                          topKAccuracy: topK.map { _ in Double(hitsPerWorker.reduce(0, +)) / Double(max(split.count, 1)) })
    }

    /// Class probabilities for single images of a split (for `predict`).
    public func probabilities(_ split: Split, indices: [Int]) -> [[Float]] {
        prepareWorkers()
        let features = dataset.valuesPerSample
        let worker = workers[0]
        worker.loadBatch(split, indices: indices, channels: dataset.channels, features: features)
        let probabilities = worker.probabilities()
        let classes = probabilities.shape[1]
        return (0..<indices.count).map { Array(probabilities.data[($0 * classes)..<(($0 + 1) * classes)]) }
    }
}

/// Test-set (or training-set) results.
public struct Evaluation: Sendable {
    public var accuracy: Double
    public var loss: Double
    public var predictions: [Int32]
    /// The share of samples whose label is among the `settings.topK` highest scores (nil: off).
    public var topKAccuracy: Double?
}

public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// Contiguous slices of a minibatch, one per worker (the first ones one larger when uneven).
func shardBounds(count: Int, parts: Int) -> [Range<Int>] {
    let base = count / parts, extra = count % parts
    var start = 0
    return (0..<parts).map { p in
        let n = base + (p < extra ? 1 : 0)
        defer { start += n }
        return start..<(start + n)
    }
}

func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

func shapeText(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "×") }

/// Lets concurrentPerform bodies write disjoint parts of one buffer.
struct UnsafeMutableBufferPointerBox<T>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<T>
    init(_ buffer: UnsafeMutableBufferPointer<T>) { self.buffer = buffer }
}
