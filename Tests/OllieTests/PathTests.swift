import XCTest
import Foundation
import NN

/// Paths, files and scripts under stress, through the real binary: checkpoints beside their
/// database, one safe writer, one-line errors, scripts from other editors.
extension BinaryTests {
    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// Two databases named runs.sqlite in two folders keep their own run-1 files, beside them;
    /// `resume` finds them from any working directory, and through a link to the folder.
    func testCheckpointsLiveBesideTheirDatabaseAndResumeFromAnywhere() throws {
        for name in ["a", "b", "elsewhere"] { try FileManager.default.createDirectory(atPath: folder + "/" + name, withIntermediateDirectories: true) }
        for (name, seed) in [("a", 1), ("b", 2)] {
            let (status, output) = try ollie(in: folder, ["--db", "\(name)/runs.sqlite", "-c", "set seed \(seed); load idx data; build mlp 16; set threads 1; train 1"])
            XCTAssertEqual(status, 0, output)
        }
        let a = folder + "/a/checkpoints/runs/run-1/epoch-1.safetensors", b = folder + "/b/checkpoints/runs/run-1/epoch-1.safetensors"
        XCTAssertTrue(exists(a) && exists(b), "each beside its database")
        XCTAssertNotEqual(try Checkpoint.load(from: a).tensors.mapValues(\.data), try Checkpoint.load(from: b).tensors.mapValues(\.data))
        XCTAssertTrue(exists(folder + "/a/checkpoints/runs/run-1-best.safetensors"))
        XCTAssertFalse(exists(folder + "/checkpoints"), "nothing under the working directory")

        let (status, output) = try ollie(in: folder + "/elsewhere", ["--db", "../a/runs.sqlite", "-c", "resume 1; train 1"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("resumed run 1 at epoch 1"), output)
        XCTAssertTrue(exists(folder + "/a/checkpoints/runs/run-1/epoch-2.safetensors"))
        XCTAssertFalse(exists(folder + "/elsewhere/checkpoints"))

        try FileManager.default.createSymbolicLink(atPath: folder + "/alias", withDestinationPath: folder + "/b")
        let (linked, linkedOutput) = try ollie(in: folder + "/elsewhere", ["--db", folder + "/alias/runs.sqlite", "-c", "resume 1"])
        XCTAssertEqual(linked, 0, linkedOutput)
        XCTAssertTrue(linkedOutput.contains("resumed run 1 at epoch 1"), linkedOutput)
    }

    /// Every write refuses what is not a file to write, in one line naming the path and the fix,
    /// and the session carries on; `lnk/../x` is written where `restore lnk/../x` reads.
    func testSaveAndReportRefuseDevicesFoldersAndEmptyNamesInOneLine() throws {
        // The checkpoint folder's parent is a regular file.
        XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/checkpoints", contents: Data("a file".utf8)))
        try FileManager.default.createDirectory(atPath: folder + "/real/sub", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder + "/lnk", withDestinationPath: folder + "/real/sub")
        // A device of our own when we may make one, so a regression cannot replace /dev/null.
        let device = geteuid() == 0 && mknod(folder + "/null", S_IFCHR | 0o666, dev_t(1 << 8 | 3)) == 0 ? folder + "/null" : "/dev/null"
        XCTAssertEqual(mkfifo(folder + "/fifo", 0o600), 0)
        let lines = ["load idx data", "build mlp 8", "set threads 1", "train 1",
                     "save", "save \(device)", "save \(folder)/fifo", "save \"\"", "save sub/", "save .",
                     "report md \"\"", "report md \(device)", "report md \(folder)",
                     "save lnk/../x.safetensors", "restore lnk/../x.safetensors", "report md lnk/../r.md", "save ok.safetensors"]
        let (status, output) = try ollie([], input: lines.joined(separator: "\n") + "\n")
        XCTAssertEqual(status, 1, "the refused lines failed")
        let errors = output.split(separator: "\n").filter { $0.hasPrefix("error:") || $0.hasPrefix("warning:") }.map(String.init)
        let checkpoints = folder + "/checkpoints"
        let expected = [
            "warning: could not save the best model: cannot write \(checkpoints)/runs/run-1-best.safetensors: \(checkpoints) is a file, not a folder; move or rename that file, or give another path",
            "warning: could not save epoch 1's state (resume and fork need it): cannot write \(checkpoints)/runs/run-1/epoch-1.safetensors: \(checkpoints) is a file, not a folder; move or rename that file, or give another path",
            "error: cannot write \(checkpoints)/runs/run-1-epoch-1.safetensors: \(checkpoints) is a file, not a folder; move or rename that file, or give another path",
            "error: \(device) is a character device, not a regular file; ollie only writes regular files, so give another path",
            "error: \(folder)/fifo is a named pipe (FIFO), not a regular file; ollie only writes regular files, so give another path",
            "error: the file name is '' (empty); give a file name",
            "error: sub/ names a folder, not a file; give a file name inside it, e.g. sub/NAME",
            "error: . names a folder, not a file; give a file name inside it, e.g. ./NAME",
            "error: the file name is '' (empty); give a file name",
            "error: \(device) is a character device, not a regular file; ollie only writes regular files, so give another path",
            "error: \(folder) names a folder, not a file; give a file name inside it, e.g. \(folder)/NAME",
        ]
        XCTAssertEqual(errors, expected, output)
        var info = stat()
        XCTAssertEqual(stat(device, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFCHR, "\(device) is still a device")
        XCTAssertEqual(try String(contentsOfFile: folder + "/checkpoints", encoding: .utf8), "a file")
        XCTAssertTrue(output.contains("saved lnk/../x.safetensors"), output)
        XCTAssertTrue(output.contains("restored lnk/../x.safetensors"), output)
        XCTAssertTrue(exists(folder + "/real/x.safetensors") && exists(folder + "/real/r.md"), "beside the link's target, as open(2) sees it")
        XCTAssertFalse(exists(folder + "/x.safetensors") || exists(folder + "/r.md"))
        XCTAssertTrue(output.contains("saved ok.safetensors"), "the session carried on: \(output)")
        XCTAssertFalse(output.contains("Domain"), output)
    }

    /// kill -9 during `save` leaves `.NAME.ollie-tmp-PID`; the next session on that database removes it.
    func testTemporariesOfAKilledOllieAreRemovedWhenTheNextSessionStarts() throws {
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let dead = finished.processIdentifier
        let runFolder = folder + "/checkpoints/runs/run-1"
        try FileManager.default.createDirectory(atPath: runFolder, withIntermediateDirectories: true)
        let stale = [folder + "/checkpoints/runs/.run-1-best.safetensors.ollie-tmp-\(dead)", runFolder + "/.epoch-3.safetensors.ollie-tmp-\(dead)"]
        let live = runFolder + "/.epoch-4.safetensors.ollie-tmp-\(getpid())"
        for path in stale + [live] { XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(count: 4096))) }
        let (status, output) = try ollie(["-c", "show"])
        XCTAssertEqual(status, 0, output)
        XCTAssertEqual(stale.filter(exists), [], "the dead writer's temporaries are gone")
        XCTAssertTrue(exists(live), "a running writer's temporary is kept")
    }
}
