#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be written, in words that say what to do next. The path is the one
/// the user gave (or the command chose), so the message names what they typed.
public enum FileWriteError: Error, CustomStringConvertible, Equatable {
    case emptyPath
    /// The path names a folder (or ends in `/`, `.` or `..`).
    case isFolder(path: String)
    /// Something that exists and is not a regular file: a device, a FIFO, a socket.
    case notARegularFile(path: String, kind: String)
    /// A folder on the way is a file.
    case folderIsAFile(path: String, folder: String)
    case noPermission(path: String, folder: String)
    case readOnly(path: String, folder: String)
    case diskFull(path: String, folder: String)
    case failed(path: String, reason: String)

    public var description: String {
        switch self {
        case .emptyPath:
            return "the file name is '' (empty); give a file name"
        case .isFolder(let path):
            return "\(path) names a folder, not a file; give a file name inside it, e.g. \(path.hasSuffix("/") ? path : path + "/")NAME"
        case .notARegularFile(let path, let kind):
            return "\(path) is \(kind), not a regular file; ollie only writes regular files, so give another path"
        case .folderIsAFile(let path, let folder):
            return "cannot write \(path): \(folder) is a file, not a folder; move or rename that file, or give another path"
        case .noPermission(let path, let folder):
            return "cannot write \(path): no permission to write in \(folder); give a path in a folder you can write to"
        case .readOnly(let path, let folder):
            return "cannot write \(path): \(folder) is on a read-only file system; give a path on a writable disk"
        case .diskFull(let path, let folder):
            return "cannot write \(path): the disk holding \(folder) is full; free some space and try again (nothing was written)"
        case .failed(let path, let reason):
            return "cannot write \(path): \(reason)"
        }
    }

    /// The error for a failed system call with `code` (errno) while writing `path` into `folder`.
    public static func from(errno code: Int32, path: String, folder: String) -> FileWriteError {
        switch code {
        case ENOSPC, EDQUOT: return .diskFull(path: path, folder: folder)
        case EACCES, EPERM: return .noPermission(path: path, folder: folder)
        case EROFS: return .readOnly(path: path, folder: folder)
        case EISDIR: return .isFolder(path: path)
        // The folder exists (it was resolved) yet a new file in it "does not exist": /proc, /sys.
        case ENOENT: return .failed(path: path, reason: "\(folder) does not take new files (a virtual file system such as /proc?); give a path on a disk")
        default: return .failed(path: path, reason: String(cString: strerror(code)))
        }
    }
}

/// Why a file could not be read: `description` names the path, `reason` says why and what to do.
public enum FileReadError: Error, CustomStringConvertible, Equatable {
    case emptyPath
    case notFound(path: String)
    case isFolder(path: String)
    case isDevice(path: String)
    case noPermission(path: String)
    case tooLarge(path: String, limit: Int)
    case failed(path: String, reason: String)

    public var description: String {
        switch self {
        case .emptyPath: return "cannot read '': \(reason)"
        case .notFound(let path), .isFolder(let path), .isDevice(let path), .noPermission(let path),
             .tooLarge(let path, _), .failed(let path, _):
            return "cannot read \(path): \(reason)"
        }
    }

    public var reason: String {
        switch self {
        case .emptyPath: return "the file name is empty; give a path"
        case .notFound: return "it does not exist; check the path"
        case .isFolder: return "it is a folder, not a file; give a file inside it"
        case .isDevice: return "it is a device, not a file; give a file"
        case .noPermission: return "no permission to read it; check its permissions"
        case .tooLarge(_, let limit): return "it is larger than \(limit) bytes; is it the right file?"
        case .failed(_, let reason): return reason
        }
    }
}
