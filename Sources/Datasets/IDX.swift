/// The IDX format of MNIST. Big-endian header: a magic number 0x0000TTDD (TT the element type,
/// 0x08 for unsigned bytes; DD the number of dimensions), then DD sizes as UInt32, then the data.
/// Images are 0x00000803 (count, rows, cols), labels 0x00000801 (count).
public enum IDX {
    public static let imageMagic: UInt32 = 0x0000_0803
    public static let labelMagic: UInt32 = 0x0000_0801
    /// Images with a channel dimension (count, rows, cols, channels): not in MNIST, but the same format.
    public static let colorImageMagic: UInt32 = 0x0000_0804

    /// Reads a raw or gzipped IDX file of unsigned bytes and checks that its length matches its header.
    public static func read(_ path: String) throws -> (dimensions: [Int], bytes: [UInt8]) {
        let file = try File(path: path)
        return (file.dimensions, Array(file.storage[file.payloadOffset...]))
    }

    /// A decoded IDX file that keeps the header in front of the data, so the multi-megabyte
    /// payload is never copied just to drop 8–16 header bytes.
    struct File {
        let path: String
        let magic: UInt32
        let dimensions: [Int]
        let storage: [UInt8]
        let payloadOffset: Int
        var payloadCount: Int { storage.count - payloadOffset }

        init(path: String) throws {
            let raw = try FileBytes.read(path)
            // Detected by content: a `.gz` name on a raw file, or the reverse, still reads.
            let bytes = Gzip.isCompressed(raw) ? try Gzip.decompress(raw, path: path) : raw
            try self.init(bytes: bytes, path: path)
        }

        init(bytes: [UInt8], path: String) throws {
            guard bytes.count >= 4 else {
                throw DatasetError.truncated(path: path, expectedBytes: 4, actualBytes: bytes.count)
            }
            let magic = IDX.bigEndianWord(bytes, at: 0)
            let elementType = (magic >> 8) & 0xFF, rank = Int(magic & 0xFF)
            guard magic >> 16 == 0, elementType == 0x08, (1...4).contains(rank) else {
                // Not an IDX file of bytes at all: report what a caller most likely wanted.
                throw DatasetError.badMagic(path: path, found: magic, expected: rank == 1 ? IDX.labelMagic : IDX.imageMagic)
            }
            let headerCount = 4 + 4 * rank
            guard bytes.count >= headerCount else {
                throw DatasetError.truncated(path: path, expectedBytes: headerCount, actualBytes: bytes.count)
            }
            let dimensions = (0..<rank).map { Int(IDX.bigEndianWord(bytes, at: 4 + 4 * $0)) }
            var expected = 1
            for size in dimensions {
                let (product, overflow) = expected.multipliedReportingOverflow(by: size)
                guard !overflow else {
                    throw DatasetError.badHeader(path: path, reason: "sizes \(dimensions.map(String.init).joined(separator: "×")) are too large")
                }
                expected = product
            }
            let actual = bytes.count - headerCount
            if actual < expected { throw DatasetError.truncated(path: path, expectedBytes: expected, actualBytes: actual) }
            if actual > expected { throw DatasetError.trailingBytes(path: path, expectedBytes: expected, actualBytes: actual) }
            self.path = path
            self.magic = magic
            self.dimensions = dimensions
            self.storage = bytes
            self.payloadOffset = headerCount
        }
    }

    static func bigEndianWord(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }
}
