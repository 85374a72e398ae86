import Foundation

/// The confusion counts of a run's best epoch on the split it was scored on, recorded as an
/// event (`best_confusion`, this as JSON) at every new best, so `report` shows per-class
/// precision, recall and F1 of each run's best model from the database alone.
public struct BestConfusionRecord: Codable, Equatable, Sendable {
    public static let eventKind = "best_confusion"

    /// "val" or "test".
    public var split: String
    public var classes: [String]
    /// counts[true][predicted].
    public var counts: [[Int]]

    public init(split: String, classes: [String], counts: [[Int]]) {
        self.split = split
        self.classes = classes
        self.counts = counts
    }

    public var json: String? {
        (try? JSONEncoder().encode(self)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The per-class table; nil when the counts are not K × K for its K classes (a damaged record).
    public var report: ClassificationReport? {
        guard !classes.isEmpty, counts.count == classes.count, counts.allSatisfy({ $0.count == classes.count && $0.allSatisfy { $0 >= 0 } }) else { return nil }
        return ClassificationReport(confusion: counts, classNames: classes)
    }
}

extension RunDetail {
    /// The last recorded best epoch's confusion counts (the best model's), with that epoch.
    public var bestConfusion: (epoch: Int, record: BestConfusionRecord)? {
        guard let event = events.last(where: { $0.kind == BestConfusionRecord.eventKind }),
              let record = try? JSONDecoder().decode(BestConfusionRecord.self, from: Data(event.detail.utf8)) else { return nil }
        return (event.epoch, record)
    }
}
