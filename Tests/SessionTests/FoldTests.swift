import XCTest
@testable import Session

/// `fold`: lines filled to 80 columns between words, a path never cut.
final class FoldTests: XCTestCase {
    func testFoldsBetweenWordsAndKeepsLongWordsWhole() {
        let path = "/" + String(repeating: "deep/", count: 20) + "clips"
        let folded = fold("tricks: 800 train, 200 test clips, 1×16×28×28, 5 classes (5.49 s, from \(path))\nsecond line")
        let lines = folded.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "tricks: 800 train, 200 test clips, 1×16×28×28, 5 classes (5.49 s, from")
        XCTAssertEqual(lines[1], path + ")", "the path is whole, on a line of its own")
        XCTAssertEqual(lines.last, "second line")
        XCTAssertEqual(fold(String(repeating: "word ", count: 40)).split(separator: "\n").map(\.count).max(), 79)
        XCTAssertEqual(fold("short"), "short")
    }
}
