import Foundation

/// A run's life: running while `train` works, then finished, interrupted (Ctrl-C), failed
/// (NaN), or crashed (found running with no live owner).
public enum RunStatus: String, Sendable, CaseIterable {
    case running, finished, interrupted, failed, crashed
    /// Stopped by a `sweep … halving` after a rung, its configuration ranked in the worse half.
    case pruned
}

/// Everything one finished epoch adds to the database, written in one transaction.
public struct EpochRecord: Sendable {
    public var epoch: Int
    /// train_loss, test_accuracy, learning_rate, epoch_seconds, images_per_second, …
    /// Non-finite values (a NaN loss) are not stored; the `nan_stop` event says what happened.
    public var metrics: [String: Double]
    public var events: [(kind: String, detail: String)]
    /// Settings the policy changed at this epoch (an LR drop), stored with
    /// from_epoch = epoch + 1: they take effect from the next epoch.
    public var paramChanges: [(name: String, value: String)]
    /// The run's best test accuracy so far and its epoch (nil: unchanged).
    public var bestAccuracy: Double?
    public var bestEpoch: Int?
    /// This epoch's train loss, stored as the run's final_loss (nil: unchanged).
    public var trainLoss: Double?
    /// Training seconds of this epoch, added to the run's train_seconds.
    public var seconds: Double?
    /// Per-step values (a moving schedule's learning_rate at each step, numbered from 1 over
    /// the model's steps), stored in step_metrics with this epoch.
    public var stepMetrics: [(step: Int, name: String, value: Double)] = []

    public init(epoch: Int, metrics: [String: Double], events: [(kind: String, detail: String)] = [],
                paramChanges: [(name: String, value: String)] = [], bestAccuracy: Double?, bestEpoch: Int?,
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
    /// When the run ended; for a crashed run, the time of its last recorded epoch.
    public var finished: Date?
    /// A `RunStatus` raw value.
    public var status: String
    public var dataset: String
    /// The model's description, "conv — Chain(Conv(…), …)": recipe, then the full text.
    public var model: String
    public var parameterCount: Int
    /// Text, as a UInt64 seed does not fit SQLite's signed integers.
    public var seed: String
    public var bestAccuracy: Double?
    public var bestEpoch: Int?
    public var finalLoss: Double?
    public var epochs: Int
    public var trainSeconds: Double
    public var checkpoint: String?
    public var note: String?
    /// The run and epoch whose state this run started from (fork, restore, new data), if any.
    public var parentRun: Int64?
    public var parentEpoch: Int?
    /// A name the user gave it (`name 3 cnn-lstm`), its tags (`tag 3 baseline`), and whether
    /// it is archived: kept, but left out of `runs`, `compare all` and `last N`.
    public var name: String?
    public var tags: [String] = []
    public var archived = false

    public init(id: Int64, session: Int64, created: Date, finished: Date? = nil, status: String, dataset: String,
                model: String, parameterCount: Int, seed: String, bestAccuracy: Double? = nil, bestEpoch: Int? = nil,
                finalLoss: Double? = nil, epochs: Int = 0, trainSeconds: Double = 0, checkpoint: String? = nil,
                note: String? = nil, parentRun: Int64? = nil, parentEpoch: Int? = nil, name: String? = nil,
                tags: [String] = [], archived: Bool = false) {
        self.id = id
        self.session = session
        self.created = created
        self.finished = finished
        self.status = status
        self.dataset = dataset
        self.model = model
        self.parameterCount = parameterCount
        self.seed = seed
        self.bestAccuracy = bestAccuracy
        self.bestEpoch = bestEpoch
        self.finalLoss = finalLoss
        self.epochs = epochs
        self.trainSeconds = trainSeconds
        self.checkpoint = checkpoint
        self.note = note
        self.parentRun = parentRun
        self.parentEpoch = parentEpoch
        self.name = name
        self.tags = tags
        self.archived = archived
    }

    /// "forked from 1@3", or nil for a run that started from fresh weights.
    public var lineage: String? {
        parentRun.map { "forked from \($0)@\(parentEpoch ?? 0)" }
    }

    /// "conv" from "conv — Chain(Conv(…), …)": the recipe before the full description.
    public var modelRecipe: String {
        (model.components(separatedBy: " — ").first ?? model).trimmingCharacters(in: .whitespaces)
    }
}

/// One row of `commands`.
public struct CommandRecord: Sendable, Equatable {
    public var time: Date
    public var command: String
    public var failed: Bool
    public var error: String?
}

/// A learning-rate range test: loss after each step at an exponentially rising rate.
/// How a range test ended: all its steps, stopped by the loss diverging (above 4× its best),
/// or stopped by the user (Ctrl-C).
public enum LRFindOutcome: String, Sendable {
    case completed, diverged, interrupted
}

public struct LRFindRecord: Sendable {
    public var dataset: String
    public var model: String
    public var optimizer: String
    public var batchSize: Int
    public var startRate: Double
    public var endRate: Double
    public var points: [(rate: Double, loss: Double)]
    public var suggestedRate: Double?
    /// The session's current run when it ran (the range test itself changes no run).
    public var run: Int64?
    public var outcome: LRFindOutcome
    /// The steps it would have taken had it not stopped early.
    public var plannedSteps: Int

    public init(dataset: String, model: String, optimizer: String, batchSize: Int, startRate: Double, endRate: Double,
                points: [(rate: Double, loss: Double)], suggestedRate: Double?, run: Int64?,
                outcome: LRFindOutcome, plannedSteps: Int) {
        self.outcome = outcome
        self.plannedSteps = plannedSteps
        self.dataset = dataset
        self.model = model
        self.optimizer = optimizer
        self.batchSize = batchSize
        self.startRate = startRate
        self.endRate = endRate
        self.points = points
        self.suggestedRate = suggestedRate
        self.run = run
    }
}

/// A setting's value over a run: (value, first epoch it applied to), oldest first.
public struct ParamHistory: Sendable {
    public var name: String
    public var values: [(value: String, fromEpoch: Int)]

    public init(name: String, values: [(value: String, fromEpoch: Int)]) {
        self.name = name
        self.values = values
    }

    /// The value the run started with.
    public var initial: String? { values.first?.value }

    /// "3e-3" or, when it changed during the run, "3e-3 → 3e-4@6".
    public var text: String {
        var shown: [(value: String, fromEpoch: Int)] = []
        for entry in values {
            // A later row for the same epoch overrides (several `set`s between two trains).
            if let last = shown.last, last.fromEpoch == entry.fromEpoch {
                shown[shown.count - 1] = entry
                if shown.count > 1 && shown[shown.count - 2].value == entry.value { shown.removeLast() }
                continue
            }
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
    /// metric name → (step, value), by step: what was recorded per step (learning_rate under a
    /// moving schedule).
    public var stepMetrics: [String: [(step: Int, value: Double)]] = [:]

    public init(summary: RunSummary, params: [ParamHistory], metrics: [String: [(epoch: Int, value: Double)]],
                events: [(epoch: Int, kind: String, detail: String)]) {
        self.summary = summary
        self.params = params
        self.metrics = metrics
        self.events = events
    }

    public var id: Int64 { summary.id }

    public func metricSeries(_ name: String) -> [(epoch: Int, value: Double)] { metrics[name] ?? [] }

    /// Mean images/s over the run's epochs.
    public var imagesPerSecond: Double? {
        let values = metricSeries(.imagesPerSecond).map(\.value)
        return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }
}

/// Several runs side by side, in the order they were asked for.
public struct Comparison: Sendable {
    public var runs: [RunDetail]
    /// Per run, in order: its best epoch by the metric its policy followed, when that was not
    /// its scored accuracy (`set monitor val_loss`); the session fills it, as it knows monitors.
    public var monitored: [MonitoredBest?]
    public init(runs: [RunDetail], monitored: [MonitoredBest?] = []) {
        self.runs = runs
        self.monitored = monitored
    }
}

/// A run's best epoch by its monitor: the epoch `restore best` loads.
public struct MonitoredBest: Sendable, Equatable {
    /// The metric as a row names it: "val loss", "train accuracy (min)".
    public var name: String
    public var maximize: Bool
    public var epoch: Int
    public var value: Double
    public init(name: String, maximize: Bool, epoch: Int, value: Double) {
        self.name = name
        self.maximize = maximize
        self.epoch = epoch
        self.value = value
    }
}

/// A database problem, said in one line so a user knows what to do. Every `RunStore` call
/// throws only this; the caller prints it and carries on (training does not stop).
public struct TrackingError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let message: String
    /// The database could not take the write now (locked past the wait, disk full, an I/O
    /// error) but may later: the same write is worth trying again.
    public let isTransient: Bool
    public init(_ message: String, isTransient: Bool = false) {
        self.message = message
        self.isTransient = isTransient
    }
    public var description: String { message }
    public var errorDescription: String? { message }
}
