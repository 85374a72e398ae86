import XCTest

extension BinaryTests {
    /// OLLIE_KERNELS picks ollie's kernel set, which `show` names; a set this build lacks (or this
    /// CPU cannot run) stops ollie at start with one line and exit status 2, not a crash.
    func testOllieKernelsPicksTheSetOrStopsAtStartInOneLine() throws {
        let (status, output) = try ollie(["-c", "show"], environment: ["OLLIE_KERNELS": "bogus"])
        XCTAssertEqual(status, 2, output)
        XCTAssertEqual(output.split(separator: "\n").count, 1, output)
        XCTAssertTrue(output.hasPrefix("error: OLLIE_KERNELS=bogus: no such kernel set here; use one of portable"), output)
        let (ok, shown) = try ollie(["-c", "show"], environment: ["OLLIE_KERNELS": "portable"])
        XCTAssertEqual(ok, 0, shown)
        XCTAssertTrue(shown.contains("kernels: portable (of portable"), shown)
    }
}
