import XCTest
import Foundation
import Datasets
import Tensor
import Tracking
import Training
@testable import Session

/// `set augment`: read, refused in one line, shown, recorded with the run and kept by resume;
/// `predict N augmented` draws the sample beside its augmented self in 80 columns.
final class AugmentSettingTests: SessionTestCase {
    func rows(_ sql: String) throws -> [[String]] { try session.store!.query(sql).rows }

    func testSetAugmentTakesSeveralWordsAndRefusesBadOnesInOneLine() {
        XCTAssertEqual(run("set augment flip crop 4 rotate 10"), "augment = flip crop 4 rotate 10 (was off)")
        XCTAssertEqual(session.settings.augmentation.cropPadding, 4)
        for (bad, says) in [("crop", "augment crop needs a number, e.g. set augment crop 4"),
                            ("rotate 400", "augment rotate takes the largest angle in degrees > 0 and ≤ 180"),
                            ("flp crop 2", "unknown augmentation 'flp' — did you mean 'flip'?"),
                            ("zoom 2", "unknown augmentation 'zoom'; augment takes flip, crop P, rotate DEG,"),
                            ("flip flip", "augment flip is given twice")] {
            let refused = run("set augment \(bad)", ok: false)
            XCTAssertTrue(refused.hasPrefix("error: " + says), refused)
            XCTAssertEqual(refused.split(separator: "\n").count, 1, refused)
        }
        XCTAssertEqual(session.settings.augmentation.text, "flip crop 4 rotate 10", "a refused value changes nothing")
        let shown = run("show")
        XCTAssertNotNil(shown.range(of: "\naugment +flip crop 4 rotate 10 \\*", options: .regularExpression), shown)
        XCTAssertEqual(run("set augment off"), "augment = off (was flip crop 4 rotate 10)")
        XCTAssertTrue(run("help set").contains("augment"))
        XCTAssertTrue(run("set lr", ok: false).hasPrefix("error: usage: set KEY VALUE"))
    }

    func testTemporalWordsOnImagesAreAcceptedWithANote() {
        loadQuadrants()
        let said = run("set augment flip stride 2")
        XCTAssertEqual(said, "augment = flip stride 2 (was off)\nnote: offset and stride resample clips in time; on these images they do nothing")
        XCTAssertFalse(run("set augment flip").contains("note"))
    }

    func testTheSettingIsRecordedWithTheRunAndComesBackWithResume() throws {
        try writeQuadrantIDX(to: folder + "/a", train: 256, test: 64, seed: 1)
        run("load idx \(folder)/a; set batch 32; set target off; set augment flip crop 2; build conv; train 1")
        XCTAssertEqual(try rows("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'augment'"), [["flip crop 2", "1"]])
        run("set augment crop 1 brightness 0.2; train 1")
        XCTAssertEqual(try rows("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'augment' ORDER BY from_epoch"),
                       [["flip crop 2", "1"], ["crop 1 brightness 0.2", "2"]])
        session.close(BufferConsole())
        let other = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        let console = BufferConsole()
        XCTAssertTrue(other.execute("resume 1", console: console), console.text)
        XCTAssertEqual(other.settings.augmentation.text, "crop 1 brightness 0.2")
        // A run recorded before the setting existed trained without augmentation.
        XCTAssertEqual(Setting.named("augment")?.unrecordedValue, "off")
    }

    func testPredictShowsTheAugmentedSampleBesideTheOriginal() throws {
        loadQuadrants()
        XCTAssertTrue(run("predict 3 augmented", ok: false).hasPrefix("error: augmentation is off"))
        run("build conv; set augment flip crop 2 rotate 30")
        let shown = run("predict 3 augmented")
        XCTAssertTrue(shown.hasPrefix("original     "), shown)
        XCTAssertTrue(shown.contains("augmented (flip crop 2 rotate 30)"), shown)
        XCTAssertTrue(shown.contains("test image 3: label"), shown)
        XCTAssertTrue(shown.contains("\naugmented: model: "), shown)
        for row in shown.split(separator: "\n") { XCTAssertLessThanOrEqual(row.count, 80, String(row)) }
        // The same sample twice gives the same drawing; `train` still scores unaugmented.
        XCTAssertEqual(run("predict 3 augmented"), shown)
        XCTAssertTrue(run("predict 3 train augmented").contains("train image 3"))
        // MNIST-sized images: side by side with one column a pixel, still 80 wide.
        let wide = Dataset(name: "wide", train: quadrants().train, test: Split(images: [Float](repeating: 0.5, count: 2 * 28 * 28), labels: [0, 1]),
                           height: 28, width: 28, channels: 1, classNames: ["a", "b", "c", "d"], source: "memory")
        session.workbench = .data(wide)
        let big = run("predict 1 augmented")
        for row in big.split(separator: "\n") { XCTAssertLessThanOrEqual(row.count, 80, String(row)) }
        XCTAssertTrue(big.hasPrefix("original"), big)
        // Clips: the frames, then the same frames augmented, below.
        var random = Random(seed: 2)
        let frames = Split(images: (0..<(2 * 8 * 16 * 16)).map { _ in random.nextFloat() }, labels: [0, 1])
        session.workbench = .data(Dataset(name: "clips", train: frames, test: frames, height: 16, width: 16, channels: 1, frames: 8,
                                          classNames: ["a", "b"], source: "memory"))
        run("set augment flip offset stride 2")
        let clip = run("predict 1 augmented")
        for row in clip.split(separator: "\n") { XCTAssertLessThanOrEqual(row.count, 80, String(row)) }
        XCTAssertTrue(clip.hasPrefix("original:\n"), clip)
        XCTAssertTrue(clip.contains("\naugmented (flip offset stride 2):\n"), clip)
        XCTAssertTrue(clip.hasSuffix("test clip 1: label b"), clip)
    }
}
