import XCTest
@testable import Datasets

final class IDXTests: XCTestCase {
    func testReadsARawImageFileWithItsDimensionsAndBytes() throws {
        let folder = try TemporaryFolder()
        let path = try folder.write("images", imageFile(count: 2, height: 3, width: 4))
        let (dimensions, bytes) = try IDX.read(path)
        XCTAssertEqual(dimensions, [2, 3, 4])
        XCTAssertEqual(bytes, (0..<24).map { UInt8($0) })
    }

    func testGzippedAndRawFilesGiveTheSameBytes() throws {
        let folder = try TemporaryFolder()
        let contents = imageFile(count: 50, height: 28, width: 28) { UInt8(($0 * 7) % 251) }
        let raw = try IDX.read(folder.write("raw", contents))
        let gzipped = try IDX.read(folder.write("packed.gz", gzip(contents)))
        XCTAssertEqual(gzipped.dimensions, [50, 28, 28])
        XCTAssertEqual(gzipped.bytes, raw.bytes)
    }

    func testGzipIsRecognisedByItsMagicBytesNotItsName() throws {
        let folder = try TemporaryFolder()
        let contents = labelFile([1, 2, 3])
        XCTAssertEqual(try IDX.read(folder.write("labels-without-extension", gzip(contents))).bytes, [1, 2, 3])
        XCTAssertEqual(try IDX.read(folder.write("raw-but-named.gz", contents)).bytes, [1, 2, 3])
    }

    func testConcatenatedGzipMembersReadAsOneFile() throws {
        // `cat a.gz b.gz` is a valid gzip file; gunzip reads it whole, so must we.
        let folder = try TemporaryFolder()
        let contents = labelFile(Array(0..<200).map { UInt8($0 % 10) })
        let path = try folder.write("two-members.gz", gzip(Array(contents[0..<100])) + gzip(Array(contents[100...])))
        XCTAssertEqual(try IDX.read(path).bytes, Array(contents[8...]))
    }

    func testOutputLargerThanTheTrailerSizeHintStillInflates() throws {
        // The trailer gives only the last member's size, so here the output buffer must grow.
        let folder = try TemporaryFolder()
        let contents = imageFile(count: 300, height: 28, width: 28) { UInt8(($0 * 5) % 256) }
        let path = try folder.write("grows.gz", gzip(Array(contents.dropLast(10))) + gzip(Array(contents.suffix(10))))
        XCTAssertEqual(try IDX.read(path).bytes, Array(contents[16...]))
    }

    func testWrongMagicNumberNamesTheFileAndTheExpectedMagic() throws {
        let folder = try TemporaryFolder()
        let path = try folder.write("not-idx", Array("hello, this is text".utf8))
        assertDatasetError(try IDX.read(path)) { error in
            guard case .badMagic(let where_, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(where_, path)
            XCTAssertTrue(error.description.contains(path), error.description)
            XCTAssertTrue(error.description.contains("0x00000803"), error.description)
        }
    }

    func testTruncatedRawFileIsAnErrorNotACrash() throws {
        let folder = try TemporaryFolder()
        let contents = imageFile(count: 4, height: 5, width: 5)
        let path = try folder.write("cut", Array(contents.dropLast(7)))
        assertDatasetError(try IDX.read(path)) { error in
            XCTAssertEqual(error, .truncated(path: path, expectedBytes: 100, actualBytes: 93))
            XCTAssertTrue(error.description.contains("truncated"), error.description)
            XCTAssertTrue(error.description.contains("fetch the file again"), error.description)
        }
    }

    func testFilesShorterThanAHeaderAreTruncated() throws {
        let folder = try TemporaryFolder()
        let empty = try folder.write("empty", [])
        assertDatasetError(try IDX.read(empty)) { XCTAssertEqual($0, .truncated(path: empty, expectedBytes: 4, actualBytes: 0)) }
        let halfHeader = try folder.write("half", [0, 0, 8, 3, 0, 0])
        assertDatasetError(try IDX.read(halfHeader)) { XCTAssertEqual($0, .truncated(path: halfHeader, expectedBytes: 16, actualBytes: 6)) }
    }

    func testExtraBytesAfterTheDataAreReported() throws {
        let folder = try TemporaryFolder()
        let path = try folder.write("long", labelFile([1, 2]) + [9])
        assertDatasetError(try IDX.read(path)) { XCTAssertEqual($0, .trailingBytes(path: path, expectedBytes: 2, actualBytes: 3)) }
    }

    func testAbsurdSizesInTheHeaderAreAnErrorNotACrash() throws {
        let folder = try TemporaryFolder()
        let huge = try folder.write("huge", idx(magic: 0x803, dimensions: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], payload: [1, 2]))
        assertDatasetError(try IDX.read(huge)) { error in
            guard case .badHeader(let where_, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(where_, huge)
        }
        let big = try folder.write("big", idx(magic: 0x803, dimensions: [60000, 0xFFFF, 0xFFFF], payload: [1]))
        assertDatasetError(try IDX.read(big)) { error in
            guard case .truncated = error else { return XCTFail("\(error)") }
        }
    }

    func testTruncatedGzipIsAnErrorNamingTheFile() throws {
        let folder = try TemporaryFolder()
        let packed = gzip(imageFile(count: 20, height: 28, width: 28) { UInt8(($0 * 13) % 256) })
        let path = try folder.write("cut.gz", Array(packed[0..<(packed.count / 2)]))
        assertDatasetError(try IDX.read(path)) { error in
            guard case .corruptGzip(let where_, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(where_, path)
            XCTAssertTrue(reason.contains("truncated"), reason)
        }
    }

    func testCorruptGzipIsAnErrorNamingTheFile() throws {
        let folder = try TemporaryFolder()
        var packed = gzip(imageFile(count: 20, height: 28, width: 28) { UInt8(($0 * 13) % 256) })
        for i in stride(from: 20, to: packed.count - 8, by: 3) { packed[i] ^= 0x5A }
        let path = try folder.write("bad.gz", packed)
        assertDatasetError(try IDX.read(path)) { error in
            guard case .corruptGzip(let where_, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(where_, path)
            XCTAssertTrue(error.description.contains("delete it and fetch it again"), error.description)
        }
    }

    func testMissingFileIsUnreadable() throws {
        assertDatasetError(try IDX.read("/nonexistent/ollie/file")) { error in
            guard case .unreadable(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "/nonexistent/ollie/file")
        }
    }
}
