/// The reference policy's bookkeeping between epochs (conv.jl's `best_acc` and
/// `last_improvement`), kept apart from the arithmetic so each rule is unit-testable.
public struct Policy: Equatable, Sendable {
    public enum Decision: Equatable, Sendable {
        case newBest
        case dropLearningRate(to: Float)
        case earlyExit
        case converged(epochsWithoutImprovement: Int)
    }

    public private(set) var bestAccuracy: Double = 0
    public private(set) var bestEpoch: Int = 0
    /// The epoch of the last improvement, or of the last LR drop (which restarts the count).
    public private(set) var lastImprovement: Int = 0

    public init() {}

    /// Restores the counters saved with a checkpoint.
    public init(bestAccuracy: Double, bestEpoch: Int, lastImprovement: Int) {
        self.bestAccuracy = bestAccuracy
        self.bestEpoch = bestEpoch
        self.lastImprovement = lastImprovement
    }

    /// Applies the rules, in conv.jl's order, to a finished epoch's test accuracy. A decision
    /// list ending in `.earlyExit` or `.converged` means: stop training.
    public mutating func decide(epoch: Int, accuracy: Double, learningRate: Float,
                                settings h: Hyperparameters) -> [Decision] {
        var decisions: [Decision] = []
        if accuracy >= bestAccuracy {
            bestAccuracy = accuracy
            bestEpoch = epoch
            lastImprovement = epoch
            decisions.append(.newBest)
        }
        // conv.jl exits before saving; ollie saves the target-reaching model first.
        if accuracy >= Double(h.target) { return decisions + [.earlyExit] }
        if epoch - lastImprovement >= h.patience && learningRate > h.minimumLearningRate {
            decisions.append(.dropLearningRate(to: max(learningRate * h.decay, h.minimumLearningRate)))
            lastImprovement = epoch   // give the new rate a few epochs to improve
        }
        if epoch - lastImprovement >= h.stopAfter {
            decisions.append(.converged(epochsWithoutImprovement: epoch - lastImprovement))
        }
        return decisions
    }
}
