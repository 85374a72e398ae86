import XCTest
import Foundation
@testable import Datasets

/// Writes tiny IDX files (raw or gzipped) into a temp folder.
final class IDXFixture {
    let folder: String

    init() throws {
        folder = NSTemporaryDirectory() + "ollie-idx-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    static func images(_ count: Int, rows: Int = 4, cols: Int = 3, magic: UInt32 = 0x803) -> [UInt8] {
        var bytes = be(magic) + be(UInt32(count)) + be(UInt32(rows)) + be(UInt32(cols))
        bytes += (0..<(count * rows * cols)).map { UInt8($0 % 256) }
        return bytes
    }

    static func labels(_ values: [UInt8], magic: UInt32 = 0x801) -> [UInt8] {
        be(magic) + be(UInt32(values.count)) + values
    }

    static func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8], gzip: Bool = false) throws -> String {
        let path = "\(folder)/\(name)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        if gzip {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/gzip")
            p.arguments = ["-f", path]
            try p.run(); p.waitUntilExit()
            return path + ".gz"
        }
        return path
    }

    /// A complete dataset: 5 training and 2 test images of 4×3.
    func writeDataset(gzip: Bool) throws {
        try write("train-images-idx3-ubyte", Self.images(5), gzip: gzip)
        try write("train-labels-idx1-ubyte", Self.labels([0, 1, 2, 3, 9]), gzip: gzip)
        try write("t10k-images-idx3-ubyte", Self.images(2), gzip: gzip)
        try write("t10k-labels-idx1-ubyte", Self.labels([7, 8]), gzip: gzip)
    }
}

final class DatasetsTests: XCTestCase {
    func testReadsRawAndGzippedIDXFolders() throws {
        for gzip in [false, true] {
            let fixture = try IDXFixture()
            try fixture.writeDataset(gzip: gzip)
            let data = try DatasetCatalog.load(idxDirectory: fixture.folder, name: "tiny")
            XCTAssertEqual(data.train.count, 5)
            XCTAssertEqual(data.test.count, 2)
            XCTAssertEqual([data.height, data.width, data.channels], [4, 3, 1])
            XCTAssertEqual(data.train.labels, [0, 1, 2, 3, 9])
            XCTAssertEqual(data.train.images.count, 5 * 12)
            XCTAssertEqual(data.train.images[1], 1 / 255, accuracy: 1e-7)
            XCTAssertEqual(data.train.images[59], 59 / 255, accuracy: 1e-7)
            XCTAssertTrue(data.train.images.allSatisfy { (0...1).contains($0) })
        }
    }

    func testWrongMagicNumberNamesTheFile() throws {
        let fixture = try IDXFixture()
        try fixture.writeDataset(gzip: false)
        try fixture.write("train-images-idx3-ubyte", IDXFixture.images(5, magic: 0x801))
        XCTAssertThrowsError(try DatasetCatalog.load(idxDirectory: fixture.folder)) { error in
            XCTAssertTrue("\(error)".contains("train-images-idx3-ubyte has magic number 0x801"), "\(error)")
        }
    }

    func testTruncatedFileIsAClearError() throws {
        let fixture = try IDXFixture()
        try fixture.writeDataset(gzip: false)
        try fixture.write("t10k-images-idx3-ubyte", Array(IDXFixture.images(2).dropLast(5)))
        XCTAssertThrowsError(try DatasetCatalog.load(idxDirectory: fixture.folder)) { error in
            XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
            XCTAssertTrue("\(error)".contains("t10k-images-idx3-ubyte"), "\(error)")
        }
    }

    func testCorruptGzipIsAClearError() throws {
        let fixture = try IDXFixture()
        try fixture.writeDataset(gzip: true)
        let path = fixture.folder + "/train-labels-idx1-ubyte.gz"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for i in (bytes.count - 8)..<bytes.count { bytes[i] ^= 0xFF }   // the CRC and length trailer
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try DatasetCatalog.load(idxDirectory: fixture.folder)) { error in
            XCTAssertTrue("\(error)".contains("not a valid gzip file"), "\(error)")
        }
        // Cut short, too.
        try Data(bytes.prefix(15)).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try DatasetCatalog.load(idxDirectory: fixture.folder)) { error in
            XCTAssertTrue("\(error)".contains("train-labels-idx1-ubyte.gz"), "\(error)")
        }
    }

    func testImageAndLabelCountsMustMatch() throws {
        let fixture = try IDXFixture()
        try fixture.writeDataset(gzip: false)
        try fixture.write("train-labels-idx1-ubyte", IDXFixture.labels([0, 1, 2]))
        XCTAssertThrowsError(try DatasetCatalog.load(idxDirectory: fixture.folder)) { error in
            XCTAssertTrue("\(error)".contains("5 images but train-labels-idx1-ubyte has 3 labels"), "\(error)")
        }
    }

    func testLabelsOutsideTheClassesAreRejected() throws {
        let fixture = try IDXFixture()
        try fixture.writeDataset(gzip: false)
        try fixture.write("train-labels-idx1-ubyte", IDXFixture.labels([0, 1, 2, 3, 12]))
        XCTAssertThrowsError(try DatasetCatalog.load(idxDirectory: fixture.folder)) { error in
            XCTAssertTrue("\(error)".contains("label 12"), "\(error)")
        }
    }

    func testMissingFolderAndMissingFileSayWhatIsNeeded() throws {
        XCTAssertThrowsError(try DatasetCatalog.load(idxDirectory: "/nonexistent/ollie")) { error in
            XCTAssertTrue("\(error)".contains("no folder /nonexistent/ollie"), "\(error)")
        }
        let fixture = try IDXFixture()
        try fixture.write("train-images-idx3-ubyte", IDXFixture.images(5))
        XCTAssertThrowsError(try DatasetCatalog.load(idxDirectory: fixture.folder)) { error in
            XCTAssertTrue("\(error)".contains("has no train-labels-idx1-ubyte"), "\(error)")
        }
    }

    func testSearchPathOrder() {
        let path = DatasetCatalog.searchPath(environment: ["OLLIE_DATA_PATH": "/a:/b", "HOME": "/home/u"])
        XCTAssertEqual(path, ["/a", "/b", "data", "../shared/datasets", "/usr/share/datasets", "/home/u/.cache/ollie/datasets"])
        XCTAssertEqual(DatasetCatalog.searchPath(environment: ["XDG_CACHE_HOME": "/c"]).last, "/c/ollie/datasets")
    }

    func testNamedDatasetIsFoundOnTheSearchPathWithoutDownloading() throws {
        let empty = try IDXFixture(), holder = try IDXFixture()
        let folder = holder.folder + "/mnist"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let inner = try IDXFixture()
        try inner.writeDataset(gzip: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: inner.folder) {
            try FileManager.default.copyItem(atPath: inner.folder + "/" + file, toPath: folder + "/" + file)
        }
        let data = try DatasetCatalog.load("mnist", searchPath: [empty.folder, holder.folder], allowDownload: false)
        XCTAssertEqual(data.name, "mnist")
        XCTAssertEqual(data.source, folder)
        XCTAssertThrowsError(try DatasetCatalog.load("fashion-mnist", searchPath: [empty.folder], allowDownload: false)) { error in
            XCTAssertTrue("\(error)".contains("fashion-mnist not found; looked in \(empty.folder)/fashion-mnist"), "\(error)")
        }
        XCTAssertThrowsError(try DatasetCatalog.load("cifar", searchPath: [empty.folder], allowDownload: false)) { error in
            XCTAssertTrue("\(error)".contains("unknown dataset 'cifar'"), "\(error)")
        }
    }

    func testMD5MatchesKnownVectors() {
        XCTAssertEqual(MD5.hex(Data()), "d41d8cd98f00b204e9800998ecf8427e")
        XCTAssertEqual(MD5.hex(Data("abc".utf8)), "900150983cd24fb0d6963f7d28e17f72")
        XCTAssertEqual(MD5.hex(Data("The quick brown fox jumps over the lazy dog".utf8)), "9e107d9d372bb6826bd81d3542a419d6")
        XCTAssertEqual(MD5.hex(Data(repeating: 0x61, count: 1000)), "cabe45dcc9ae5b66ba86600cca6b8ba8")
    }

    /// Serves a folder on 127.0.0.1 with Python's http.server for the duration of `body`.
    func withFileServer(_ folder: String, _ body: (String) throws -> Void) throws {
        let port = Int.random(in: 20000...40000)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", folder]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        let base = "http://127.0.0.1:\(port)/"
        for _ in 0..<50 {
            if (try? Download.get(URL(string: base)!, timeout: 1)) != nil { break }
            usleep(100_000)
        }
        try body(base)
    }

    func testDownloadFetchesIntoTheCacheAndRejectsABadChecksum() throws {
        let served = try IDXFixture()
        try served.writeDataset(gzip: true)
        let cache = try IDXFixture()
        try withFileServer(served.folder) { base in
            // A dataset name without known checksums downloads and loads.
            try Download.fetch("tiny", into: cache.folder + "/tiny", mirrors: [base])
            let data = try DatasetCatalog.load(idxDirectory: cache.folder + "/tiny")
            XCTAssertEqual(data.train.count, 5)
            // MNIST's real checksums do not match these files: nothing is kept.
            let target = cache.folder + "/mnist"
            XCTAssertThrowsError(try DatasetCatalog.load("mnist", searchPath: [cache.folder], mirrors: [base])) { error in
                XCTAssertTrue("\(error)".contains("MD5"), "\(error)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: target + "/train-images-idx3-ubyte.gz"))
        }
    }

    func testRealMNISTLoadsWhenPresent() throws {
        let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/datasets").path
        guard FileManager.default.fileExists(atPath: shared + "/mnist") else { throw XCTSkip("no MNIST under \(shared)") }
        let mnist = try DatasetCatalog.load("mnist", searchPath: [shared], allowDownload: false)
        XCTAssertEqual(mnist.train.count, 60000)
        XCTAssertEqual(mnist.test.count, 10000)
        XCTAssertEqual([mnist.height, mnist.width], [28, 28])
        XCTAssertEqual(Set(mnist.train.labels), Set(0...9))
        XCTAssertEqual(mnist.train.images.max(), 1)
        XCTAssertEqual(mnist.train.images.min(), 0)
    }
}
