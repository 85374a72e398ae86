import Foundation
import XCTest
@testable import Training

/// Schedule.rate against the rates PyTorch's schedulers give (Fixtures/schedules.json, written by
/// scripts/schedule_fixtures.py with torch 2.15), and the words `set schedule` takes.
final class ScheduleTests: XCTestCase {
    struct Fixture: Decodable {
        struct Case: Decodable {
            var name: String, schedule: String, base: Double, warmup: Int, steps: Int
            var batches_per_epoch: Int
            var rates: [Double]
        }
        var torch: String
        var cases: [Case]
    }

    func fixture() throws -> Fixture {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/schedules.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: path))
    }

    func testRatesMatchPyTorchSchedulers() throws {
        let fixture = try fixture()
        XCTAssertEqual(fixture.cases.count, 7)
        for c in fixture.cases {
            let schedule = try LearningRateSchedule(parsing: c.schedule)
            let span = ScheduleSpan(firstStep: 0, steps: c.steps, schedule: schedule.text)
            XCTAssertEqual(c.rates.count, c.steps, c.name)
            for (step, expected) in c.rates.enumerated() {
                let rate = Schedule.rate(step: step, epoch: step / c.batches_per_epoch + 1, base: Float(c.base), schedule: schedule,
                                         warmupSteps: c.warmup, span: span)
                XCTAssertEqual(Double(rate), expected, accuracy: max(1e-12, abs(expected) * 1e-5), "\(c.name) step \(step)")
            }
        }
    }

    func testASpanStartedLaterAnnealsFromItsFirstStep() {
        // A cosine started at step 100 for 20 steps is the step-0 cosine shifted by 100.
        let late = ScheduleSpan(firstStep: 100, steps: 20, schedule: "cosine")
        let early = ScheduleSpan(firstStep: 0, steps: 20, schedule: "cosine")
        for s in 0..<20 {
            XCTAssertEqual(Schedule.rate(step: 100 + s, epoch: 9, base: 0.1, schedule: .cosine, warmupSteps: 0, span: late),
                           Schedule.rate(step: s, epoch: 1, base: 0.1, schedule: .cosine, warmupSteps: 0, span: early))
        }
        // Onecycle ends at max/25/1e4 at its last step.
        let one = ScheduleSpan(firstStep: 50, steps: 30, schedule: "onecycle")
        XCTAssertEqual(Schedule.rate(step: 79, epoch: 3, base: 0.05, schedule: .oneCycle(maxRate: nil), warmupSteps: 0, span: one),
                       0.05 / 25 / 1e4, accuracy: 1e-12)
        XCTAssertEqual(Schedule.rate(step: 50, epoch: 3, base: 0.05, schedule: .oneCycle(maxRate: nil), warmupSteps: 0, span: one),
                       0.05 / 25, accuracy: 1e-9)
    }

    func testPlateauAndConstantAreTheBaseRateExactly() {
        for step in [0, 1, 17, 10_000] {
            XCTAssertEqual(Schedule.rate(step: step, epoch: 4, base: 3e-3, schedule: .plateau, warmupSteps: 0, span: nil), 3e-3)
            XCTAssertEqual(Schedule.rate(step: step, epoch: 4, base: 3e-3, schedule: .constant, warmupSteps: 0, span: nil), 3e-3)
        }
        // Warmup scales any schedule, plateau too, and ends exactly at the base.
        XCTAssertEqual(Schedule.rate(step: 0, epoch: 1, base: 3e-3, schedule: .plateau, warmupSteps: 10, span: nil), 0)
        XCTAssertEqual(Schedule.rate(step: 5, epoch: 1, base: 3e-3, schedule: .plateau, warmupSteps: 10, span: nil), 1.5e-3, accuracy: 1e-9)
        XCTAssertEqual(Schedule.rate(step: 10, epoch: 1, base: 3e-3, schedule: .plateau, warmupSteps: 10, span: nil), 3e-3)
    }

    func testScheduleWordsParseAndPrintBack() throws {
        for text in ["plateau", "constant", "cosine", "onecycle", "onecycle 0.01", "step 3 0.1", "step 1 0.5"] {
            XCTAssertEqual(try LearningRateSchedule(parsing: text).text, text)
        }
        XCTAssertEqual(try LearningRateSchedule(parsing: "STEP 3 0.1"), .step(epochs: 3, factor: 0.1))
        XCTAssertEqual(try LearningRateSchedule(parsing: "one-cycle 3e-3"), .oneCycle(maxRate: 3e-3))
    }

    func testBadScheduleWordsSayWhatToType() {
        func message(_ text: String) -> String {
            do { _ = try LearningRateSchedule(parsing: text); return "accepted" } catch { return "\(error)" }
        }
        let usage = "; schedule must be constant | step EPOCHS FACTOR | cosine | onecycle [MAX_LR] | plateau, e.g. set schedule step 3 0.1"
        XCTAssertEqual(message("step"), "schedule step needs EPOCHS and FACTOR (got 0 numbers)" + usage)
        XCTAssertEqual(message("step 3"), "schedule step needs EPOCHS and FACTOR (got 1 number)" + usage)
        XCTAssertEqual(message("step 0 0.1"), "schedule step's EPOCHS must be a whole number from 1 to 100000 (got '0')" + usage)
        XCTAssertEqual(message("step 3 2"), "schedule step's FACTOR must be a number > 0 and ≤ 1 (got '2')" + usage)
        XCTAssertEqual(message("cosine 3"), "schedule cosine takes no numbers (got '3'; it spans the `train N` that starts it)" + usage)
        XCTAssertEqual(message("onecycle -1"), "schedule onecycle's MAX_LR must be a number > 0 and ≤ 10 (got '-1')" + usage)
        XCTAssertEqual(message("linear"), "schedule 'linear' is unknown" + usage)
    }
}
