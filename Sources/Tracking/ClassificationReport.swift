import Foundation

/// Per-class precision, recall, F1 and support, with macro and weighted averages, laid out as
/// sklearn's classification_report (zero_division=0: a class never predicted has precision 0).
///
/// From a confusion matrix counts[true][predicted] (K × K):
/// precision_c = counts[c][c] / Σ_t counts[t][c], recall_c = counts[c][c] / Σ_p counts[c][p],
/// F1_c = 2·P·R/(P+R); macro = the plain mean over classes; weighted = weighted by support.
public struct ClassificationReport: Equatable, Sendable {
    public struct Row: Equatable, Sendable {
        public var name: String
        public var precision: Double, recall: Double, f1: Double
        public var support: Int
    }

    public let classes: [Row]
    public let accuracy: Double
    public let total: Int
    public let macro: Row
    public let weighted: Row

    /// counts[true][predicted], one row and column per class name.
    public init(confusion counts: [[Int]], classNames: [String]) {
        let k = classNames.count
        precondition(counts.count == k && counts.allSatisfy { $0.count == k }, "the confusion matrix must be K × K")
        func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
        classes = (0..<k).map { c in
            let predicted = (0..<k).reduce(0) { $0 + counts[$1][c] }
            let support = counts[c].reduce(0, +)
            let p = ratio(counts[c][c], predicted), r = ratio(counts[c][c], support)
            return Row(name: classNames[c], precision: p, recall: r, f1: p + r == 0 ? 0 : 2 * p * r / (p + r), support: support)
        }
        total = classes.reduce(0) { $0 + $1.support }
        accuracy = ratio((0..<k).reduce(0) { $0 + counts[$1][$1] }, total)
        macro = Self.average("macro avg", classes, total) { _ in 1 }
        weighted = Self.average("weighted avg", classes, total) { Double($0.support) }
    }

    /// The rows' precision, recall and F1 averaged with `weight`, over `total` samples.
    private static func average(_ name: String, _ classes: [Row], _ total: Int, weight: (Row) -> Double) -> Row {
        let weights = classes.map(weight), sum = weights.reduce(0, +)
        func mean(_ value: (Row) -> Double) -> Double {
            sum == 0 ? 0 : zip(classes, weights).reduce(0) { $0 + value($1.0) * $1.1 } / sum
        }
        return Row(name: name, precision: mean(\.precision), recall: mean(\.recall), f1: mean(\.f1), support: total)
    }

    /// From each sample's predicted and true class.
    public init(predictions: [Int32], labels: [Int32], classNames: [String]) {
        self.init(confusion: confusionCounts(predictions, labels, classes: classNames.count), classNames: classNames)
    }

    /// sklearn's layout: the classes, then accuracy, macro avg and weighted avg; class names
    /// longer than fit `width` beside the four number columns are cut with "…".
    public func render(width: Int = 80) -> String {
        let numbers = 4 * 11
        let nameWidth = max(12, min(width - numbers, classes.map(\.name.count).max() ?? 0))
        func name(_ text: String) -> String {
            let cut = text.count > nameWidth ? String(text.prefix(nameWidth - 1)) + "…" : text
            return String(repeating: " ", count: nameWidth - cut.count) + cut
        }
        func cell(_ text: String) -> String { String(repeating: " ", count: max(0, 11 - text.count)) + text }
        func line(_ row: Row) -> String {
            name(row.name) + [row.precision, row.recall, row.f1].map { cell(String(format: "%.4f", $0)) }.joined() + cell(String(row.support))
        }
        var lines = [String(repeating: " ", count: nameWidth) + ["precision", "recall", "f1-score", "support"].map(cell).joined(), ""]
        lines += classes.map(line)
        lines.append("")
        lines.append(name("accuracy") + cell("") + cell("") + cell(String(format: "%.4f", accuracy)) + cell(String(total)))
        lines.append(line(macro))
        lines.append(line(weighted))
        return lines.joined(separator: "\n")
    }
}

/// counts[true][predicted] over K classes; out-of-range classes are left out.
public func confusionCounts(_ predictions: [Int32], _ labels: [Int32], classes k: Int) -> [[Int]] {
    var counts = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
    for (p, l) in zip(predictions, labels) where (0..<k).contains(Int(p)) && (0..<k).contains(Int(l)) { counts[Int(l)][Int(p)] += 1 }
    return counts
}
