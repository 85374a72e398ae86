import XCTest
import Foundation
import NN
import Tensor
import Tracking

/// `sweep` under a real `mpirun`: runs spread over the ranks, recorded by rank 0 as one
/// process records them (bit for bit), a rank lost mid-sweep, `sweep resume` afterwards.
final class MPISweepTests: XCTestCase, MPIJobTest, @unchecked Sendable {
    var folder = ""
    var mpirun = ""
    /// A tiny net, one thread a run: a run's numbers depend on its configuration, seed and threads.
    let recipe = "load idx data; build conv 3 4 relu | batchnorm | pool 2 | dropout 0.3 | dense 4; set batch 64; set target off; set threads 1"

    override func setUpWithError() throws {
        mpirun = try MPITests.findMPIRun()
        folder = NSTemporaryDirectory() + "ollie-mpisweep-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try writeIDXDataset(to: folder + "/data", train: 600, test: 100, side: 12)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func ollie(_ database: String, _ commands: String) throws -> String {
        let (status, output, _) = try run(binary, ["--db", "\(folder)/\(database).sqlite", "-c", commands])
        XCTAssertEqual(status, 0, output)
        return output
    }

    /// Every run's metrics that do not depend on timing, exactly, with the sweep's record.
    func record(_ database: String) throws -> [[String]] {
        let store = try RunStore(path: "\(folder)/\(database).sqlite", readOnly: true)
        return try store.query("""
            SELECT run, epoch, name, printf('%!.17g', value) FROM metrics
            WHERE name NOT LIKE '%seconds' AND name != 'images_per_second' ORDER BY run, epoch, name
            """).rows
            + store.query("SELECT id, status, epochs, printf('%!.17g', best_accuracy) FROM runs ORDER BY id").rows
            + store.query("SELECT config, run, epochs, status FROM sweep_runs ORDER BY config").rows
            + store.query("SELECT id, kind, state, rung FROM sweeps").rows
    }

    /// The state after each run's last epoch, tensor by tensor as raw bits.
    func lastStates(_ database: String) throws -> [String: [UInt32]] {
        let store = try RunStore(path: "\(folder)/\(database).sqlite", readOnly: true)
        var bits: [String: [UInt32]] = [:]
        for row in try store.query("SELECT id, epochs FROM runs").rows {
            let path = "\(folder)/checkpoints/\(database)/run-\(row[0])/epoch-\(row[1]).safetensors"
            for (name, t) in try Checkpoint.load(from: path).tensors { bits["run \(row[0]) \(name)"] = t.data.map(\.bitPattern) }
        }
        return bits
    }

    func testTwoRanksTrainAGridSweepAsOneProcessRecordsItBitForBit() throws {
        let sweep = "; sweep lr 1e-3,3e-3 batch 32,64 train 2"
        let (status, output, seconds) = try mpiOllie(ranks: 2, database: "ranks", ["-c", recipe + sweep])
        XCTAssertEqual(status, 0, output)
        XCTAssertLessThan(seconds, 30, output)
        _ = try ollie("single", recipe + sweep)
        let ranks = try record("ranks")
        XCTAssertEqual(ranks, try record("single"))
        XCTAssertEqual(ranks.filter { $0.count == 4 && $0[2] == "train_loss" && Double($0[3]) != nil }.count, 8, "\(ranks)")
        XCTAssertEqual(try lastStates("ranks"), try lastStates("single"))
        // Rank 0 alone speaks: each line once, naming the rank that trains each run.
        XCTAssertTrue(output.contains("sweep 1 [2/4] run 2 on rank 1: lr 1e-3, batch 64; epochs 1–2"), output)
        XCTAssertEqual(output.components(separatedBy: "sweep 1 finished: 4 runs, 8 epochs").count, 2, output)
        for line in output.split(separator: "\n") { XCTAssertLessThanOrEqual(line.count, 80, String(line)) }
        let store = try RunStore(path: "\(folder)/ranks.sqlite", readOnly: true)
        XCTAssertEqual(try store.query("SELECT count(*) FROM params WHERE name = 'ranks'").rows, [["0"]])
    }

    func testAHalvingSweepLosingARankResumesUnderMPIRunAsOneUnbrokenSweep() throws {
        let sweep = "; sweep lr 1e-3,3e-3,1e-2,3e-2 halving train 2"
        let (status, output, _) = try mpiOllie(ranks: 2, database: "ranks", ["-c", recipe + sweep])
        XCTAssertEqual(status, 0, output)
        _ = try ollie("single", recipe + sweep)
        XCTAssertEqual(try record("ranks"), try record("single"))
        XCTAssertTrue(output.contains("after 1 epoch the better 2 of 4 go on"), output)

        // Rank 1 exits at its 8th collective: the script check, then the first round's two
        // broadcasts and two gathers, then the second round's broadcasts and first gather.
        let (lost, lostOutput, seconds) = try mpiOllie(ranks: 2, database: "lost", ["-c", recipe + sweep],
                                                           environment: ["OLLIE_TEST_MPI_FAULT": "1:exit:8", "OLLIE_MPI_TIMEOUT": "20"])
        XCTAssertNotEqual(lost, 0, lostOutput)
        XCTAssertLessThan(seconds, 20, "mpirun, not a timeout, ended it: \(lostOutput)")
        XCTAssertTrue(lostOutput.contains("error: mpirun is stopping the job during the end of a sweep round"), lostOutput)
        // The first round is recorded, the second not: its runs have no epochs and wait.
        let store = try RunStore(path: "\(folder)/lost.sqlite", readOnly: true)
        XCTAssertEqual(try store.query("SELECT state FROM sweeps").rows, [["interrupted"]])
        XCTAssertEqual(try store.query("SELECT id, status, epochs FROM runs ORDER BY id").rows,
                       [["1", "finished", "1"], ["2", "finished", "1"], ["3", "interrupted", "0"], ["4", "interrupted", "0"]])

        let (resumed, resumedOutput, _) = try mpiOllie(ranks: 2, database: "lost", ["-c", "load idx data; sweep resume 1"])
        XCTAssertEqual(resumed, 0, resumedOutput)
        XCTAssertTrue(resumedOutput.contains("sweep 1 [3/4] run 3 on rank 0: lr 1e-2; epoch 1"), resumedOutput)
        XCTAssertEqual(try record("lost"), try record("single"))
        XCTAssertEqual(try lastStates("lost"), try lastStates("single"))
    }

    func testARankWithOtherDataEndsTheSweepOnEveryRankInOneLine() throws {
        let other = folder + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: folder + "/data", toPath: other + "/data")
        let images = other + "/data/train-images-idx3-ubyte"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: images))
        bytes[1000] = bytes[1000] &+ 1
        try bytes.write(to: URL(fileURLWithPath: images))
        let command = recipe + "; sweep lr 1e-3,3e-3 train 1"
        let db = "\(folder)/differ.sqlite"
        let (status, output, seconds) = try run(mpirun, [
            "--oversubscribe", "--allow-run-as-root",
            "-np", "1", "-wdir", folder, binary, "--db", db, "-c", command, ":",
            "-np", "1", "-wdir", other, binary, "--db", db, "-c", command])
        XCTAssertNotEqual(status, 0, output)
        XCTAssertLessThan(seconds, 30, output)
        let errors = output.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(errors.count, 1, output)
        XCTAssertTrue(errors.first?.contains("sweep 1 stopped: run 2 on rank 1 failed: rank 1's data differ from the sweep's") == true, output)
        let store = try RunStore(path: db, readOnly: true)
        XCTAssertEqual(try store.query("SELECT state FROM sweeps").rows, [["interrupted"]])
        XCTAssertEqual(try store.query("SELECT id, status, epochs FROM runs ORDER BY id").rows, [["1", "finished", "1"], ["2", "failed", "0"]])
    }
}
