import XCTest
@testable import Datasets

/// The real MNIST files in ../shared/datasets/mnist, when the checkout has them.
final class SharedMNISTTests: XCTestCase {
    func testRealMNISTLoadsWithItsShapesLabelsAndPixelRange() throws {
        guard let folder = sharedMNISTFolder() else { throw XCTSkip("no ../shared/datasets/mnist") }
        let start = Date()
        let data = try DatasetCatalog.load("mnist", searchPath: [(folder as NSString).deletingLastPathComponent], allowDownload: false)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(data.name, "mnist")
        XCTAssertEqual(data.source, folder)
        XCTAssertEqual([data.height, data.width, data.channels], [28, 28, 1])
        XCTAssertEqual(data.classNames, (0...9).map(String.init))
        XCTAssertEqual(data.train.count, 60000)
        XCTAssertEqual(data.test.count, 10000)
        XCTAssertEqual(data.train.images.count, 60000 * 784)
        XCTAssertEqual(data.test.images.count, 10000 * 784)
        for split in [data.train, data.test] {
            XCTAssertEqual(Set(split.labels), Set(0...9))
            // A plain loop: the generic min()/max() are slow in an unoptimised test build.
            let (darkest, brightest) = split.images.withUnsafeBufferPointer { pixels in
                var low = Float.infinity, high = -Float.infinity
                for value in pixels { low = Swift.min(low, value); high = Swift.max(high, value) }
                return (low, high)
            }
            XCTAssertEqual(darkest, 0)
            XCTAssertEqual(brightest, 1)
        }
        // The library is built optimised even in debug builds; generous for a busy shared machine.
        XCTAssertLessThan(seconds, 2, "loading MNIST took \(seconds) s")
    }
}
