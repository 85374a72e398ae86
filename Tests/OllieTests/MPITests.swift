import XCTest
import Foundation
import NN
import Tensor
import Tracking

/// ollie under a real `mpirun` (Open MPI from scripts/setup.sh): ranks against threads bit for
/// bit, rank 0 alone writing, a rank that hangs or exits, ranks that disagree.
final class MPITests: XCTestCase, MPIJobTest, @unchecked Sendable {
    var folder = ""
    var mpirun = ""
    /// A tiny model with the parts whose worker index matters (dropout, batchnorm), noise on
    /// (the default 0.1), shuffling and an uneven last batch (600 = 9 × 64 + 24).
    let recipe = "load idx data; build conv 3 4 relu | batchnorm | pool 2 | dropout 0.3 | dense 4; set batch 64; set shuffle on; set target off"

    override func setUpWithError() throws {
        mpirun = try MPITests.findMPIRun()
        folder = NSTemporaryDirectory() + "ollie-mpi-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try writeIDXDataset(to: folder + "/data", train: 600, test: 100, side: 12)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// mpirun on the PATH; without it the tests fail under CI (setup.sh installs it) and skip elsewhere.
    static func findMPIRun() throws -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
            .map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        if let path { return path }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail("mpirun not found; install Open MPI with: bash scripts/setup.sh")
        }
        throw XCTSkip("mpirun not found (Open MPI is optional); bash scripts/setup.sh installs it")
    }

    /// Every tensor of a checkpoint (weights, batchnorm statistics, Adam moments) as raw bits.
    func tensorBits(_ path: String) throws -> [String: [UInt32]] {
        try Checkpoint.load(from: path).tensors.mapValues { (t: Tensor) in t.data.map(\.bitPattern) }
    }

    /// The metrics that do not depend on timing, exactly: 17 significant digits (SQLite's
    /// printf has no %a: it gave NULL, and every row compared equal).
    func metricRows(_ database: String) throws -> [[String]] {
        let store = try RunStore(path: "\(folder)/\(database).sqlite", readOnly: true)
        return try store.query("""
            SELECT run, epoch, name, printf('%!.17g', value) FROM metrics
            WHERE name IN ('train_loss', 'test_accuracy', 'test_loss', 'val_accuracy', 'val_loss', 'learning_rate') ORDER BY run, epoch, name
            """).rows
    }

    func testTwoRanksOfOneThreadTrainAsOneProcessOfTwoThreadsBitForBit() throws {
        let (status, output, _) = try mpiOllie(ranks: 2, database: "ranks", ["-c", recipe + "; set threads 1; train 3; save ranks.safetensors"])
        XCTAssertEqual(status, 0, output)
        let (single, singleOutput, _) = try run(binary, ["--db", "\(folder)/threads.sqlite", "-c", recipe + "; set threads 2; train 3; save threads.safetensors"])
        XCTAssertEqual(single, 0, singleOutput)
        let ranks = try tensorBits(folder + "/ranks.safetensors"), threads = try tensorBits(folder + "/threads.safetensors")
        XCTAssertEqual(ranks.keys.sorted(), threads.keys.sorted())
        XCTAssertTrue(ranks.keys.contains { $0.contains("running_mean") } && ranks.keys.count > 8, "\(ranks.keys.sorted())")
        for (name, bits) in threads { XCTAssertEqual(ranks[name], bits, "tensor \(name) differs") }
        let rows = try metricRows("ranks")
        XCTAssertEqual(rows.count, 9, "\(rows)")
        XCTAssertTrue(rows.allSatisfy { Double($0[3]) != nil }, "every value read back as a number: \(rows)")
        XCTAssertEqual(rows, try metricRows("threads"))

        // Rank 0 alone speaks and records: every line once, one run, with its layout.
        XCTAssertEqual(output.components(separatedBy: "[3] test accuracy").count, 2, output)
        let store = try RunStore(path: "\(folder)/ranks.sqlite", readOnly: true)
        XCTAssertEqual(try store.query("SELECT count(*) FROM runs").rows, [["1"]])
        XCTAssertEqual(try store.query("SELECT count(*) FROM sessions").rows, [["1"]])
        XCTAssertEqual(try store.query("SELECT name, value FROM params WHERE name IN ('ranks', 'threads') ORDER BY name").rows,
                       [["ranks", "2"], ["threads", "1"]])
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/sessions"))
    }

    func testTwoRanksOfTwoThreadsMatchFourThreadsWithAValidationSplit() throws {
        let steps = "; set val 0.2; train 2; save out.safetensors"
        let (status, output, _) = try mpiOllie(ranks: 2, database: "ranks", ["-c", recipe + "; set threads 2" + steps])
        XCTAssertEqual(status, 0, output)
        try FileManager.default.moveItem(atPath: folder + "/out.safetensors", toPath: folder + "/ranks.safetensors")
        let (single, singleOutput, _) = try run(binary, ["--db", "\(folder)/threads.sqlite", "-c", recipe + "; set threads 4" + steps])
        XCTAssertEqual(single, 0, singleOutput)
        XCTAssertEqual(try tensorBits(folder + "/ranks.safetensors"), try tensorBits(folder + "/out.safetensors"))
        XCTAssertEqual(try metricRows("ranks"), try metricRows("threads"))
        XCTAssertTrue(output.contains("test accuracy") && output.contains("after epoch 2"), output)
    }

    func testClippedGradientsOfTwoRanksMatchOneProcessOfTwoThreads() throws {
        // Clipped after the exchange: the norm is the whole minibatch's, as in one process.
        let steps = "; set clip 0.05; train 1; save out.safetensors"
        let (status, output, _) = try mpiOllie(ranks: 2, database: "ranks", ["-c", recipe + "; set threads 1" + steps])
        XCTAssertEqual(status, 0, output)
        try FileManager.default.moveItem(atPath: folder + "/out.safetensors", toPath: folder + "/ranks.safetensors")
        let (single, singleOutput, _) = try run(binary, ["--db", "\(folder)/threads.sqlite", "-c", recipe + "; set threads 2" + steps])
        XCTAssertEqual(single, 0, singleOutput)
        XCTAssertEqual(try tensorBits(folder + "/ranks.safetensors"), try tensorBits(folder + "/out.safetensors"))
        XCTAssertEqual(try metricRows("ranks"), try metricRows("threads"))
        let store = try RunStore(path: "\(folder)/ranks.sqlite", readOnly: true)
        XCTAssertEqual(try store.query("SELECT value FROM params WHERE name = 'clip'").rows, [["0.05"]])
    }

    func testARankThatHangsStopsTheJobWithinTheTimeoutAndTheRunIsMarkedFailed() throws {
        // Collective 1 is the script check, 2 the check before train, then one per step (10 an
        // epoch) and one per epoch's score: the 25th is step 21.
        let (status, output, seconds) = try mpiOllie(ranks: 2, database: "hang", ["-c", recipe + "; set threads 1; train 5"],
                                                     environment: ["OLLIE_TEST_MPI_FAULT": "1:hang:25", "OLLIE_MPI_TIMEOUT": "2"])
        XCTAssertNotEqual(status, 0, output)
        XCTAssertLessThan(seconds, 30, output)
        XCTAssertTrue(output.contains("error: no answer from the other MPI ranks within 2 s during training step 21"), output)
        try assertFailedAfterTwoEpochs("hang")
    }

    func testARankThatExitsStopsTheOthersAndTheRunIsMarkedFailed() throws {
        let (status, output, seconds) = try mpiOllie(ranks: 2, database: "exit", ["-c", recipe + "; set threads 1; train 5"],
                                                     environment: ["OLLIE_TEST_MPI_FAULT": "1:exit:25", "OLLIE_MPI_TIMEOUT": "20"])
        XCTAssertNotEqual(status, 0, output)
        XCTAssertLessThan(seconds, 20, "mpirun, not the timeout, ended it: \(output)")
        // mpirun's SIGTERM (or, over TCP, a broken connection) reaches rank 0 waiting at that step.
        XCTAssertTrue(output.contains("error: mpirun is stopping the job during training step 21")
                      || output.contains("during training step 21; stopping every rank"), output)
        try assertFailedAfterTwoEpochs("exit")
    }

    func assertFailedAfterTwoEpochs(_ database: String) throws {
        let store = try RunStore(path: "\(folder)/\(database).sqlite", readOnly: true)
        XCTAssertEqual(try store.query("SELECT status, epochs FROM runs").rows, [["failed", "2"]])
        XCTAssertEqual(try store.query("SELECT count(DISTINCT epoch) FROM metrics").rows, [["2"]])
        XCTAssertEqual(try store.query("SELECT epoch, kind FROM events WHERE kind = 'rank_failure'").rows, [["3", "rank_failure"]])
    }

    func testRanksWithDifferentDataStopWithOneLine() throws {
        // Rank 1 runs in a folder whose data differ in one pixel: MPMD, one working folder each.
        let other = folder + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: folder + "/data", toPath: other + "/data")
        let images = other + "/data/train-images-idx3-ubyte"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: images))
        bytes[1000] = bytes[1000] &+ 1
        try bytes.write(to: URL(fileURLWithPath: images))
        let command = recipe + "; set threads 1; train 1"
        let db = "\(folder)/differ.sqlite"
        let (status, output, seconds) = try run(mpirun, [
            "--oversubscribe", "--allow-run-as-root",
            "-np", "1", "-wdir", folder, binary, "--db", db, "-c", command, ":",
            "-np", "1", "-wdir", other, binary, "--db", db, "-c", command])
        XCTAssertNotEqual(status, 0, output)
        XCTAssertLessThan(seconds, 30, output)
        let errors = output.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(errors.count, 1, output)
        XCTAssertTrue(errors.first?.contains("the MPI ranks disagree before train: rank 1's data is") == true, output)
    }

    func testRanksGivenDifferentScriptsStopWithOneLineBeforeDoingAnything() throws {
        let (status, output, _) = try run(mpirun, [
            "--oversubscribe", "--allow-run-as-root",
            "-np", "1", binary, "--db", "\(folder)/s.sqlite", "-c", "load idx data; train 1", ":",
            "-np", "1", binary, "--db", "\(folder)/s.sqlite", "-c", "load idx data; train 2"])
        XCTAssertNotEqual(status, 0, output)
        let errors = output.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(errors, ["error: the MPI ranks were given different scripts: rank 1's -c commands differ from rank 0's; give every rank the same script (a shared folder, or the same file copied to every host)"], output)
        XCTAssertFalse(output.contains("mnist") || output.contains("data:"), output)
    }

    func testTheREPLIsRefusedUnderMPIRun() throws {
        let (status, output, _) = try mpiOllie(ranks: 2, database: "repl", [])
        XCTAssertNotEqual(status, 0, output)
        XCTAssertEqual(output.split(separator: "\n").filter { $0.hasPrefix("error:") },
                       ["error: under mpirun, give ollie a script or -c 'COMMANDS' (standard input reaches rank 0 only)"], output)
    }

    /// The repository's scripts folder (this file is Tests/OllieTests/MPITests.swift).
    var scripts: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts").path
    }

    func testTwoHostsOverTCPTrainAsOneProcessBitForBit() throws {
        // Two network namespaces joined by a veth pair stand in for two machines; mpirun starts
        // its daemon in the other one through scripts/netns-agent.sh instead of ssh.
        let name = "ollie\(getpid() % 100_000)"
        _ = try run("/bin/bash", [scripts + "/netns-hosts.sh", "down", name])   // a pair left by a killed run
        let (up, upOutput, _) = try run("/bin/bash", [scripts + "/netns-hosts.sh", "up", name])
        defer { _ = try? run("/bin/bash", [scripts + "/netns-hosts.sh", "down", name]) }
        guard up == 0 else {
            throw XCTSkip("cannot make network namespaces here (needs root and ip netns): \(upOutput)")
        }
        let (status, output, _) = try run("/usr/bin/env", ["ip",
            "netns", "exec", "\(name)-a", mpirun, "--allow-run-as-root", "--oversubscribe",
            // Each "host" would bind its rank to core 0, the same core: both would share it.
            "--bind-to", "none",
            "-np", "2", "--host", "10.200.0.1:1,10.200.0.2:1", "--mca", "plm_rsh_agent", scripts + "/netns-agent.sh",
            "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "10.200.0.0/24", "--mca", "oob_tcp_if_include", "10.200.0.0/24",
            "-x", "OLLIE_NETNS=\(name)", "-wdir", folder,
            binary, "--db", "\(folder)/hosts.sqlite", "-c", recipe + "; set threads 1; train 2; save hosts.safetensors",
        ], environment: ["OLLIE_NETNS": name])
        XCTAssertEqual(status, 0, output)
        let (single, singleOutput, _) = try run(binary, ["--db", "\(folder)/threads.sqlite", "-c", recipe + "; set threads 2; train 2; save threads.safetensors"])
        XCTAssertEqual(single, 0, singleOutput)
        XCTAssertEqual(try tensorBits(folder + "/hosts.safetensors"), try tensorBits(folder + "/threads.safetensors"))
        XCTAssertEqual(try metricRows("hosts"), try metricRows("threads"))
        let store = try RunStore(path: "\(folder)/hosts.sqlite", readOnly: true)
        XCTAssertEqual(try store.query("SELECT value FROM params WHERE name = 'ranks'").rows, [["2"]])
    }
}
