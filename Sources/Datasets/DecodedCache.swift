import Foundation

/// Decoded datasets kept on disk, so loading the same folder again reads Float32 arrays instead
/// of decoding every file. An entry is keyed by an MD5 of what the decoding depended on: the
/// folder, every file's path, byte size and modification time, and the load options; a changed,
/// added or removed file gives another key (and the old entry is simply never read again).
///
/// File layout: "OLLIEDC1", an 8-byte little-endian length, that many bytes of JSON (the
/// dataset's shape, classes and the load report), then the train images (Float32), train labels
/// (Int32), test images, test labels, all little-endian. A file that does not parse is ignored.
///
/// The folder is bounded: after a write, the least recently used entries (by modification
/// time, which a read touches) are deleted until the rest fit in `limitBytes`.
public struct DecodedCache: Sendable {
    public let directory: String
    /// The most bytes the entries may take together.
    public var limitBytes: UInt64

    public static let defaultLimitBytes: UInt64 = 2 << 30

    public init(directory: String, limitBytes: UInt64 = DecodedCache.defaultLimitBytes) {
        self.directory = directory
        self.limitBytes = limitBytes
    }

    /// $XDG_CACHE_HOME/ollie/decoded, or ~/.cache/ollie/decoded.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        URL(fileURLWithPath: DatasetCatalog.cacheDirectory(environment: environment)).deletingLastPathComponent()
            .appendingPathComponent("decoded").path
    }

    static let magic = Array("OLLIEDC1".utf8)

    /// `Report`: what the loader found (`ImageFolderReport`, `VideoFolderReport`), kept with the arrays.
    struct Header<Report: Codable>: Codable {
        var key: String
        var name: String
        var source: String
        /// The load options the entry was decoded with (nil in entries of older versions).
        var options: String?
        var classNames: [String]
        var height: Int, width: Int, channels: Int
        var frames: Int
        var trainCount: Int, testCount: Int
        var report: Report
    }

    /// The key for these files (path, size, modification time each) and options.
    public static func key(files: [String], options: String) -> String {
        var manifest = "ollie decoded cache v2\n" + options + "\n"
        manifest.reserveCapacity(files.count * 96)
        for path in files {
            // stat(2) itself: FileManager's attributes cost ~20 µs a file, too much for 70,000.
            var info = stat()
            if stat(path, &info) == 0 {
                manifest += "\(path)\t\(info.st_size)\t\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)\n"
            } else {
                manifest += "\(path)\t-\n"
            }
        }
        return MD5.hex(Array(manifest.utf8))
    }

    func path(for key: String) -> String { "\(directory)/\(key).bin" }

    /// The entry for `key` with a report of type `Report`, or nil when there is none or it does not parse.
    func read<Report: Codable>(key: String, report _: Report.Type) -> (Dataset, Report)? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path(for: key)), options: .alwaysMapped), data.count > 16,
              Array(data.prefix(8)) == DecodedCache.magic else { return nil }
        let headerLength = data.subdata(in: 8..<16).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard headerLength > 0, 16 + headerLength <= data.count,
              let header = try? JSONDecoder().decode(Header<Report>.self, from: data.subdata(in: 16..<(16 + headerLength))),
              header.key == key else { return nil }
        touch(path(for: key))
        let values = header.height * header.width * header.channels * header.frames
        var offset = 16 + headerLength
        /// `count` 4-byte values at `offset`, copied once straight into the array.
        func copied<T>(_ count: Int, as _: T.Type) -> [T]? {
            let bytes = count * 4
            guard count >= 0, offset + bytes <= data.count else { return nil }
            defer { offset += bytes }
            return data.withUnsafeBytes { raw in
                [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                    if bytes > 0 { memcpy(buffer.baseAddress!, raw.baseAddress! + offset, bytes) }
                    initialized = count
                }
            }
        }
        func floats(_ count: Int) -> [Float]? { copied(count, as: Float.self) }
        func labels(_ count: Int) -> [Int32]? { copied(count, as: Int32.self) }
        guard let trainImages = floats(header.trainCount * values), let trainLabels = labels(header.trainCount),
              let testImages = floats(header.testCount * values), let testLabels = labels(header.testCount),
              offset == data.count else { return nil }
        let dataset = Dataset(name: header.name, train: Split(images: trainImages, labels: trainLabels),
                              test: Split(images: testImages, labels: testLabels), height: header.height, width: header.width,
                              channels: header.channels, frames: header.frames, classNames: header.classNames, source: header.source)
        return (dataset, header.report)
    }

    /// Writes an entry (atomically: a crash never leaves half of one under its name). Failing to
    /// write is not an error: the data was loaded, only not kept.
    func write<Report: Codable>(key: String, options: String, dataset: Dataset, report: Report) {
        let header = Header(key: key, name: dataset.name, source: dataset.source, options: options, classNames: dataset.classNames,
                            height: dataset.height, width: dataset.width, channels: dataset.channels, frames: dataset.frames,
                            trainCount: dataset.train.count, testCount: dataset.test.count, report: report)
        guard let json = try? JSONEncoder().encode(header) else { return }
        var data = Data(DecodedCache.magic)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for split in [dataset.train, dataset.test] {
            split.images.withUnsafeBytes { data.append(contentsOf: $0) }
            split.labels.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? data.write(to: URL(fileURLWithPath: path(for: key)), options: .atomic)
        evict(keeping: limitBytes)
    }

    // MARK: - Bookkeeping (`cache`, `cache clear`)

    /// One entry as `cache` lists it.
    public struct Entry: Equatable, Sendable {
        public var key: String
        /// The folder it was decoded from, and the options (nil when the entry does not say).
        public var source: String
        public var options: String?
        public var bytes: UInt64
        public var lastUsed: Date
    }

    /// The entries, most recently used first; files that are not entries are left out.
    public func entries() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".bin") }.compactMap { name -> Entry? in
            let path = "\(directory)/\(name)"
            guard let header = DecodedCache.header(at: path), "\(header.key).bin" == name,
                  let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
            return Entry(key: header.key, source: header.source, options: header.options,
                         bytes: (attributes[.size] as? NSNumber)?.uint64Value ?? 0,
                         lastUsed: attributes[.modificationDate] as? Date ?? .distantPast)
        }.sorted { ($0.lastUsed, $0.key) > ($1.lastUsed, $1.key) }
    }

    /// Deletes every entry (and any other .bin file the folder holds); returns how many and their bytes.
    @discardableResult
    public func clear() -> (count: Int, bytes: UInt64) {
        var count = 0, bytes: UInt64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".bin") {
            let path = "\(directory)/\(name)"
            let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
            if (try? FileManager.default.removeItem(atPath: path)) != nil {
                count += 1
                bytes += size
            }
        }
        return (count, bytes)
    }

    /// Deletes the least recently used entries until the rest take at most `limit` bytes.
    func evict(keeping limit: UInt64) {
        let listed = entries()
        var total = listed.reduce(0) { $0 + $1.bytes }
        for entry in listed.reversed() where total > limit {
            try? FileManager.default.removeItem(atPath: path(for: entry.key))
            total -= entry.bytes
        }
    }

    /// Marks an entry used now: eviction goes by modification time.
    private func touch(_ path: String) {
        try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: path)
    }

    /// Just an entry's header: its first bytes, not its arrays.
    private struct Listed: Codable {
        var key: String
        var source: String
        var options: String?
    }

    private static func header(at path: String) -> Listed? {
        guard let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        guard let start = try? file.read(upToCount: 16), start.count == 16, Array(start.prefix(8)) == magic else { return nil }
        let length = start.subdata(in: 8..<16).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard length > 0, length < 1 << 26, let json = try? file.read(upToCount: length), json.count == length else { return nil }
        return try? JSONDecoder().decode(Listed.self, from: json)
    }
}
