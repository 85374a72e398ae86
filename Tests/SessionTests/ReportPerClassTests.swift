import XCTest
import Foundation
import Tracking
@testable import Session

/// `report` shows each run's per-class precision, recall and F1 at its best epoch, from the
/// confusion counts recorded with that epoch: the same table `metrics` prints for the best model.
final class ReportPerClassTests: SessionTestCase {
    func testReportShowsTheBestEpochsPerClassMetricsAsMetricsPrintsThem() throws {
        loadQuadrants()
        // A rate that makes later epochs worse on the validation split would do too; here the
        // best epoch is whichever the policy chose, and restore best brings that model back.
        run("set val 0.25; build conv; train 3")
        let detail = try session.store!.comparison(of: [1]).runs[0]
        let (epoch, record) = try XCTUnwrap(detail.bestConfusion)
        XCTAssertEqual(epoch, session.trainer!.policy.bestEpoch)
        XCTAssertEqual(record.split, "val")
        XCTAssertEqual(record.counts.flatMap { $0 }.reduce(0, +), session.trainer!.validationSplit!.count)
        run("restore best")
        let printed = run("metrics val")
        let table = try XCTUnwrap(record.report).render(width: 80)
        XCTAssertTrue(printed.hasSuffix(table), "metrics of the restored best:\n\(printed)\nrecorded:\n\(table)")
        let markdown = run("report 1 md")
        XCTAssertTrue(markdown.contains("Per class, run 1 at its best epoch (\(epoch)), on the validation split:"), markdown)
        XCTAssertTrue(markdown.contains(table), markdown)
        let file = folder + "/r.html"
        run("report 1 \(file)")
        let html = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertTrue(html.contains("<h2>Per class, run 1 at its best epoch (\(epoch)), on the validation split</h2>"), html)
        // The counts are data for report, not an event to read in diff.
        run("build conv; train 1")
        XCTAssertFalse(run("diff 1 2").contains(BestConfusionRecord.eventKind))
    }

    func testADamagedRecordIsLeftOut() {
        XCTAssertNil(BestConfusionRecord(split: "val", classes: ["a", "b"], counts: [[1, 2]]).report)
        XCTAssertNil(BestConfusionRecord(split: "val", classes: ["a"], counts: [[-1]]).report)
        XCTAssertNotNil(BestConfusionRecord(split: "val", classes: ["a"], counts: [[3]]).report)
    }
}
