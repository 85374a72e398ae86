import XCTest
import Foundation

/// The record under stress, driven through the real binary: signals during training and at
/// the prompt, a closed output, and two processes claiming one run at the same instant. After
/// each, the file is sound and every run row agrees with its metrics and events.
extension BinaryTests {
    /// Starts ollie with `arguments`, its output going to a file; returns the process and the file.
    func startOllie(_ arguments: [String], input: Pipe? = nil, database: String = "runs") throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--db", folder + "/\(database).sqlite"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        var environment = ProcessInfo.processInfo.environment
        environment["OLLIE_SESSIONS"] = folder + "/sessions"
        process.environment = environment
        let log = folder + "/\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = process.standardOutput
        process.standardInput = input ?? FileHandle.nullDevice
        try process.run()
        return (process, log)
    }

    func waitForText(_ text: String, in log: String, seconds: Double = 120) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// `PRAGMA integrity_check` is ok, and every run row says what its metrics and events say:
    /// its epoch count is its last epoch with metrics, its best epoch has metrics, and no
    /// metric or event lies beyond its epochs (an interrupted epoch's event may name the next).
    func assertRecordAgrees(database: String = "runs", file: StaticString = #filePath, line: UInt = #line) throws {
        let (_, check) = try ollie(["-c", "sql select * from pragma_integrity_check"], database: database)
        XCTAssertTrue(check.contains("\nok\n"), check, file: file, line: line)
        let (status, disagreements) = try ollie(["-c", """
            sql select id, epochs, best_epoch from runs where \
            epochs != coalesce((select max(epoch) from metrics where run = runs.id), 0) \
            or (best_epoch is not null and not exists (select 1 from metrics where run = runs.id and epoch = runs.best_epoch)) \
            or exists (select 1 from events where run = runs.id and epoch > runs.epochs + 1)
            """], database: database)
        XCTAssertEqual(status, 0, disagreements, file: file, line: line)
        XCTAssertTrue(disagreements.contains("(0 rows)"), disagreements, file: file, line: line)
    }

    func sqlValue(_ query: String, database: String = "runs") throws -> String {
        let (status, text) = try ollie(["-c", "sql " + query], database: database)
        XCTAssertEqual(status, 0, text)
        let lines = text.split(separator: "\n")
        return lines.count > 2 ? String(lines[2]) : ""
    }

    func testSIGTERMDuringTrainFinishesTheBatchRecordsAndExits() throws {
        for (signal, name) in [(SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP")] {
            let database = "signal-\(name)"
            let (process, log) = try startOllie(["-c", "load idx data; build conv; set target off; train 40; runs"], database: database)
            XCTAssertTrue(waitForText("[1] test accuracy", in: log), (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
            Thread.sleep(forTimeInterval: 0.3)
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            let output = try String(contentsOfFile: log, encoding: .utf8)
            XCTAssertEqual(process.terminationReason, .exit, output)
            XCTAssertEqual(process.terminationStatus, 128 + signal, output)
            XCTAssertTrue(output.contains("interrupted (\(name)); the model keeps its weights"), output)
            XCTAssertTrue(output.contains("interrupted (\(name)); not run: runs"), output)
            XCTAssertTrue(output.contains("stopped by \(name); what was done is recorded"), output)
            // Marked at once, not found crashed at the next start.
            XCTAssertEqual(try sqlValue("select status from runs", database: database), "interrupted")
            XCTAssertGreaterThan(Int(try sqlValue("select epochs from runs", database: database)) ?? 0, 0)
            try assertRecordAgrees(database: database)
        }
    }

    func testSIGTERMAtAnIdlePromptEndsTheSession() throws {
        let input = Pipe()
        let (process, log) = try startOllie([], input: input)
        input.fileHandleForWriting.write(Data("load idx data\n".utf8))
        XCTAssertTrue(waitForText("data: 6000 train", in: log))
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertFalse(process.isRunning, "a blocked read of the next line must not hold SIGTERM off")
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? input.fileHandleForWriting.close()
        XCTAssertEqual(process.terminationStatus, 128 + SIGTERM)
    }

    func testAClosedOutputStopsPrintingNotTraining() throws {
        let command = "'\(binary)' --db '\(folder)/runs.sqlite' -c 'load idx data; build conv; set target off; train 3; runs' | head -2"
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", command]
        shell.currentDirectoryURL = URL(fileURLWithPath: folder)
        shell.standardOutput = FileHandle.nullDevice
        try shell.run()
        shell.waitUntilExit()
        // head has gone; ollie carried on, trained the three epochs and ended the run.
        XCTAssertEqual(try sqlValue("select status || ' ' || epochs from runs"), "finished 3")
        try assertRecordAgrees()
    }

    func testTwoProcessesResumingOneRunAtTheSameInstantCannotBothTrainIt() throws {
        XCTAssertEqual(try ollie(["-c", "load idx data; build conv; set target off; set threads 1; train 1"]).0, 0)
        for round in 1...3 {
            let results = ollieAtOnce(2, ["-c", "resume 1; train 1"])
            let outputs = results.map(\.1).joined(separator: "\n----\n")
            XCTAssertEqual(results.map(\.0).sorted(), [0, 1], outputs)
            XCTAssertTrue(outputs.contains("run 1 is held by another ollie process (pid "), outputs)
            // One process trained it: one more epoch a round, each epoch's metrics written once.
            XCTAssertEqual(try sqlValue("select epochs from runs"), "\(round + 1)")
            XCTAssertEqual(try sqlValue("select count(*) from metrics where run = 1 and name = 'train_loss'"), "\(round + 1)")
        }
        try assertRecordAgrees()
    }

    func testAHolderThatDiedGivesTheRunUp() throws {
        let (process, log) = try startOllie(["-c", "load idx data; build conv; set target off; train 40"])
        XCTAssertTrue(waitForText("[1] test accuracy", in: log))
        // While it lives, it holds the run.
        let (refused, text) = try ollie(["-c", "resume 1"])
        XCTAssertEqual(refused, 1, text)
        XCTAssertTrue(text.contains("run 1 is held by another ollie process (pid \(process.processIdentifier)"), text)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let (status, resumed) = try ollie(["-c", "resume 1; train 1"])
        XCTAssertEqual(status, 0, resumed)
        try assertRecordAgrees()
    }
}

extension BinaryTests {
    /// A terminal closed mid-train (tmux kill-session sends SIGHUP): the batch finishes, the
    /// run is marked interrupted, and the transcript holds the work done, replayable.
    func testAClosedTerminalMidTrainLeavesTheTranscriptAndTheRecordTrue() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else { throw XCTSkip("tmux not installed") }
        let command = "cd \(folder) && HOME=\(folder) OLLIE_SESSIONS=\(folder)/sessions \(binary) --db \(folder)/runs.sqlite"
        let pane = TmuxPane(server: "ollie-hup-\(getpid())", scratch: folder, command: command, columns: 120, rows: 50)
        defer { pane.close() }
        func waitFor(_ condition: () -> Bool, seconds: Double = 60) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition() { return true }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return false
        }
        XCTAssertTrue(pane.waitFor("ollie>"), pane.screen())
        Thread.sleep(forTimeInterval: 1)
        pane.send("load idx data; build conv; set target off; train 200", "Enter")
        XCTAssertTrue(pane.waitFor("[1] test accuracy", seconds: 60), pane.screen())
        pane.tmux("kill-session", "-t", pane.server)
        func transcript() -> String {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: folder + "/sessions")) ?? []
            return files.first.flatMap { try? String(contentsOfFile: folder + "/sessions/" + $0, encoding: .utf8) } ?? ""
        }
        XCTAssertTrue(waitFor({ transcript().contains("(stopped by SIGHUP; the work it did:)") }), transcript())
        XCTAssertTrue(waitFor({ (try? sqlValue("select status from runs")) == "interrupted" }))
        let text = transcript()
        XCTAssertTrue(text.range(of: "\n# train 200   \\(stopped by SIGHUP; the work it did:\\)\ntrain 200 stop [0-9]+\n",
                                 options: .regularExpression) != nil, text)
        try assertRecordAgrees()
    }
}

extension BinaryTests {
    /// Past a file-size limit (`ulimit -f`), writes fail with one line each; SIGXFSZ does not
    /// kill the process mid-epoch (its default would).
    func testAFileSizeLimitIsAnErrorNotADeath() throws {
        let (status, text) = try runProgram("/bin/sh", ["-c", "ulimit -f 150; exec '\(binary)' --db '\(folder)/limited.sqlite' -c 'load idx data; build conv; set target off; train 1; save big.safetensors'"])
        XCTAssertEqual(status, 1, "an error, not a death by SIGXFSZ: \(text)")
        XCTAssertTrue(text.contains("[1] test accuracy"), "training went on: \(text)")
        XCTAssertTrue(text.contains("error: cannot write big.safetensors: File too large"), text)
    }
}
