import XCTest
import Foundation
import NN
import Tracking

/// Drives the real `ollie` binary: piped standard input, scripts, `-c`, kill -9 during
/// training, two processes on one database, and (in tmux) the interactive prompt.
final class BinaryTests: XCTestCase, @unchecked Sendable {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "ollie-bin-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try writeIDXDataset(to: folder + "/data", train: 6000, test: 500, side: 28)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// The built `ollie` next to this test bundle.
    var binary: String { OllieProcess.binary(besides: BinaryTests.self) }

    /// Runs ollie with `input` on stdin; returns (exit status, stdout + stderr).
    @discardableResult
    func ollie(_ arguments: [String], input: String = "", environment extra: [String: String] = [:],
               database: String = "runs") throws -> (Int32, String) {
        try ollie(in: folder, ["--db", folder + "/\(database).sqlite"] + arguments, input: input, environment: extra)
    }

    /// Runs ollie in `directory` with exactly `arguments`; returns (exit status, stdout + stderr).
    func ollie(in directory: String, _ arguments: [String], input: String = "", environment extra: [String: String] = [:]) throws -> (Int32, String) {
        let process = OllieProcess.make(binary, arguments, in: directory, folder: folder, environment: extra)
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// Runs a program in the test's folder to its end; returns its exit status (-1 when a
    /// signal ended it) and what it printed on stdout and stderr.
    func runProgram(_ path: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationReason == .exit ? process.terminationStatus : -1, text)
    }

    /// Runs `copies` ollie processes with the same arguments at once; their results.
    func ollieAtOnce(_ copies: Int, _ arguments: [String]) -> [(Int32, String)] {
        let group = DispatchGroup()
        let results = ResultsBox()
        for _ in 0..<copies {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                do { results.add(try self.ollie(arguments)) } catch {}
            }
        }
        group.wait()
        return results.all
    }

    func testPipedInputRunsLikeAScriptWithoutPromptOrColour() throws {
        let (status, output) = try ollie([], input: "help\nset lr 1e-3\nshow\n")
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("Commands (help COMMAND"), output)
        XCTAssertTrue(output.contains("lr = 1e-3 (was 3e-3)"), output)
        XCTAssertFalse(output.contains("ollie>"), output)
        XCTAssertFalse(output.contains("\u{1B}["), output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/sessions"), "no transcript for piped input")
    }

    func testUnknownCommandSuggestionAndNonZeroExitFromAPipe() throws {
        let (status, output) = try ollie([], input: "tarin 3\n")
        XCTAssertEqual(status, 1)
        XCTAssertTrue(output.contains("error: unknown command 'tarin' — did you mean 'train'?"), output)
    }

    func testDashCRunsCommandsAndStopsAtTheFirstError() throws {
        var (status, output) = try ollie(["-c", "set lr 1e-3; show"])
        XCTAssertEqual(status, 0, output)
        (status, output) = try ollie(["-c", "set lr fast; show"])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(output.contains("error: lr must be a number"), output)
        XCTAssertFalse(output.contains("setting "), output)
    }

    func testAFailingScriptLineIsNamedAndExitsNonZero() throws {
        let script = folder + "/s.ollie"
        try "# test\nset lr 1e-3\nbuild conv\nshow\n".write(toFile: script, atomically: true, encoding: .utf8)
        let (status, output) = try ollie([script])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(output.contains("error: no dataset loaded; load one first: load mnist"), output)
        XCTAssertTrue(output.contains("\(script):3: stopped at the failing line above"), output)
    }

    func testATrainingScriptRecordsTheRun() throws {
        let (status, output) = try ollie(["-c", "load idx data; build conv; set threads 2; train 2; sql select status, epochs from runs"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("[2] test accuracy"), output)
        XCTAssertTrue(output.contains("finished  2"), output)
    }

    func testKillDashNineDuringTrainingLeavesAConsistentDatabase() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--db", folder + "/runs.sqlite", "-c", "load idx data; build conv; set target 1; train 500"]
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let log = folder + "/train.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: log)
        try process.run()
        // Let it commit at least one epoch, then kill it in the middle of the next.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("[1] test accuracy") {
            Thread.sleep(forTimeInterval: 0.1)
        }
        Thread.sleep(forTimeInterval: 0.3)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // Opening the database again finds the dead owner's run and marks it crashed.
        let (_, runs) = try ollie(["-c", "runs"])
        XCTAssertTrue(runs.contains("crashed"), runs)
        let (_, check) = try ollie(["-c", "sql select * from pragma_integrity_check"])
        XCTAssertTrue(check.contains("\nok\n"), check)
        // Whole epochs or nothing: the run's epoch count matches its metric rows.
        let (_, epochs) = try ollie(["-c", "sql select epochs, (select max(epoch) from metrics where run = 1) as m, (select count(*) from metrics where run = 1) as rows from runs where id = 1"])
        let row = epochs.split(separator: "\n")[2].split(separator: " ").map(String.init)
        XCTAssertEqual(row[0], row[1], epochs)
        XCTAssertGreaterThan(Int(row[0]) ?? 0, 0, epochs)
        // Seven numbers an epoch: train loss and accuracy, test accuracy and seconds, lr, epoch seconds, images/s.
        XCTAssertEqual((Int(row[2]) ?? 0) % 7, 0, epochs)
        // A crashed run resumes from its last recorded epoch, under its own id.
        let (status, resumed) = try ollie(["-c", "resume 1; train 1; sql select status, epochs from runs"])
        XCTAssertEqual(status, 0, resumed)
        XCTAssertTrue(resumed.contains("resumed run 1 at epoch \(row[0])"), resumed)
        XCTAssertTrue(resumed.contains("finished  \(Int(row[0])! + 1)"), resumed)
    }

    /// The per-epoch numbers of a database, to the last bit.
    func exactMetrics(_ database: String, run: Int, epochs: ClosedRange<Int>) throws -> String {
        let (status, text) = try ollie(["-c", "sql select epoch, name, printf('%.17g', value) as v from metrics where run = \(run) and epoch between \(epochs.lowerBound) and \(epochs.upperBound) and name in ('train_loss', 'test_accuracy') order by epoch, name"], database: database)
        XCTAssertEqual(status, 0, text)
        return text
    }

    func tensors(_ path: String) throws -> [String: [Float]] {
        try Checkpoint.load(from: folder + "/" + path).tensors.mapValues(\.data)
    }

    func testResumeInANewProcessRetracesAnUnbrokenRunBitForBit() throws {
        let setup = "set seed 5; load idx data; build conv; set target off"
        XCTAssertEqual(try ollie(["-c", "\(setup); train 3"], database: "unbroken").0, 0)
        XCTAssertEqual(try ollie(["-c", "\(setup); train 2"], database: "broken").0, 0)
        let (status, output) = try ollie(["-c", "resume 1; train 1"], database: "broken")
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("resumed run 1 at epoch 2"), output)
        let unbroken = try exactMetrics("unbroken", run: 1, epochs: 1...3)
        XCTAssertEqual(unbroken.split(separator: "\n").count, 2 + 6 + 1, unbroken)
        XCTAssertEqual(try exactMetrics("broken", run: 1, epochs: 1...3), unbroken)
        XCTAssertEqual(try ollie(["-c", "sql select count(*) as n from runs"], database: "broken").1, "n\n─\n1\n(1 row)\n")
        XCTAssertEqual(try tensors("checkpoints/broken/run-1/epoch-3.safetensors"),
                       try tensors("checkpoints/unbroken/run-1/epoch-3.safetensors"))
        // A fork at epoch 1 with nothing changed retraces epochs 2 and 3.
        let (forked, forkOutput) = try ollie(["-c", "fork 1@1; train 2; runs"], database: "broken")
        XCTAssertEqual(forked, 0, forkOutput)
        XCTAssertTrue(forkOutput.contains("run 2 started (data, epoch 2, forked from 1@1)"), forkOutput)
        XCTAssertTrue(forkOutput.contains("forked from 1@1"), forkOutput)
        XCTAssertEqual(try exactMetrics("broken", run: 2, epochs: 2...3), try exactMetrics("unbroken", run: 1, epochs: 2...3))
        XCTAssertEqual(try tensors("checkpoints/broken/run-2/epoch-3.safetensors"),
                       try tensors("checkpoints/unbroken/run-1/epoch-3.safetensors"))
    }

    func testCtrlCStopsARunawayQuery() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--db", folder + "/runs.sqlite", "-c",
                             "sql WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"]
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        Thread.sleep(forTimeInterval: 1.5)
        let interrupted = Date()
        kill(process.processIdentifier, SIGINT)
        // A query that ignores Ctrl-C would hang the test: it is killed instead, and fails below.
        DispatchQueue.global().asyncAfter(deadline: .now() + 15) { [process] in
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(interrupted), 5, text)
        XCTAssertEqual(process.terminationReason, .exit, text)
        XCTAssertTrue(text.contains("error: sql: interrupted (Ctrl-C)"), text)
        XCTAssertEqual(try ollie(["-c", "sql select 1 as one"]).1, "one\n───\n1\n(1 row)\n")
    }

    /// Root writes any file whatever its mode, so the reader runs as `nobody` (setpriv): then
    /// neither the file (0444) nor its folder (root's, 0755) can be written, and SQLite cannot
    /// create the -shm file a WAL database is read through.
    func testADatabaseThisUserCannotWriteIsStillRead() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("needs root and setpriv to run ollie as another user")
        }
        let path = folder + "/runs.sqlite"
        do {
            let store = try RunStore(path: path)
            let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 1, seed: 1, params: [("lr", "3e-3")])
            try store.recordEpoch(run: run, EpochRecord(epoch: 1, metrics: ["test_accuracy": 0.5, "train_loss": 0.7],
                                                        bestAccuracy: 0.5, bestEpoch: 1, trainLoss: 0.7, seconds: 1))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + "-wal"), "the last connection folds the WAL in")
        XCTAssertEqual(chmod(path, 0o444), 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let (status, text) = try runProgram("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", binary, "--db", path,
                                                                "-c", "runs; sql select count(*) as n from runs; compare 1; plot train_loss 1; report 1"])
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(text.components(separatedBy: "opened read-only").count - 1, 1, text)
        XCTAssertTrue(text.contains("runs are not recorded"), text)
        XCTAssertTrue(text.contains("n\n─\n1\n(1 row)"), text)
        XCTAssertTrue(text.contains("| | run 1 |"), text)
        XCTAssertTrue(text.contains("train_loss"), text)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before, "nothing was written")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + "-shm"))
    }

    /// Runs an earlier process left for an MLflow server that hangs do not hold up the end of
    /// every later process (each waited 3 s, a core spinning); live logging with something in
    /// flight says it waits, and how long.
    func testAnMLflowServerThatHangsDoesNotHoldUpLaterProcesses() throws {
        let (socket, port) = try hangingServer()
        defer { close(socket) }
        let url = "http://127.0.0.1:\(port)"
        do {
            let store = try RunStore(path: folder + "/runs.sqlite")
            let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 1, seed: 1, params: [])
            try store.markForMLflow(runs: [run], server: url, experiment: "runs")
        }
        var clock = Date()
        let (status, listing) = try ollie(["-c", "runs"])
        XCTAssertEqual(status, 0, listing)
        XCTAssertLessThan(Date().timeIntervalSince(clock), 2, listing)
        XCTAssertTrue(listing.contains("1 run not yet in MLflow at \(url)"), listing)
        XCTAssertFalse(listing.contains("waiting up to"), listing)
        clock = Date()
        let (trained, output) = try ollie(["-c", "load idx data; build mlp 8; set threads 1; set mlflow \(url); train 1"])
        XCTAssertEqual(trained, 0, output)
        XCTAssertTrue(output.contains("MLflow: still sending to \(url); waiting up to 3 s (Ctrl-C leaves it to the next ollie process"), output)
        XCTAssertEqual(output.components(separatedBy: "waiting up to").count - 1, 1, output)
    }

    func testTwoProcessesTrainIntoOneDatabase() throws {
        let results = ollieAtOnce(2, ["-c", "load idx data; build conv; set threads 1; train 3"])
        XCTAssertEqual(results.map(\.0), [0, 0], results.map(\.1).joined())
        XCTAssertFalse(results.contains { $0.1.contains("warning") }, results.map(\.1).joined())
        let (_, runs) = try ollie(["-c", "sql select count(*) || '/' || sum(epochs) as done from runs where status = 'finished'"])
        let listing = try ollie(["-c", "runs"]).1
        XCTAssertTrue(runs.contains("\n2/6\n"), runs + listing + results.map(\.1).joined())
    }

    /// History lives on between sessions: the first creates ~/.ollie_history (mode 600), and
    /// Up in the second brings back the first's command.
    func testASecondSessionRecallsTheFirstsCommandsWithUpArrow() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else { throw XCTSkip("tmux not installed") }
        let home = folder + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let command = "cd \(folder) && HOME=\(home) OLLIE_SESSIONS=\(folder)/sessions \(binary) --db \(folder)/runs.sqlite"
        let first = TmuxPane(server: "ollie-history1-\(getpid())", scratch: folder, command: command)
        defer { first.close() }
        XCTAssertTrue(first.waitFor("ollie>"), first.screen())
        Thread.sleep(forTimeInterval: 1)   // readline may flush input typed while it sets up the terminal
        first.send("set lr 1e-3", "Enter")
        XCTAssertTrue(first.waitFor("lr = 1e-3 (was 3e-3)"), first.screen())
        first.send("quit", "Enter")
        Thread.sleep(forTimeInterval: 0.5)
        let path = home + "/.ollie_history"
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        XCTAssertTrue(try String(contentsOfFile: path, encoding: .utf8).contains("set lr 1e-3"))
        let second = TmuxPane(server: "ollie-history2-\(getpid())", scratch: folder, command: command)
        defer { second.close() }
        XCTAssertTrue(second.waitFor("ollie>"), second.screen())
        Thread.sleep(forTimeInterval: 1)
        var recalled = false
        for _ in 0..<5 where !recalled {
            second.send("C-u", "Up")
            recalled = second.waitFor("ollie> set lr 1e-3", seconds: 3)
        }
        XCTAssertTrue(recalled, second.screen())
    }

    /// The interactive path under tmux: prompt, completion, Ctrl-C during train, transcript.
    func testInteractivePromptCompletionAndCtrlCUnderTmux() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else { throw XCTSkip("tmux not installed") }
        let command = "cd \(folder) && HOME=\(folder) OLLIE_SESSIONS=\(folder)/sessions \(binary) --db \(folder)/runs.sqlite"
        let pane = TmuxPane(server: "ollie-test-\(getpid())", scratch: folder, command: command)
        defer { pane.close() }
        let name = pane.server
        func tmux(_ args: String...) -> String { pane.tmux(args) }
        func screen() -> String { pane.screen() }
        func waitFor(_ text: String, seconds: Double = 20) -> Bool { pane.waitFor(text, seconds: seconds) }
        XCTAssertTrue(waitFor("ollie>"), screen())
        Thread.sleep(forTimeInterval: 1)   // readline may flush input typed while it sets up the terminal
        // readline may drop keys typed while it sets up the terminal: retry a few times.
        var completed = false
        for _ in 0..<5 where !completed {
            XCTAssertEqual(tmux("send-keys", "-t", name, "C-u", "hel", "Tab"), "")
            completed = waitFor("ollie> help", seconds: 3)   // capture-pane drops the trailing space
        }
        XCTAssertTrue(completed, screen())
        _ = tmux("send-keys", "-t", name, "Enter")
        XCTAssertTrue(waitFor("Commands (help COMMAND"), screen())
        _ = tmux("send-keys", "-t", name, "clear-history-not-a-command", "C-c")
        Thread.sleep(forTimeInterval: 0.3)
        _ = tmux("send-keys", "-t", name, "lod data", "Enter")
        XCTAssertTrue(waitFor("unknown command 'lod'"), screen())
        _ = tmux("send-keys", "-t", name, "load idx data; build conv; set target 1; train 200", "Enter")
        XCTAssertTrue(waitFor("[1] test accuracy", seconds: 60), screen())
        _ = tmux("send-keys", "-t", name, "C-c")
        XCTAssertTrue(waitFor("interrupted (Ctrl-C); the model keeps its weights"), screen())
        _ = tmux("send-keys", "-t", name, "accuracy", "Enter")
        XCTAssertTrue(waitFor("test accuracy 0."), screen())
        _ = tmux("send-keys", "-t", name, "save first.safetensors", "Enter")
        XCTAssertTrue(waitFor("saved first.safetensors"), screen())
        _ = tmux("send-keys", "-t", name, "quit", "Enter")
        Thread.sleep(forTimeInterval: 0.5)
        let transcripts = (try? FileManager.default.contentsOfDirectory(atPath: folder + "/sessions")) ?? []
        XCTAssertEqual(transcripts.count, 1)
        let text = try String(contentsOfFile: folder + "/sessions/" + transcripts[0], encoding: .utf8)
        XCTAssertTrue(text.contains("help\n# Commands (help COMMAND"), text)
        XCTAssertTrue(text.contains("# [1] test accuracy"), text)
        XCTAssertFalse(text.contains("clear-history-not-a-command"), "Ctrl-C at the prompt discards the line")
        let (_, status) = try ollie(["-c", "sql select status from runs"])
        XCTAssertTrue(status.contains("interrupted"), status)
        // The transcript replays: the typo is a comment, the interrupted train the same call
        // stopped at the same batch, and the replay ends with the same weights and the same
        // accuracy, bit for bit.
        XCTAssertTrue(text.contains("\n# lod data\n# error: unknown command 'lod'"), text)
        XCTAssertTrue(text.contains("\n# train 200   (stopped by Ctrl-C; the work it did:)\ntrain "), text)
        XCTAssertTrue(text.range(of: "\ntrain 200 stop [0-9]+\n", options: .regularExpression) != nil, text)
        let accuracyLine = text.split(separator: "\n").first { $0.hasPrefix("# test accuracy ") }.map(String.init)
        XCTAssertNotNil(accuracyLine, text)
        try FileManager.default.moveItem(atPath: folder + "/first.safetensors", toPath: folder + "/original.safetensors")
        let (replayStatus, replay) = try ollie([folder + "/sessions/" + transcripts[0]], database: "replay")
        XCTAssertEqual(replayStatus, 0, replay)
        XCTAssertTrue(replay.contains(String(accuracyLine!.dropFirst(2))), replay)
        XCTAssertEqual(try tensors("first.safetensors"), try tensors("original.safetensors"))
    }
}

/// Runs a program to its end with posix_spawn and waitpid, stdin from /dev/null and stdout and
/// stderr into `output`. Foundation's Process is not used for tmux: it learns that a child ended
/// when a socket the child inherits is closed, and the tmux server that a first client starts
/// inherits that socket and keeps it, so waitUntilExit would wait for the server (a CI hang on a
/// fresh machine, where no tmux server was running yet).
@discardableResult
func spawnAndWait(_ path: String, _ arguments: [String], output: String) -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, path, &actions, nil, argv, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return status
}

final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [(Int32, String)] = []
    func add(_ r: (Int32, String)) { lock.withLock { results.append(r) } }
    var all: [(Int32, String)] { lock.withLock { results } }
}

/// A learnable IDX dataset: class k (of 4) brightens quadrant k of a side×side image; one label
/// in ten is random, so no model reaches 100 % and training runs until it is stopped.
func writeIDXDataset(to folder: String, train: Int, test: Int, side: Int) throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    func be(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    var state: UInt64 = 12345
    func next() -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 33) }
    for (prefix, count) in [("train", train), ("t10k", test)] {
        var images = be(0x803) + be(count) + be(side) + be(side)
        var labels = be(0x801) + be(count)
        for _ in 0..<count {
            let k = next() % 4
            labels.append(UInt8(next() % 10 == 0 ? next() % 4 : k))
            for y in 0..<side {
                for x in 0..<side {
                    let lit = (y * 2 / side) * 2 + (x * 2 / side) == k
                    images.append(UInt8(min(255, (lit ? 150 : 20) + next() % 80)))
                }
            }
        }
        try Data(images).write(to: URL(fileURLWithPath: "\(folder)/\(prefix)-images-idx3-ubyte"))
        try Data(labels).write(to: URL(fileURLWithPath: "\(folder)/\(prefix)-labels-idx1-ubyte"))
    }
}

/// A socket on 127.0.0.1 that listens and never accepts: a server that hangs. Returns it and its port.
func hangingServer() throws -> (socket: Int32, port: Int) {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
    guard descriptor >= 0, bound == 0, listen(descriptor, 16) == 0 else { throw CocoaError(.featureUnsupported) }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
    return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
}
