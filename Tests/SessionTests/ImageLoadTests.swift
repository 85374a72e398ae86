import XCTest
import Foundation
import CPNG
import Tensor
@testable import Session

/// `load images` at the prompt: a folder of class folders of PNGs the test writes itself.
final class ImageLoadTests: SessionTestCase {
    /// An 8×8 RGB PNG: class k lights quadrant k in colour k (red, green, blue, white).
    func writePNG(_ path: String, quadrant k: Int, noise: inout Random) throws {
        var pixels = [UInt8](repeating: 0, count: 8 * 8 * 3)
        let colour: [UInt8] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]][k]
        for p in 0..<64 where ((p / 8) / 4) * 2 + (p % 8) / 4 == k {
            for c in 0..<3 { pixels[p * 3 + c] = UInt8(max(0, Int(colour[c]) - Int(noise.next() % 40))) }
        }
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = 8
        image.height = 8
        image.format = PNG_FORMAT_RGB
        let ok = pixels.withUnsafeBytes { png_image_write_to_file(&image, path, 0, $0.baseAddress!, 0, nil) }
        XCTAssertNotEqual(ok, 0, path)
    }

    func makeFolder(perClass: Int) throws -> String {
        let root = folder + "/photos"
        var noise = Random(seed: 5)
        for (k, name) in ["cat", "dog", "fox", "owl"].enumerated() {
            try FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
            for i in 0..<perClass { try writePNG("\(root)/\(name)/\(i).png", quadrant: k, noise: &noise) }
        }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: root + "/cat/notes.txt"))
        return root
    }

    func testLoadImagesTrainsAndShowsClassNames() throws {
        let root = try makeFolder(perClass: 20)
        let loaded = run("load images \(root) test 0.25 rgb")
        XCTAssertTrue(loaded.hasPrefix("photos: 60 train, 20 test images, 3×8×8, 4 classes"), loaded)
        XCTAssertTrue(loaded.contains("ignored 1 file"), loaded)
        XCTAssertEqual(session.dataset?.classNames, ["cat", "dog", "fox", "owl"])
        // Not one class after another: dataset order must be trainable as the reference trains.
        let labels = session.dataset!.train.labels
        XCTAssertNotEqual(labels, labels.sorted())
        XCTAssertTrue(labels.prefix(12).contains(0) && labels.prefix(12).contains(3), "\(labels)")
        session.settings.target = 2
        run("set batch 16; build conv 3x3 8 relu | pool 2 | dense 4; train 3")
        XCTAssertTrue(run("confusion").contains("cat"))
        XCTAssertTrue(run("predict 0").contains("label "))
        // The run records the data's name; resume reloads the folder with the same options.
        XCTAssertEqual(try session.store!.query("SELECT dataset FROM runs").rows, [["photos"]])
        let other = Session(store: session.store, checkpointDirectory: folder + "/checkpoints")
        let console2 = BufferConsole()
        XCTAssertTrue(other.execute("resume 1", console: console2), console2.text)
        XCTAssertEqual(other.dataset?.train.images, session.dataset?.train.images)
        XCTAssertEqual(other.dataset?.channels, 3)
    }

    /// `cache` lists what loads kept (source, options, size, last used) in 80 columns;
    /// `set cache-limit` bounds it from the next load on, `cache clear` empties it.
    func testCacheListsBoundsAndClearsTheDecodedFolders() throws {
        let root = try makeFolder(perClass: 4)
        XCTAssertTrue(run("cache").hasPrefix("0 entries, 0 B of 2 GB (set cache-limit SIZE)"))
        run("load images \(root) rgb; load images \(root) size 4x4 rgb")
        let listed = run("cache")
        let lines = listed.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 6, listed)   // header, rule, two entries, total, folder
        XCTAssertTrue(lines[0].hasPrefix("source") && lines[0].contains("options") && lines[0].contains("last used"), listed)
        XCTAssertTrue(lines[2].contains("size=4x4"), "the last used first: \(listed)")
        XCTAssertTrue(lines[3].contains("size=-"), listed)
        XCTAssertTrue(lines[4].hasPrefix("2 entries, "), listed)
        XCTAssertTrue(lines[5].hasSuffix("/decoded"), listed)
        XCTAssertLessThanOrEqual(lines.map(\.count).max()!, 80, listed)
        // Room for one full-size entry: the next one (8x8 is full size, under other options) keeps only itself.
        let sizes = session.decodedCache!.entries().map(\.bytes)
        run("set cache-limit \(sizes.max()! + 10)")
        XCTAssertTrue(run("show").contains("cache-limit"))
        run("load images \(root) size 8x8 rgb")
        let kept = session.decodedCache!.entries()
        XCTAssertEqual(kept.count, 1)
        XCTAssertTrue(kept[0].options?.contains("size=8x8") ?? false, "\(kept)")
        XCTAssertTrue(run("cache clear").hasPrefix("deleted 1 entry ("))
        XCTAssertTrue(session.decodedCache!.entries().isEmpty)
        XCTAssertTrue(run("set cache-limit lots", ok: false).contains("cache-limit must be a size like 2G"))
        XCTAssertTrue(run("cache wipe", ok: false).contains("usage: cache [clear]"))
    }

    func testBadImageOptionsAndFilesAreOneLineErrors() throws {
        let root = try makeFolder(perClass: 4)
        XCTAssertTrue(run("load images \(root) size 0x8", ok: false).contains("size must be HxW"))
        XCTAssertTrue(run("load images \(root) test 2", ok: false).contains("test needs a fraction"))
        XCTAssertTrue(run("load images \(root) sideways", ok: false).contains("unexpected 'sideways'"))
        XCTAssertTrue(run("load images /nonexistent", ok: false).contains("is not a folder"))
        try Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]).write(to: URL(fileURLWithPath: root + "/dog/broken.png"))
        let refused = run("load images \(root)", ok: false)
        XCTAssertTrue(refused.contains("broken.png"), refused)
        XCTAssertNil(session.dataset)
        let skipped = run("load images \(root) skip-bad")
        XCTAssertTrue(skipped.contains("skipped 1 unreadable file"), skipped)
        XCTAssertEqual(session.completions(for: "load images \(root) s"), ["size", "skip-bad"])
    }
}
