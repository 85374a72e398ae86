import XCTest
import Foundation
import NN
import Tracking
import Training
@testable import Session

/// A sweep spread over ranks, each rank a session on its own thread joined by a group of
/// threads (the real mpirun is in OllieTests/MPISweepTests): rank 0 records every run as a
/// one-process sweep would, bit for bit; a follower's failure or Ctrl-C ends every rank.
final class SweepRanksTests: SessionTestCase {
    var follower: Session!
    var followerConsole = BufferConsole()

    func rows(_ sql: String, in store: RunStore? = nil) throws -> [[String]] { try (store ?? session.store!).query(sql).rows }

    override func setUpWithError() throws {
        try super.setUpWithError()
        follower = Session(store: nil, checkpointDirectory: folder + "/rank-1")
        follower.isFollower = true
        let ranks = ThreadGroup(ranks: 2)
        session.rankSweep.group = ThreadGroup.Member(ranks, rank: 0)
        follower.rankSweep.group = ThreadGroup.Member(ranks, rank: 1)
    }

    /// The same line on both ranks at once, each on its own thread; rank 0's output.
    @discardableResult
    func onRanks(_ line: String, ok: Bool = true, file: StaticString = #filePath, lineNumber: UInt = #line) -> String {
        console.clear()
        followerConsole.clear()
        let jobs = [RankJob(session, console), RankJob(follower, followerConsole)]
        let done = DispatchGroup()
        for job in jobs {
            done.enter()
            Thread {
                job.result = job.session.execute(line, console: job.console)
                done.leave()
            }.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success, "the ranks hang on \(line)", file: file, line: lineNumber)
        XCTAssertEqual(jobs[0].result, ok, "\(line) → \(console.text)", file: file, line: lineNumber)
        // (Under mpirun its console is silent: rank 0 speaks for the job.)
        XCTAssertTrue(followerConsole.lines.allSatisfy { $0.hasPrefix("error: ") }, "a follower says nothing more: \(followerConsole.text)", file: file, line: lineNumber)
        return console.text
    }

    func loadBoth(followerData: String? = nil) throws {
        try loadTiny()
        try loadTiny(into: follower, console: followerConsole)
        if let followerData { XCTAssertTrue(follower.execute("load idx \(followerData)", console: followerConsole)) }
        run("set threads 1")
        XCTAssertTrue(follower.execute("set threads 1", console: followerConsole))
    }

    /// The one-process sweep of `line` in a database of its own.
    func reference(_ line: String) throws -> Session {
        let reference = Session(store: try RunStore(path: folder + "/reference.sqlite"), checkpointDirectory: folder + "/reference")
        let quiet = BufferConsole()
        try loadTiny(into: reference, console: quiet)
        XCTAssertTrue(reference.execute("set threads 1; " + line, console: quiet), quiet.text)
        return reference
    }

    /// Everything recorded of each configuration's run that does not depend on timing, exactly.
    func record(_ store: RunStore) throws -> [[String]] {
        let configs = try rows("SELECT config, run, epochs, status FROM sweep_runs ORDER BY config", in: store)
        return try configs.flatMap { c -> [[String]] in
            let run = c[1]
            return [[c[0], c[2], c[3]]]
                + (try rows("SELECT status, epochs, printf('%!.17g', best_accuracy), best_epoch, printf('%!.17g', final_loss), model, parameter_count FROM runs WHERE id = \(run)", in: store))
                + (try rows("SELECT epoch, name, printf('%!.17g', value) FROM metrics WHERE run = \(run) AND name NOT LIKE '%seconds' AND name != 'images_per_second' ORDER BY epoch, name", in: store))
                + (try rows("SELECT name, value, from_epoch FROM params WHERE run = \(run) ORDER BY name, from_epoch", in: store))
                + (try rows("SELECT epoch, kind, detail FROM events WHERE run = \(run) ORDER BY rowid", in: store).map { e in
                    // Its JSON's keys come in any order.
                    guard e[1] == BestConfusionRecord.eventKind, let object = try? JSONSerialization.jsonObject(with: Data(e[2].utf8)),
                          let sorted = try? JSONSerialization.data(withJSONObject: object, options: .sortedKeys) else { return e }
                    return [e[0], e[1], String(decoding: sorted, as: UTF8.self)]
                })
                + (try rows("SELECT step, epoch, name, printf('%!.17g', value) FROM step_metrics WHERE run = \(run) ORDER BY step", in: store))
        }
    }

    /// Every kept epoch state and best checkpoint of the sweep's runs, by configuration: tensors as bits, metadata
    /// but the run id and the database (which differ between two databases by design).
    func files(_ session: Session) throws -> [String: String] {
        let store = session.store!
        var result: [String: String] = [:]
        for c in try rows("SELECT config, run FROM sweep_runs ORDER BY config", in: store) {
            let run = Int64(c[1])!
            var paths = session.keptEpochs(run: run).map { ("epoch-\($0)", session.epochStatePath(run: run, epoch: $0)) }
            paths.append(("best", "\(session.checkpointDirectory)/run-\(run)-best.safetensors"))
            for (name, path) in paths {
                let (tensors, metadata) = try Checkpoint.load(from: path)
                XCTAssertNotNil(metadata["ollie.database"], "\(path) names its database")
                let meta = metadata.filter { !["ollie.run", "ollie.database"].contains($0.key) }.sorted { $0.key < $1.key }
                result["config \(c[0]) \(name)"] = "\(meta)" + tensors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.data.map(\.bitPattern))" }.joined()
            }
        }
        return result
    }

    func testTwoRanksRecordAGridSweepAsOneProcessDoesBitForBit() throws {
        try loadBoth()
        let line = "sweep lr 1e-3,3e-3 batch 16,32 train 2"
        let text = onRanks(line)
        XCTAssertTrue(text.contains("sweep 1 spreads its runs over 2 MPI ranks"), text)
        XCTAssertTrue(text.contains("sweep 1 [1/4] run 1 on rank 0: lr 1e-3, batch 16; epochs 1–2"), text)
        XCTAssertTrue(text.contains("sweep 1 [2/4] run 2 on rank 1: lr 1e-3, batch 32; epochs 1–2"), text)
        XCTAssertTrue(text.contains("  run 2 on rank 1: [2] test accuracy"), text)
        XCTAssertTrue(text.contains("sweep 1 finished: 4 runs, 8 epochs"), text)
        for line in console.lines where !line.contains("saved to") { XCTAssertLessThanOrEqual(line.count, 80, line) }
        let reference = try reference(line)
        let ours = try record(session.store!)
        XCTAssertEqual(ours, try record(reference.store!))
        XCTAssertEqual(ours.filter { $0.count == 3 && $0[1] == "train_loss" && Double($0[2]) != nil }.count, 8, "\(ours)")
        XCTAssertEqual(try files(session), try files(reference))
        XCTAssertEqual(try rows("SELECT kind, state FROM sweeps"), [["grid", "finished"]])
        XCTAssertEqual(try rows("SELECT count(*) FROM params WHERE name = 'ranks'"), [["0"]], "each run trained in one process")
        // Both ranks end on the best run, agreeing as `train` will check.
        XCTAssertEqual(follower.runID, session.runID)
        XCTAssertEqual(follower.rankState().prefix(3), session.rankState().prefix(3))
        XCTAssertTrue(run("compare where sweep = 1").contains("lr"))
    }

    func testHalvingOverTwoRanksContinuesRunsFromRankZerosStates() throws {
        try loadBoth()
        // Ranked by validation loss; each run's test score is recorded after its train.
        let settings = "set val 0.25; set monitor val_loss"
        run(settings)
        XCTAssertTrue(follower.execute(settings, console: followerConsole))
        let text = onRanks("sweep lr 1e-4,3e-4,1e-3,3e-3 halving train 4")
        XCTAssertTrue(text.contains("sweep 1 finished: 4 runs, 8 epochs (50% of the 16 without halving)"), text)
        XCTAssertTrue(text.contains("on rank 1: [1] val accuracy"), text)
        XCTAssertEqual(try rows("SELECT count(DISTINCT run) FROM metrics WHERE name = 'test_accuracy'"), [["4"]])
        // The second rung's two survivors go to ranks 0 and 1, each continuing its epoch 1.
        XCTAssertTrue(text.contains(" on rank 1: ") && text.contains("; epoch 2\n"), text)
        let reference = try reference(settings + "; sweep lr 1e-4,3e-4,1e-3,3e-3 halving train 4")
        XCTAssertEqual(try record(session.store!), try record(reference.store!))
        XCTAssertEqual(try files(session), try files(reference))
        XCTAssertEqual(try rows("SELECT status FROM runs ORDER BY id").map { $0[0] }.sorted(), ["finished", "pruned", "pruned", "pruned"])
        XCTAssertEqual(follower.rankState().prefix(3), session.rankState().prefix(3))
    }

    func testCtrlCOnARankStopsTheSweepAndOneProcessFinishesItTheSame() throws {
        try loadBoth()
        let line = "sweep lr 1e-3,3e-3 train 2"
        let polls = Counter()
        follower.isInterrupted = { polls.next() >= 12 }   // 8 batches an epoch: inside epoch 2 of run 2
        let text = onRanks(line)
        XCTAssertTrue(text.contains("sweep 1 stopped (Ctrl-C) in run 2 on rank 1; continue it with: sweep resume 1"), text)
        XCTAssertTrue(text.contains("  run 2 on rank 1: [1] test accuracy"), text)
        XCTAssertEqual(try rows("SELECT state FROM sweeps"), [["interrupted"]])
        XCTAssertEqual(try rows("SELECT status, epochs FROM runs ORDER BY id"), [["finished", "2"], ["interrupted", "1"]])
        XCTAssertEqual(try rows("SELECT epoch, kind FROM events WHERE run = 2 AND kind = 'interrupted'"), [["2", "interrupted"]])
        _ = session.endRun()

        // Another process, alone, carries on; the record ends as one unbroken sweep's.
        let other = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        let output = BufferConsole()
        XCTAssertTrue(other.execute("load idx \(folder)/q; sweep resume 1", console: output), output.text)
        XCTAssertTrue(output.text.contains("sweep 1 [2/2] run 2: lr 3e-3; epoch 2"), output.text)
        XCTAssertTrue(output.text.contains("sweep 1 finished: 2 runs, 4 epochs"), output.text)
        let reference = try reference(line)
        // Run 2's Ctrl-C stays in its history: it differs by that event alone.
        XCTAssertEqual(try record(session.store!).filter { $0.count != 3 || $0[1] != "interrupted" }, try record(reference.store!))
    }

    func testAFollowersFailureEndsTheSweepOnEveryRankInOneLine() throws {
        try writeQuadrantIDX(to: folder + "/other", train: 256, test: 64, seed: 2)
        try loadBoth(followerData: folder + "/other")
        let text = onRanks("sweep lr 1e-3,3e-3,1e-2 train 1", ok: false)
        let errors = console.lines.filter { $0.hasPrefix("error: ") }
        XCTAssertEqual(errors.count, 1, text)
        XCTAssertTrue(errors[0].contains("sweep 1 stopped: run 2 on rank 1 failed: rank 1's data differ from the sweep's"), text)
        XCTAssertTrue(errors[0].contains("continue it with: sweep resume 1"), text)
        XCTAssertTrue(follower.lastFailure?.contains("rank 1's data differ") == true, follower.lastFailure ?? "no failure")
        follower.lastFailure = nil
        XCTAssertEqual(try rows("SELECT state FROM sweeps"), [["interrupted"]])
        // Rank 0's run of the round is recorded; rank 1's is marked failed with why.
        XCTAssertEqual(try rows("SELECT id, status, epochs FROM runs ORDER BY id"), [["1", "finished", "1"], ["2", "failed", "0"]])
        XCTAssertEqual(try rows("SELECT count(*) FROM events WHERE run = 2 AND kind = 'rank_failure'"), [["1"]])
        // A refusal on rank 0 ends the followers too, before anything trains.
        XCTAssertTrue(onRanks("sweep lrr 1e-3,3e-3 train 1", ok: false).contains("unknown setting 'lrr'"))
        XCTAssertTrue(follower.lastFailure?.contains("unknown setting 'lrr'") == true)
        XCTAssertEqual(try rows("SELECT count(*) FROM sweeps"), [["1"]])
    }
}

/// One rank's line on its thread.
final class RankJob: @unchecked Sendable {
    let session: Session
    let console: BufferConsole
    var result = false
    init(_ session: Session, _ console: BufferConsole) { self.session = session; self.console = console }
}

