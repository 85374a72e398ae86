import Foundation

/// Named datasets, where they are looked for, and how they are read.
public enum DatasetCatalog {
    public static let names = ["mnist", "fashion-mnist"]

    static let fileNames = (trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
                            testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte")

    static let fashionClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// Where named datasets are looked for, in order: $OLLIE_DATA_PATH (colon-separated),
    /// ./data, ../shared/datasets, /usr/share/datasets, then the per-user download cache.
    public static func searchPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var path = (environment["OLLIE_DATA_PATH"] ?? "").split(separator: ":").map(String.init)
        path += ["data", "../shared/datasets", "/usr/share/datasets", cacheDirectory(environment: environment)]
        return path
    }

    /// $XDG_CACHE_HOME/ollie/datasets, or ~/.cache/ollie/datasets.
    public static func cacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/ollie/datasets" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.cache/ollie/datasets"
    }

    /// Loads a named dataset from the first folder on the search path that has its four files;
    /// when none has them and `allowDownload`, downloads them into the cache first.
    public static func load(_ name: String, searchPath: [String]? = nil, allowDownload: Bool = true,
                            mirrors: [String]? = nil) throws -> Dataset {
        guard names.contains(name) else {
            throw DatasetError("unknown dataset '\(name)'; known: \(names.joined(separator: ", ")); or load a folder of IDX files with: load idx DIR")
        }
        let folders = (searchPath ?? self.searchPath()).map { "\($0)/\(name)" }
        if let found = folders.first(where: hasAllFiles) {
            return try load(idxDirectory: found, name: name)
        }
        let cache = searchPath?.last ?? cacheDirectory()
        guard allowDownload else {
            throw DatasetError("\(name) not found; looked in \(folders.joined(separator: ", ")). Put the four IDX files in one of them or set OLLIE_DATA_PATH")
        }
        let target = "\(cache)/\(name)"
        do {
            try Download.fetch(name, into: target, mirrors: mirrors ?? Download.mirrors[name] ?? [])
        } catch {
            let hint = name == "fashion-mnist" ? " or apt-get install dataset-fashion-mnist" : ""
            throw DatasetError("\(name) not found in \(folders.joined(separator: ", ")) and the download failed (\(error)); copy the four IDX files into one of those folders, set OLLIE_DATA_PATH\(hint)")
        }
        return try load(idxDirectory: target, name: name)
    }

    /// Reads the four standard IDX files (each raw or .gz) from a folder.
    public static func load(idxDirectory: String, name: String? = nil, classNames: [String]? = nil) throws -> Dataset {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: idxDirectory, isDirectory: &isFolder), isFolder.boolValue else {
            throw DatasetError("no folder \(idxDirectory); give a folder with train-images-idx3-ubyte(.gz) and the other three IDX files")
        }
        let datasetName = name ?? URL(fileURLWithPath: idxDirectory).lastPathComponent
        func path(_ base: String) throws -> String {
            for candidate in ["\(idxDirectory)/\(base)", "\(idxDirectory)/\(base).gz"]
            where FileManager.default.fileExists(atPath: candidate) { return candidate }
            throw DatasetError("\(idxDirectory) has no \(base) or \(base).gz; a dataset folder needs all four IDX files")
        }
        let classes = classNames ?? (datasetName == "fashion-mnist" ? fashionClasses : (0..<10).map(String.init))
        let f = fileNames
        let paths = try [f.trainImages, f.trainLabels, f.testImages, f.testLabels].map(path)
        // The two halves are independent files: read them side by side.
        let results = ResultPair()
        DispatchQueue.concurrentPerform(iterations: 2) { half in
            let r = Result { try IDX.readSplit(images: paths[2 * half], labels: paths[2 * half + 1], classCount: classes.count) }
            results.set(half, r)
        }
        let train = try results.get(0), test = try results.get(1)
        guard train.height == test.height, train.width == test.width else {
            throw DatasetError("\(idxDirectory): training images are \(train.height)×\(train.width) but test images \(test.height)×\(test.width)")
        }
        return Dataset(name: datasetName, train: train.split, test: test.split, height: train.height, width: train.width,
                       channels: 1, classNames: classes, source: idxDirectory)
    }

    static func hasAllFiles(_ folder: String) -> Bool {
        let f = fileNames
        return [f.trainImages, f.trainLabels, f.testImages, f.testLabels].allSatisfy { base in
            FileManager.default.fileExists(atPath: "\(folder)/\(base)") || FileManager.default.fileExists(atPath: "\(folder)/\(base).gz")
        }
    }
}

/// Two results written from two threads.
private final class ResultPair: @unchecked Sendable {
    private var values: [Result<(split: Split, height: Int, width: Int), Error>?] = [nil, nil]
    private let lock = NSLock()
    func set(_ i: Int, _ r: Result<(split: Split, height: Int, width: Int), Error>) { lock.withLock { values[i] = r } }
    func get(_ i: Int) throws -> (split: Split, height: Int, width: Int) { try lock.withLock { values[i]! }.get() }
}
