import XCTest
import Foundation
import Datasets
@testable import Session

/// `load … normalize imagenet|MEAN/STD`: the inputs a pretrained backbone expects, applied to
/// the loaded data and, through the recipe, to every file `predict` decodes.
final class NormalizeTests: XCTestCase {
    func testParsingPrintingAndApplying() throws {
        XCTAssertEqual(try Normalization(parsing: "ImageNet"), .imagenet)
        let half = try Normalization(parsing: "0.5/0.25")
        XCTAssertEqual(half.description, "0.5/0.25")
        XCTAssertEqual(try Normalization(parsing: half.description), half)
        XCTAssertEqual(half.apply(to: [0, 0.5, 1], channels: 1), [-2, 0, 2])
        // Channels innermost, as Split.images holds them: R G B R G B.
        let rgb = Normalization.imagenet.apply(to: [0.485, 0.456, 0.406, 0.714, 0.68, 0.631], channels: 3)
        for (value, expected) in zip(rgb, [Float(0), 0, 0, 1, 1, 1]) { XCTAssertEqual(value, expected, accuracy: 1e-5) }
        let back = Normalization.imagenet.undo(rgb, channels: 3)
        for (value, expected) in zip(back, [Float(0.485), 0.456, 0.406, 0.714, 0.68, 0.631]) { XCTAssertEqual(value, expected, accuracy: 1e-6) }
        for bad in ["", "0.5", "0.5/0", "a/b", "0.1,0.2/0.3", "0.5/0.25/1", "nan/1", "1/1e-45", "0.5/-1"] {
            XCTAssertThrowsError(try Normalization(parsing: bad), bad) { XCTAssertTrue("\($0)".contains("normalize"), "\($0)") }
        }
    }
}

final class NormalizeSessionTests: SessionTestCase {
    func testLoadNormalizesTheDataAndPredictDecodesTheSameWay() throws {
        let root = makePhotos(perClass: 4)
        run("load images \(root) size 4x4 rgb test 0.25")
        let plain = try XCTUnwrap(session.dataset)
        run("load images \(root) size 4x4 rgb test 0.25 normalize imagenet")
        let normalized = try XCTUnwrap(session.dataset)
        XCTAssertEqual(normalized.train.images, Normalization.imagenet.apply(to: plain.train.images, channels: 3))
        XCTAssertEqual(try session.inputRecipe().normalization, .imagenet)
        // A file decoded for `predict` is normalised like the loaded samples: it is one of them.
        let samples = Set((normalized.train.images + normalized.test.images).chunked(48))
        let values = try session.decodeSample("\(root)/owl/1.png", try session.inputRecipe())
        XCTAssertTrue(samples.contains(values), "predict's decoding differs from the loaded data's")
        run("build conv 3 4 relu | pool 2 | dense 4; train 1")
        XCTAssertTrue(run("predict \(root)/owl/1.png").contains("model: "))
        // Bad words: one line, the data stays as it was.
        let error = run("load images \(root) size 4x4 gray normalize imagenet", ok: false)
        XCTAssertTrue(error.contains("3 channels"), error)
        XCTAssertTrue(run("load images \(root) normalize 2", ok: false).contains("MEAN/STD"))
        XCTAssertEqual(session.dataset?.train.images, normalized.train.images)
    }
}
