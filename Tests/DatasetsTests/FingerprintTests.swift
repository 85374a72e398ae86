import XCTest
@testable import Datasets

final class FingerprintTests: XCTestCase {
    func dataset(images: [Float] = (0..<300).map { Float($0) / 300 }, labels: [Int32] = [0, 1, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2],
                 classNames: [String] = ["a", "b", "c"]) -> Dataset {
        // 12 samples of 5×5: 300 values (not a multiple of 8 floats, so the tail counts too).
        Dataset(name: "toy", train: Split(images: images, labels: labels), test: Split(images: Array(images.prefix(25)), labels: [1]),
                height: 5, width: 5, channels: 1, classNames: classNames, source: "memory")
    }

    func testTheSameDataGiveTheSameFingerprintAndAnyChangeAnother() {
        let base = dataset().fingerprint
        XCTAssertEqual(base.count, 16)
        XCTAssertEqual(dataset().fingerprint, base)
        var pixel = (0..<300).map { Float($0) / 300 }
        pixel[299] += 1e-6   // the very last value, in the tail after the 32-byte blocks
        var first = (0..<300).map { Float($0) / 300 }
        first[0] = 1
        var labels: [Int32] = [0, 1, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2]
        labels.swapAt(0, 1)
        let changed = [dataset(images: pixel), dataset(images: first), dataset(labels: labels), dataset(classNames: ["a", "b", "d"])]
        XCTAssertEqual(Set(changed.map(\.fingerprint) + [base]).count, 5)
    }
}
