import Tracking
import Training

/// What `train` records at each new best for `report`'s per-class metrics (BestConfusionRecord).
enum BestConfusion {
    /// Beyond this many classes the K×K counts are not recorded (a 1000-class table would be
    /// megabytes of text per new best).
    static let largestClassCount = 100

    /// The event's detail for `predictions` of `split` (nil: too many classes, or predictions
    /// that are not the split's).
    static func detail(_ predictions: [Int32], of trainer: Trainer, split: ScoredSplit) -> String? {
        let labels = (split == .validation ? trainer.validationSplit : trainer.dataset.test)?.labels ?? []
        let names = trainer.dataset.classNames
        guard !predictions.isEmpty, predictions.count == labels.count, names.count <= largestClassCount else { return nil }
        return BestConfusionRecord(split: split.rawValue, classes: names,
                                   counts: confusionCounts(predictions, labels, classes: names.count)).json
    }
}
