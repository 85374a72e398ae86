import Tracking
import Training

/// The one place a sweep ranks its runs: successive halving keeps the better half by it, and
/// the leaderboard, `sweep show`, the report's chart and the "best" line sort by it.
///
/// The score is the run's best value of the metric its policy followed (`set monitor`: by
/// default the accuracy of the split it scored, validation when one is held out, else test).
/// A sweep's runs all follow the session's monitor (it cannot be swept: scores of different
/// metrics do not rank), so the first run's says which way is better.
enum SweepRanking {
    /// The monitor the sweep's runs followed.
    static func monitor(of runs: [RunDetail]) -> Monitor { runs.first?.monitor ?? .scoredAccuracy }

    /// The run's score; nil before it has one (no epoch recorded, or NaN from the start).
    static func score(of run: RunDetail) -> Double? { run.best()?.value }

    /// The score's name in tables: "val acc" or "test acc" ("val/test acc" when the runs
    /// differ: a sweep of `val` itself), or the monitored metric's name ("val loss").
    static func metricLabel(_ runs: [RunDetail]) -> String {
        let monitor = monitor(of: runs)
        guard monitor.metric == Monitor.scoredAccuracy.metric else { return monitor.metric.replacingOccurrences(of: "_", with: " ") }
        let splits = Set(runs.compactMap(\.selectedOn))
        return splits.count > 1 ? "val/test acc" : splits.contains(.validation) ? "val acc" : "test acc"
    }

    /// Its name in the report: the recorded metric's own name.
    static func metricName(_ runs: [RunDetail]) -> String {
        monitor(of: runs).recordedName(scoredSplit: runs.contains { $0.selectedOn == .validation } ? Metric.Split.validation.rawValue : Metric.Split.test.rawValue)
    }

    /// Whether `a` ranks before `b`: the better score first (`maximize`: the larger), a run
    /// without one last, then the earlier configuration (so ranks never depend on the order
    /// rows were read in).
    static func ranksBefore(_ a: (score: Double?, config: Int), _ b: (score: Double?, config: Int), maximize: Bool) -> Bool {
        switch (a.score, b.score) {
        case let (x?, y?) where x != y: return maximize ? x > y : x < y
        case (_?, nil): return true
        case (nil, _?): return false
        default: return a.config < b.config
        }
    }
}
