/// The per-epoch metric the policy follows (`set monitor METRIC [min|max]`): the best checkpoint,
/// `restore best`, plateau drops and convergence go by it; `target` stops early only when it is
/// an accuracy. `accuracy` (the default) is the accuracy of the split the policy scores: the
/// validation split when `val` > 0, else the test set.
public struct Monitor: Equatable, Sendable {
    /// A per-epoch metric name as runs record it (val_loss, train_accuracy, …) or `accuracy`.
    public var metric: String
    public var maximize: Bool

    /// The default: the scored split's accuracy, maximized.
    public static let scoredAccuracy = Monitor(metric: "accuracy", maximize: true)

    /// Metrics every epoch records that a monitor can follow (test_accuracy only when `val` is
    /// 0: with a validation split the test set is scored once, at the end of each `train`; the
    /// test loss is not recorded per epoch). A new per-epoch metric joins here and in `value(in:)`.
    public static let metrics = ["accuracy", "val_loss", "val_accuracy", "test_accuracy", "train_loss", "train_accuracy"]

    public init(metric: String, maximize: Bool) {
        self.metric = metric
        self.maximize = maximize
    }

    /// A name's usual direction: accuracies up, losses (and anything else) down.
    public static func defaultMaximize(_ metric: String) -> Bool { metric.hasSuffix("accuracy") }

    /// `set monitor`'s words: "val_loss", "val_accuracy max".
    public init(parsing text: String) throws {
        let words = text.split(separator: " ").map { $0.lowercased() }
        let usage = "monitor must be METRIC [min|max] with METRIC one of \(Monitor.metrics.joined(separator: ", ")), e.g. set monitor val_loss"
        guard let name = words.first, words.count <= 2 else { throw TrainingError("\(usage) (got '\(text)')") }
        guard Monitor.metrics.contains(name) else { throw TrainingError("unknown metric '\(name)'; \(usage)") }
        var maximize = Monitor.defaultMaximize(name)
        if words.count == 2 {
            switch words[1] {
            case "max": maximize = true
            case "min": maximize = false
            default: throw TrainingError("monitor's direction must be min or max (got '\(words[1])'); e.g. set monitor val_loss min")
            }
        }
        self.init(metric: name, maximize: maximize)
    }

    /// "val_loss", or "val_loss max" when the direction is not the name's usual one.
    public var text: String { metric + (maximize == Monitor.defaultMaximize(metric) ? "" : (maximize ? " max" : " min")) }

    /// Whether `a` beats `b` (ties count, as conv.jl's `>=`: a later equal epoch is the best).
    public func isBetter(_ a: Double, than b: Double) -> Bool { maximize ? a >= b : a <= b }

    /// Whether `target` applies: it is an accuracy, maximized.
    public var isAccuracy: Bool { maximize && metric.hasSuffix("accuracy") }

    /// The recorded metric name this monitor reads on a run scored on `split` ("val" or "test").
    public func recordedName(scoredSplit split: String) -> String { metric == "accuracy" ? "\(split)_accuracy" : metric }

    /// Why it cannot be followed with a validation fraction of `validation` (nil: it can).
    public func problem(validationFraction validation: Float) -> String? {
        if validation <= 0 && metric.hasPrefix("val_") {
            return "monitor \(metric) needs a validation split; hold one out first: set val 0.1"
        }
        if validation > 0 && metric.hasPrefix("test_") {
            return "monitor \(metric): with val > 0 the test set is scored only at the end of each train; monitor val_\(metric.dropFirst(5)), or set val 0"
        }
        return nil
    }

    /// The monitored value of a finished epoch.
    public func value(in m: EpochMetrics) -> Double? {
        switch recordedName(scoredSplit: m.scored.rawValue) {
        case "train_loss": m.trainLoss
        case "train_accuracy": m.trainAccuracy
        case "\(m.scored.rawValue)_accuracy": m.accuracy
        case "\(m.scored.rawValue)_loss": m.scoredLoss
        default: nil
        }
    }

    /// The best of a series of (epoch, value) (the last, on ties, as the policy chooses).
    public func best(_ series: [(epoch: Int, value: Double)]) -> (epoch: Int, value: Double)? {
        series.reduce(nil) { best, point in
            guard point.value.isFinite else { return best }
            return best.map { isBetter(point.value, than: $0.value) ? point : $0 } ?? point
        }
    }
}
