import Foundation

/// The IDX format of MNIST: a big-endian header (magic 0x0000080D where D is the number of
/// dimensions and 08 means unsigned bytes, then D sizes), then the bytes.
public enum IDX {
    /// Reads a raw or gzipped IDX file of unsigned bytes; checks the magic number, the
    /// dimension count and that the data is as long as the header says.
    public static func read(_ path: String, dimensions expected: Int) throws -> (sizes: [Int], bytes: ArraySlice<UInt8>) {
        let name = (path as NSString).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError("cannot read \(path)")
        }
        let bytes = Gzip.isCompressed(data) ? try Gzip.decompress(data, file: path) : [UInt8](data)
        guard bytes.count >= 4 + 4 * expected else {
            throw DatasetError("\(path) is too short to be an IDX file (\(bytes.count) bytes); it is truncated — fetch it again")
        }
        let magic = bytes[0..<4].reduce(0) { $0 << 8 | Int($1) }
        guard magic == 0x800 | expected else {
            throw DatasetError("\(name) has magic number 0x\(String(magic, radix: 16)), expected 0x\(String(0x800 | expected, radix: 16)) (an IDX \(expected == 1 ? "label" : "image") file); is it the right file?")
        }
        let sizes = (0..<expected).map { d in bytes[(4 + 4 * d)..<(8 + 4 * d)].reduce(0) { $0 << 8 | Int($1) } }
        let header = 4 + 4 * expected
        let payload = sizes.reduce(1, *)
        guard bytes.count - header == payload else {
            throw DatasetError("\(name) should hold \(payload) bytes after its header (\(sizes.map(String.init).joined(separator: "×"))) but holds \(bytes.count - header); it is \(bytes.count - header < payload ? "truncated" : "corrupt") — fetch it again")
        }
        return (sizes, bytes[header...])
    }

    /// Reads an image file and its label file into a Split, pixels scaled to [0, 1].
    static func readSplit(images imagePath: String, labels labelPath: String, classCount: Int)
        throws -> (split: Split, height: Int, width: Int) {
        let (imageSizes, pixels) = try read(imagePath, dimensions: 3)
        let (labelSizes, labelBytes) = try read(labelPath, dimensions: 1)
        guard imageSizes[0] == labelSizes[0] else {
            throw DatasetError("\((imagePath as NSString).lastPathComponent) has \(imageSizes[0]) images but \((labelPath as NSString).lastPathComponent) has \(labelSizes[0]) labels; the files do not belong together")
        }
        if let bad = labelBytes.first(where: { Int($0) >= classCount }) {
            throw DatasetError("\((labelPath as NSString).lastPathComponent) has label \(bad), outside 0…\(classCount - 1)")
        }
        // Written once, straight from the bytes: no zero-fill of 188 MB first.
        let images = [Float](unsafeUninitializedCapacity: pixels.count) { out, initialized in
            pixels.withUnsafeBufferPointer { source in
                for i in 0..<source.count { out[i] = Float(source[i]) * (1 / 255) }
            }
            initialized = pixels.count
        }
        return (Split(images: images, labels: labelBytes.map { Int32($0) }), imageSizes[1], imageSizes[2])
    }
}
