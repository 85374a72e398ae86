#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The one way ollie writes a whole file (save, report, best checkpoints, epoch states):
/// - the path means what open(2) means: the parent folder is created component by component
///   and resolved with realpath, never by editing `..` out of the text, so `save lnk/../x`
///   writes the file `restore lnk/../x` reads; a symbolic link to a file is written through;
/// - a target that exists and is not a regular file (a folder, /dev/null, a FIFO) is refused,
///   so a device node is never replaced by a file;
/// - the bytes go to `.NAME.ollie-tmp-PID` in the same folder, are fsynced, then renamed over
///   the name: a reader sees the old file or the whole new one; the temporary is removed on
///   failure, and one left by a killed process is removed by `removeStaleTemporaries`.
public enum SafeFile {
    /// Between the name and the writer's pid in a temporary's name.
    static let temporaryMarker = ".ollie-tmp-"

    /// Writes `bytes` as the file at `path`. Returns the absolute path written.
    @discardableResult
    public static func write(_ bytes: Data, to path: String) throws -> String {
        let target = try resolve(path)
        removeStaleTemporaries(in: target.folder)
        let temporary = target.folder + "/." + target.name + temporaryMarker + String(getpid())
        func failure(_ code: Int32) -> FileWriteError { FileWriteError.from(errno: code, path: path, folder: target.folder) }
        unlink(temporary)   // one this very pid left behind (pids are reused)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw failure(errno) }
        var written = false
        defer { if !written { unlink(temporary) } }
        do {
            defer { close(descriptor) }
            if let mode = target.existingMode { fchmod(descriptor, mode) }   // replacing keeps the file's permissions
            try bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
                var offset = 0
                while offset < buffer.count {
                    let count = writeSome(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else { throw failure(count == 0 ? ENOSPC : errno) }
                    offset += count
                }
            }
            // On disk before the rename, so a crash cannot leave an empty file under the name.
            guard fsync(descriptor) == 0 else { throw failure(errno) }
        }
        guard rename(temporary, target.path) == 0 else { throw failure(errno) }
        written = true
        let folder = open(target.folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 { fsync(folder); close(folder) }   // the rename itself survives a crash
        return target.path
    }

    /// Where `path` really is: its folder (absolute, symbolic links resolved), its name, the
    /// whole path, and the mode of the regular file already there. Makes missing folders on the way.
    static func resolve(_ path: String) throws -> (folder: String, name: String, path: String, existingMode: mode_t?) {
        guard !path.isEmpty else { throw FileWriteError.emptyPath }
        let (parentText, name) = split(path)
        guard !name.isEmpty, name != ".", name != ".." else { throw FileWriteError.isFolder(path: path) }
        try makeFolders(parentText, for: path)
        guard let folder = ResolvedPath.real(parentText) else {
            throw FileWriteError.from(errno: errno, path: path, folder: parentText)
        }
        let full = (folder == "/" ? "" : folder) + "/" + name
        var info = stat()
        guard stat(full, &info) == 0 else {
            guard errno == ENOENT else { throw FileWriteError.from(errno: errno, path: path, folder: folder) }
            if lstat(full, &info) == 0 {
                throw FileWriteError.notARegularFile(path: path, kind: "a symbolic link to a missing file")
            }
            return (folder, name, full, nil)
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw FileWriteError.isFolder(path: path)
        case let kind: throw FileWriteError.notARegularFile(path: path, kind: describe(kind))
        }
        // A link to a file: write the file it names, in that file's folder, as open(2) would.
        let real = ResolvedPath.real(full) ?? full
        let (realFolder, realName) = split(real)
        return (realFolder, realName, real, info.st_mode & 0o7777)
    }

    /// "a/b/c" → ("a/b", "c"); "c" → (".", "c"); "/c" → ("/", "c"); "a/" → ("a", "").
    static func split(_ path: String) -> (folder: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let folder = path[..<slash]
        return (folder.isEmpty ? "/" : String(folder), String(path[path.index(after: slash)...]))
    }

    /// mkdir(2) on each prefix of `folder` that is missing, as `mkdir -p` does: `a/b/../c`
    /// makes a, a/b, then a/b/../c, which is a/c by the file system's reckoning, not the text's.
    static func makeFolders(_ folder: String, for path: String) throws {
        var made: String? = folder.hasPrefix("/") ? "" : nil   // the prefix so far; nil: none yet (relative)
        for component in folder.split(separator: "/") {
            let parent = made.map { $0.isEmpty ? "/" : $0 } ?? "."
            let current = made.map { $0 + "/" + component } ?? String(component)
            made = current
            var info = stat()
            if stat(current, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else { throw FileWriteError.folderIsAFile(path: path, folder: current) }
                continue
            }
            guard errno == ENOENT else { throw FileWriteError.from(errno: errno, path: path, folder: parent) }
            if mkdir(current, 0o777) != 0 && errno != EEXIST {
                throw FileWriteError.from(errno: errno, path: path, folder: parent)
            }
        }
    }

    /// Removes the temporaries in `folder` that ollie processes left when they died mid-write
    /// (kill -9 during `save`): `.NAME.ollie-tmp-PID` whose PID no longer runs. Returns how many.
    @discardableResult
    public static func removeStaleTemporaries(in folder: String) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix(".") {
            guard let marker = name.range(of: temporaryMarker, options: .backwards),
                  let pid = pid_t(name[marker.upperBound...]), pid > 0, pid != getpid(),
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            var info = stat()
            let path = folder + "/" + name
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            if unlink(path) == 0 { removed += 1 }
        }
        return removed
    }


    static func describe(_ kind: mode_t) -> String {
        switch kind {
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFIFO: return "a named pipe (FIFO)"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }
}

/// `write(2)`, named so it does not clash with `SafeFile.write`.
private func writeSome(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(descriptor, bytes, count)
    #else
    return Darwin.write(descriptor, bytes, count)
    #endif
}

/// Absolute paths as the file system sees them.
public enum ResolvedPath {
    /// realpath(3): absolute, every link and `..` resolved by the file system; nil (errno set)
    /// when some part does not exist.
    public static func real(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// `path` made absolute with every symbolic link resolved, as far as it exists: an existing
    /// file resolves whole; a file not yet made resolves its folder and keeps its name.
    public static func of(_ path: String) -> String {
        if let real = ResolvedPath.real(path) { return real }
        let (folderText, name) = SafeFile.split(path)
        if let folder = ResolvedPath.real(folderText) { return (folder == "/" ? "" : folder) + "/" + name }
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }

    /// `path` as a user in the working directory would type it: relative when it lies inside.
    public static func shown(_ path: String) -> String {
        let here = FileManager.default.currentDirectoryPath
        let prefix = here.hasSuffix("/") ? here : here + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}
