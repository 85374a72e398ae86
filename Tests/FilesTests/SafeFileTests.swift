import XCTest
import Foundation
@testable import Files

/// The one file writer: paths as open(2) sees them, devices and folders refused, nothing half
/// written, and no temporary left behind.
final class SafeFileTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "ollie-files-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func contents(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    func hiddenFiles(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasPrefix(".") }
    }

    /// `lnk/../x` is the x beside lnk's target, as open(2) and `restore` see it, not a textual `x`.
    func testALinkThenDotDotWritesWhereTheFileSystemPoints() throws {
        try FileManager.default.createDirectory(atPath: folder + "/real/sub", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder + "/lnk", withDestinationPath: folder + "/real/sub")
        let written = try SafeFile.write(Data("one".utf8), to: folder + "/lnk/../x")
        XCTAssertEqual(written, ResolvedPath.real(folder)! + "/real/x")
        XCTAssertEqual(contents(folder + "/real/x"), "one")
        XCTAssertNil(contents(folder + "/x"), "`..` is not taken off the text")
        XCTAssertEqual(try FileContents.read(folder + "/lnk/../x"), Array("one".utf8), "read back by the same path")
        // Missing folders on the way are made by the same reckoning.
        try SafeFile.write(Data("two".utf8), to: folder + "/lnk/../new/y")
        XCTAssertEqual(contents(folder + "/real/new/y"), "two")
    }

    func testALinkToAFileIsWrittenThroughAndStaysALink() throws {
        try SafeFile.write(Data("old".utf8), to: folder + "/target")
        try FileManager.default.createSymbolicLink(atPath: folder + "/alias", withDestinationPath: "target")
        try SafeFile.write(Data("new".utf8), to: folder + "/alias")
        XCTAssertEqual(contents(folder + "/target"), "new")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: folder + "/alias"), "target")
    }

    func testDevicesFifosFoldersAndEmptyNamesAreRefusedAndLeftAsTheyWere() throws {
        func refusal(_ path: String) -> FileWriteError? {
            do { try SafeFile.write(Data("x".utf8), to: path); return nil } catch { return error as? FileWriteError }
        }
        // A device of our own when we may make one (root), so a regression cannot replace /dev/null.
        let device = geteuid() == 0 && mknod(folder + "/null", S_IFCHR | 0o666, dev_t(1 << 8 | 3)) == 0 ? folder + "/null" : "/dev/null"
        XCTAssertEqual(refusal(device), .notARegularFile(path: device, kind: "a character device"))
        var info = stat()
        XCTAssertEqual(stat(device, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFCHR, "\(device) is still a device")
        XCTAssertEqual(mkfifo(folder + "/pipe", 0o600), 0)
        XCTAssertEqual(refusal(folder + "/pipe"), .notARegularFile(path: folder + "/pipe", kind: "a named pipe (FIFO)"))
        XCTAssertEqual(refusal(folder), .isFolder(path: folder))
        XCTAssertEqual(refusal(folder + "/"), .isFolder(path: folder + "/"))
        XCTAssertEqual(refusal(folder + "/.."), .isFolder(path: folder + "/.."))
        XCTAssertEqual(refusal(""), .emptyPath)
        XCTAssertTrue("\(refusal("/proc/self/status")!)".contains("does not take new files (a virtual file system such as /proc?)"),
                      "\(refusal("/proc/self/status")!)")
        XCTAssertEqual(hiddenFiles(folder), [], "no temporary left")
        XCTAssertTrue("\(refusal(device)!)".contains("\(device) is a character device, not a regular file"))
    }

    func testAFileWhereAFolderShouldBeIsNamed() throws {
        try SafeFile.write(Data("I am a file".utf8), to: folder + "/checkpoints")
        XCTAssertThrowsError(try SafeFile.write(Data("x".utf8), to: folder + "/checkpoints/runs/a.safetensors")) { error in
            XCTAssertEqual(error as? FileWriteError, .folderIsAFile(path: folder + "/checkpoints/runs/a.safetensors", folder: folder + "/checkpoints"))
            XCTAssertTrue("\(error)".contains("\(folder)/checkpoints is a file, not a folder"), "\(error)")
        }
        XCTAssertEqual(contents(folder + "/checkpoints"), "I am a file")
    }

    /// A write that fails half-way (here: past the file-size limit) leaves the old file whole
    /// and no temporary.
    func testAFailedWriteLeavesTheOldFileAndNoTemporary() throws {
        try SafeFile.write(Data("the old file".utf8), to: folder + "/m.safetensors")
        let ignored = signal(SIGXFSZ, SIG_IGN)
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit)
        var small = limit
        small.rlim_cur = 4096
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &small), 0)
        defer {
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit)
            signal(SIGXFSZ, ignored)
        }
        XCTAssertThrowsError(try SafeFile.write(Data(count: 100_000), to: folder + "/m.safetensors")) { error in
            XCTAssertTrue("\(error)".hasPrefix("cannot write \(folder)/m.safetensors: "), "\(error)")
        }
        XCTAssertEqual(contents(folder + "/m.safetensors"), "the old file")
        XCTAssertEqual(hiddenFiles(folder), [])
    }

    func testTemporariesOfDeadProcessesAreRemovedAndOthersKept() throws {
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let dead = finished.processIdentifier
        let names = [".run-1-best.safetensors.ollie-tmp-\(dead)", ".mine.safetensors.ollie-tmp-\(getpid())",
                     ".other.ollie-tmp-1", ".notes.ollie-tmp-\(dead)x", "run.ollie-tmp-\(dead)"]
        for name in names { XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/" + name, contents: Data(count: 10))) }
        XCTAssertEqual(SafeFile.removeStaleTemporaries(in: folder), 1)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: folder)), Set(names.dropFirst()))
        // A write cleans its folder too.
        XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/" + names[0], contents: Data(count: 10)))
        try SafeFile.write(Data("x".utf8), to: folder + "/new")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/" + names[0]))
    }

    func testFullDiskPermissionAndReadOnlyMessagesNameThePathAndTheFix() throws {
        XCTAssertEqual("\(FileWriteError.from(errno: ENOSPC, path: "r.md", folder: "/data"))",
                       "cannot write r.md: the disk holding /data is full; free some space and try again (nothing was written)")
        XCTAssertEqual("\(FileWriteError.from(errno: EACCES, path: "r.md", folder: "/data"))",
                       "cannot write r.md: no permission to write in /data; give a path in a folder you can write to")
        XCTAssertEqual("\(FileWriteError.from(errno: EROFS, path: "r.md", folder: "/data"))",
                       "cannot write r.md: /data is on a read-only file system; give a path on a writable disk")
        guard geteuid() != 0 else { return }   // root may write anywhere; the mapping above still holds
        try FileManager.default.createDirectory(atPath: folder + "/locked", withIntermediateDirectories: true)
        chmod(folder + "/locked", 0o555)
        defer { chmod(folder + "/locked", 0o755) }
        XCTAssertThrowsError(try SafeFile.write(Data("x".utf8), to: folder + "/locked/a")) { error in
            XCTAssertEqual(error as? FileWriteError, .noPermission(path: folder + "/locked/a", folder: ResolvedPath.real(folder + "/locked")!))
        }
    }
}

/// The one whole-file reader: to end of file, so /proc and pipes read fully.
final class FileContentsTests: XCTestCase {
    func testFilesUnderProcWhoseSizeIsZeroReadToTheEnd() throws {
        var info = stat()
        XCTAssertEqual(stat("/proc/self/status", &info), 0)
        XCTAssertEqual(info.st_size, 0, "the case this is about")
        let text = String(decoding: try FileContents.read("/proc/self/status"), as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("Name:"), text)
        XCTAssertTrue(text.contains("\nPid:\t\(getpid())\n"), text)
    }

    func testAPipeReadsToTheEndAndFoldersAndDevicesAreRefused() throws {
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        XCTAssertEqual(write(ends[1], "set lr 1e-3\n", 12), 12)
        close(ends[1])
        XCTAssertEqual(try FileContents.read("/proc/self/fd/\(ends[0])"), Array("set lr 1e-3\n".utf8))
        close(ends[0])
        XCTAssertThrowsError(try FileContents.read("/tmp")) { XCTAssertEqual("\($0)", "cannot read /tmp: it is a folder, not a file; give a file inside it") }
        XCTAssertThrowsError(try FileContents.read("/dev/zero")) { XCTAssertEqual($0 as? FileReadError, .isDevice(path: "/dev/zero")) }
        XCTAssertThrowsError(try FileContents.read("/no/such/file")) { XCTAssertEqual("\($0)", "cannot read /no/such/file: it does not exist; check the path") }
    }
}
