import XCTest
import Foundation
@testable import Session

/// A database's checkpoints live in its own folder, found the same way by any path to it.
final class CheckpointFolderTests: XCTestCase {
    func testTheFolderIsBesideTheDatabaseWithTheLayoutOfEarlierVersions() throws {
        let folder = NSTemporaryDirectory() + "ollie-folder-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/real", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let real = URL(fileURLWithPath: folder + "/real").resolvingSymlinksInPath().path
        XCTAssertEqual(Session.checkpointFolder(besideDatabase: folder + "/real/ollie.sqlite"), real + "/checkpoints")
        XCTAssertEqual(Session.checkpointFolder(besideDatabase: folder + "/real/runs.sqlite"), real + "/checkpoints/runs")
        // Through a link to the folder, and through a link to the database file itself.
        try FileManager.default.createSymbolicLink(atPath: folder + "/alias", withDestinationPath: folder + "/real")
        XCTAssertEqual(Session.checkpointFolder(besideDatabase: folder + "/alias/runs.sqlite"), real + "/checkpoints/runs")
        XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/real/study.sqlite", contents: nil))
        try FileManager.default.createSymbolicLink(atPath: folder + "/today.sqlite", withDestinationPath: folder + "/real/study.sqlite")
        XCTAssertEqual(Session.checkpointFolder(besideDatabase: folder + "/today.sqlite"), real + "/checkpoints/study")
        // A relative path is taken from the working directory, as SQLite opens it.
        let here = FileManager.default.currentDirectoryPath
        XCTAssertEqual(Session.checkpointFolder(besideDatabase: "ollie.sqlite"),
                       URL(fileURLWithPath: here).resolvingSymlinksInPath().path + "/checkpoints")
    }
}
