/// One finished epoch's numbers.
public struct EpochMetrics: Equatable, Sendable {
    public var epoch: Int
    public var trainLoss: Double
    /// Share of the epoch's training images the model got right as it trained on them (the
    /// running count: each batch scored by the weights before its step, with noise and dropout).
    public var trainAccuracy: Double
    /// Which split the policy scored: the validation split when `val` > 0, else the test set.
    public var scored: ScoredSplit
    public var accuracy: Double
    /// Mean cross-entropy on that split.
    public var scoredLoss: Double
    public var learningRate: Float
    /// Seconds spent on the training pass (not the scoring pass).
    public var epochSeconds: Double
    public var scoringSeconds: Double
    public var imagesPerSecond: Double
    /// K of the top-K accuracy scored on the same split, and that accuracy (nil: `topk` off).
    public var topK: Int? = nil
    public var topKAccuracy: Double? = nil
    /// Each scored sample's predicted class, in the split's order (for the best epoch's
    /// per-class metrics in the record).
    public var scoredPredictions: [Int32] = []
}

/// The split an epoch is scored on.
public enum ScoredSplit: String, Equatable, Sendable {
    case test, validation = "val"
}

/// Progress inside an epoch, for a progress bar.
public struct BatchProgress: Sendable {
    public var epoch: Int
    public var batch: Int
    public var batchCount: Int
    /// Optimizer steps taken by the model, this batch's included (its step number, from 1).
    public var step: Int
    /// The learning rate this batch's step took.
    public var learningRate: Float
    /// This batch's mean loss.
    public var loss: Double
    /// The mean of the epoch's batch losses so far.
    public var runningLoss: Double
    public var imagesPerSecond: Double
    public var secondsRemaining: Double
}

/// What the training loop tells its caller. The core never prints: the REPL renders these,
/// the run store records them, the benchmark times them.
public enum TrainingEvent: Sendable {
    case batchFinished(BatchProgress)
    case epochFinished(EpochMetrics)
    /// Test accuracy reached a new best (ties count, as in conv.jl); the caller saves a checkpoint.
    case newBest(epoch: Int, accuracy: Double)
    case learningRateDropped(epoch: Int, from: Float, to: Float)
    case earlyExit(epoch: Int, accuracy: Double, target: Float)
    case converged(epoch: Int, epochsWithoutImprovement: Int)
    case nanStop(epoch: Int)
    /// The last event of a finished epoch (after its policy events): its record is complete.
    case epochClosed(epoch: Int)
    /// Ctrl-C: stopped after `batch` of `batchCount` in `epoch`; that epoch is not counted
    /// until the next `train` finishes it.
    case interrupted(epoch: Int, batch: Int, batchCount: Int)
    /// `train N batches` ended inside `epoch` after `batch` of `batchCount`, as asked; that
    /// epoch is not counted until the next `train` finishes it.
    case partialEpoch(epoch: Int, batch: Int, batchCount: Int)

    /// The name the run store uses for the event kind.
    public var kind: String {
        switch self {
        case .batchFinished: "batch"
        case .epochFinished: "epoch"
        case .epochClosed: "epoch_closed"
        case .newBest: "new_best"
        case .learningRateDropped: "lr_dropped"
        case .earlyExit: "early_exit"
        case .converged: "converged"
        case .nanStop: "nan_stop"
        case .interrupted: "interrupted"
        case .partialEpoch: "partial_epoch"
        }
    }
}

/// Why a `train` call returned.
public enum StopReason: String, Sendable {
    case finishedEpochs = "finished"
    case earlyExit = "early_exit"
    case converged
    case nanStop = "nan_stop"
    case interrupted
    /// `train N batches` stopped inside an epoch, as asked.
    case partialEpoch = "partial_epoch"
}
