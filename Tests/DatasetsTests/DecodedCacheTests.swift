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

    /// Over the limit, the least recently used entries go; a read counts as a use.
    func testTheLeastRecentlyUsedEntriesAreEvictedOverTheLimit() throws {
        var cache = DecodedCache(directory: root + "/cache")
        let sizes: [(Int, Int)] = [(2, 2), (4, 4), (6, 6), (8, 8)]
        for size in sizes.prefix(3) { _ = try load(cache, size: size) }
        let entries = cache.entries()
        XCTAssertEqual(entries.count, 3)
        func entry(_ size: (Int, Int)) -> DecodedCache.Entry? {
            cache.entries().first { $0.options?.contains("size=\(size.0)x\(size.1) ") ?? false }
        }
        // Used 300, 200 and 100 seconds ago, the first longest ago…
        for (age, size) in zip([300.0, 200, 100], sizes) {
            let key = try XCTUnwrap(entry(size)).key
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -age)], ofItemAtPath: cache.path(for: key))
        }
        // …then it is read again: now the second is the least recently used.
        XCTAssertTrue(try load(cache, size: sizes[0]).1.readFromCache)
        XCTAssertEqual(cache.entries().first?.options, entry(sizes[0])?.options)
        let bytes = { (size: (Int, Int)) in try XCTUnwrap(entry(size)).bytes }
        // Room for the first, the third and the fourth (its size learnt from a cache of its own).
        let elsewhere = DecodedCache(directory: root + "/elsewhere")
        _ = try load(elsewhere, size: sizes[3])
        let fourth = try XCTUnwrap(elsewhere.entries().first).bytes
        cache.limitBytes = try bytes(sizes[0]) + bytes(sizes[2]) + fourth
        _ = try load(cache, size: sizes[3])
        XCTAssertNotNil(entry(sizes[0]), "read last: kept")
        XCTAssertNil(entry(sizes[1]), "the least recently used: evicted")
        XCTAssertNotNil(entry(sizes[3]), "just written: kept")
        XCTAssertLessThanOrEqual(cache.entries().reduce(0) { $0 + $1.bytes }, cache.limitBytes)
        XCTAssertNotNil(entry(sizes[2]))
        XCTAssertEqual(cache.clear().count, 3)
        XCTAssertTrue(cache.entries().isEmpty)
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
