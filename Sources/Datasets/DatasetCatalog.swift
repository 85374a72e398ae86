import Foundation

/// Named datasets: where they are looked for, how a folder of IDX files is read, and the
/// download into the per-user cache when they are nowhere to be found.
public enum DatasetCatalog {
    public static let names: [String] = KnownDataset.all.map(\.name)

    /// Where named datasets are looked for, in order: each entry of $OLLIE_DATA_PATH
    /// (colon-separated), ./data, ../shared/datasets, /usr/share/datasets (Debian's
    /// dataset-* packages), then the per-user download cache. NAME lives in `<entry>/NAME/`.
    public static func searchPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        let fromEnvironment = (environment["OLLIE_DATA_PATH"] ?? "").split(separator: ":").map(String.init)
        return fromEnvironment + ["./data", "../shared/datasets", "/usr/share/datasets", cacheDirectory(environment: environment)]
    }

    /// $XDG_CACHE_HOME/ollie/datasets, or ~/.cache/ollie/datasets (XDG ignores relative paths).
    public static func cacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let cache = environment["XDG_CACHE_HOME"], cache.hasPrefix("/") { return cache + "/ollie/datasets" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.cache/ollie/datasets"
    }

    /// Finds the named dataset in the first search-path entry holding all four files. When none
    /// does and `allowDownload`, downloads it into the last entry (by default the per-user cache),
    /// checking each file's MD5, then reads it from there.
    public static func load(_ name: String, searchPath: [String]? = nil, allowDownload: Bool = true,
                            mirrors: [String]? = nil) throws -> Dataset {
        let key = name.lowercased()
        guard let known = KnownDataset.named(key) else { throw DatasetError.unknownDataset(name, known: names) }
        let entries = searchPath ?? self.searchPath()
        let folders = entries.map { folder(in: $0, for: key) }
        if let found = folders.first(where: holdsAllFiles) {
            return try load(idxDirectory: found, name: key, classNames: known.classNames)
        }
        guard allowDownload else { throw DatasetError.notFound(key, searched: folders) }
        // The search path ends with the cache (see `searchPath`), so downloads land where the next load looks.
        let target = folder(in: entries.last ?? cacheDirectory(), for: key)
        do {
            try Download.fetch(checksums: known.checksums, from: mirrors ?? known.mirrors, into: target)
        } catch let failure as Download.Failure {
            throw DatasetError.downloadFailed(key, searched: folders, reasons: failure.reasons)
        }
        return try load(idxDirectory: target, name: key, classNames: known.classNames)
    }

    /// Reads the four standard IDX files (each raw or gzipped) from a folder. The name defaults to
    /// the folder's; the class names to the catalog's for a known name, else "0"…"N" for the
    /// largest label N found.
    public static func load(idxDirectory: String, name: String? = nil, classNames: [String]? = nil) throws -> Dataset {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: idxDirectory, isDirectory: &isFolder), isFolder.boolValue else {
            throw DatasetError.notADirectory(idxDirectory)
        }
        let datasetName = name ?? folderName(idxDirectory)
        let paths = try IDXFiles.all.map { base in
            guard let path = existingFile(base, in: idxDirectory) else {
                throw DatasetError.missingFile(directory: idxDirectory, file: base)
            }
            return path
        }
        let files = try readInParallel(paths)
        let trainImages = files.images[0], testImages = files.images[1]
        let trainLabels = files.labels[0], testLabels = files.labels[1]
        guard trainImages.shape == testImages.shape else {
            throw DatasetError.shapeMismatch(train: trainImages.path, trainShape: trainImages.shape,
                                             test: testImages.path, testShape: testImages.shape)
        }
        let classes = classNames ?? KnownDataset.named(datasetName)?.classNames
            ?? (0...max(0, trainLabels.largest, testLabels.largest)).map(String.init)
        let train = try SplitReader.split(trainImages, trainLabels, classCount: classes.count)
        let test = try SplitReader.split(testImages, testLabels, classCount: classes.count)
        return Dataset(name: datasetName, train: train, test: test,
                       height: trainImages.shape[0], width: trainImages.shape[1], channels: trainImages.shape[2],
                       classNames: classes, source: idxDirectory)
    }

    // MARK: - Helpers

    static func folder(in entry: String, for name: String) -> String {
        entry.hasSuffix("/") ? entry + name : entry + "/" + name
    }

    static func holdsAllFiles(_ folder: String) -> Bool {
        IDXFiles.all.allSatisfy { existingFile($0, in: folder) != nil }
    }

    /// `base` or `base.gz`, whichever is there (raw first: it is the faster one to read).
    static func existingFile(_ base: String, in folder: String) -> String? {
        ["\(folder)/\(base)", "\(folder)/\(base).gz"].first { FileManager.default.fileExists(atPath: $0) }
    }

    /// "mnist" for "data/mnist/", and the working folder's own name for ".".
    static func folderName(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return URL(fileURLWithPath: absolute).standardized.lastPathComponent
    }

    /// Reads the four files on two threads. The training images are most of the work: one thread
    /// inflates them while the other reads everything else, then both convert them to floats.
    /// Errors are reported in file order (train images, train labels, test images, test labels).
    private static func readInParallel(_ paths: [String]) throws -> (images: [SplitReader.Images], labels: [SplitReader.Labels]) {
        let results = FileResults()
        // Largest first, so the dynamic scheduler leaves the training images a thread of their own.
        DispatchQueue.concurrentPerform(iterations: 4) { job in
            switch job {
            case 0:
                let decoded = Result { try SplitReader.decodeImages(paths[0]) }
                results.lock.withLock { results.trainImages = decoded }
            case 1:
                let images = Result { try SplitReader.readImages(paths[2]) }
                results.lock.withLock { results.testImages = images }
            default:
                let half = job - 2
                let labels = Result { try SplitReader.readLabels(paths[2 * half + 1]) }
                results.lock.withLock { results.labels[half] = labels }
            }
        }
        return try results.lock.withLock {
            let trainFile = try results.trainImages.get(), trainLabels = try results.labels[0].get()
            let testImages = try results.testImages.get(), testLabels = try results.labels[1].get()
            let trainImages = SplitReader.images(from: trainFile, threads: 2)
            return ([trainImages, testImages], [trainLabels, testLabels])
        }
    }
}

/// The four files' results, written from worker threads under the lock.
private final class FileResults: @unchecked Sendable {
    struct NotRead: Error {}
    let lock = NSLock()
    var trainImages: Result<IDX.File, Error> = .failure(NotRead())
    var testImages: Result<SplitReader.Images, Error> = .failure(NotRead())
    var labels: [Result<SplitReader.Labels, Error>] = [.failure(NotRead()), .failure(NotRead())]
}
