/// The per-epoch numbers a run records, named once: `metrics.name` in the database, the
/// words `plot` takes, the rows and charts of `compare`, `diff` and `report`.
public enum Metric: String, CaseIterable, Sendable {
    case trainLoss = "train_loss", trainAccuracy = "train_accuracy"
    case valAccuracy = "val_accuracy", valLoss = "val_loss", valSeconds = "val_seconds"
    case testAccuracy = "test_accuracy", testLoss = "test_loss", testSeconds = "test_seconds"
    case learningRate = "learning_rate", epochSeconds = "epoch_seconds", imagesPerSecond = "images_per_second"

    /// The top-K accuracy on a split (`set topk K`), e.g. "val_top5": K varies, so the name is
    /// made, not listed.
    public static func topK(_ k: Int, on split: Split) -> String { "\(split.rawValue)_top\(k)" }

    /// Whether a recorded metric name is a top-K accuracy ("val_top5", "test_top3").
    public static func isTopK(_ name: String) -> Bool {
        [Split.validation, .test].contains { split in
            name.hasPrefix(split.rawValue + "_top") && Int(name.dropFirst(split.rawValue.count + 4)) != nil
        }
    }

    /// The split that chose a run's best epoch (and drove LR drops and early stops).
    public enum Split: String, Sendable {
        case validation = "val", test

        public var accuracy: Metric { self == .validation ? .valAccuracy : .testAccuracy }
        public var loss: Metric { self == .validation ? .valLoss : .testLoss }
        public var seconds: Metric { self == .validation ? .valSeconds : .testSeconds }
    }
}

extension RunDetail {
    public func metricSeries(_ metric: Metric) -> [(epoch: Int, value: Double)] { metricSeries(metric.rawValue) }

    /// The split the run's policy scored each epoch: validation when it recorded any, else the
    /// test set; nil before any epoch.
    public var selectedOn: Metric.Split? {
        if !metricSeries(.valAccuracy).isEmpty { return .validation }
        return metricSeries(.testAccuracy).isEmpty ? nil : .test
    }

    /// The last recorded value of a metric.
    public func final(_ metric: Metric) -> Double? { metricSeries(metric).last?.value }

    /// The highest recorded value and its epoch (the first, on ties).
    public func best(_ metric: Metric) -> (epoch: Int, value: Double)? {
        metricSeries(metric).reduce(nil) { best, point in best.map { point.value > $0.value ? point : $0 } ?? point }
    }
}
