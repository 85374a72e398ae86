import XCTest
@testable import Datasets

final class LoadIDXDirectoryTests: XCTestCase {
    func testLoadsATinyDatasetWithShapesLabelsAndPixelsOver255() throws {
        for gzipped in [false, true] {
            let root = try TemporaryFolder()
            let folder = try TinyDataset.write(in: root, folder: "tiny", gzipped: gzipped)
            let data = try DatasetCatalog.load(idxDirectory: folder)
            XCTAssertEqual(data.name, "tiny")
            XCTAssertEqual(data.source, folder)
            XCTAssertEqual([data.height, data.width, data.channels], [3, 2, 1])
            XCTAssertEqual(data.train.count, TinyDataset.trainCount)
            XCTAssertEqual(data.test.count, TinyDataset.testCount)
            XCTAssertEqual(data.train.images.count, TinyDataset.trainCount * 6)
            assertClose(data.train.images, (0..<36).map { Float(TinyDataset.trainPixels($0)) / 255 })
            assertClose(data.test.images, (0..<24).map { Float(TinyDataset.testPixels($0)) / 255 })
            XCTAssertEqual(data.train.labels, TinyDataset.trainLabels().map(Int32.init))
            XCTAssertEqual(data.test.labels, TinyDataset.testLabels().map(Int32.init))
            XCTAssertEqual(data.classNames, ["0", "1", "2"], "classes default to 0…largest label")
        }
    }

    /// pixel × (1/255) may differ from pixel / 255 in the last bit.
    private func assertClose(_ got: [Float], _ expected: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, expected.count, file: file, line: line)
        for (g, e) in zip(got, expected) { XCTAssertEqual(g, e, accuracy: 1e-7, file: file, line: line) }
    }

    func testBlackIsZeroAndWhiteIsExactlyOne() throws {
        let root = try TemporaryFolder()
        try root.write("bw/train-images-idx3-ubyte", imageFile(count: 2, height: 1, width: 2) { $0 % 2 == 0 ? 0 : 255 })
        try root.write("bw/train-labels-idx1-ubyte", labelFile([0, 1]))
        try root.write("bw/t10k-images-idx3-ubyte", imageFile(count: 1, height: 1, width: 2))
        try root.write("bw/t10k-labels-idx1-ubyte", labelFile([1]))
        let data = try DatasetCatalog.load(idxDirectory: root.path + "/bw")
        XCTAssertEqual(data.train.images, [0, 1, 0, 1])
    }

    func testGivenNameAndClassNamesAreKept() throws {
        let root = try TemporaryFolder()
        let folder = try TinyDataset.write(in: root, folder: "tiny", gzipped: true)
        let data = try DatasetCatalog.load(idxDirectory: folder + "/", name: "shapes", classNames: ["a", "b", "c", "d"])
        XCTAssertEqual(data.name, "shapes")
        XCTAssertEqual(data.classCount, 4)
    }

    func testAFolderNamedLikeACatalogDatasetGetsItsClassNames() throws {
        let root = try TemporaryFolder()
        let folder = try TinyDataset.write(in: root, folder: "fashion-mnist", gzipped: false)
        let data = try DatasetCatalog.load(idxDirectory: folder + "/")
        XCTAssertEqual(data.name, "fashion-mnist")
        XCTAssertEqual(data.classNames.first, "T-shirt/top")
        XCTAssertEqual(data.classNames.last, "Ankle boot")
        XCTAssertEqual(data.classCount, 10)
    }

    func testImageAndLabelCountMismatchNamesBothFiles() throws {
        let root = try TemporaryFolder()
        let folder = try TinyDataset.write(in: root, folder: "tiny", gzipped: false)
        try root.write("tiny/t10k-labels-idx1-ubyte", labelFile([0, 1, 2]))
        assertDatasetError(try DatasetCatalog.load(idxDirectory: folder)) { error in
            XCTAssertEqual(error, .countMismatch(images: folder + "/t10k-images-idx3-ubyte", imageCount: 4,
                                                 labels: folder + "/t10k-labels-idx1-ubyte", labelCount: 3))
            XCTAssertTrue(error.description.contains("do not belong together"), error.description)
        }
    }

    func testLabelOutsideTheClassRangeIsReportedWithItsPosition() throws {
        let root = try TemporaryFolder()
        let folder = try TinyDataset.write(in: root, folder: "tiny", gzipped: true)
        try root.write("tiny/train-labels-idx1-ubyte.gz", gzip(labelFile([0, 1, 2, 0, 7, 1])))
        assertDatasetError(try DatasetCatalog.load(idxDirectory: folder, classNames: ["a", "b", "c"])) { error in
            XCTAssertEqual(error, .labelOutOfRange(path: folder + "/train-labels-idx1-ubyte.gz", label: 7, index: 4, classCount: 3))
        }
    }

    func testALabelFileWhereImagesBelongIsAWrongMagicNumber() throws {
        let root = try TemporaryFolder()
        let folder = try TinyDataset.write(in: root, folder: "tiny", gzipped: false)
        try root.write("tiny/train-images-idx3-ubyte", labelFile([1, 2, 3]))
        assertDatasetError(try DatasetCatalog.load(idxDirectory: folder)) { error in
            XCTAssertEqual(error, .badMagic(path: folder + "/train-images-idx3-ubyte", found: 0x801, expected: 0x803))
            XCTAssertTrue(error.description.contains("IDX image file"), error.description)
        }
    }

    func testEachDamagedFileIsReportedByLoadNotCrashed() throws {
        let damage: [(String, [UInt8])] = [
            ("t10k-images-idx3-ubyte.gz", Array(gzip(imageFile(count: 4, height: 3, width: 2)).dropLast(12))),
            ("t10k-images-idx3-ubyte.gz", [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            ("train-labels-idx1-ubyte.gz", Array(labelFile([0, 1, 2, 0, 1, 2]).dropLast())),
        ]
        for (file, bytes) in damage {
            let root = try TemporaryFolder()
            let folder = try TinyDataset.write(in: root, folder: "tiny", gzipped: true)
            try root.write("tiny/" + file, bytes)
            assertDatasetError(try DatasetCatalog.load(idxDirectory: folder)) { error in
                XCTAssertTrue(error.description.contains(folder + "/" + file), error.description)
            }
        }
    }

    func testAMissingFileIsNamed() throws {
        let root = try TemporaryFolder()
        let folder = try TinyDataset.write(in: root, folder: "tiny", gzipped: true)
        try FileManager.default.removeItem(atPath: folder + "/t10k-labels-idx1-ubyte.gz")
        assertDatasetError(try DatasetCatalog.load(idxDirectory: folder)) { error in
            XCTAssertEqual(error, .missingFile(directory: folder, file: "t10k-labels-idx1-ubyte"))
        }
    }

    func testAPathThatIsNotAFolderIsReported() throws {
        assertDatasetError(try DatasetCatalog.load(idxDirectory: "/nonexistent/ollie")) { error in
            XCTAssertEqual(error, .notADirectory("/nonexistent/ollie"))
        }
    }

    func testTrainingAndTestImagesMustBeTheSameSize() throws {
        let root = try TemporaryFolder()
        let folder = try TinyDataset.write(in: root, folder: "tiny", gzipped: false)
        try root.write("tiny/t10k-images-idx3-ubyte", imageFile(count: 4, height: 2, width: 3))
        assertDatasetError(try DatasetCatalog.load(idxDirectory: folder)) { error in
            guard case .shapeMismatch(_, [3, 2, 1], _, [2, 3, 1]) = error else { return XCTFail("\(error)") }
        }
    }

    func testFourDimensionalImagesCarryChannels() throws {
        let root = try TemporaryFolder()
        let rgb = { (count: Int) in idx(magic: 0x804, dimensions: [count, 2, 2, 3], payload: [UInt8](repeating: 51, count: count * 12)) }
        try root.write("rgb/train-images-idx3-ubyte", rgb(2))
        try root.write("rgb/train-labels-idx1-ubyte", labelFile([0, 1]))
        try root.write("rgb/t10k-images-idx3-ubyte", rgb(1))
        try root.write("rgb/t10k-labels-idx1-ubyte", labelFile([1]))
        let data = try DatasetCatalog.load(idxDirectory: root.path + "/rgb")
        XCTAssertEqual([data.height, data.width, data.channels], [2, 2, 3])
        XCTAssertEqual(data.train.images.count, 24)
        XCTAssertEqual(data.train.images[0], 0.2, accuracy: 1e-7)
    }

    func testAnEmptyTestSplitLoadsWithoutCrashing() throws {
        let root = try TemporaryFolder()
        let folder = try TinyDataset.write(in: root, folder: "tiny", gzipped: false)
        try root.write("tiny/t10k-images-idx3-ubyte", imageFile(count: 0, height: 3, width: 2))
        try root.write("tiny/t10k-labels-idx1-ubyte", labelFile([]))
        let data = try DatasetCatalog.load(idxDirectory: folder)
        XCTAssertEqual(data.test.count, 0)
        XCTAssertEqual(data.test.images, [])
    }
}
