#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file straight into an array with one allocation (no `Data` in between, no
/// zero-fill): a dataset's files are read once and are tens of megabytes. Opened non-blocking,
/// so a named pipe dropped among a dataset's files cannot hang a load (no effect on files).
enum FileBytes {
    /// The whole file.
    static func read(_ path: String) throws -> [UInt8] { try read(path, limit: nil).bytes }

    /// At most `limit` bytes (all when nil); `size` is the whole file's. `unreadable` makes the
    /// error for the path and the reason (each loader names its own kind of file).
    static func read(_ path: String, limit: Int?,
                     unreadable: (String, String) -> Error = { DatasetError.unreadable(path: $0, reason: $1) })
        throws -> (bytes: [UInt8], size: Int) {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK)
        guard descriptor >= 0 else { throw unreadable(path, lastError()) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw unreadable(path, lastError()) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw unreadable(path, "not a regular file") }
        let size = Int(info.st_size)
        let wanted = min(size, limit ?? size)
        let bytes = try [UInt8](unsafeUninitializedCapacity: wanted) { buffer, count in
            count = 0
            while count < wanted {
                let got = readSome(descriptor, buffer.baseAddress! + count, wanted - count)
                if got < 0 && errno == EINTR { continue }
                guard got >= 0 else { throw unreadable(path, lastError()) }
                if got == 0 { break }  // the file shrank while we read it; the format's own checks say so
                count += got
            }
        }
        return (bytes, size)
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}

/// `read(2)`, named so it does not clash with `FileBytes.read`.
private func readSome(_ descriptor: Int32, _ into: UnsafeMutablePointer<UInt8>, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.read(descriptor, into, count)
    #else
    return Darwin.read(descriptor, into, count)
    #endif
}
