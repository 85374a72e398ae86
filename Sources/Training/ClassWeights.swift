import Foundation
import Datasets

/// The weights of each class in the training loss (`set class-weights`): none, sklearn's
/// "balanced" (n_samples / (n_classes · count_c), counted on the training split), or one
/// weight per class as given, in class order.
public enum ClassWeights: Equatable, Sendable {
    case none
    case balanced
    case given([Float])

    /// "off", "balanced" or "1,2.5,1".
    public var text: String {
        switch self {
        case .none: "off"
        case .balanced: "balanced"
        case .given(let weights): weights.map { formatWeight($0) }.joined(separator: ",")
        }
    }

    /// Parses `set class-weights` text; throws a one-line message naming what is expected.
    public init(parsing text: String) throws {
        switch text.lowercased() {
        case "off", "none": self = .none
        case "balanced": self = .balanced
        default:
            let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            let weights = parts.compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard weights.count == parts.count, weights.count >= 2, weights.allSatisfy({ $0.isFinite && $0 >= 0 }),
                  weights.contains(where: { $0 > 0 }) else {
                throw TrainingError("class-weights must be balanced, off, or one weight ≥ 0 per class (not all 0) separated by commas, e.g. 1,1,5 (got '\(text)')")
            }
            self = .given(weights)
        }
    }

    /// The weight of each of `classes` classes (nil: none), `labels` being the training
    /// split's; throws when given weights do not match the classes or a class has no sample.
    /// `data` names the data in the message ("mnist's"; the data's by default).
    public func resolve(classes: Int, labels: [Int32], data: String = "the data's") throws -> [Float]? {
        switch self {
        case .none:
            return nil
        case .given(let weights):
            guard weights.count == classes else {
                throw TrainingError("class-weights: \(weights.count) weights for \(data) \(classes) classes; give \(classes) or use balanced")
            }
            return weights
        case .balanced:
            var counts = [Int](repeating: 0, count: classes)
            for label in labels where Int(label) < classes { counts[Int(label)] += 1 }
            if let empty = counts.firstIndex(of: 0) {
                throw TrainingError("class-weights balanced needs every class in the training split, but class \(empty) has no sample; give weights: set class-weights W1,W2,…")
            }
            return counts.map { Float(Double(labels.count) / (Double(classes) * Double($0))) }
        }
    }
}

/// A weight as typed back: "1", "2.5", "0.333".
private func formatWeight(_ w: Float) -> String {
    w == w.rounded() && abs(w) < 1e6 ? String(Int(w)) : "\(w)"
}
