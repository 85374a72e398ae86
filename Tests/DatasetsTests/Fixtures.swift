import CZlib
import Foundation
import XCTest
@testable import Datasets

/// A fresh folder under the system temp folder, removed when the test ends.
final class TemporaryFolder {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "ollie-datasets-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Creates `relative` (and its parent folders) holding `bytes`; returns the full path.
    @discardableResult
    func write(_ relative: String, _ bytes: [UInt8]) throws -> String {
        let full = path + "/" + relative
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: full))
        return full
    }

    func subfolder(_ relative: String) throws -> String {
        let full = path + "/" + relative
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        return full
    }
}

/// An IDX file: big-endian magic and sizes, then the bytes.
func idx(magic: UInt32, dimensions: [Int], payload: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = []
    for word in [magic] + dimensions.map({ UInt32($0) }) {
        bytes += [UInt8(word >> 24), UInt8((word >> 16) & 0xFF), UInt8((word >> 8) & 0xFF), UInt8(word & 0xFF)]
    }
    return bytes + payload
}

func imageFile(count: Int, height: Int, width: Int, pixels: (Int) -> UInt8 = { UInt8($0 % 256) }) -> [UInt8] {
    idx(magic: 0x803, dimensions: [count, height, width], payload: (0..<(count * height * width)).map(pixels))
}

func labelFile(_ labels: [UInt8]) -> [UInt8] {
    idx(magic: 0x801, dimensions: [labels.count], payload: labels)
}

/// gzip with zlib's deflate (16 + MAX_WBITS asks for the gzip wrapper), like `gzip -c`.
func gzip(_ bytes: [UInt8]) -> [UInt8] {
    var stream = z_stream()
    guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                        ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return [] }
    defer { deflateEnd(&stream) }
    var input = bytes
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
    let written: Int = input.withUnsafeMutableBufferPointer { source in
        output.withUnsafeMutableBufferPointer { target in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            stream.next_out = target.baseAddress
            stream.avail_out = uInt(target.count)
            guard deflate(&stream, Z_FINISH) == Z_STREAM_END else { return 0 }
            return target.count - Int(stream.avail_out)
        }
    }
    return Array(output[0..<written])
}

/// A small dataset folder: `trainCount` and `testCount` images of height×width, labels
/// cycling through 0..<classCount, every file gzipped or every file raw.
struct TinyDataset {
    static let trainCount = 6, testCount = 4, height = 3, width = 2

    static func trainPixels(_ i: Int) -> UInt8 { UInt8((i * 37) % 256) }
    static func testPixels(_ i: Int) -> UInt8 { UInt8(255 - (i * 11) % 256) }
    static func trainLabels(classCount: Int = 3) -> [UInt8] { (0..<trainCount).map { UInt8($0 % classCount) } }
    static func testLabels(classCount: Int = 3) -> [UInt8] { (0..<testCount).map { UInt8(($0 + 1) % classCount) } }

    /// Writes the four files into `folder` (relative to `root`) and returns the folder's full path.
    @discardableResult
    static func write(in root: TemporaryFolder, folder: String, gzipped: Bool, classCount: Int = 3) throws -> String {
        let files: [(String, [UInt8])] = [
            ("train-images-idx3-ubyte", imageFile(count: trainCount, height: height, width: width, pixels: trainPixels)),
            ("train-labels-idx1-ubyte", labelFile(trainLabels(classCount: classCount))),
            ("t10k-images-idx3-ubyte", imageFile(count: testCount, height: height, width: width, pixels: testPixels)),
            ("t10k-labels-idx1-ubyte", labelFile(testLabels(classCount: classCount))),
        ]
        for (name, bytes) in files {
            try root.write(folder + "/" + name + (gzipped ? ".gz" : ""), gzipped ? gzip(bytes) : bytes)
        }
        return root.path + "/" + folder
    }
}

/// The repository's shared MNIST copy (`../shared/datasets/mnist` from a checkout), found by
/// walking up from this file so it is found from a worktree too.
func sharedMNISTFolder(file: String = #filePath) -> String? {
    var folder = URL(fileURLWithPath: file).deletingLastPathComponent()
    while folder.path != "/" {
        let candidate = folder.appendingPathComponent("shared/datasets/mnist").path
        if DatasetsTestSupport.holdsMNIST(candidate) { return candidate }
        folder = folder.deletingLastPathComponent()
    }
    return nil
}

enum DatasetsTestSupport {
    static func holdsMNIST(_ folder: String) -> Bool {
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
            .allSatisfy { FileManager.default.fileExists(atPath: folder + "/" + $0) }
    }
}

/// Runs a program to completion and returns its standard output.
func runProgram(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// Asserts that `body` throws a `DatasetError` and hands it over for more checks.
func assertDatasetError<T>(_ body: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line,
                           _ check: (DatasetError) -> Void) {
    do {
        _ = try body()
        XCTFail("expected a DatasetError, got a value", file: file, line: line)
    } catch let error as DatasetError {
        XCTAssertFalse(error.description.contains("\n"), "one line: \(error)", file: file, line: line)
        check(error)
    } catch {
        XCTFail("expected a DatasetError, got \(error)", file: file, line: line)
    }
}
