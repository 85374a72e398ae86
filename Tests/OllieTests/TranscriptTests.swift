import XCTest
import Foundation
@testable import ollie
@testable import Session
import Tracking

/// The transcript replays what really happened: failed commands are comments, an
/// interrupted train is the work it did, a `run FILE` is a comment above the commands it ran.
final class TranscriptTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "ollie-transcript-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    final class Quiet: Console {
        func write(_ line: String) {}
        func progress(_ line: String) {}
        let isInteractive = false
    }

    func testADeleteConfirmedAtThePromptReplaysAsDeleteYes() throws {
        let path = folder + "/t.ollie"
        let transcript = try TranscriptConsole(terminal: Quiet(), path: path)
        let store = try RunStore(path: folder + "/runs.sqlite")
        for _ in 0..<2 {
            let run = try store.startRun(dataset: "mnist", model: "conv", parameterCount: 1, seed: 1, params: [])
            try store.release(run: run)
        }
        let session = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        session.commandObserver = transcript
        session.confirm = { _ in false }
        XCTAssertTrue(session.execute("delete 1", console: transcript))
        session.confirm = { _ in true }
        XCTAssertTrue(session.execute("delete 2", console: transcript))
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        // Replayed as a script, `delete 2` would stop at a prompt nobody answers.
        XCTAssertEqual(lines.filter { !$0.hasPrefix("#") }, ["delete 2 yes"], lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains("# delete 1   (answered no at the prompt)"), lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains("# delete 2   (answered yes at the prompt; a script says:)"), lines.joined(separator: "\n"))
    }

    func testFailedCommandsBecomeCommentsAndScriptsAreExpanded() throws {
        let path = folder + "/t.ollie"
        let transcript = try TranscriptConsole(terminal: Quiet(), path: path)
        let session = Session(store: nil)
        session.commandObserver = transcript
        let script = folder + "/inner.ollie"
        try "set lr 1e-3\nset batch 64\n".write(toFile: script, atomically: true, encoding: .utf8)
        XCTAssertFalse(session.execute("lod mnist", console: transcript))
        XCTAssertTrue(session.execute("set seed 3; run \(script)", console: transcript))
        XCTAssertFalse(session.execute("set lr fast", console: transcript))
        XCTAssertTrue(session.execute("show", console: transcript))
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let commands = lines.filter { !$0.hasPrefix("#") }
        XCTAssertEqual(commands, ["set seed 3", "set lr 1e-3", "set batch 64", "show"])
        XCTAssertTrue(lines.contains("# lod mnist"), lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains { $0.hasPrefix("# error: unknown command 'lod'") })
        XCTAssertTrue(lines.contains("# run \(script)"))
        XCTAssertTrue(lines.contains("# set lr fast"))
        XCTAssertEqual(lines.firstIndex(of: "# lod mnist").map { lines[$0 + 1].hasPrefix("# error: unknown command") }, true)
    }

    func testAnInterruptedCommandIsReplacedByTheWorkItDid() throws {
        let path = folder + "/t.ollie"
        let transcript = try TranscriptConsole(terminal: Quiet(), path: path)
        transcript.commandStarted("train 2")
        transcript.write("[1] test accuracy 0.9")
        transcript.commandFinished("train 2", outcome: .interrupted(replay: ["train 1", "train 273 batches"]))
        transcript.commandsSkipped(["accuracy"])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasSuffix("""
            # train 2   (stopped by Ctrl-C; the work it did:)
            train 1
            train 273 batches
            # [1] test accuracy 0.9
            # not run (Ctrl-C): accuracy

            """), text)
    }
}

extension TranscriptTests {
    /// Two sessions started in the same second in one folder: two files, neither truncated.
    func testTwoSessionsStartedInTheSameSecondWriteTwoTranscripts() throws {
        let stamp = "2026-12-07-022800"
        let first = try TranscriptConsole.create(terminal: Quiet(), folder: folder + "/sessions", stamp: stamp)
        first.write("first session's line")
        let second = try TranscriptConsole.create(terminal: Quiet(), folder: folder + "/sessions", stamp: stamp)
        second.write("second session's line")
        let third = try TranscriptConsole.create(terminal: Quiet(), folder: folder + "/sessions", stamp: stamp)
        XCTAssertEqual([first.path, second.path, third.path],
                       ["", "-2", "-3"].map { folder + "/sessions/\(stamp)\($0).ollie" })
        let firstText = try String(contentsOfFile: first.path, encoding: .utf8)
        XCTAssertTrue(firstText.hasPrefix("# ollie session transcript"), firstText)
        XCTAssertTrue(firstText.contains("# first session's line\n"), firstText)
        XCTAssertFalse(firstText.contains("second"), firstText)
        XCTAssertTrue(try String(contentsOfFile: second.path, encoding: .utf8).contains("# second session's line\n"))
        // A path that exists is never opened (and so never truncated).
        XCTAssertThrowsError(try TranscriptConsole(terminal: Quiet(), path: first.path))
        XCTAssertEqual(try String(contentsOfFile: first.path, encoding: .utf8), firstText)
    }
}
