import XCTest
import Foundation
import Datasets
import Tracking
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
        XCTAssertTrue(loaded.hasPrefix("tricks: 30 train, 10 test clips, 1×8×16×16, 5 classes"), loaded)
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

    /// A clip model restored in a new session with no data: a clip file is classified as the
    /// folder's clips were decoded (frames, size, crop); an image is refused in one line.
    func testRestoredClipModelPredictsAClipFileWithNoDataLoaded() throws {
        let out = folder + "/tricks"
        try makeTricks(out, perTrick: 3)
        let loaded = run("load videos \(out) frames 8 size 16x16 crop center")
        XCTAssertTrue(loaded.hasPrefix("tricks: 15 train, 10 test clips, 1×8×16×16, 5 classes"), loaded)
        run("set batch 5; set target off; build conv 3x3x3 4 relu | pool 1x2x2 | gap | dense 5; train 1")
        run("save \(folder)/tricks.safetensors")
        let clip = out + "/test/ollie/" + (try FileManager.default.contentsOfDirectory(atPath: out + "/test/ollie")).sorted()[0]
        let recipe = try session.inputRecipe()
        let data = try XCTUnwrap(session.dataset)
        let decoded = try session.decodeSample(clip, recipe)
        let samples = (0..<data.test.count).map { Array(data.test.images[($0 * 2048)..<(($0 + 1) * 2048)]) }
        XCTAssertTrue(samples.contains(decoded), "the file decodes as the loaded clip did")
        let here = run("predict \(clip)")

        let other = Session(store: nil, checkpointDirectory: folder + "/other")
        let console2 = BufferConsole()
        XCTAssertTrue(other.execute("restore \(folder)/tricks.safetensors", console: console2), console2.text)
        console2.clear()
        XCTAssertTrue(other.execute("predict \(clip)", console: console2), console2.text)
        XCTAssertEqual(console2.text, here)
        XCTAssertTrue(console2.text.contains("model: "), console2.text)
        let png = folder + "/frame.png"
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]).write(to: URL(fileURLWithPath: png))
        console2.clear()
        XCTAssertFalse(other.execute("predict \(png)", console: console2))
        XCTAssertTrue(console2.text.contains("frame.png is an image, but this model takes clips (1×8×16×16, C×T×H×W)"), console2.text)
        console2.clear()
        XCTAssertTrue(other.execute("predict \(out)/test/kickflip csv \(folder)/kickflip.csv", console: console2), console2.text)
        XCTAssertTrue(console2.text.contains("classified 2 clips"), console2.text)
    }

    /// What the MNIST path has, on clips: an interrupted epoch, `resume` in another process (a new
    /// session on the same database) carrying on bit for bit as an unbroken run, `fork` retracing
    /// an epoch, `diff` and `report`.
    func testClipRunsInterruptResumeForkAndReportLikeImageRuns() throws {
        let out = folder + "/tricks"
        try makeTricks(out, perTrick: 6)
        let (third, console3) = try retraceAnInterruptedRun("load videos \(out) frames 8 size 16x16; set batch 10; set target off; set noise 0.05; "
            + "build conv 3x3x3 4 relu | pool 1x2x2 | conv 3x3x3 8 relu | pool 2 | gap | dense 5")
        let unbroken = try session.store!.query("SELECT epoch, name, printf('%.17g', value) FROM metrics WHERE run = 1 AND name IN ('train_loss', 'test_accuracy', 'test_loss') ORDER BY epoch, name").rows
        XCTAssertTrue(third.execute("fork 1@2; train 1", console: console3), console3.text)
        let forked = try session.store!.query("SELECT printf('%.17g', value) FROM metrics WHERE run = 3 AND epoch = 3 AND name = 'test_accuracy'").rows
        XCTAssertEqual(forked, unbroken.filter { $0[0] == "3" && $0[1] == "test_accuracy" }.map { [$0[2]] })
        console3.clear()
        XCTAssertTrue(third.execute("diff 1 2", console: console3), console3.text)
        XCTAssertTrue(console3.text.contains("run 1") && console3.text.contains("run 2"), console3.text)
        let report = folder + "/clips.md"
        XCTAssertTrue(third.execute("report 1 2 3 md \(report)", console: console3), console3.text)
        let written = try String(contentsOfFile: report, encoding: .utf8)
        XCTAssertTrue(written.contains("tricks") && written.contains("conv 3x3x3 4 relu"), written)
    }

    /// The networks of today on clips: a per-frame convnet with a residual block, feeding a GRU,
    /// a bidirectional LSTM and dropout. Interrupted mid-epoch and resumed in another session,
    /// the run retraces the unbroken one bit for bit.
    func testACNNRNNRunInterruptedAndResumedRetracesTheUnbrokenRun() throws {
        let out = folder + "/tricks"
        try makeTricks(out, perTrick: 6)
        let (third, _) = try retraceAnInterruptedRun("load videos \(out) frames 8 size 16x16; set batch 10; set target off; set clip 1; "
            + "build frames(conv 3 4 relu | res(conv 3 4 relu | conv 3 4) | pool 2 | dense 8 relu) | gru 8 seq | lstm 8 bi | dropout 0.2 | dense 5")
        XCTAssertTrue(third.model!.parameters.contains { $0.name == "0.net.2.body.0.weight" })
        XCTAssertTrue(third.model!.parameters.contains { $0.name == "2.weight_hh_l0_reverse" })
    }

    /// PyTorch (Debian's python3-torch, which scripts/test-peers.sh installs) loads the
    /// checkpoints of the networks of today with load_state_dict(strict=True), as the module
    /// tree scripts/pytorch_check.py writes from the spec, and scores each as ollie does: a
    /// CNN-LSTM with attention and a CNN-BiGRU on clips (their decoded cache), a residual
    /// network with a batchnorm projection on images (IDX files).
    func testPyTorchLoadsTheNewNetworksCheckpointsStrictlyAndScoresThemTheSame() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"),
              (try? python(["-c", "import torch"])) != nil else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("no PyTorch: bash scripts/test-peers.sh installs it") }
            throw XCTSkip("no PyTorch for /usr/bin/python3 (apt-get install python3-torch)")
        }
        let out = folder + "/tricks"
        try makeTricks(out, perTrick: 6)
        func check(_ setup: String, data: String) throws {
            run(setup + "; train 2")
            let ours = run("accuracy test")
            run("save \(folder)/net.safetensors")
            let theirs = try python([repository + "/scripts/pytorch_check.py", folder + "/net.safetensors", data])
            let fraction = ours.split(separator: " ")[2]
            XCTAssertTrue(theirs.contains("test accuracy \(fraction)"), "\(setup)\nollie: \(ours)\nPyTorch: \(theirs)")
        }
        run("load videos \(out) frames 8 size 16x16; set batch 10; set target off")
        let decoded = try FileManager.default.contentsOfDirectory(atPath: folder + "/decoded").filter { $0.hasSuffix(".bin") }
        XCTAssertEqual(decoded.count, 1)
        try check("build frames(conv 3 4 relu | res(conv 3 4 relu | conv 3 4) | pool 2 | dense 8 relu) | lstm 6 seq | attention | dense 5",
                  data: folder + "/decoded/" + decoded[0])
        try check("build frames(conv 3 4 | batchnorm | relu | pool 2 | dense 8 relu) | gru 6 bi | dense 5",
                  data: folder + "/decoded/" + decoded[0])
        try writeQuadrantIDX(to: folder + "/q", train: 256, test: 64, seed: 1)
        run("load idx \(folder)/q; set batch 32")
        try check("build conv 3 4 relu | res(conv 3 8 stride 2 | batchnorm | relu | conv 3 8 | batchnorm) | relu | gap | dense 4",
                  data: folder + "/q")
    }

    /// Runs /usr/bin/python3 (Debian's, with its python3-torch) with `arguments`; its output,
    /// or an error with it when it fails.
    func python(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw NSError(domain: "python", code: Int(process.terminationStatus), userInfo: [NSLocalizedDescriptionKey: text]) }
        return text
    }

    /// `setup` then 3 epochs (run 1); in a second session on the same database, `setup`, one
    /// epoch and 2 batches of the next (run 2), then that session ends; a third resumes run 2
    /// and trains 2 epochs: run 2's metrics and weights must be run 1's, bit for bit. Returns
    /// the third session.
    func retraceAnInterruptedRun(_ setup: String) throws -> (Session, BufferConsole) {
        run(setup + "; train 3")
        let unbroken = try session.store!.query("SELECT epoch, name, printf('%.17g', value) FROM metrics WHERE run = 1 AND name IN ('train_loss', 'test_accuracy', 'test_loss') ORDER BY epoch, name").rows
        XCTAssertEqual(unbroken.filter { $0[1] == "test_accuracy" }.count, 3)
        func newSession() -> (Session, BufferConsole) {
            let other = Session(store: try! RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
            other.decodedCache = DecodedCache(directory: folder + "/decoded")
            return (other, BufferConsole())
        }
        let (second, console2) = newSession()
        XCTAssertTrue(second.execute(setup + "; train 1; train 2 batches", console: console2), console2.text)
        XCTAssertTrue(console2.text.contains("stopped in epoch 2 after batch 2/3"), console2.text)
        second.close(console2)   // that process ends, giving the run up
        let (third, console3) = newSession()
        XCTAssertTrue(third.execute("resume 2", console: console3), console3.text)
        XCTAssertTrue(console3.text.contains("resumed run 2 at epoch 1"), console3.text)
        XCTAssertTrue(third.execute("train 2", console: console3), console3.text)
        let resumed = try session.store!.query("SELECT epoch, name, printf('%.17g', value) FROM metrics WHERE run = 2 AND name IN ('train_loss', 'test_accuracy', 'test_loss') ORDER BY epoch, name").rows
        XCTAssertEqual(resumed, unbroken, "the resumed run retraces the unbroken one")
        XCTAssertEqual(third.model!.parameters.map(\.value.data), session.model!.parameters.map(\.value.data))
        return (third, console3)
    }
}
