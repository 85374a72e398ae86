import XCTest
@testable import Datasets

final class CatalogTests: XCTestCase {
    func testSearchPathPutsOllieDataPathFirstAndTheCacheLast() {
        let path = DatasetCatalog.searchPath(environment: ["OLLIE_DATA_PATH": "/a:/b/c", "HOME": "/home/u"])
        XCTAssertEqual(path, ["/a", "/b/c", "./data", "../shared/datasets", "/usr/share/datasets", "/home/u/.cache/ollie/datasets"])
    }

    func testEmptyEntriesInOllieDataPathAreSkipped() {
        let path = DatasetCatalog.searchPath(environment: ["OLLIE_DATA_PATH": ":/a::", "HOME": "/h"])
        XCTAssertEqual(path.first, "/a")
        XCTAssertEqual(path.count, 5)
    }

    func testCacheIsUnderXDGCacheHomeWhenSetAndAbsolute() {
        XCTAssertEqual(DatasetCatalog.searchPath(environment: ["XDG_CACHE_HOME": "/c", "HOME": "/h"]).last, "/c/ollie/datasets")
        XCTAssertEqual(DatasetCatalog.cacheDirectory(environment: ["XDG_CACHE_HOME": "relative", "HOME": "/h"]), "/h/.cache/ollie/datasets")
        XCTAssertEqual(DatasetCatalog.cacheDirectory(environment: ["HOME": "/h"]), "/h/.cache/ollie/datasets")
    }

    func testCatalogNames() {
        XCTAssertEqual(DatasetCatalog.names, ["mnist", "fashion-mnist"])
    }

    func testTheFirstEntryHoldingAllFourFilesWins() throws {
        let root = try TemporaryFolder()
        // An incomplete copy earlier on the path is passed over, and a later complete one is not reached.
        try root.write("incomplete/mnist/train-images-idx3-ubyte.gz", gzip(imageFile(count: 1, height: 1, width: 1)))
        let first = try TinyDataset.write(in: root, folder: "first/mnist", gzipped: true)
        try TinyDataset.write(in: root, folder: "second/mnist", gzipped: false)
        let data = try DatasetCatalog.load("mnist", searchPath: [root.path + "/empty", root.path + "/incomplete",
                                                                  root.path + "/first", root.path + "/second"],
                                           allowDownload: false)
        XCTAssertEqual(data.source, first)
        XCTAssertEqual(data.name, "mnist")
        XCTAssertEqual(data.classNames, (0...9).map(String.init))
    }

    func testOllieDataPathFromTheEnvironmentIsSearched() throws {
        let root = try TemporaryFolder()
        let folder = try TinyDataset.write(in: root, folder: "mine/fashion-mnist", gzipped: true)
        let path = DatasetCatalog.searchPath(environment: ["OLLIE_DATA_PATH": "/nonexistent:" + root.path + "/mine/", "HOME": root.path])
        let data = try DatasetCatalog.load("Fashion-MNIST", searchPath: path, allowDownload: false)
        XCTAssertEqual(data.source, folder)
        XCTAssertEqual(data.name, "fashion-mnist")
        XCTAssertEqual(data.classNames[1], "Trouser")
    }

    func testNotFoundWithoutDownloadListsEveryFolderSearched() throws {
        let root = try TemporaryFolder()
        assertDatasetError(try DatasetCatalog.load("mnist", searchPath: [root.path + "/a", root.path + "/b"], allowDownload: false)) { error in
            XCTAssertEqual(error, .notFound("mnist", searched: [root.path + "/a/mnist", root.path + "/b/mnist"]))
            XCTAssertTrue(error.description.contains(root.path + "/a/mnist, " + root.path + "/b/mnist"), error.description)
            XCTAssertTrue(error.description.contains("OLLIE_DATA_PATH"), error.description)
        }
    }

    func testFashionNotFoundSuggestsTheDebianPackage() throws {
        let root = try TemporaryFolder()
        assertDatasetError(try DatasetCatalog.load("fashion-mnist", searchPath: [root.path], allowDownload: false)) { error in
            XCTAssertTrue(error.description.contains("apt-get install dataset-fashion-mnist"), error.description)
        }
    }

    func testAnUnknownNameListsTheKnownOnes() {
        assertDatasetError(try DatasetCatalog.load("cifar", searchPath: [], allowDownload: false)) { error in
            XCTAssertEqual(error, .unknownDataset("cifar", known: ["mnist", "fashion-mnist"]))
            XCTAssertTrue(error.description.contains("load idx DIR"), error.description)
        }
    }

    func testADamagedCopyOnThePathIsReportedNotSkipped() throws {
        let root = try TemporaryFolder()
        try TinyDataset.write(in: root, folder: "a/mnist", gzipped: false)
        try root.write("a/mnist/train-labels-idx1-ubyte", labelFile([0, 1]))
        assertDatasetError(try DatasetCatalog.load("mnist", searchPath: [root.path + "/a"], allowDownload: false)) { error in
            guard case .countMismatch = error else { return XCTFail("\(error)") }
        }
    }
}
