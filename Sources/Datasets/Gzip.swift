import CZlib
import Foundation

/// gunzip in memory with zlib. Files that do not start with the gzip magic pass through.
enum Gzip {
    static func isCompressed(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B
    }

    /// Inflates a gzip stream; `expectedSize` is a first guess for the output buffer.
    static func decompress(_ data: Data, file: String, expectedSize: Int = 0) throws -> [UInt8] {
        var stream = z_stream()
        // 16 + MAX_WBITS: expect a gzip header and trailer.
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DatasetError("\(file): zlib could not start")
        }
        defer { inflateEnd(&stream) }
        // The gzip trailer ends with the uncompressed size (mod 2³²): size the buffer once.
        let trailer = data.suffix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
        var output = [UInt8](repeating: 0, count: max(expectedSize, trailer + 1, 1 << 16))
        var produced = 0
        let status: Int32 = data.withUnsafeBytes { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                if produced == output.count { output += [UInt8](repeating: 0, count: output.count) }
                let result: Int32 = output.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress! + produced
                    stream.avail_out = uInt(out.count - produced)
                    let r = inflate(&stream, Z_NO_FLUSH)
                    produced = out.count - Int(stream.avail_out)
                    return r
                }
                if result == Z_STREAM_END { return Z_STREAM_END }
                if result != Z_OK && result != Z_BUF_ERROR { return result }
                if result == Z_BUF_ERROR && stream.avail_in == 0 { return Z_BUF_ERROR }
            }
        }
        guard status == Z_STREAM_END else {
            throw DatasetError("\(file) is not a valid gzip file (\(status == Z_BUF_ERROR ? "truncated" : "corrupt data")); delete it and fetch it again")
        }
        output.removeSubrange(produced...)
        return output
    }
}
