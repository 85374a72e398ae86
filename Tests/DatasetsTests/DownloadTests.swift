import XCTest
@testable import Datasets

final class DownloadTests: XCTestCase {
    private func md5sum(_ path: String) throws -> String {
        String(try runProgram("/usr/bin/md5sum", [path]).prefix(32))
    }

    /// The tiny dataset gzipped in `served/`, with the published checksums computed by md5sum.
    private func servedTinyDataset(in root: TemporaryFolder) throws -> (folder: String, checksums: [String: [String]]) {
        let folder = try TinyDataset.write(in: root, folder: "served", gzipped: true)
        var checksums: [String: [String]] = [:]
        for base in IDXFiles.all { checksums[base + ".gz"] = [try md5sum(folder + "/" + base + ".gz")] }
        return (folder, checksums)
    }

    func testDownloadsEachFileIntoTheCacheAfterCheckingItsMD5() throws {
        let root = try TemporaryFolder()
        let (served, checksums) = try servedTinyDataset(in: root)
        let server = try LocalServer(serving: served)
        defer { server.stop() }
        let cache = root.path + "/cache/tiny"
        try Download.fetch(checksums: checksums, from: [server.baseURL], into: cache)
        for base in IDXFiles.all {
            XCTAssertEqual(try md5sum(cache + "/" + base + ".gz"), checksums[base + ".gz"]?.first)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache).filter { $0.hasPrefix(".") }, [],
                       "no temporary files left behind")
        XCTAssertEqual(try DatasetCatalog.load(idxDirectory: cache).train.count, TinyDataset.trainCount)
    }

    func testAFileWithTheWrongMD5IsRejectedAndNotKept() throws {
        let root = try TemporaryFolder()
        var (served, checksums) = try servedTinyDataset(in: root)
        checksums["t10k-images-idx3-ubyte.gz"] = ["00000000000000000000000000000000"]
        let server = try LocalServer(serving: served)
        defer { server.stop() }
        let cache = root.path + "/cache/tiny"
        XCTAssertThrowsError(try Download.fetch(checksums: checksums, from: [server.baseURL], into: cache)) { error in
            let reasons = (error as? Download.Failure)?.reasons ?? []
            XCTAssertEqual(reasons.count, 1)
            XCTAssertTrue(reasons.first?.contains("MD5") == true, "\(reasons)")
            XCTAssertTrue(reasons.first?.contains("t10k-images-idx3-ubyte.gz") == true, "\(reasons)")
        }
        let kept = try FileManager.default.contentsOfDirectory(atPath: cache)
        XCTAssertFalse(kept.contains { $0.hasPrefix("t10k-images") || $0.hasPrefix(".") }, "\(kept)")
        XCTAssertFalse(DatasetCatalog.holdsAllFiles(cache), "an unchecked file must never complete a dataset")
    }

    func testAMirrorWithoutTheFileFallsBackToTheNext() throws {
        let root = try TemporaryFolder()
        let (served, checksums) = try servedTinyDataset(in: root)
        let server = try LocalServer(serving: served)
        defer { server.stop() }
        let cache = root.path + "/cache/tiny"
        try Download.fetch(checksums: checksums, from: [server.baseURL + "missing/", server.baseURL], into: cache)
        XCTAssertTrue(DatasetCatalog.holdsAllFiles(cache))
    }

    func testFilesAlreadyInTheCacheAreNotFetchedAgain() throws {
        let root = try TemporaryFolder()
        let cache = try TinyDataset.write(in: root, folder: "cache/tiny", gzipped: false)
        // No mirror can answer, so success means nothing was fetched.
        try Download.fetch(checksums: ["train-images-idx3-ubyte.gz": ["x"]], from: ["http://127.0.0.1:1/"], into: cache)
    }

    func testOfflineLoadExplainsWhereItLookedAndHowToGetTheFiles() throws {
        let root = try TemporaryFolder()
        let path = [root.path + "/nothing-here", root.path + "/cache"]
        // Port 1 on the loopback refuses connections at once: an offline machine without the wait.
        assertDatasetError(try DatasetCatalog.load("fashion-mnist", searchPath: path, mirrors: ["http://127.0.0.1:1/"])) { error in
            guard case .downloadFailed("fashion-mnist", let searched, let reasons) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(searched, [root.path + "/nothing-here/fashion-mnist", root.path + "/cache/fashion-mnist"])
            XCTAssertFalse(reasons.isEmpty)
            XCTAssertTrue(error.description.contains("apt-get install dataset-fashion-mnist"), error.description)
            XCTAssertTrue(error.description.contains("OLLIE_DATA_PATH"), error.description)
        }
    }

    func testLoadDownloadsMNISTFromAMirrorWhenNotOnThePath() throws {
        guard let mnist = sharedMNISTFolder() else { throw XCTSkip("no shared MNIST copy to serve") }
        let server = try LocalServer(serving: mnist)
        defer { server.stop() }
        let root = try TemporaryFolder()
        let data = try DatasetCatalog.load("mnist", searchPath: [root.path + "/empty", root.path + "/cache"], mirrors: [server.baseURL])
        XCTAssertEqual(data.source, root.path + "/cache/mnist")
        XCTAssertEqual(data.train.count, 60000)
        XCTAssertEqual(data.test.count, 10000)
        // The second load finds the cached copy: no server needed.
        server.stop()
        let again = try DatasetCatalog.load("mnist", searchPath: [root.path + "/empty", root.path + "/cache"], mirrors: [server.baseURL])
        XCTAssertEqual(again.source, root.path + "/cache/mnist")
    }
}
