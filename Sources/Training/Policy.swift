/// The reference policy's bookkeeping between epochs (conv.jl's `best_acc` and
/// `last_improvement`), kept apart from the arithmetic so each rule is unit-testable. It follows
/// the monitored metric (`set monitor`; by default the scored split's accuracy).
public struct Policy: Equatable, Sendable {
    public enum Decision: Equatable, Sendable {
        case newBest
        case dropLearningRate(to: Float)
        case earlyExit
        case converged(epochsWithoutImprovement: Int)
    }

    /// The best monitored value so far (nil before the first epoch).
    public private(set) var bestValue: Double?
    /// What `bestValue` measures: after `set monitor` changes it, the next epoch is a new best.
    public private(set) var monitor: Monitor = .scoredAccuracy
    /// The scored split's accuracy at the best epoch (what `runs` shows as best acc).
    public private(set) var bestAccuracy: Double = 0
    public private(set) var bestEpoch: Int = 0
    /// The epoch of the last improvement, or of the last LR drop (which restarts the count).
    public private(set) var lastImprovement: Int = 0

    public init() {}

    /// Restores the counters saved with a checkpoint. `bestValue` nil: a state saved before
    /// monitors, whose best value was its accuracy (none when that is 0 with no best epoch).
    public init(bestAccuracy: Double, bestEpoch: Int, lastImprovement: Int, bestValue: Double? = nil,
                monitor: Monitor = .scoredAccuracy) {
        self.monitor = monitor
        self.bestAccuracy = bestAccuracy
        self.bestEpoch = bestEpoch
        self.lastImprovement = lastImprovement
        self.bestValue = bestValue ?? (bestEpoch > 0 || bestAccuracy != 0 ? bestAccuracy : nil)
    }

    /// Applies the rules, in conv.jl's order, to a finished epoch whose monitored metric is
    /// `value` and whose scored accuracy is `accuracy`. A decision list ending in `.earlyExit` or
    /// `.converged` means: stop training. LR drops only under the plateau schedule; `target`
    /// only when the monitor is an accuracy.
    public mutating func decide(epoch: Int, value: Double, accuracy: Double, monitor: Monitor,
                                learningRate: Float, settings h: Hyperparameters) -> [Decision] {
        var decisions: [Decision] = []
        if monitor != self.monitor {
            // A best in another metric's units says nothing about this one.
            self.monitor = monitor
            bestValue = nil
        }
        // conv.jl starts best_acc at 0, so its first epoch is always a best; a NaN never is.
        if value.isFinite && (bestValue.map { monitor.isBetter(value, than: $0) } ?? true) {
            bestValue = value
            bestAccuracy = accuracy
            bestEpoch = epoch
            lastImprovement = epoch
            decisions.append(.newBest)
        }
        // conv.jl exits before saving; ollie saves the target-reaching model first.
        if monitor.isAccuracy && value >= Double(h.target) { return decisions + [.earlyExit] }
        if h.schedule == .plateau && epoch - lastImprovement >= h.patience && learningRate > h.minimumLearningRate {
            decisions.append(.dropLearningRate(to: max(learningRate * h.decay, h.minimumLearningRate)))
            lastImprovement = epoch   // give the new rate a few epochs to improve
        }
        if epoch - lastImprovement >= h.stopAfter {
            decisions.append(.converged(epochsWithoutImprovement: epoch - lastImprovement))
        }
        return decisions
    }

    /// The reference policy on the scored accuracy (tests, and callers without a monitor).
    public mutating func decide(epoch: Int, accuracy: Double, learningRate: Float,
                                settings h: Hyperparameters) -> [Decision] {
        decide(epoch: epoch, value: accuracy, accuracy: accuracy, monitor: .scoredAccuracy, learningRate: learningRate, settings: h)
    }
}
