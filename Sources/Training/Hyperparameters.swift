import Datasets
import NN

/// Which update rule the trainer uses (NN/Optimizers/Optimizer.swift registers them).
public typealias OptimizerKind = NN.OptimizerKind

/// Everything about training a user can change with `set`. Defaults are what Keras and fastai
/// users expect: ADAM 3e-3, batch 128, shuffled epochs, no input noise; the policy is conv.jl's
/// (patience 5, ÷10, target 99.9 %, stop after 10). examples/reference.ollie sets the rest of
/// conv.jl's recipe (noise 0.1, dataset order) explicitly.
public struct Hyperparameters: Equatable, Sendable {
    public var learningRate: Float = 3e-3
    public var batchSize: Int = 128
    /// Standard deviation of the Gaussian noise added to training inputs (conv.jl: 0.1).
    public var noise: Float = 0
    public var optimizer: OptimizerKind = .adam
    /// The largest global gradient norm a step may take (`set clip NORM`): after the workers'
    /// (and ranks') gradients are summed, a longer gradient is scaled down to this length, as
    /// torch.nn.utils.clip_grad_norm_ does; nil (`off`) never clips.
    public var clipNorm: Float?
    public var seed: UInt64 = 1
    /// Worker threads; each trains on a slice of every minibatch.
    public var threads: Int = 2
    /// Epochs without improvement before the learning rate is divided.
    public var patience: Int = 5
    /// Factor the learning rate is multiplied by after `patience` epochs without improvement.
    public var decay: Float = 0.1
    /// The learning rate is not dropped below this.
    public var minimumLearningRate: Float = 1e-6
    /// Test accuracy at which training stops early.
    public var target: Float = 0.999
    /// Epochs without improvement after which the run is called converged.
    public var stopAfter: Int = 10
    /// Shuffle the training set each epoch, seeded by the seed and the epoch (conv.jl uses
    /// dataset order).
    public var shuffle: Bool = true
    /// The fraction of the training set held out, stratified and seeded, as a validation split:
    /// when > 0 the policy (best model, LR drop, early exit, convergence) scores it each epoch and
    /// the test set is scored at the end of each `train`; 0 keeps conv.jl's test-each-epoch.
    public var validationFraction: Float = 0
    /// Top-level modules (as `summary` numbers them) whose parameters training leaves as they
    /// are (`freeze`, `unfreeze`): Keras' trainable=False, fastai's freeze.
    public var frozenModules: Set<Int> = []
    /// What the learning rate is multiplied by for the parameters of each top-level module
    /// (absent: 1): fastai's discriminative rates, as `fine-tune` sets them.
    public var learningRateMultipliers: [Int: Float] = [:]
    /// Random changes to training samples (`set augment flip crop 4 …`), see Augmentation.
    public var augmentation = Augmentation.off
    /// Which epochs' full states (weights, optimizer, counters) stay on disk for `resume` and
    /// `fork`. Not a training setting: it changes no number, so runs do not record it.
    public var keep: StateRetention = .all
    /// The MLflow tracking server runs are also logged to while training (`set mlflow URL`), or
    /// nil. Not a training setting either: runs do not record it.
    public var mlflowServer: String?
    /// Record every layer's statistics (`stats`) with each epoch (`set stats on`). Not a
    /// training setting: measuring changes no number, so runs do not record it.
    public var recordsLayerStatistics = false
    /// The most bytes decoded image and video folders may keep on disk (`DecodedCache`);
    /// bookkeeping, not a training setting.
    public var decodedCacheLimitBytes = DecodedCache.defaultLimitBytes
    // schedules
    /// How the rate moves from step to step (Schedule.swift); plateau is the policy's drops.
    public var schedule: LearningRateSchedule = .plateau
    /// Steps of linear warmup from 0 at the start of the model's training (0: none).
    public var warmupSteps: Int = 0
    /// The metric the policy follows (best checkpoint, early stop, convergence, plateau drops).
    public var monitor: Monitor = .scoredAccuracy
    // recipes
    /// PyTorch's weight_decay for the optimizer in force (`set wd`): L2 added to the gradient
    /// for adam, sgd, momentum, nesterov and rmsprop, decoupled for adamw. One default, 0, for
    /// all: AdamW's torch default of 1e-2 would make `set optimizer adamw` change a second
    /// number behind the user's back and make `wd` mean different things per optimizer; help
    /// says 1e-2 is AdamW's usual value.
    public var weightDecay: Float = 0
    /// Label smoothing ε (`set smoothing`), torch.nn.CrossEntropyLoss(label_smoothing=ε).
    public var labelSmoothing: Float = 0
    /// Per-class weights of the training loss (`set class-weights`).
    public var classWeights: ClassWeights = .none
    /// K of the top-K accuracy recorded each epoch (`set topk`), or nil (off).
    public var topK: Int?

    public init() {}
}

/// Which saved epoch states a run keeps: every one, the last N, or the best and the last.
public enum StateRetention: Equatable, Sendable {
    case all
    case last(Int)
    case bestAndLast

    /// "all", "3" (the last three), "best-and-last".
    public var text: String {
        switch self {
        case .all: "all"
        case .last(let n): String(n)
        case .bestAndLast: "best-and-last"
        }
    }

    public init?(_ text: String) {
        switch text.lowercased() {
        case "all": self = .all
        case "best-and-last", "best+last": self = .bestAndLast
        default:
            guard let n = Int(text), n >= 1, n <= 1_000_000 else { return nil }
            self = .last(n)
        }
    }

    /// Of the epochs on disk, those to delete once `last` is recorded and `best` is the best.
    public func epochsToDrop(_ kept: [Int], last: Int, best: Int) -> [Int] {
        switch self {
        case .all: []
        case .last(let n): kept.filter { $0 <= last - n }
        case .bestAndLast: kept.filter { $0 != last && $0 != best }
        }
    }
}
