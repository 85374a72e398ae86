#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole file straight into an array with one allocation (no `Data` in between, no
/// zero-fill): a dataset's files are read once and are tens of megabytes.
enum FileBytes {
    static func read(_ path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw DatasetError.unreadable(path: path, reason: lastError()) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw DatasetError.unreadable(path: path, reason: lastError()) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw DatasetError.unreadable(path: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        return try [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                let got = readSome(descriptor, buffer.baseAddress! + count, size - count)
                if got < 0 && errno == EINTR { continue }
                guard got >= 0 else { throw DatasetError.unreadable(path: path, reason: lastError()) }
                if got == 0 { break }  // the file shrank while we read it; the IDX checks will say so
                count += got
            }
        }
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
