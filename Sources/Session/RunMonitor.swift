import Tracking
import Training

extension RunDetail {
    /// The monitor the run's policy followed at its last epoch (`set monitor`; runs recorded
    /// before the setting followed the scored accuracy).
    public var monitor: Monitor {
        let text = params.first { $0.name == "monitor" }?.values.last?.value
        return text.flatMap { try? Monitor(parsing: $0) } ?? .scoredAccuracy
    }

    /// The run's recorded series of a monitor's metric (`accuracy`: the split it was scored on).
    public func series(of monitor: Monitor) -> [(epoch: Int, value: Double)] {
        guard let split = selectedOn else { return [] }
        return metricSeries(monitor.recordedName(scoredSplit: split.rawValue))
    }

    /// The best epoch and value by `monitor` (default: the run's own), the last on ties as the
    /// policy chooses; nil when the run recorded none of that metric. Ranks runs (sweeps, compare).
    public func best(by monitor: Monitor? = nil) -> (epoch: Int, value: Double)? {
        let monitor = monitor ?? self.monitor
        return monitor.best(series(of: monitor))
    }

    /// The best epoch by the run's monitor when it followed something other than the scored
    /// split's accuracy (compare shows it beside the best accuracy); nil otherwise.
    public var monitoredBest: MonitoredBest? {
        let monitor = self.monitor
        guard let split = selectedOn else { return nil }
        if monitor.maximize && monitor.recordedName(scoredSplit: split.rawValue) == split.accuracy.rawValue { return nil }
        guard let best = best(by: monitor) else { return nil }
        let usual = monitor.maximize == Monitor.defaultMaximize(monitor.metric)
        let name = monitor.recordedName(scoredSplit: split.rawValue).replacingOccurrences(of: "_", with: " ")
            + (usual ? "" : monitor.maximize ? " (max)" : " (min)")
        return MonitoredBest(name: name, maximize: monitor.maximize, epoch: best.epoch, value: best.value)
    }
}

extension Comparison {
    /// The runs, each with its best by the metric its policy followed: what compare, report and
    /// a sweep's report show.
    init(monitoring runs: [RunDetail]) { self.init(runs: runs, monitored: runs.map(\.monitoredBest)) }
}
