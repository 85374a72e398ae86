import Tracking

/// The one place a sweep ranks its runs: successive halving keeps the better half by it, and
/// the leaderboard, `sweep show`, the report's chart and the "best" line sort by it.
///
/// For now the metric is the run's best accuracy on the split its policy scored (validation
/// when one is held out, else test), higher being better. When `set monitor` (a `Monitor`)
/// exists, `score(of:)` and `higherIsBetter` follow it; nothing else here needs to change.
enum SweepRanking {
    /// Whether a larger score is better (accuracy: yes; a monitored loss would say no).
    static let higherIsBetter = true

    /// The run's score; nil before it has one (no epoch recorded, or NaN from the start).
    static func score(of run: RunDetail) -> Double? {
        guard let split = run.selectedOn else { return nil }
        return run.best(split.accuracy)?.value
    }

    /// The score's name in tables: "val acc" or "test acc", "val/test acc" when the runs
    /// differ (a sweep of `val` itself).
    static func metricLabel(_ runs: [RunDetail]) -> String {
        let splits = Set(runs.compactMap(\.selectedOn))
        return splits.count > 1 ? "val/test acc" : splits.contains(.validation) ? "val acc" : "test acc"
    }

    /// Its name in the report: the metric's own name.
    static func metricName(_ runs: [RunDetail]) -> String {
        runs.contains { $0.selectedOn == .validation } ? Metric.valAccuracy.rawValue : Metric.testAccuracy.rawValue
    }

    /// Whether `a` ranks before `b`: the better score first, a run without one last, then the
    /// earlier configuration (so ranks never depend on the order rows were read in).
    static func ranksBefore(_ a: (score: Double?, config: Int), _ b: (score: Double?, config: Int)) -> Bool {
        switch (a.score, b.score) {
        case let (x?, y?) where x != y: return higherIsBetter ? x > y : x < y
        case (_?, nil): return true
        case (nil, _?): return false
        default: return a.config < b.config
        }
    }
}
