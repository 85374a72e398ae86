import CZlib

/// gunzip in memory with zlib. Recognised by the gzip magic bytes 1f 8b, not by the file name.
enum Gzip {
    static func isCompressed(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    /// Inflates a whole gzip file (one or more concatenated members, as `gzip -d` accepts).
    /// `path` only names the file in errors.
    static func decompress(_ compressed: [UInt8], path: String) throws -> [UInt8] {
        guard compressed.count < Int(UInt32.max) else {
            throw DatasetError.corruptGzip(path: path, reason: "larger than 4 GB")
        }
        var stream = z_stream()
        // 16 + MAX_WBITS: expect a gzip header and trailer rather than a bare zlib stream.
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DatasetError.corruptGzip(path: path, reason: "zlib could not start")
        }
        defer { inflateEnd(&stream) }

        var output: [UInt8] = []
        var capacity = sizeHint(compressed)
        var outcome = Outcome.needsSpace
        compressed.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = uInt(input.count)
            // Usually one pass: the trailer's size hint is exact for a single-member file.
            while outcome == .needsSpace {
                let previous = output
                output = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                    previous.withUnsafeBufferPointer { old in
                        if let source = old.baseAddress { buffer.baseAddress!.initialize(from: source, count: old.count) }
                    }
                    count = previous.count
                    outcome = inflate(&stream, into: buffer, count: &count)
                }
                capacity *= 2
            }
        }
        switch outcome {
        case .finished: return output
        case .needsSpace: return output  // unreachable: the loop only ends on another outcome
        case .truncated: throw DatasetError.corruptGzip(path: path, reason: "the compressed data ends early: the file is truncated")
        case .failed(let reason): throw DatasetError.corruptGzip(path: path, reason: reason)
        }
    }

    private enum Outcome: Equatable {
        case finished, needsSpace, truncated
        case failed(String)
    }

    /// Inflates into `buffer` from `count` on until the stream ends, the buffer is full, or an error.
    private static func inflate(_ stream: inout z_stream, into buffer: UnsafeMutableBufferPointer<UInt8>,
                                count: inout Int) -> Outcome {
        let base = buffer.baseAddress!
        while count < buffer.count {
            let room = min(buffer.count - count, Int(UInt32.max))
            stream.next_out = base + count
            stream.avail_out = uInt(room)
            let status = CZlib.inflate(&stream, Z_NO_FLUSH)
            count += room - Int(stream.avail_out)
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                // Another member may follow (concatenated gzip files); trailing zeros are ignored as gzip does.
                guard stream.avail_in >= 2, stream.next_in[0] == 0x1F, stream.next_in[1] == 0x8B else { return .finished }
                guard inflateReset(&stream) == Z_OK else { return .failed("zlib could not restart") }
            case Z_BUF_ERROR:
                // No progress possible: either the output is full (grow) or the input ran out (truncated).
                if stream.avail_out == 0 { return .needsSpace }
                return .truncated
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                return .failed(message)
            }
        }
        return .needsSpace
    }

    /// The gzip trailer ends with the uncompressed size mod 2³²; trusted only up to deflate's
    /// best ratio (~1032:1) so a damaged trailer cannot ask for a huge allocation.
    private static func sizeHint(_ compressed: [UInt8]) -> Int {
        let n = compressed.count
        guard n >= 18 else { return 1 << 16 }
        let trailer = Int(compressed[n - 4]) | Int(compressed[n - 3]) << 8 | Int(compressed[n - 2]) << 16 | Int(compressed[n - 1]) << 24
        // A little slack so an exact hint still leaves room for zlib to report the end of the stream.
        return max(1 << 12, min(trailer, n * 1032 + (1 << 16)) + 64)
    }
}
