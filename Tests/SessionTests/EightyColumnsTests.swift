import XCTest
import Foundation
import Datasets
import Tensor
@testable import Session

/// What the everyday commands print fits an 80-column terminal: characters, not bytes.
final class EightyColumnsTests: SessionTestCase {
    func assertFits(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        for row in text.split(separator: "\n", omittingEmptySubsequences: false) where row.count > 80 {
            XCTFail("\(what): \(row.count) columns: \(row)", file: file, line: line)
        }
    }

    /// The quadrant images labelled with five skateboard tricks (the fifth class never shows).
    func tricks() -> Dataset {
        let base = quadrants()
        return Dataset(name: "tricks", train: base.train, test: base.test, height: 8, width: 8, channels: 1,
                       classNames: ["roll", "ollie", "kickflip", "shuvit", "manual"], source: "memory")
    }

    func testHelpShowDiffRunsAndConfusionFitEightyColumns() throws {
        session.workbench = .data(tricks())
        session.settings.batchSize = 32
        session.settings.target = 2
        let help = run("help")
        assertFits(help, "help")
        XCTAssertTrue(help.range(of: "\n  train +Train N more epochs \\(default 1\\) with the reference\n +policy\\.\n", options: .regularExpression) != nil,
                      "the first sentence, wrapped between words under the summary column: \(help)")
        XCTAssertLessThan(help.split(separator: "\n").count, 100, "a screen, not a manual: help COMMAND has the rest")
        XCTAssertEqual(session.firstSentence("Run it, e.g. twice (once. twice); then stop. More"), "Run it, e.g. twice (once. twice).")
        XCTAssertEqual(session.firstSentence("One line only"), "One line only")
        XCTAssertTrue(run("help train").contains("Ctrl-C stops after the current"), "help COMMAND keeps the whole summary")
        XCTAssertTrue(help.range(of: "\n  quit +Leave ollie", options: .regularExpression) != nil, "one-line summaries too: \(help)")
        XCTAssertTrue(run("help step").contains("example: step 10"))
        assertFits(run("help load"), "help load")
        assertFits(run("help set"), "help set")
        assertFits(run("show"), "show")
        run("build conv; train 1")
        assertFits(run("fork 1@1"), "fork")
        run("set lr 1e-3; train 1")
        assertFits(run("resume 1"), "resume")
        run("build conv 3x3 8 relu | pool 2 | conv 3x3 16 relu | pool 2 | conv 3x3 16 relu | pool 2 | dense 5; train 1")
        let diff = run("diff 1 3")
        assertFits(diff, "diff")
        XCTAssertTrue(diff.contains("conv 3x3 8 relu"), diff)
        let runs = run("runs")
        assertFits(runs, "runs")
        XCTAssertTrue(runs.contains("1@1"), runs)
        let confusion = run("confusion")
        assertFits(confusion, "confusion")
        XCTAssertTrue(confusion.split(separator: "\n")[0].contains("kickflip"), "no need to abbreviate: \(confusion)")
        XCTAssertFalse(confusion.contains("columns:"), confusion)
    }

    /// Names too long for 80 columns are abbreviated to prefixes that still differ, with a legend.
    func testLongClassNamesAreAbbreviatedWithALegend() {
        let names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        let labels = (0..<100).map { Int32($0 % 10) }
        let text = renderConfusion(labels, labels, classNames: names)
        assertFits(text, "confusion")
        XCTAssertTrue(text.contains("columns: "), text)
        XCTAssertTrue(text.contains("= Pullover"), text)
        XCTAssertTrue(text.contains("\nAnkle boot"), "rows keep the full names: \(text)")
    }
}
