import XCTest
import Foundation
import CPNG
import Datasets
import Tensor
@testable import Session

/// Small RGB picture folders for the tests that load images (here, NormalizeTests).
extension SessionTestCase {
    /// A height × width RGB PNG from a function of (y, x) giving 0…255 per channel.
    func writePNG(_ path: String, height: Int, width: Int, pixel: (Int, Int) -> [UInt8]) {
        var pixels: [UInt8] = []
        for y in 0..<height { for x in 0..<width { pixels += pixel(y, x) } }
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = PNG_FORMAT_RGB
        let ok = pixels.withUnsafeBytes { png_image_write_to_file(&image, path, 0, $0.baseAddress!, 0, nil) }
        XCTAssertNotEqual(ok, 0, path)
    }

    /// photos/<cat|dog|fox|owl>/i.png, 8×8: class k lights quadrant k in its colour, with noise,
    /// so every image differs from every other.
    func makePhotos(perClass: Int) -> String {
        let root = folder + "/photos"
        var noise = Random(seed: 9)
        let colours: [[UInt8]] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]
        for (k, name) in ["cat", "dog", "fox", "owl"].enumerated() {
            try? FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
            for i in 0..<perClass {
                writePNG("\(root)/\(name)/\(i).png", height: 8, width: 8) { y, x in
                    (y / 4) * 2 + x / 4 == k ? colours[k].map { UInt8(max(0, Int($0) - Int(noise.next() % 40))) } : [0, 0, 0]
                }
            }
        }
        return root
    }
}

/// `predict FILE` and `predict DIR [csv OUT]`: new files classified by the model, decoded as its
/// data was, in this session or in a new one holding only a restored checkpoint.
final class PredictFileTests: SessionTestCase {
    func trainedOnPhotos() -> String {
        let root = makePhotos(perClass: 8)
        run("load images \(root) size 4x4 gray test 0.25")
        session.settings.target = 2
        run("set batch 8; build conv 3x3 4 relu | pool 2 | dense 4; train 1")
        return root
    }

    func testAFileIsDecodedExactlyAsTheLoadedDataWas() throws {
        let root = trainedOnPhotos()
        let data = try XCTUnwrap(session.dataset)
        let recipe = try session.inputRecipe()
        XCTAssertEqual(recipe.sampleShape, [1, 4, 4])
        // Every file, decoded for prediction, is one of the loaded samples value for value.
        let samples = Set((data.train.images + data.test.images).chunked(16))
        for name in ["cat", "dog", "fox", "owl"] {
            for i in 0..<8 {
                let values = try session.decodeSample("\(root)/\(name)/\(i).png", recipe)
                XCTAssertTrue(samples.contains(values), "\(name)/\(i).png decoded otherwise than when loaded")
            }
        }
        let shown = run("predict \(root)/dog/3.png")
        let line = try XCTUnwrap(shown.split(separator: "\n").last)
        XCTAssertTrue(line.hasPrefix("3.png: model: "), shown)
        XCTAssertEqual(line.filter { $0 == "%" }.count, 3, "the top 3 with probabilities: \(line)")
        XCTAssertGreaterThan(shown.split(separator: "\n").count, 1, "the image is drawn: \(shown)")
    }

    func testRestoreThenPredictInANewProcessWithNoDataLoaded() throws {
        let root = trainedOnPhotos()
        run("save \(folder)/photos.safetensors")
        let here = run("predict \(root)/fox/2.png")

        let other = Session(store: nil, checkpointDirectory: folder + "/other")
        let console2 = BufferConsole()
        func run2(_ line: String, ok: Bool = true) -> String {
            console2.clear()
            XCTAssertEqual(other.execute(line, console: console2), ok, "\(line) → \(console2.text)")
            return console2.text
        }
        let restored = run2("restore \(folder)/photos.safetensors")
        XCTAssertNil(other.dataset)
        XCTAssertTrue(restored.contains("no data loaded"), restored)
        XCTAssertEqual(run2("predict \(root)/fox/2.png"), here, "the same answer with no data loaded")
        let refused = run2("train 1", ok: false)
        XCTAssertTrue(refused.contains("load images \(root) size 4x4 gray test 0.25"), refused)

        // A folder: a table and a CSV of every class's probability, through the safe writer.
        let table = run2("predict \(root)/owl csv \(folder)/out/owl.csv")
        XCTAssertTrue(table.contains("classified 8 images"), table)
        let csv = try String(contentsOfFile: folder + "/out/owl.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first, "path,class,cat,dog,fox,owl")
        XCTAssertEqual(csv.count, 9)
        let row = csv[1].split(separator: ",")
        XCTAssertEqual(row[0], "\(root)/owl/0.png")
        let probabilities = row[2...].map { Double($0)! }
        XCTAssertEqual(probabilities.reduce(0, +), 1, accuracy: 1e-4)
        XCTAssertEqual(String(row[1]), ["cat", "dog", "fox", "owl"][probabilities.indices.max { probabilities[$0] < probabilities[$1] }!])

        // Loading the data makes it trainable again.
        _ = run2("load images \(root) size 4x4 gray test 0.25")
        _ = run2("train 1")
    }

    func testBadInputsAreOneLineEach() throws {
        let root = trainedOnPhotos()
        func refusal(_ line: String) -> String {
            let text = run(line, ok: false)
            XCTAssertEqual(text.split(separator: "\n").count, 1, text)
            return text
        }
        XCTAssertTrue(refusal("predict \(folder)/nothing.png").contains("no such file or folder"))
        try Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]).write(to: URL(fileURLWithPath: folder + "/broken.png"))
        XCTAssertTrue(refusal("predict \(folder)/broken.png").contains("broken.png"))
        try Data("not a clip".utf8).write(to: URL(fileURLWithPath: folder + "/kick.mp4"))
        XCTAssertTrue(refusal("predict \(folder)/kick.mp4").contains("kick.mp4 is a video clip, but this model takes images (1×4×4"))
        try Data("notes".utf8).write(to: URL(fileURLWithPath: folder + "/notes.txt"))
        XCTAssertTrue(refusal("predict \(folder)/notes.txt").contains("neither an image"))
        try FileManager.default.createDirectory(atPath: folder + "/empty", withIntermediateDirectories: true)
        XCTAssertTrue(refusal("predict \(folder)/empty").contains("holds no images to classify"))
        XCTAssertTrue(refusal("predict \(root)/cat/0.png csv x.csv").contains("csv OUT goes with a folder"))
        XCTAssertTrue(run("predict 0").contains("label "), "predict N still shows test sample N")
    }

    func testCropCenterKeepsTheMiddleOfAWideImage() throws {
        // 8 high, 24 wide: white bands left and right, black in the middle (class a), or the reverse
        // (class b); in gray the white is 0.886 (the blue channel holds the image's number).
        let root = folder + "/wide"
        for (name, middle) in [("a", UInt8(0)), ("b", UInt8(255))] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
            for i in 0..<3 {
                writePNG("\(root)/\(name)/\(i).png", height: 8, width: 24) { _, x in
                    let v = (8..<16).contains(x) ? middle : 255 - middle
                    return [v, v, UInt8(i)]
                }
            }
        }
        run("load images \(root) size 4x4 gray")
        let squashed = session.dataset!.train.images + session.dataset!.test.images
        XCTAssertTrue(squashed.contains { $0 > 0.5 } && squashed.contains { $0 < 0.5 }, "squashed: each keeps both bands")
        let loaded = run("load images \(root) size 4x4 gray crop center")
        XCTAssertFalse(loaded.contains("cache"), "crop is part of the decoded cache key: \(loaded)")
        let data = try XCTUnwrap(session.dataset)
        for split in [data.train, data.test] {
            for (k, label) in split.labels.enumerated() {
                let sample = split.images[(k * 16)..<((k + 1) * 16)]
                XCTAssertTrue(sample.allSatisfy { label == 0 ? $0 < 0.01 : $0 > 0.88 }, "only the middle is kept: \(Array(sample))")
            }
        }
        // predict FILE follows the recipe's crop.
        session.settings.target = 2
        run("build mlp 4")
        let recipe = try session.inputRecipe()
        XCTAssertEqual(recipe.crop, .center)
        XCTAssertTrue(try session.decodeSample("\(root)/b/0.png", recipe).allSatisfy { $0 > 0.88 })
        // resume in another process loads the data with the crop, as the run was trained.
        run("set batch 2; train 1")
        let other = Session(store: session.store, checkpointDirectory: folder + "/checkpoints")
        other.decodedCache = nil
        let console2 = BufferConsole()
        XCTAssertTrue(other.execute("resume 1", console: console2), console2.text)
        XCTAssertEqual(other.dataset?.train.images, data.train.images)
    }
}

extension Array {
    /// Consecutive pieces of `size` elements.
    func chunked(_ size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
