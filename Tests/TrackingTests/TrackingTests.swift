import XCTest
import Foundation
import GRDB
@testable import Tracking

func temporaryDatabase() -> String {
    NSTemporaryDirectory() + "ollie-test-\(UUID().uuidString).sqlite"
}

let defaultParams: [(name: String, value: String)] = [("lr", "3e-3"), ("batch", "128"), ("optimizer", "adam")]

func epoch(_ n: Int, accuracy: Double, loss: Double, best: Double? = nil, events: [(kind: String, detail: String)] = [],
           changes: [(name: String, value: String)] = []) -> EpochRecord {
    EpochRecord(epoch: n, metrics: ["test_accuracy": accuracy, "train_loss": loss, "learning_rate": 3e-3,
                                    "epoch_seconds": 2, "images_per_second": 30000],
                events: events, paramChanges: changes, bestAccuracy: best ?? accuracy, bestEpoch: n, trainLoss: loss, seconds: 2)
}

final class RunStoreTests: XCTestCase {
    func testSchemaHasTheDocumentedTablesAndColumns() throws {
        let store = try RunStore(path: temporaryDatabase())
        let expected: [String: [String]] = [
            "runs": ["id", "session", "created", "finished", "status", "dataset", "model", "parameter_count", "seed",
                     "best_accuracy", "best_epoch", "final_loss", "epochs", "train_seconds", "checkpoint", "note"],
            "params": ["run", "name", "value", "from_epoch"],
            "metrics": ["run", "epoch", "name", "value", "time"],
            "events": ["run", "epoch", "kind", "detail", "time"],
            "commands": ["id", "session", "time", "command", "seconds", "failed", "error"],
            "sessions": ["id", "started", "pid", "host"],
        ]
        for (table, columns) in expected {
            let found = try store.query("SELECT name FROM pragma_table_info('\(table)')").rows.map { $0[0] }
            XCTAssertEqual(found, columns, table)
        }
        XCTAssertEqual(try store.query("SELECT journal_mode FROM pragma_journal_mode").rows, [["wal"]])
        XCTAssertEqual(try store.integrityCheck(), "ok")
    }

    func testReopeningKeepsRunsAndAddsASession() throws {
        let path = temporaryDatabase()
        let first = try RunStore(path: path)
        let run = try first.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        try first.finishRun(run: run, status: .finished, checkpoint: nil)
        let second = try RunStore(path: path)
        XCTAssertNotEqual(first.sessionID, second.sessionID)
        XCTAssertEqual(try second.runs().map(\.id), [run])
        XCTAssertEqual(try second.sessionRunIDs(), [])
    }

    func testAnEpochRecordUpdatesMetricsEventsParamsAndTheSummary() throws {
        let store = try RunStore(path: temporaryDatabase())
        let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        try store.recordEpoch(run: run, epoch(1, accuracy: 0.97, loss: 0.3, events: [("new_best", "0.97")]))
        try store.recordEpoch(run: run, epoch(2, accuracy: 0.96, loss: 0.2, best: 0.97, events: [("lr_dropped", "3e-3 → 3e-4")],
                                              changes: [("lr", "3e-4")]))
        try store.recordParamChange(run: run, name: "batch", value: "64", fromEpoch: 3)
        try store.finishRun(run: run, status: .finished, checkpoint: "checkpoints/x.safetensors")
        let summary = try XCTUnwrap(store.runs().first)
        XCTAssertEqual(summary.epochs, 2)
        XCTAssertEqual(summary.bestAccuracy, 0.97)
        XCTAssertEqual(summary.finalLoss, 0.2)
        XCTAssertEqual(summary.trainSeconds, 4)
        XCTAssertEqual(summary.status, "finished")
        XCTAssertEqual(summary.checkpoint, "checkpoints/x.safetensors")
        let detail = try store.comparison(of: [run]).runs[0]
        XCTAssertEqual(detail.params.first { $0.name == "lr" }?.text, "3e-3 → 3e-4@3")
        XCTAssertEqual(detail.params.first { $0.name == "batch" }?.text, "128 → 64@3")
        XCTAssertEqual(detail.metricSeries("test_accuracy").map(\.value), [0.97, 0.96])
        XCTAssertEqual(detail.events.map(\.kind), ["new_best", "lr_dropped"])
    }

    func testRunsLeftRunningByADeadProcessAreMarkedCrashed() throws {
        let path = temporaryDatabase()
        let store = try RunStore(path: path)
        let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        // Pretend the run's owner was a process that is gone.
        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: "UPDATE sessions SET pid = 999999999 WHERE id = ?", arguments: [store.sessionID]) }
        let reopened = try RunStore(path: path)
        XCTAssertEqual(try reopened.runs().first { $0.id == run }?.status, "crashed")
    }

    func testALiveOwnersRunStaysRunning() throws {
        let path = temporaryDatabase()
        let store = try RunStore(path: path)
        let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        let other = try RunStore(path: path)   // same pid: alive
        XCTAssertEqual(try other.runs().first { $0.id == run }?.status, "running")
    }

    func testTwoWritersAtOnceLoseNothing() throws {
        let path = temporaryDatabase()
        _ = try RunStore(path: path)
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            do {
                let store = try RunStore(path: path)
                let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
                for e in 1...40 { try store.recordEpoch(run: run, epoch(e, accuracy: 0.9, loss: 0.1)) }
                try store.finishRun(run: run, status: .finished, checkpoint: nil)
            } catch { errors.add(error) }
        }
        XCTAssertEqual(errors.all.map { "\($0)" }, [])
        let store = try RunStore(path: path)
        XCTAssertEqual(try store.query("SELECT count(*) FROM metrics").rows, [["400"]])
        XCTAssertEqual(try store.runs().map(\.epochs), [40, 40])
        XCTAssertEqual(try store.integrityCheck(), "ok")
    }

    func testAnUnwritableDatabaseIsAClearError() {
        XCTAssertThrowsError(try RunStore(path: "/nonexistent-folder/ollie.sqlite")) { error in
            XCTAssertTrue(error is TrackingError)
            XCTAssertTrue("\(error)".contains("--db PATH"), "\(error)")
        }
        let notADatabase = temporaryDatabase()
        FileManager.default.createFile(atPath: notADatabase, contents: Data(repeating: 0x41, count: 4096))
        XCTAssertThrowsError(try RunStore(path: notADatabase)) { error in
            XCTAssertTrue("\(error)".contains("not a valid ollie database"), "\(error)")
        }
    }

    func testSQLRunsSelectsAndRefusesWrites() throws {
        let store = try RunStore(path: temporaryDatabase())
        _ = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        let result = try store.query("select id, dataset from runs")
        XCTAssertEqual(result.columns, ["id", "dataset"])
        XCTAssertEqual(result.rows, [["1", "mnist"]])
        for statement in ["DELETE FROM runs", "DROP TABLE runs", "UPDATE runs SET note = 'x'", "INSERT INTO runs (id) VALUES (5)",
                          "ATTACH DATABASE '/tmp/x' AS x"] {
            XCTAssertThrowsError(try store.query(statement), statement)
        }
        XCTAssertEqual(try store.runs().count, 1)
        XCTAssertThrowsError(try store.query("SELEC 1")) { XCTAssertTrue("\($0)".hasPrefix("sql:"), "\($0)") }
    }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    func add(_ e: Error) { lock.withLock { errors.append(e) } }
    var all: [Error] { lock.withLock { errors } }
}

final class RunFilterTests: XCTestCase {
    func makeStore() throws -> RunStore {
        let store = try RunStore(path: temporaryDatabase())
        for (i, lr) in ["3e-3", "1e-3", "3e-4", "1e-4"].enumerated() {
            let run = try store.startRun(dataset: i == 3 ? "fashion-mnist" : "mnist", model: "conv", parameterCount: 10, seed: 1,
                                         params: [("lr", lr), ("batch", "128")])
            try store.recordEpoch(run: run, epoch(1, accuracy: 0.9 + Double(i) / 100, loss: 0.1))
        }
        return store
    }

    func testParsesLastBestAndWhere() throws {
        XCTAssertEqual(try RunFilter.parse([]).order, .last(20))
        XCTAssertEqual(try RunFilter.parse(["last", "3"]).order, .last(3))
        XCTAssertEqual(try RunFilter.parse(["best", "2"]).order, .best(2))
        let f = try RunFilter.parse(["where", "lr<1e-3", "and", "dataset", "=", "mnist", "last", "5"])
        XCTAssertEqual(f.conditions, [.init(key: "lr", op: "<", value: "1e-3"), .init(key: "dataset", op: "=", value: "mnist")])
        for bad in [["last"], ["last", "x"], ["where", "lr"], ["where", "lr", "~", "3"], ["sideways"]] {
            XCTAssertThrowsError(try RunFilter.parse(bad), "\(bad)") { XCTAssertTrue("\($0)".contains("usage"), "\($0)") }
        }
    }

    func testFiltersSelectTheRightRuns() throws {
        let store = try makeStore()
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "lr", "<", "1e-3"])).map(\.id), [3, 4])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "lr", ">=", "1e-3"])).map(\.id), [1, 2])
        XCTAssertEqual(try store.runs(RunFilter.parse(["last", "2"])).map(\.id), [3, 4])
        XCTAssertEqual(try store.runs(RunFilter.parse(["best", "2"])).map(\.id), [4, 3])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "dataset", "=", "mnist", "best", "1"])).map(\.id), [3])
        XCTAssertEqual(try store.runs(RunFilter.parse(["where", "accuracy", ">", "0.915"])).map(\.id), [3, 4])
    }
}

final class RenderingTests: XCTestCase {
    func comparison(_ count: Int) throws -> Comparison {
        let store = try RunStore(path: temporaryDatabase())
        var ids: [Int64] = []
        for i in 0..<count {
            let run = try store.startRun(dataset: "mnist", model: "conv — Chain(…)", parameterCount: 16938, seed: 1,
                                         params: [("lr", ["3e-3", "1e-3", "3e-4", "1e-4", "3e-5", "1e-5"][i % 6]), ("batch", "128")])
            for e in 1...3 { try store.recordEpoch(run: run, epoch(e, accuracy: 0.95 + Double(i) / 100 + Double(e) / 1000, loss: 0.3 / Double(e + i))) }
            try store.finishRun(run: run, status: .finished, checkpoint: nil)
            ids.append(run)
        }
        return try store.comparison(of: ids)
    }

    func testCompareShowsDifferingSettingsAndMarksTheBest() throws {
        let text = CompareTable.render(try comparison(2), width: 80)
        XCTAssertTrue(text.contains("lr"), text)
        XCTAssertTrue(text.contains("same in all: dataset mnist, batch 128"), text)
        let best = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("best accuracy") })
        XCTAssertTrue(best.hasSuffix("0.9630 *"), String(best))
        XCTAssertFalse(best.contains("0.9530 *"), String(best))
    }

    func testFourRunsFitEightyColumnsAndMoreWrap() throws {
        let four = CompareTable.render(try comparison(4), width: 80)
        XCTAssertLessThanOrEqual(four.split(separator: "\n").map(\.count).max() ?? 0, 80, four)
        XCTAssertEqual(four.components(separatedBy: "best accuracy").count - 1, 1)
        let six = CompareTable.render(try comparison(6), width: 60)
        XCTAssertLessThanOrEqual(six.split(separator: "\n").map(\.count).max() ?? 0, 60, six)
        XCTAssertGreaterThan(six.components(separatedBy: "best accuracy").count - 1, 1, six)
    }

    func testCSVQuotesFieldsAndDropsMarks() throws {
        XCTAssertEqual(Report.csvField("a,b"), "\"a,b\"")
        XCTAssertEqual(Report.csvField("say \"hi\""), "\"say \"\"hi\"\"\"")
        let csv = Report.csv(try comparison(2))
        XCTAssertTrue(csv.hasPrefix("setting,run 1,run 2\n"), csv)
        XCTAssertFalse(csv.contains("*"), csv)
    }

    func testMarkdownIsATable() throws {
        let md = Report.markdown(try comparison(2))
        XCTAssertTrue(md.hasPrefix("| | run 1 | run 2 |\n|---|---:|---:|\n"), md)
    }

    func testHTMLIsSelfContainedWithOneLinePerRunInEachChart() throws {
        let html = Report.html(try comparison(3))
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 2)
        XCTAssertEqual(html.components(separatedBy: "<polyline").count - 1, 6)
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("http://") && !html.contains("http://www.w3.org/2000/svg"))
    }

    func testTerminalPlotHasTheAskedSizeAndALegend() throws {
        let c = try comparison(2)
        let text = TerminalPlot.render(series: c.runs.map { ("run \($0.id)", $0.metricSeries("test_accuracy")) },
                                       title: "test_accuracy", width: 60, height: 10)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.first, "test_accuracy")
        XCTAssertEqual(lines.count, 1 + 10 + 2 + 1)   // title, rows, axis and epochs, legend
        XCTAssertTrue(lines.contains { $0.contains("run 1") && $0.contains("run 2") })
        XCTAssertTrue(text.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) }, text)
        XCTAssertLessThanOrEqual(lines.map(\.count).max() ?? 0, 60)
    }
}
