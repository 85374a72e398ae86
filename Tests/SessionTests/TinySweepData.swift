import Foundation
import XCTest
@testable import Session

extension SessionTestCase {
    /// For the sweep tests: quadrant images from IDX files (so runs can be resumed: their
    /// `load` words are recorded) and a model small enough that a run takes milliseconds.
    func loadTiny(into session: Session? = nil, console: BufferConsole? = nil) throws {
        if !FileManager.default.fileExists(atPath: folder + "/q") {
            try writeQuadrantIDX(to: folder + "/q", train: 256, test: 64, seed: 1)
        }
        let target = session ?? self.session!
        XCTAssertTrue(target.execute("load idx \(folder)/q; set batch 32; set target off; build dense 16 relu | dense 4",
                                     console: console ?? self.console))
    }
}
