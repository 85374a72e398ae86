#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole file as the user named it: to end of file, not to the size stat reports, so
/// files under /proc (whose size is 0) and pipes (`run /dev/stdin`, `run <(…)`) read fully.
/// A folder or a device is refused with one line; `limit` bounds what an endless source (a
/// pipe that never closes) can make ollie hold.
public enum FileContents {
    public static func read(_ path: String, limit: Int = 1 << 36) throws -> [UInt8] {
        guard !path.isEmpty else { throw FileReadError.emptyPath }
        // Non-blocking open: a FIFO with no writer cannot hang here; reads block again below.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure(errno, path) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw failure(errno, path) }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: throw FileReadError.isFolder(path: path)
        case S_IFCHR, S_IFBLK: throw FileReadError.isDevice(path: path)
        default: break
        }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
        var bytes = [UInt8]()
        bytes.reserveCapacity(info.st_size > 0 ? min(Int(info.st_size), limit) + 1 : 65536)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { readSome(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw failure(errno, path) }
            if count == 0 { return bytes }
            guard bytes.count + count <= limit else { throw FileReadError.tooLarge(path: path, limit: limit) }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    static func failure(_ code: Int32, _ path: String) -> FileReadError {
        switch code {
        case ENOENT: return .notFound(path: path)
        case EACCES, EPERM: return .noPermission(path: path)
        case EISDIR: return .isFolder(path: path)
        default: return .failed(path: path, reason: String(cString: strerror(code)))
        }
    }
}

/// `read(2)`, named so it does not clash with `FileContents.read`.
private func readSome(_ descriptor: Int32, _ into: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.read(descriptor, into, count)
    #else
    return Darwin.read(descriptor, into, count)
    #endif
}
