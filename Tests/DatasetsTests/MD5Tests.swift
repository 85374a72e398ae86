import XCTest
@testable import Datasets

final class MD5Tests: XCTestCase {
    func testRFC1321TestSuite() {
        let vectors = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (String(repeating: "1234567890", count: 8), "57edf4a22be3c955ac49da2e2107b67a"),
            ("The quick brown fox jumps over the lazy dog", "9e107d9d372bb6826bd81d3542a419d6"),
        ]
        for (message, digest) in vectors {
            XCTAssertEqual(MD5.hex(Array(message.utf8)), digest, message)
        }
    }

    func testFeedingInPiecesGivesTheSameDigest() {
        let bytes = (0..<1000).map { UInt8(($0 * 31 + 7) % 256) }
        for piece in [1, 3, 63, 64, 65, 200] {
            var md5 = MD5()
            for start in stride(from: 0, to: bytes.count, by: piece) {
                md5.update(Array(bytes[start..<min(start + piece, bytes.count)]))
            }
            XCTAssertEqual(md5.hexDigest(), MD5.hex(bytes), "pieces of \(piece)")
        }
    }

    func testAgreesWithMd5sumAroundBlockBoundaries() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/md5sum") else { throw XCTSkip("no /usr/bin/md5sum") }
        let folder = try TemporaryFolder()
        let lengths = Array(50...130) + [1000, 4096, 100_003]
        var paths: [String] = []
        for length in lengths {
            paths.append(try folder.write("m\(length)", (0..<length).map { UInt8(($0 * 131 + length) % 256) }))
        }
        let lines = try runProgram("/usr/bin/md5sum", paths).split(separator: "\n")
        XCTAssertEqual(lines.count, lengths.count)
        for (line, length) in zip(lines, lengths) {
            let bytes = (0..<length).map { UInt8(($0 * 131 + length) % 256) }
            XCTAssertEqual(MD5.hex(bytes), String(line.prefix(32)), "length \(length)")
        }
    }
}
