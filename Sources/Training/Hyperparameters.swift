/// Which update rule the trainer uses.
public enum OptimizerKind: String, CaseIterable, Sendable {
    case adam, sgd, momentum
}

/// Everything about training a user can change with `set`. Defaults are the Flux model-zoo
/// conv.jl recipe: ADAM 3e-3, batch 128, noise 0.1, patience 5, ÷10, target 99.9 %, stop after 10.
public struct Hyperparameters: Equatable, Sendable {
    public var learningRate: Float = 3e-3
    public var batchSize: Int = 128
    /// Standard deviation of the Gaussian noise added to training inputs.
    public var noise: Float = 0.1
    public var optimizer: OptimizerKind = .adam
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
    /// Shuffle the training set each epoch (the reference recipe uses dataset order).
    public var shuffle: Bool = false

    public init() {}
}
