import XCTest
import Foundation
@testable import Tracking

/// Tests that need other processes writing through `RunStore`: the test binary starts copies
/// of itself that run only `ChildWriter.testWriteEpochsWhenStartedAsAChild`.
final class ProcessTests: TrackingTestCase {
    /// A child writing `epochs` epochs (forever when nil) of one run into `path`.
    func startChild(path: String, epochs: Int?) throws -> Process {
        let binary = ProcessInfo.processInfo.arguments[0]
        guard FileManager.default.isExecutableFile(atPath: binary), binary.hasSuffix(".xctest") else {
            throw XCTSkip("the test binary \(binary) cannot be started as a child here")
        }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: binary)
        child.arguments = ["TrackingTests.ChildWriter/testWriteEpochsWhenStartedAsAChild"]
        var environment = ProcessInfo.processInfo.environment
        environment["OLLIE_TRACKING_CHILD_DB"] = path
        environment["OLLIE_TRACKING_CHILD_EPOCHS"] = epochs.map(String.init) ?? "forever"
        child.environment = environment
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        return child
    }

    func testTwoProcessesWritingAtOnceLoseNothing() throws {
        let path = temporaryDatabase()
        let children = try (0..<2).map { _ in try startChild(path: path, epochs: 150) }
        for child in children { child.waitUntilExit() }
        XCTAssertEqual(children.map(\.terminationStatus), [0, 0])
        let store = try RunStore(path: path)
        XCTAssertEqual(try store.runs().map(\.status), ["finished", "finished"])
        XCTAssertEqual(try store.runs().map(\.epochs), [150, 150])
        XCTAssertEqual(try store.query("SELECT count(*) FROM metrics").rows, [["1500"]])
        XCTAssertEqual(try store.query("SELECT count(DISTINCT session) FROM runs").rows, [["2"]])
        XCTAssertEqual(try RunStore.integrityCheck(path: path), "ok")
    }

    /// kill -9 at some moment of a child's write loop: the file stays sound, every epoch is
    /// whole (all its metrics and the run's summary agree), and the run is found crashed.
    func testKillDashNineLeavesWholeEpochsAndACrashedRun() throws {
        let path = temporaryDatabase()
        let reader = try RunStore(path: path)
        for round in 1...3 {
            let child = try startChild(path: path, epochs: nil)
            // This child writes forever: never leave it running when the test fails early.
            defer { if child.isRunning { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() } }
            let deadline = Date().addingTimeInterval(30)
            // Wait until this child's run has some epochs, then kill it a little later.
            while try reader.query("SELECT count(*) FROM runs WHERE id = \(round) AND epochs >= 5").rows != [["1"]] {
                guard Date() < deadline, child.isRunning else { return XCTFail("child \(round) wrote no epochs") }
                usleep(5_000)
            }
            usleep(UInt32.random(in: 0...20_000))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            XCTAssertEqual(child.terminationReason, .uncaughtSignal)
        }
        XCTAssertEqual(try RunStore.integrityCheck(path: path), "ok")
        let store = try RunStore(path: path)
        XCTAssertEqual(try store.runs().map(\.status), ["crashed", "crashed", "crashed"])
        for run in try store.runs() {
            let counts = try store.query("SELECT count(*), count(DISTINCT epoch), max(epoch) FROM metrics WHERE run = \(run.id)").rows[0]
            XCTAssertEqual(counts, ["\(5 * run.epochs)", "\(run.epochs)", "\(run.epochs)"], "run \(run.id)")
            XCTAssertEqual(try store.query("SELECT count(*) FROM events WHERE run = \(run.id)").rows, [["\(run.epochs)"]])
            XCTAssertEqual(run.trainSeconds, 2 * Double(run.epochs))
            XCTAssertEqual(run.bestEpoch, run.epochs)
        }
    }
}

final class ChildWriter: XCTestCase {
    /// Does nothing in a normal test run; it is the body of the children ProcessTests starts.
    func testWriteEpochsWhenStartedAsAChild() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let path = environment["OLLIE_TRACKING_CHILD_DB"] else { return }
        let epochs = Int(environment["OLLIE_TRACKING_CHILD_EPOCHS"] ?? "") ?? Int.max
        let store = try RunStore(path: path)
        let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 10, seed: 1, params: defaultParams)
        var e = 0
        while e < epochs {
            e += 1
            try store.recordEpoch(run: run, epoch(e, accuracy: 0.9, loss: 1 / Double(e), events: [("new_best", "0.9")]))
        }
        try store.finishRun(run: run, status: .finished, checkpoint: nil)
    }
}
