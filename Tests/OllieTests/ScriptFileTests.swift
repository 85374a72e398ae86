import XCTest
import Foundation

/// Scripts as other editors and shells hand them over, through the real binary.
extension BinaryTests {
    /// Scripts saved on Windows (CRLF) run line by line; one that is not UTF-8 says so and
    /// where; a command given far too many words says how many it takes; a pipe reads as a script.
    func testScriptsWithCRLFOrBadBytesAndOverlongCommands() throws {
        let crlf = folder + "/windows.ollie"
        try Data("\u{FEFF}set lr 1e-3\r\nset batch 64\r\n\r\n# a comment\r\nshow\r\n".utf8).write(to: URL(fileURLWithPath: crlf))
        var (status, output) = try ollie([crlf])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("lr = 1e-3 (was 3e-3)") && output.contains("batch = 64"), output)

        let latin1 = folder + "/latin1.ollie"
        try Data(Array("set lr 1e-3\nnote caf".utf8) + [0xE9] + Array("\n".utf8)).write(to: URL(fileURLWithPath: latin1))
        (status, output) = try ollie([latin1])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("error: \(latin1) is not UTF-8 text (an invalid byte at offset 20, line 2); save it as UTF-8 and run it again"), output)
        XCTAssertFalse(output.contains("check the path"), output)

        let words = Array(repeating: "x", count: 1200).joined(separator: " ")
        (status, output) = try ollie(["-c", "set \(words)"])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("error: too many words for set: it takes at most 32 words after its name, this line gives it 1200; usage: set KEY VALUE"), output)
        (status, output) = try ollie(["-c", "build \(words)"])
        XCTAssertTrue(output.contains("error: too many words for build: it takes at most 1000 words after its name, this line gives it 1200; usage: build"), output)

        (status, output) = try ollie(["-c", "run /dev/stdin"], input: "set lr 1e-3\r\nshow\r\n")
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("lr = 1e-3 (was 3e-3)"), output)
    }
}
