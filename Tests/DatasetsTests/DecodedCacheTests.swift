import XCTest
import Foundation
import CPNG
@testable import Datasets

/// The decoded cache: the same files and options load from it; any change decodes again.
final class DecodedCacheTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "ollie-cache-\(UUID().uuidString)"
        for (k, name) in ["a", "b"].enumerated() {
            try FileManager.default.createDirectory(atPath: "\(root)/photos/\(name)", withIntermediateDirectories: true)
            for i in 0..<5 { try writeGray("\(root)/photos/\(name)/\(i).png", value: UInt8(k * 100 + i * 10)) }
        }
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func writeGray(_ path: String, value: UInt8) throws {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = 3
        image.height = 2
        image.format = png_uint_32(PNG_FORMAT_GRAY)
        let pixels = [UInt8](repeating: value, count: 6)
        let ok = pixels.withUnsafeBytes { png_image_write_to_file(&image, path, 0, $0.baseAddress!, 0, nil) }
        XCTAssertNotEqual(ok, 0)
    }

    func load(_ cache: DecodedCache, size: (height: Int, width: Int)? = nil) throws -> (Dataset, ImageFolderReport) {
        let (dataset, report) = try DatasetCatalog.load(imagesDirectory: root + "/photos", size: size, testFraction: 0.2, seed: 3, cache: cache)
        return (dataset, report)
    }

    func testTheSameFilesAndOptionsLoadFromTheCacheAndAChangeDecodesAgain() throws {
        let cache = DecodedCache(directory: root + "/cache")
        let (first, firstReport) = try load(cache)
        XCTAssertFalse(firstReport.readFromCache)
        let (again, report) = try load(cache)
        XCTAssertTrue(report.readFromCache)
        XCTAssertTrue(report.description.contains("read from the cache"))
        XCTAssertEqual(again.train.images, first.train.images)
        XCTAssertEqual(again.test.labels, first.test.labels)
        XCTAssertEqual(again.classNames, first.classNames)
        XCTAssertEqual([again.height, again.width, again.channels], [first.height, first.width, first.channels])
        // Other options: another entry.
        XCTAssertFalse(try load(cache, size: (4, 6)).1.readFromCache)
        XCTAssertTrue(try load(cache, size: (4, 6)).1.readFromCache)
        // A changed file (another size in bytes and time): decoded again, with its new pixels.
        Thread.sleep(forTimeInterval: 0.01)
        try writeGray(root + "/photos/a/0.png", value: 255)
        let (changed, changedReport) = try load(cache)
        XCTAssertFalse(changedReport.readFromCache)
        XCTAssertNotEqual(changed.train.images + changed.test.images, first.train.images + first.test.images)
        // A damaged entry is ignored (and replaced).
        let entries = try FileManager.default.contentsOfDirectory(atPath: root + "/cache")
        for entry in entries { try Data("garbage".utf8).write(to: URL(fileURLWithPath: root + "/cache/" + entry)) }
        XCTAssertFalse(try load(cache).1.readFromCache)
        XCTAssertTrue(try load(cache).1.readFromCache)
    }
}
