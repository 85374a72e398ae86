import XCTest
import Foundation
@testable import Tracking

/// How a run maps onto MLflow's records, and what the database says still waits; no server.
final class MLflowContentTests: TrackingTestCase {
    func recordedRun(_ store: RunStore) throws -> Int64 {
        let spec = String(repeating: "conv 3x3 16 relu | ", count: 400) + "dense 10"   // longer than a param may be
        let run = try store.startRun(dataset: "mnist", model: spec, parameterCount: 10, seed: 1,
                                     params: defaultParams + [("shuffle", "off"), ("model", spec)])
        try store.recordEpoch(run: run, epoch(1, accuracy: 0.9, loss: 0.5))
        try store.recordEpoch(run: run, epoch(2, accuracy: 0.8, loss: 0.4, best: 0.9, events: [("lr_dropped", "3e-3 → 3e-4")],
                                              changes: [("lr", "3e-4")]))
        try store.recordParamChange(run: run, name: "shuffle", value: "on", fromEpoch: 3)
        try store.recordEpoch(run: run, epoch(3, accuracy: 0.95, loss: 0.3))
        try store.finishRun(run: run, status: .interrupted, checkpoint: nil)
        return run
    }

    func testAChangedSettingIsItsStartingParamPlusAPerEpochMetric() throws {
        let store = try RunStore(path: temporaryDatabase())
        let run = try recordedRun(store)
        let content = MLflowRunContent(try store.exportSnapshot(run: run))
        let params = Dictionary(uniqueKeysWithValues: content.params.map { ($0.key, $0.value) })
        let tags = Dictionary(uniqueKeysWithValues: content.tags.map { ($0.key, $0.value) })
        XCTAssertEqual(params["lr"], "3e-3")
        XCTAssertEqual(params["shuffle"], "off")
        XCTAssertNil(params["model"], "a spec longer than MLflow's 6000-character params is a tag only")
        XCTAssertEqual(tags["ollie.spec"]?.count, (String(repeating: "conv 3x3 16 relu | ", count: 400) + "dense 10").count)
        XCTAssertEqual(content.metrics.filter { $0.key == "lr" }.map { [Double($0.step), $0.value] }, [[1, 3e-3], [2, 3e-3], [3, 3e-4]])
        XCTAssertTrue(content.metrics.filter { $0.key == "shuffle" }.isEmpty, "on/off is no number: its history is a tag")
        XCTAssertEqual(tags["ollie.changed.shuffle"], "off → on@3")
        XCTAssertEqual(tags["ollie.changed.lr"], "3e-3 → 3e-4@3")
        XCTAssertEqual(tags["ollie.events"], "epoch 2: lr_dropped 3e-3 → 3e-4")
        XCTAssertEqual(tags[MLflowRunContent.runIDTag], String(run))
        XCTAssertEqual(tags[MLflowRunContent.databaseTag], try store.databaseIdentity())
        XCTAssertEqual(content.status, "KILLED")
        XCTAssertNotNil(content.endTime)
        XCTAssertEqual(content.metrics.map(\.step), content.metrics.map(\.step).sorted(), "sent in epoch order")
        // What the server has (each key's latest step) is not sent again.
        XCTAssertEqual(Set(content.metrics(after: ["train_loss": 2, "lr": 3]).map { "\($0.key)@\($0.step)" }).filter { $0.hasPrefix("train_loss") || $0.hasPrefix("lr@") },
                       ["train_loss@3"])
    }

    func testStatusesMapOntoMLflowsAndTheRunningHaveNoEnd() {
        XCTAssertEqual(RunStatus.allCases.map { MLflowRunContent.status(ofRunStatus: $0.rawValue) },
                       ["RUNNING", "FINISHED", "KILLED", "FAILED", "FAILED", "KILLED"])
    }

    func testTheDatabaseSaysWhatWaitsUntilItsStateIsSent() throws {
        let store = try RunStore(path: temporaryDatabase())
        let run = try recordedRun(store)
        XCTAssertEqual(try store.mlflowBacklog(), [])
        try store.markForMLflow(runs: [run], server: "http://127.0.0.1:5000", experiment: "runs")
        try store.markForMLflow(runs: [run], server: "http://127.0.0.1:5000", experiment: "runs")   // again: no second mark
        XCTAssertEqual(try store.mlflowBacklog().map(\.run), [run])
        try store.recordMLflowFailure(run: run, server: "http://127.0.0.1:5000", experiment: "runs", error: "server unreachable: connection refused")
        XCTAssertEqual(try store.mlflowBacklog().first?.error, "server unreachable: connection refused")
        try store.recordMLflowSent(run: run, server: "http://127.0.0.1:5000", experiment: "runs", state: try store.exportSnapshot(run: run).state)
        XCTAssertEqual(try store.mlflowBacklog(), [])
        // A new note (or epoch, event, status) makes it wait again.
        try store.setNote(run: run, "later")
        XCTAssertEqual(try store.mlflowBacklog().map(\.run), [run])
        XCTAssertEqual(try store.forgetMLflowBacklog(server: "http://127.0.0.1:5000"), 1)
        XCTAssertEqual(try store.mlflowBacklog(), [])
        XCTAssertThrowsError(try store.markForMLflow(runs: [99], server: "http://127.0.0.1:5000", experiment: "runs"))
    }

    func testServerURLsAreCheckedUpFront() throws {
        for bad in ["notaurl", "ftp://host", "http://", "127.0.0.1:5000", "http://host:5000/?x=1"] {
            XCTAssertThrowsError(try MLflowServer(bad), bad)
        }
        XCTAssertEqual(try MLflowServer("http://127.0.0.1:5000/").description, "http://127.0.0.1:5000")
        XCTAssertEqual(try MLflowServer("https://mlflow.example.org/team").page(ofExperiment: "4"), "https://mlflow.example.org/team/#/experiments/4")
    }
}
