import Foundation

/// A run's life: running while `train` works, then finished, interrupted (Ctrl-C), failed
/// (NaN), or crashed (found running with no live owner).
public enum RunStatus: String, Sendable, CaseIterable {
    case running, finished, interrupted, failed, crashed
}

/// Everything one finished epoch adds to the database, written in one transaction.
public struct EpochRecord: Sendable {
    public var epoch: Int
    /// train_loss, test_accuracy, learning_rate, epoch_seconds, images_per_second, …
    public var metrics: [String: Double]
    public var events: [(kind: String, detail: String)]
    /// Settings the policy changed at this epoch (an LR drop), effective from the next epoch.
    public var paramChanges: [(name: String, value: String)]
    public var bestAccuracy: Double?
    public var bestEpoch: Int?
    public var trainLoss: Double?
    /// Training seconds of this epoch, added to the run's total.
    public var seconds: Double?

    public init(epoch: Int, metrics: [String: Double], events: [(kind: String, detail: String)],
                paramChanges: [(name: String, value: String)], bestAccuracy: Double?, bestEpoch: Int?,
                trainLoss: Double?, seconds: Double?) {
        self.epoch = epoch
        self.metrics = metrics
        self.events = events
        self.paramChanges = paramChanges
        self.bestAccuracy = bestAccuracy
        self.bestEpoch = bestEpoch
        self.trainLoss = trainLoss
        self.seconds = seconds
    }
}

/// One row of `runs`.
public struct RunSummary: Sendable {
    public var id: Int64
    public var session: Int64
    public var created: Date
    public var finished: Date?
    public var status: String
    public var dataset: String
    public var model: String
    public var parameterCount: Int
    public var seed: String
    public var bestAccuracy: Double?
    public var bestEpoch: Int?
    public var finalLoss: Double?
    public var epochs: Int
    public var trainSeconds: Double
    public var checkpoint: String?
    public var note: String?
}

/// A setting's value over a run: (value, first epoch it applied to), oldest first.
public struct ParamHistory: Sendable {
    public var name: String
    public var values: [(value: String, fromEpoch: Int)]

    /// "3e-3" or, when it changed during the run, "3e-3 → 3e-4@6".
    public var text: String {
        var shown: [(value: String, fromEpoch: Int)] = []
        for entry in values {
            // A later row for the same epoch overrides (several `set`s between two trains).
            if let last = shown.last, last.fromEpoch == entry.fromEpoch { shown[shown.count - 1] = entry; continue }
            if shown.last?.value == entry.value { continue }
            shown.append(entry)
        }
        return shown.enumerated().map { i, e in i == 0 ? e.value : "\(e.value)@\(e.fromEpoch)" }.joined(separator: " → ")
    }
}

/// What `compare`, `plot` and `report` show about one run.
public struct RunDetail: Sendable {
    public var summary: RunSummary
    public var params: [ParamHistory]
    /// metric name → (epoch, value), by epoch.
    public var metrics: [String: [(epoch: Int, value: Double)]]
    public var events: [(epoch: Int, kind: String, detail: String)]

    public var id: Int64 { summary.id }

    public func metricSeries(_ name: String) -> [(epoch: Int, value: Double)] { metrics[name] ?? [] }

    /// Mean images/s over the run's epochs.
    public var imagesPerSecond: Double? {
        let values = metricSeries("images_per_second").map(\.value)
        return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }
}

/// Several runs side by side.
public struct Comparison: Sendable {
    public var runs: [RunDetail]
    public init(runs: [RunDetail]) { self.runs = runs }
}

/// A database problem, said so a user knows what to do; training goes on without it.
public struct TrackingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
