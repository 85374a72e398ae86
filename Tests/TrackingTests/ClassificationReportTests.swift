import XCTest
@testable import Tracking

/// Precision, recall, F1 and their averages against values worked out by hand (and as
/// sklearn's classification_report gives them for the same labels).
final class ClassificationReportTests: XCTestCase {
    // counts[true][predicted] = [[3, 1, 0], [0, 2, 0], [1, 0, 3]]
    let labels: [Int32] = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    let predictions: [Int32] = [0, 0, 1, 0, 1, 1, 2, 0, 2, 2]

    func testPerClassAndAveragedScoresMatchHandComputedValues() {
        let report = ClassificationReport(predictions: predictions, labels: labels, classNames: ["cat", "dog", "owl"])
        XCTAssertEqual(confusionCounts(predictions, labels, classes: 3), [[3, 1, 0], [0, 2, 0], [1, 0, 3]])
        // precision = diagonal / column sum, recall = diagonal / row sum.
        let expected: [(Double, Double, Double, Int)] = [(3.0 / 4, 3.0 / 4, 0.75, 4), (2.0 / 3, 1, 0.8, 2), (1, 3.0 / 4, 6.0 / 7, 4)]
        for (row, e) in zip(report.classes, expected) {
            XCTAssertEqual(row.precision, e.0, accuracy: 1e-12, row.name)
            XCTAssertEqual(row.recall, e.1, accuracy: 1e-12, row.name)
            XCTAssertEqual(row.f1, e.2, accuracy: 1e-12, row.name)
            XCTAssertEqual(row.support, e.3, row.name)
        }
        XCTAssertEqual(report.accuracy, 0.8)
        XCTAssertEqual(report.macro.precision, (0.75 + 2.0 / 3 + 1) / 3, accuracy: 1e-12)
        XCTAssertEqual(report.macro.recall, (0.75 + 1 + 0.75) / 3, accuracy: 1e-12)
        XCTAssertEqual(report.macro.f1, (0.75 + 0.8 + 6.0 / 7) / 3, accuracy: 1e-12)
        XCTAssertEqual(report.weighted.precision, (0.75 * 4 + 2.0 / 3 * 2 + 4) / 10, accuracy: 1e-12)
        XCTAssertEqual(report.weighted.recall, 0.8, accuracy: 1e-12, "weighted recall is the accuracy")
        XCTAssertEqual(report.weighted.f1, (0.75 * 4 + 0.8 * 2 + 6.0 / 7 * 4) / 10, accuracy: 1e-12)
        XCTAssertEqual(report.weighted.support, 10)
    }

    /// A class never predicted and never present scores 0 (sklearn's zero_division=0) and
    /// still counts in the macro average.
    func testAnEmptyClassScoresZeroAndCountsInTheMacroAverage() {
        let report = ClassificationReport(predictions: predictions, labels: labels, classNames: ["cat", "dog", "owl", "emu"])
        XCTAssertEqual(report.classes[3], .init(name: "emu", precision: 0, recall: 0, f1: 0, support: 0))
        XCTAssertEqual(report.macro.f1, (0.75 + 0.8 + 6.0 / 7) / 4, accuracy: 1e-12)
        XCTAssertEqual(report.weighted.f1, (0.75 * 4 + 0.8 * 2 + 6.0 / 7 * 4) / 10, accuracy: 1e-12)
    }

    func testRenderIsSklearnsLayoutWithinEightyColumns() {
        let long = String(repeating: "x", count: 60)
        let text = ClassificationReport(predictions: predictions, labels: labels, classNames: ["cat", "dog", long]).render()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertTrue(lines.allSatisfy { $0.count <= 80 }, text)
        XCTAssertTrue(lines[0].hasSuffix("  precision     recall   f1-score    support"), text)
        XCTAssertTrue(text.contains("macro avg     0.8056     0.8333     0.8024         10"), text)
        XCTAssertTrue(text.contains("accuracy" + String(repeating: " ", count: 27) + "0.8000         10"), text)   // under f1-score
        XCTAssertTrue(text.contains("xxx…     1.0000     0.7500     0.8571          4"), text)
    }
}
