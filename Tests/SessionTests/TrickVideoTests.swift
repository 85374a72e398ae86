import XCTest
import Foundation
@testable import Session

/// The trick-video set end to end: scripts/make_tricks.py writes real H.264 clips with ffmpeg,
/// `load videos` decodes them in process, and a 3-D convnet typed at the prompt trains on them.
final class TrickVideoTests: SessionTestCase {
    /// The repository root, from this file's path.
    var repository: String { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path }

    func makeTricks(_ out: String, perTrick: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", repository + "/scripts/make_tricks.py", out, "--train", String(perTrick), "--test", "2",
                             "--frames", "12", "--size", "32", "--seed", "4"]
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            XCTFail("scripts/make_tricks.py failed (needs numpy and ffmpeg: bash scripts/setup.sh): \(text)")
            throw XCTSkip("no trick videos")
        }
    }

    func testTheTrickSetLoadsAsClipsAndTrains() throws {
        let out = folder + "/tricks"
        try makeTricks(out, perTrick: 6)
        let loaded = run("load videos \(out) frames 8 size 16x16")
        XCTAssertTrue(loaded.hasPrefix("tricks: 30 train, 10 test clips, 8×16×16×1, 5 classes"), loaded)
        XCTAssertEqual(session.dataset?.classNames, ["kickflip", "manual", "ollie", "roll", "shuvit"])
        XCTAssertEqual(session.dataset?.sampleShape, [1, 8, 16, 16])
        run("set batch 10; build conv 3x3x3 4 relu | pool 1x2x2 | conv 3x3x3 8 relu | gap | dense 5; train 2")
        XCTAssertTrue(run("confusion").contains("kickf"))
        XCTAssertEqual(try session.store!.query("SELECT dataset, epochs FROM runs").rows, [["tricks", "2"]])
        // The same folder again comes from the decoded cache.
        let again = run("load videos \(out) frames 8 size 16x16")
        XCTAssertTrue(again.contains("cache"), again)
        XCTAssertTrue(run("load videos \(out) frames 0", ok: false).contains("frames needs a whole number"))
    }
}
