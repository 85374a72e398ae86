import XCTest
import Foundation
import Tracking
@testable import Session

/// Helpers shared by the MLflow tests: the run database's rows as MLflow should hold them.
extension SessionTestCase {
    /// `metrics` rows of a run: name → [[epoch, value, time in ms]], as MLflow's histories read.
    /// (Values exactly, through the store; SQL text would round them.)
    func metricRows(run: Int64) throws -> [String: [[Double]]] {
        let store = session.store!
        let values = try XCTUnwrap(store.comparison(of: [run]).runs.first).metrics
        var rows: [String: [[Double]]] = [:]
        for row in try store.query("SELECT name, epoch, CAST(round(time * 1000) AS INTEGER) FROM metrics WHERE run = \(run) ORDER BY name, epoch").rows {
            let epoch = Int(row[1])!
            let value = try XCTUnwrap(values[row[0]]?.first { $0.epoch == epoch }?.value)
            rows[row[0], default: []].append([Double(epoch), value, Double(row[2])!])
        }
        return rows
    }

    func databaseID() throws -> String { try session.store!.databaseIdentity() }

    /// Waits until no run of this database waits for an MLflow server.
    func waitForBacklogToEmpty(_ store: RunStore, seconds: Double, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? store.mlflowBacklog().isEmpty) == true { return }
            usleep(200_000)
        }
        XCTFail("runs still waiting for MLflow after \(seconds) s: \((try? store.mlflowBacklog()) ?? [])", file: file, line: line)
    }
}

/// Against a real `mlflow server` (one for the whole class: it takes seconds to start).
final class MLflowServerTests: SessionTestCase {
    nonisolated(unsafe) static var peer: MLflowPeer?
    nonisolated(unsafe) static var startProblem: String?

    override class func setUp() {
        super.setUp()
        guard MLflowPeer.missing == nil else { return }
        do { peer = try MLflowPeer() } catch { startProblem = "\(error)" }
    }

    override class func tearDown() {
        peer?.stop()
        peer = nil
        super.tearDown()
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        if let missing = MLflowPeer.missing {
            // CI installs the peers first (.ci/run); a missing one there is a broken setup, not a skip.
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail(missing); throw missing.asError }
            throw XCTSkip(missing)
        }
        if let problem = MLflowServerTests.startProblem { XCTFail(problem); throw problem.asError }
    }

    var url: String { MLflowServerTests.peer!.url }

    func readBack(experiment: String = "runs") throws -> [MLflowPeer.ExportedRun] {
        try MLflowPeer.readBack(url: url, experiment: experiment, database: try databaseID())
    }

    func testExportedHistoriesEqualTheDatabaseAndExportingAgainNeverDuplicates() throws {
        loadQuadrants()
        run("build conv; set threads 1; train 2; set lr 1e-3; train 2")
        run("note \"quadrants, lr lowered at 3\"")
        let first = run("export mlflow \(url)")
        XCTAssertTrue(first.contains("run 1 → MLflow run ") && first.contains("(created, "), first)
        XCTAssertTrue(first.contains("1 run in MLflow experiment \"runs\": \(url)/#/experiments/"), first)

        var exported = try readBack()
        XCTAssertEqual(exported.count, 1)
        let mlflow = try XCTUnwrap(exported.first)
        let summary = try session.store!.run(1)
        XCTAssertEqual(mlflow.status, "FINISHED")
        XCTAssertEqual(mlflow.start, Int64((summary.created.timeIntervalSince1970 * 1000).rounded()))
        XCTAssertEqual(mlflow.end, summary.finished.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) })
        // Every metrics row, as MLflow's own client reads the histories back.
        var expected = try metricRows(run: 1)
        XCTAssertEqual(expected["train_loss"]?.count, 4)
        // A setting changed mid-run: its starting value as the param, its value per epoch as a metric.
        XCTAssertEqual(mlflow.params["lr"], "3e-3")
        XCTAssertEqual(mlflow.params["batch"], "32")
        XCTAssertEqual(mlflow.histories["lr"]?.map { [$0[0], $0[1]] }, [[1, 3e-3], [2, 3e-3], [3, 1e-3], [4, 1e-3]])
        XCTAssertEqual(mlflow.tags["ollie.changed.lr"], "3e-3 → 1e-3@3")
        expected["lr"] = mlflow.histories["lr"]
        XCTAssertEqual(mlflow.histories, expected)
        XCTAssertEqual(mlflow.tags["ollie.spec"], session.modelText)
        XCTAssertEqual(mlflow.tags["mlflow.note.content"], "quadrants, lr lowered at 3")
        XCTAssertEqual(mlflow.tags["ollie.dataset"], "quadrants")
        XCTAssertTrue(mlflow.tags["ollie.events"]?.contains("epoch 1: new_best") == true, "\(mlflow.tags)")

        // Again: nothing new is sent, and there is still one run with the same histories.
        XCTAssertTrue(run("export mlflow \(url)").contains("(up to date)"))
        XCTAssertEqual(try readBack().map(\.histories), [expected])

        // Another epoch: only it is sent.
        run("train 1")
        let update = run("export mlflow \(url) 1")
        XCTAssertTrue(update.contains("(updated, 8 new metric values)"), update)   // an epoch's 7 metrics, train_accuracy among them, and the lr
        exported = try readBack()
        XCTAssertEqual(exported.count, 1)
        expected = try metricRows(run: 1)
        expected["lr"] = exported.first?.histories["lr"]
        XCTAssertEqual(exported.first?.histories["lr"]?.count, 5)
        XCTAssertEqual(exported.first?.histories, expected)
        XCTAssertTrue(run("runs").split(separator: "\n").allSatisfy { !$0.contains("not yet in MLflow") })
    }

    func testLiveLoggingSendsEpochsWhileTraining() throws {
        loadQuadrants()
        let set = run("set mlflow \(url)")
        XCTAssertTrue(set.contains("training logs live to MLflow experiment \"runs\" at \(url)"), set)
        run("build conv; set threads 1; train 3")
        let live = try XCTUnwrap(session.mlflow.live)
        XCTAssertTrue(live.waitUntilSent(seconds: 20), live.lastProblem ?? "")
        let exported = try readBack()
        XCTAssertEqual(exported.map(\.ollieRun), [1])
        XCTAssertEqual(exported.first?.status, "FINISHED")
        XCTAssertEqual(exported.first?.histories, try metricRows(run: 1))
        XCTAssertTrue(run("set mlflow off").hasPrefix("mlflow = off (was \(url))"))
        XCTAssertNil(session.mlflow.live)
    }

    func testServerErrorsAreOneLineWithMLflowsOwnMessageAndTheRunWaits() throws {
        loadQuadrants()
        run("build conv; set threads 1; train 1")
        // A run on the server claims to be this one with another lr: MLflow refuses to change a param.
        try createConflictingRun(experiment: "conflict", database: try databaseID())
        let text = run("export mlflow \(url) experiment conflict", ok: false)
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2, text)
        XCTAssertTrue(lines[0].hasPrefix("run 1: not exported: the MLflow server at \(url) answered HTTP 400 to runs/log-batch: INVALID_PARAMETER_VALUE: Changing param values is not allowed"), text)
        XCTAssertEqual(lines.last, "error: 1 of 1 runs not exported (1); they wait, and runs lists them")
        XCTAssertTrue(run("runs").contains("1 run not yet in MLflow at \(url) (run 1; server answered HTTP 400 to runs/log-batch: INVALID_PARAMETER_VALUE"))
        XCTAssertTrue(run("export mlflow \(url) forget").hasPrefix("1 run no longer waiting"))
        XCTAssertFalse(run("runs").contains("not yet in MLflow"))
    }

    func createConflictingRun(experiment: String, database: String) throws {
        let script = """
            import sys
            from mlflow.tracking import MlflowClient
            client = MlflowClient(sys.argv[1])
            experiment = client.create_experiment(sys.argv[2])
            run = client.create_run(experiment, tags={"ollie.run_id": "1", "ollie.database": sys.argv[3]})
            client.log_param(run.info.run_id, "lr", "9")
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: MLflowPeer.python!)
        process.arguments = ["-c", script, url, experiment, database]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
    }

    /// A server down while training: training keeps its pace, `runs` says what waits, and once
    /// the server is up the live exporter delivers, and so does the next process for the runs
    /// an earlier one left waiting.
    func testADownServerNeverSlowsTrainingAndGetsEverythingOnceUp() throws {
        let port = try freePort()
        let later = "http://127.0.0.1:\(port)"
        loadQuadrants()
        run("build conv; set threads 1; set batch 64")

        // Another database, exported while the server is down: one quick line, and the run waits.
        let otherPath = folder + "/other.sqlite"
        var other: Session? = Session(store: try RunStore(path: otherPath), checkpointDirectory: folder + "/other-checkpoints")
        other!.workbench = .data(quadrants())
        other!.settings.target = 2
        XCTAssertTrue(other!.execute("build mlp 8; set threads 1; train 1", console: console))
        console.clear()
        let started = Date()
        XCTAssertFalse(other!.execute("export mlflow \(later)", console: console))
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
        XCTAssertEqual(console.lines.count, 1, console.text)
        XCTAssertTrue(console.text.hasPrefix("error: cannot reach the MLflow server at \(later) (connection refused); 1 run not exported waits for it"), console.text)
        console.clear()
        _ = other!.execute("runs", console: console)
        XCTAssertTrue(console.text.contains("1 run not yet in MLflow at \(later) (run 1; server unreachable: connection refused)"), console.text)
        other = nil   // its process ends; the run waits in its database

        // Live logging to the down server: training's pace is that of training without it.
        run("train 2")
        let quiet = try session.store!.run(1).trainSeconds
        run("reset")
        XCTAssertTrue(run("set mlflow \(later)").contains("warning: cannot reach the MLflow server at \(later) (connection refused)"))
        let clock = Date()
        run("train 2")
        let wall = Date().timeIntervalSince(clock)
        XCTAssertLessThan(wall, 3 * quiet + 1.5, "training with a down server took \(wall) s, without \(quiet) s")
        let footer = run("runs")
        XCTAssertTrue(footer.contains("1 run not yet in MLflow at \(later) (run 2; server unreachable: connection refused); retrying in the background"), footer)

        // The server comes up: the live exporter retries and delivers run 2.
        let peer = try MLflowPeer(port: port)
        defer { peer.stop() }
        waitForBacklogToEmpty(session.store!, seconds: 30)
        let exported = try MLflowPeer.readBack(url: later, experiment: "runs", database: try databaseID())
        XCTAssertEqual(exported.map(\.ollieRun), [2])
        XCTAssertEqual(exported.first?.histories, try metricRows(run: 2))

        // The other database's run is sent by the next process that opens it.
        let store = try RunStore(path: otherPath)
        let reopened = Session(store: store, checkpointDirectory: folder + "/other-checkpoints")
        waitForBacklogToEmpty(store, seconds: 30)
        let otherRuns = try MLflowPeer.readBack(url: later, experiment: "other", database: try store.databaseIdentity())
        XCTAssertEqual(otherRuns.map(\.ollieRun), [1])
        XCTAssertEqual(otherRuns.first?.histories["train_loss"]?.count, 1)
        _ = reopened
    }
}

/// What needs no server: mistakes, and a server that never answers.
final class MLflowInputTests: SessionTestCase {
    func testBadExportInputIsOneLineAndChangesNothing() throws {
        loadQuadrants()
        run("build conv; set threads 1; train 1")
        XCTAssertEqual(run("export mlflow notaurl", ok: false),
                       "error: 'notaurl' is not an MLflow server URL; give one like http://127.0.0.1:5000 (where `mlflow server` listens)")
        XCTAssertTrue(run("export mlflow ftp://host/", ok: false).contains("is not an MLflow server URL"))
        XCTAssertEqual(run("export mlflow http://127.0.0.1:5000 7", ok: false),
                       "error: no run 7 in the run database \(folder)/runs.sqlite; list them with: runs")
        XCTAssertTrue(run("export mlflow http://127.0.0.1:5000 1 bogus", ok: false).contains("'bogus' is not a run id"))
        XCTAssertTrue(run("export csv x", ok: false).contains("export mlflow URL [IDS] | export onnx FILE (got 'csv')"))
        XCTAssertTrue(run("export mlflow http://127.0.0.1:5000 experiment", ok: false).contains("experiment needs a name"))
        XCTAssertTrue(run("set mlflow notaurl", ok: false).contains("'notaurl' is not an MLflow server URL"))
        XCTAssertEqual(session.settings.mlflowServer, nil)
        XCTAssertTrue(try session.store!.mlflowBacklog().isEmpty)
        XCTAssertFalse(run("runs").contains("MLflow"))
        XCTAssertTrue(run("help export").contains("example: export mlflow http://127.0.0.1:5000 3 4"))
        XCTAssertTrue(run("show").contains("mlflow"))
        XCTAssertEqual(session.completions(for: "export "), ["mlflow", "onnx"])
    }

    func testLiveLoggingNeedsTheRunDatabase() {
        let bare = Session(store: nil)
        XCTAssertFalse(bare.execute("set mlflow http://127.0.0.1:5000", console: console))
        XCTAssertTrue(console.text.hasPrefix("error: no run database"), console.text)
        XCTAssertNil(bare.settings.mlflowServer)
    }

    /// Waiting for a server that never answers blocks in poll(2): the process uses next to no
    /// CPU meanwhile (URLSession on Linux spun a core for the whole wait).
    func testWaitingOnAHangingServerBlocksRatherThanSpins() throws {
        let hanging = try ListeningSocket()
        defer { hanging.close() }
        let client = MLflowClient(server: try MLflowServer("http://127.0.0.1:\(hanging.port)"), timeoutSeconds: 1)
        let (cpu, clock) = (processCPUSeconds(), Date())
        XCTAssertThrowsError(try client.checkHealth()) { error in
            XCTAssertTrue("\(error)".contains("no answer within the timeout"), "\(error)")
        }
        let wall = Date().timeIntervalSince(clock), used = processCPUSeconds() - cpu
        XCTAssertGreaterThan(wall, 0.9, "it waited for the timeout")
        XCTAssertLessThan(wall, 5)
        XCTAssertLessThan(used, 0.25 * wall, "\(used) s of CPU in \(wall) s of waiting")
    }

    /// A run that cannot be sent for good (gone from the database) is dropped, and the exporter
    /// then sleeps until asked again: its retry time, now past, once made its wait return at
    /// once, a spin.
    func testAnIdleExporterSleepsAfterAFailureItWillNotRetry() throws {
        let exporter = LiveExporter(store: session.store!, server: try MLflowServer("http://127.0.0.1:\(try freePort())"), experiment: "runs")
        exporter.enqueue(99)
        // The run is refused before any request; then the retry time (0.5 s) passes with
        // nothing queued. The exporter's lock is left alone until the measure is taken: a
        // spinning exporter holds it nearly all the time.
        Thread.sleep(forTimeInterval: 1.5)
        let (cpu, clock) = (processCPUSeconds(), Date())
        Thread.sleep(forTimeInterval: 1)
        let used = processCPUSeconds() - cpu, wall = Date().timeIntervalSince(clock)
        guard used < 0.25 * wall else {
            return XCTFail("\(used) s of CPU in \(wall) s of an idle exporter (left spinning: stopping it would wait on its lock)")
        }
        XCTAssertTrue(exporter.lastProblem?.contains("no run 99") == true, exporter.lastProblem ?? "no problem recorded")
        exporter.stop()
    }

    /// A process ends without waiting for runs an earlier one left for a server that hangs;
    /// what live logging queued gets a bounded wait that is said, and only then.
    func testTheEndOfASessionWaitsOnlyForWhatLiveLoggingQueuedAndSaysSo() throws {
        let hanging = try ListeningSocket()
        defer { hanging.close() }
        let url = "http://127.0.0.1:\(hanging.port)"
        let store = session.store!
        let run = try store.startRun(dataset: "quadrants", model: "conv", parameterCount: 1, seed: 1, params: [])
        try store.markForMLflow(runs: [run], server: url, experiment: "runs")
        // A new session catches up in the background; its end does not wait for that.
        let later = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        var clock = Date()
        later.finishMLflow(console)
        XCTAssertLessThan(Date().timeIntervalSince(clock), 0.5)
        XCTAssertEqual(console.text, "")
        // Live logging with a send in flight: one line, then at most the wait it names.
        loadQuadrants()
        session.mlflow.live = LiveExporter(store: store, server: try MLflowServer(url), experiment: "runs", timeoutSeconds: 30)
        session.mlflow.live!.enqueue(run)
        clock = Date()
        session.mlflow.finish(seconds: 1, announce: { self.console.write($0) })
        let waited = Date().timeIntervalSince(clock)
        XCTAssertEqual(console.text, "MLflow: still sending to \(url); waiting up to 1 s (Ctrl-C leaves it to the next ollie process: the runs stay marked in the database)")
        XCTAssertGreaterThan(waited, 0.9)
        XCTAssertLessThan(waited, 3)
        XCTAssertEqual(try store.mlflowBacklog().map(\.run), [run], "what was not sent stays marked")
        // Ctrl-C cuts the wait short.
        console.clear()
        session.mlflow.live = LiveExporter(store: store, server: try MLflowServer(url), experiment: "runs", timeoutSeconds: 30)
        session.mlflow.live!.enqueue(run)
        clock = Date()
        session.mlflow.finish(seconds: 20, announce: { self.console.write($0) }, isInterrupted: { Date().timeIntervalSince(clock) > 0.3 })
        XCTAssertLessThan(Date().timeIntervalSince(clock), 3)
    }

    /// A server that accepts the connection and never answers holds the exporter for its
    /// timeout, never the training.
    func testAHangingServerNeverHoldsUpTraining() throws {
        let hanging = try ListeningSocket()
        defer { hanging.close() }
        loadQuadrants()
        run("build conv; set threads 1; set batch 64")
        run("train 2")
        let quiet = try session.store!.run(1).trainSeconds
        run("reset")
        XCTAssertTrue(run("set mlflow http://127.0.0.1:\(hanging.port)").contains("warning:"))
        let clock = Date()
        run("train 2")
        let wall = Date().timeIntervalSince(clock)
        XCTAssertLessThan(wall, 3 * quiet + 1.5, "training with a hanging server took \(wall) s, without \(quiet) s")
        XCTAssertEqual(try session.store!.mlflowBacklog().map(\.run), [2])
        run("set mlflow off")
    }
}

extension String {
    var asError: TrackingError { TrackingError(self) }
}

/// CPU seconds this process has used, all threads.
func processCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}
