import Dispatch

/// Turns IDX image and label files into a `Split`: pixels become Float32 in [0, 1] once, here,
/// so training never converts again.
enum SplitReader {
    /// Images as floats, shape (count, height, width, channels), plus the file they came from.
    struct Images {
        let path: String
        let count: Int
        let shape: [Int]  // height, width, channels
        let pixels: [Float]
    }

    /// Labels as read, before the class count is known.
    struct Labels {
        let path: String
        let values: [Int32]
        let largest: Int  // -1 when there are none
    }

    /// Decodes an image file without converting it, so the caller can convert on several threads.
    static func decodeImages(_ path: String) throws -> IDX.File {
        let file = try IDX.File(path: path)
        guard file.magic == IDX.imageMagic || file.magic == IDX.colorImageMagic else {
            throw DatasetError.badMagic(path: path, found: file.magic, expected: IDX.imageMagic)
        }
        return file
    }

    static func readImages(_ path: String) throws -> Images {
        images(from: try decodeImages(path), threads: 1)
    }

    /// pixel × (1/255) in vectorisable passes over raw pointers (255 maps to exactly 1.0), split
    /// into `threads` ranges: first-touch page faults on the new array cost as much as the arithmetic.
    static func images(from file: IDX.File, threads: Int) -> Images {
        let dims = file.dimensions
        let shape = [dims[1], dims[2], dims.count == 4 ? dims[3] : 1]
        let total = file.payloadCount
        let parts = max(1, min(threads, total / 65536))
        let pixels = [Float](unsafeUninitializedCapacity: total) { out, count in
            guard total > 0, let start = out.baseAddress else { return }  // an empty file has no buffer to write
            let target = Pointer(start)
            file.storage.withUnsafeBufferPointer { bytes in
                let source = Pointer(UnsafeMutablePointer(mutating: bytes.baseAddress! + file.payloadOffset))
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    convert(source.address + part * total / parts, into: target.address + part * total / parts,
                            count: (part + 1) * total / parts - part * total / parts)
                }
            }
            count = total
        }
        return Images(path: file.path, count: dims[0], shape: shape, pixels: pixels)
    }

    private static func convert(_ source: UnsafeMutablePointer<UInt8>, into target: UnsafeMutablePointer<Float>, count: Int) {
        let scale: Float = 1 / 255
        for i in 0..<count { target[i] = Float(source[i]) * scale }
    }

    /// A pointer handed to worker threads that write disjoint ranges of it.
    private struct Pointer<Element>: @unchecked Sendable {
        let address: UnsafeMutablePointer<Element>
        init(_ address: UnsafeMutablePointer<Element>) { self.address = address }
    }

    static func readLabels(_ path: String) throws -> Labels {
        let file = try IDX.File(path: path)
        guard file.magic == IDX.labelMagic else {
            throw DatasetError.badMagic(path: path, found: file.magic, expected: IDX.labelMagic)
        }
        let total = file.payloadCount
        var largest = -1
        let values = [Int32](unsafeUninitializedCapacity: total) { out, count in
            file.storage.withUnsafeBufferPointer { bytes in
                let source = bytes.baseAddress! + file.payloadOffset
                for i in 0..<total {
                    out[i] = Int32(source[i])
                    largest = max(largest, Int(source[i]))
                }
            }
            count = total
        }
        return Labels(path: path, values: values, largest: largest)
    }

    /// Pairs images with labels, checking the counts agree and every label names a class.
    static func split(_ images: Images, _ labels: Labels, classCount: Int) throws -> Split {
        guard images.count == labels.values.count else {
            throw DatasetError.countMismatch(images: images.path, imageCount: images.count,
                                             labels: labels.path, labelCount: labels.values.count)
        }
        if labels.largest >= classCount, let index = labels.values.firstIndex(where: { $0 >= classCount }) {
            throw DatasetError.labelOutOfRange(path: labels.path, label: Int(labels.values[index]),
                                               index: index, classCount: classCount)
        }
        return Split(images: images.pixels, labels: labels.values)
    }
}
