import Dispatch
import Files
import Foundation
import Tensor

/// What `load(imagesDirectory:)` found and did, for the user to check at a glance.
public struct ImageFolderReport: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Where the test images came from.
    public enum HeldOut: Sendable, Equatable, Codable {
        /// A folder of its own: DIR/test, DIR/val or DIR/valid.
        case folder(String)
        /// This fraction of each class, drawn with the seed; `isDefault` when no fraction was given.
        case fraction(Double, seed: UInt64, isDefault: Bool)
    }

    /// A file left out under `skipBad`, with the reason it could not be decoded.
    public struct SkippedFile: Sendable, Equatable, Codable {
        public let path: String
        public let reason: String
    }

    public let classNames: [String]
    /// Images per class, indexed like `classNames`.
    public let trainCountPerClass: [Int]
    public let testCountPerClass: [Int]
    public var trainCount: Int { trainCountPerClass.reduce(0, +) }
    public var testCount: Int { testCountPerClass.reduce(0, +) }
    public let heldOut: HeldOut
    public let height: Int, width: Int
    public let color: ImageColor
    /// Images whose own size differed from height × width and were resized.
    public let resizedCount: Int
    /// Hidden files, files that are neither PNG nor JPEG, and files outside the class folders.
    public let ignoredFileCount: Int
    /// Folders beside train that were not used (DIR/val when DIR/test is the held-out folder).
    public let unusedFolders: [String]
    public let skipped: [SkippedFile]
    /// The images as Float32 in memory, in MB (2²⁰ bytes).
    public let decodedMegabytes: Double
    /// Read from the decoded cache (nothing was decoded this time).
    public var readFromCache = false

    public var description: String {
        var lines = ["\(classNames.count) classes (\(Self.list(classNames))), \(trainCount) train + \(testCount) test images, "
            + "\(height)×\(width) \(color == .gray ? "gray" : "RGB"), \(String(format: "%.1f", decodedMegabytes)) MB"]
        switch heldOut {
        case let .folder(path):
            lines.append("test images from \(path)")
        case let .fraction(fraction, seed, isDefault):
            let percent = String(format: "%g", fraction * 100)
            lines.append("test images: \(percent)% of each class, drawn with seed \(seed)"
                + (isDefault ? " (no test folder, so the default \(percent)%)" : ""))
        }
        lines.append("per class (train/test): " + zip(classNames, zip(trainCountPerClass, testCountPerClass))
            .map { "\($0) \($1.0)/\($1.1)" }.joined(separator: ", "))
        if resizedCount > 0 { lines.append("resized \(resizedCount) images to \(height)×\(width)") }
        if ignoredFileCount > 0 {
            lines.append("ignored \(ignoredFileCount) \(ignoredFileCount == 1 ? "file" : "files") (hidden, not PNG or JPEG, or outside the class folders)")
        }
        lines += FolderReportText.closing(unused: unusedFolders, skipped: skipped, readFromCache: readFromCache)
        return lines.joined(separator: "\n")
    }

    static func list(_ names: [String]) -> String { FolderReportText.list(names) }
}

/// The lines image and video folder reports share.
enum FolderReportText {
    /// Class names, the first seven and "…" when there are more than eight.
    static func list(_ names: [String]) -> String {
        names.count <= 8 ? names.joined(separator: ", ") : names.prefix(7).joined(separator: ", ") + ", …"
    }

    /// What was not used, what was skipped and why, and whether the cache answered.
    static func closing(unused: [String], skipped: [ImageFolderReport.SkippedFile], readFromCache: Bool) -> [String] {
        var lines: [String] = []
        if !unused.isEmpty { lines.append("not used: \(unused.joined(separator: ", "))") }
        if !skipped.isEmpty {
            lines.append("skipped \(skipped.count) unreadable \(skipped.count == 1 ? "file" : "files"):")
            lines += skipped.map { "  \($0.path): \($0.reason)" }
        }
        if readFromCache { lines.append("decoded before: read from the cache (no file changed)") }
        return lines
    }
}

/// What can be wrong with a folder of images as a whole. Each case prints as one line naming the
/// folder or file and what to do.
public enum ImageFolderError: Error, CustomStringConvertible, Equatable {
    case notADirectory(String)
    /// A folder with no class subfolders to take labels from.
    case noClassFolders(String)
    /// DIR/test (or val, valid) without DIR/train.
    case heldOutWithoutTrain(directory: String, heldOut: String)
    /// A fraction was given but the folder has its own held-out images.
    case fractionWithHeldOutFolder(fraction: Double, folder: String)
    case fractionOutOfRange(Double)
    case sizeOutOfRange(height: Int, width: Int)
    /// A class folder holding no PNG or JPEG; `ignored` files were in it.
    case emptyClassFolder(String, ignored: Int)
    /// A test class folder with no training folder of the same name.
    case unknownTestClass(String, known: [String])
    /// Without a size, every image must have the first one's.
    case sizeMismatch(path: String, height: Int, width: Int, first: String, firstHeight: Int, firstWidth: Int)
    case tooMuchMemory(megabytes: Int, limitMegabytes: Int, suggestedSide: Int)
    /// Nothing left for one split (every class too small to hold any out, or every image skipped).
    case emptySplit(split: String, directory: String)
    /// An image that could not be decoded, when not skipping bad files.
    case badImage(ImageError)
    /// A class folder that is a link to the folder holding the classes, or to one above it.
    case classFolderHoldsTheClasses(String, resolved: String)
    /// Two class folders that are (links to) the same folder, or one inside the other: their
    /// files would be taken in under both labels.
    case classFoldersOverlap(String, String, resolved: String)

    /// The option words the REPL offers for a size and for skipping bad files.
    static let sizeHint = "`size HxW`", skipBadHint = "`skip-bad`"

    public var description: String {
        switch self {
        case let .notADirectory(path):
            return "\(path) is not a folder; give a folder of class folders (DIR/<class>/…) or DIR/train/<class>/… and DIR/test/<class>/…"
        case let .noClassFolders(path):
            return "\(path) has no class folders; put each class's images in a folder named after it (\(path)/<class>/…)"
        case let .heldOutWithoutTrain(directory, heldOut):
            return "\(directory) has \(heldOut)/ but no train/; put the training images in \(directory)/train/<class>/…"
        case let .fractionWithHeldOutFolder(fraction, folder):
            return "a test fraction of \(String(format: "%g", fraction)) was given but \(folder) already holds the test images; leave the fraction out to use that folder"
        case let .fractionOutOfRange(fraction):
            return "test fraction \(String(format: "%g", fraction)) is outside 0…1; give one such as 0.2 (a fifth of each class held out)"
        case let .sizeOutOfRange(height, width):
            return "size \(height)x\(width) is not usable; give each side as 1…\(ImageDecoding.maximumSide), e.g. `size 64x64`"
        case let .emptyClassFolder(path, ignored):
            let other = ignored == 0 ? "" : " (\(ignored) other \(ignored == 1 ? "file" : "files") ignored)"
            return "class folder \(path) holds no PNG or JPEG images\(other); add images or remove the folder"
        case let .unknownTestClass(path, known):
            return "test folder \(path) is not one of the training classes (\(known.joined(separator: ", "))); rename it or add a training folder of that name"
        case let .sizeMismatch(path, height, width, first, firstHeight, firstWidth):
            return "\(path) is \(height)×\(width) but \(first) is \(firstHeight)×\(firstWidth); images must share one size, "
                + "so give one to resize them all to, e.g. `size \(firstHeight)x\(firstWidth)`"
        case let .tooMuchMemory(megabytes, limit, side):
            let hint = side > 0 ? "give a smaller \(Self.sizeHint), e.g. `size \(side)x\(side)`" : "use fewer images"
            return "the decoded images would take \(megabytes) MB, more than half this machine's memory (\(limit) MB); \(hint)"
        case let .emptySplit(split, directory):
            return "no \(split) images are left from \(directory); give each class more images"
                + (split == "test" ? " or hold out a larger fraction" : "")
        case let .badImage(error):
            return "\(error), or add \(Self.skipBadHint) to load the other images"
        case let .classFolderHoldsTheClasses(path, resolved):
            return "class folder \(path) is a link to \(resolved), which holds the class folders themselves; remove the link or make it a folder of that class's files"
        case let .classFoldersOverlap(first, second, resolved):
            return "class folders \(first) and \(second) both reach \(resolved) (a link?), so its files would count as both classes; remove the link or give each class its own files"
        }
    }
}

extension DatasetCatalog {
    /// Reads a folder of PNG/JPEG images, one folder per class, the way torchvision's ImageFolder
    /// and Keras' image_dataset_from_directory do. Two layouts:
    ///   DIR/train/<class>/… and DIR/test/<class>/… (or val/, valid/) — the folders are the split;
    ///   DIR/<class>/… — `testFraction` of each class held out (0.2 when nil), drawn with `seed`.
    /// Classes are the sorted folder names. `size` resizes every image (else all must share one size);
    /// `color` nil means gray when every image is gray, else RGB; `crop` `.center` keeps each image's
    /// centre at the target's aspect before resizing. Hidden files and files that are
    /// neither PNG nor JPEG are ignored; a damaged image is an error unless `skipBad`.
    /// `cache`: where decoded folders are kept, so the same files with the same options load
    /// again without decoding (nil: no cache).
    public static func load(imagesDirectory: String, size: (height: Int, width: Int)? = nil, color: ImageColor? = nil,
                            crop: Crop = .none, testFraction: Double? = nil, seed: UInt64 = 0, skipBad: Bool = false,
                            cache: DecodedCache? = nil) throws -> (dataset: Dataset, report: ImageFolderReport) {
        try load(imagesDirectory: imagesDirectory, size: size, color: color, crop: crop, testFraction: testFraction, seed: seed,
                 skipBad: skipBad, memoryLimitBytes: ProcessInfo.processInfo.physicalMemory / 2, cache: cache)
    }

    /// `memoryLimitBytes` is half the machine's memory outside tests.
    static func load(imagesDirectory: String, size: (height: Int, width: Int)?, color: ImageColor?, crop: Crop = .none,
                     testFraction: Double?, seed: UInt64, skipBad: Bool,
                     memoryLimitBytes: UInt64, cache: DecodedCache? = nil) throws -> (dataset: Dataset, report: ImageFolderReport) {
        if let size, !(1...ImageDecoding.maximumSide).contains(size.height) || !(1...ImageDecoding.maximumSide).contains(size.width) {
            throw ImageFolderError.sizeOutOfRange(height: size.height, width: size.width)
        }
        if let testFraction, !(testFraction > 0 && testFraction < 1) {
            throw ImageFolderError.fractionOutOfRange(testFraction)
        }
        let directory = ImageFolderScan.trimmed(imagesDirectory)
        var scan = try ImageFolderScan(directory: directory, testFraction: testFraction)
        let options = "dir=\(directory) size=\(size.map { "\($0.height)x\($0.width)" } ?? "-") color=\(color?.rawValue ?? "-")\(crop == .none ? "" : " crop=\(crop.rawValue)") "
            + "test=\(testFraction.map { String($0) } ?? "-") seed=\(seed) skipBad=\(skipBad)"
        let key = cache.map { _ in DecodedCache.key(files: scan.files.map(\.path), options: options) }
        if let cache, let key, var (dataset, report) = cache.read(key: key, report: ImageFolderReport.self) {
            report.readFromCache = true
            dataset = Dataset(name: dataset.name, train: dataset.train, test: dataset.test, height: dataset.height,
                              width: dataset.width, channels: dataset.channels, classNames: dataset.classNames, source: imagesDirectory)
            return (dataset, report)
        }

        // 1. Headers of every file (on both cores): which are images, their sizes and colors.
        let probes = ImageFolderScan.probe(scan.files.map(\.path))
        var skipped: [ImageFolderReport.SkippedFile] = []
        var images: [ImageFolderScan.Image] = []
        for (file, probe) in zip(scan.files, probes) {
            switch probe {
            case .ignored:
                scan.ignoredCount += 1
                scan.folders[file.folder].ignored += 1
            case let .bad(error):
                scan.folders[file.folder].images += 1
                guard skipBad else { throw ImageFolderError.badImage(error) }
                skipped.append(.init(path: file.path, reason: Self.reason(error)))
            case let .image(header):
                scan.folders[file.folder].images += 1
                images.append(.init(path: file.path, label: file.label, isTest: file.isTest, header: header))
            }
        }
        if let empty = scan.folders.first(where: { $0.images == 0 }) {
            throw ImageFolderError.emptyClassFolder(empty.path, ignored: empty.ignored)
        }

        // 2. The split, the color, the size and the memory they need, all before decoding.
        let heldOut: ImageFolderReport.HeldOut
        if let folder = scan.heldOutFolder {
            heldOut = .folder(folder)
        } else {
            let fraction = testFraction ?? 0.2
            heldOut = .fraction(fraction, seed: seed, isDefault: testFraction == nil)
            images = ImageFolderScan.holdOut(images, fraction: fraction, seed: seed, classCount: scan.classNames.count)
        }
        let listed = images.filter { !$0.isTest }, test = images.filter(\.isTest)
        // Class folders have no order of their own: as listed, the training set would come one
        // class after another, and training in dataset order (the reference recipe's) would see
        // one class at a time. So its images take an order drawn once from the seed.
        var mixer = Random(seed: seed, stream: 0x6F_7264_6572)   // "order"
        let train = mixer.permutation(listed.count).map { listed[$0] }
        guard !train.isEmpty else { throw ImageFolderError.emptySplit(split: "training", directory: directory) }
        guard !test.isEmpty else { throw ImageFolderError.emptySplit(split: "test", directory: directory) }
        let chosenColor = color ?? (images.allSatisfy { $0.header.channels == 1 } ? .gray : .rgb)
        let first = listed[0]   // the first file in folder order: the size every other must have
        let target = size ?? (first.header.height, first.header.width)
        if size == nil, let other = (train + test).first(where: { $0.header.height != target.height || $0.header.width != target.width }) {
            throw ImageFolderError.sizeMismatch(path: other.path, height: other.header.height, width: other.header.width,
                                                first: first.path, firstHeight: target.height, firstWidth: target.width)
        }
        let imageValues = target.height * target.width * chosenColor.channels
        let bytesNeeded = UInt64(images.count) * UInt64(imageValues) * 4
        if bytesNeeded > memoryLimitBytes {
            let perSquarePixel = Double(images.count * chosenColor.channels * 4)
            // The largest square that would fit, on a multiple of 8 when that leaves something.
            var side = min(Int((Double(memoryLimitBytes) / perSquarePixel).squareRoot()), ImageDecoding.maximumSide)
            if side >= 16 { side -= side % 8 }
            throw ImageFolderError.tooMuchMemory(megabytes: Int((Double(bytesNeeded) / 1_048_576).rounded(.up)),
                                                 limitMegabytes: Int(memoryLimitBytes / 1_048_576), suggestedSide: max(0, side))
        }

        // 3. Decode on both cores into preallocated slots, so the order never depends on timing.
        let shape = ImageFolderScan.Shape(height: target.height, width: target.width, color: chosenColor, crop: crop)
        let trainSplit = try ImageFolderScan.decode(train, shape: shape, skipBad: skipBad, skipped: &skipped)
        let testSplit = try ImageFolderScan.decode(test, shape: shape, skipBad: skipBad, skipped: &skipped)
        guard trainSplit.count > 0 else { throw ImageFolderError.emptySplit(split: "training", directory: directory) }
        guard testSplit.count > 0 else { throw ImageFolderError.emptySplit(split: "test", directory: directory) }

        let classCount = scan.classNames.count
        func perClass(_ split: Split) -> [Int] {
            var counts = [Int](repeating: 0, count: classCount)
            for label in split.labels { counts[Int(label)] += 1 }
            return counts
        }
        let dataset = Dataset(name: folderName(directory), train: trainSplit, test: testSplit,
                              height: target.height, width: target.width, channels: chosenColor.channels,
                              classNames: scan.classNames, source: imagesDirectory)
        let report = ImageFolderReport(
            classNames: scan.classNames, trainCountPerClass: perClass(trainSplit), testCountPerClass: perClass(testSplit),
            heldOut: heldOut, height: target.height, width: target.width, color: chosenColor,
            resizedCount: images.filter { $0.header.height != target.height || $0.header.width != target.width }.count,
            ignoredFileCount: scan.ignoredCount, unusedFolders: scan.unusedFolders, skipped: skipped,
            decodedMegabytes: Double((trainSplit.images.count + testSplit.images.count) * 4) / 1_048_576)
        if let cache, let key { cache.write(key: key, options: options, dataset: dataset, report: report) }
        return (dataset, report)
    }

    /// The error's message without the path (the report names the file already).
    static func reason(_ error: ImageError) -> String {
        switch error {
        case let .unreadable(_, reason): return reason
        case .empty: return "empty (0 bytes)"
        case let .notAnImage(_, kind): return "not a PNG or JPEG file (\(kind))"
        case let .corrupt(_, format, reason): return "damaged \(format.rawValue) (\(reason))"
        case let .tooLarge(_, width, height): return "claims \(height)×\(width) pixels, over the limit"
        }
    }
}

/// The folder walk behind `load(imagesDirectory:)`: which files belong to which class and split.
struct ImageFolderScan {
    struct File {
        let path: String
        let label: Int32
        let isTest: Bool
        let folder: Int  // index into `folders`
    }

    struct Image {
        let path: String
        let label: Int32
        var isTest: Bool
        let header: ImageHeader
    }

    /// A class folder and what was found in it.
    struct Folder {
        let path: String
        var images = 0, ignored = 0
    }

    struct Shape {
        let height: Int, width: Int
        let color: ImageColor
        let crop: Crop
        var values: Int { height * width * color.channels }
    }

    enum Probe {
        case ignored
        case image(ImageHeader)
        case bad(ImageError)
    }

    var classNames: [String] = []
    var files: [File] = []
    var folders: [Folder] = []
    var heldOutFolder: String?
    var unusedFolders: [String] = []
    var ignoredCount = 0

    /// Folder names tried, in order, for the held-out images beside DIR/train.
    static let heldOutNames = ["test", "val", "valid"]

    /// `notClasses`: folder names at the class root that hold no class (e.g. a folder of split lists).
    init(directory: String, testFraction: Double?, notClasses: Set<String> = []) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder), isFolder.boolValue else {
            throw ImageFolderError.notADirectory(directory)
        }
        let top = try Self.listing(directory)
        ignoredCount += top.ignored
        let heldOutName = Self.heldOutNames.first { top.folders.contains($0) }
        var classRoot = directory
        if top.folders.contains("train") {
            classRoot = directory + "/train"
            ignoredCount += top.files
            if let heldOutName {
                let folder = directory + "/" + heldOutName
                if let testFraction {
                    throw ImageFolderError.fractionWithHeldOutFolder(fraction: testFraction, folder: folder)
                }
                heldOutFolder = folder
            }
            unusedFolders = top.folders.filter { $0 != "train" && directory + "/" + $0 != heldOutFolder }.map { directory + "/" + $0 }
        } else if let heldOutName {
            throw ImageFolderError.heldOutWithoutTrain(directory: directory, heldOut: heldOutName)
        }

        let trainClasses = classRoot == directory ? top : try Self.listing(classRoot)
        if classRoot != directory { ignoredCount += trainClasses.ignored }
        ignoredCount += classRoot == directory ? top.files : trainClasses.files
        guard trainClasses.folders.contains(where: { !notClasses.contains($0) }) else { throw ImageFolderError.noClassFolders(classRoot) }
        classNames = trainClasses.folders.filter { !notClasses.contains($0) }
        let realRoot = ResolvedPath.real(classRoot) ?? classRoot
        try Self.checkNoOverlap(classNames.map { classRoot + "/" + $0 }, root: realRoot)
        for (label, name) in classNames.enumerated() {
            try add(folder: classRoot + "/" + name, label: Int32(label), isTest: false, root: realRoot)
        }
        if let heldOutFolder {
            let testClasses = try Self.listing(heldOutFolder)
            try Self.checkNoOverlap(testClasses.folders.map { heldOutFolder + "/" + $0 }, root: ResolvedPath.real(heldOutFolder) ?? heldOutFolder)
            ignoredCount += testClasses.ignored + testClasses.files
            for name in testClasses.folders {
                guard let label = classNames.firstIndex(of: name) else {
                    throw ImageFolderError.unknownTestClass(heldOutFolder + "/" + name, known: classNames)
                }
                try add(folder: heldOutFolder + "/" + name, label: Int32(label), isTest: true,
                        root: ResolvedPath.real(heldOutFolder) ?? heldOutFolder)
            }
        }
    }

    /// No two class folders of one split reach the same files (symbolic links resolved). A
    /// folder that reaches `root` or above is left to `add`, which says that more exactly.
    static func checkNoOverlap(_ folders: [String], root: String) throws {
        let real = folders.map { ResolvedPath.real($0) ?? $0 }
        let holdsTheClasses = { (path: String) in path == root || root.hasPrefix(path + "/") }
        for i in real.indices where !holdsTheClasses(real[i]) {
            for j in real.indices where j > i && !holdsTheClasses(real[j]) {
                let (a, b) = (real[i], real[j])
                if a == b || a.hasPrefix(b + "/") || b.hasPrefix(a + "/") {
                    throw ImageFolderError.classFoldersOverlap(folders[i], folders[j], resolved: a.count >= b.count ? a : b)
                }
            }
        }
    }

    /// Every file under a class folder, subfolders included, in sorted order; hidden ones are only counted.
    /// Links to files are followed wherever they point. A subfolder is walked only when it really
    /// lies inside the class folder (symbolic links resolved): a link to `..`, to an ancestor, to
    /// another class or anywhere outside would take in images that are not this class's, so it
    /// is counted as ignored instead. A real path is walked once, so no loop can hang the walk.
    private mutating func add(folder: String, label: Int32, isTest: Bool, root: String) throws {
        let index = folders.count
        folders.append(Folder(path: folder))
        // The class folder may itself be a link (a class assembled from elsewhere): its target is the bound.
        let bound = ResolvedPath.real(folder) ?? folder
        if root == bound || root.hasPrefix(bound + "/") {
            throw ImageFolderError.classFolderHoldsTheClasses(folder, resolved: bound)
        }
        var visited: Set<String> = []
        func walk(_ path: String, real: String) throws {
            guard visited.insert(real).inserted else { return }
            let entries = try Self.listing(path)
            ignoredCount += entries.ignored
            folders[index].ignored += entries.ignored
            for name in entries.all {
                if entries.folders.contains(name) {
                    guard let inner = ResolvedPath.real(path + "/" + name), inner.hasPrefix(bound + "/") else {
                        ignoredCount += 1
                        folders[index].ignored += 1
                        continue
                    }
                    try walk(path + "/" + name, real: inner)
                } else {
                    files.append(File(path: path + "/" + name, label: label, isTest: isTest, folder: index))
                }
            }
        }
        try walk(folder, real: bound)
    }


    /// A folder's visible entries sorted by name (folders and files apart), and how many hidden ones it has.
    static func listing(_ path: String) throws -> (all: [String], folders: [String], files: Int, ignored: Int) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw ImageError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        let visible = names.filter { !$0.hasPrefix(".") }.sorted()
        let folders = visible.filter { name in
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: path + "/" + name, isDirectory: &isFolder) && isFolder.boolValue
        }
        return (visible, folders, visible.count - folders.count, names.count - visible.count)
    }

    /// "data/pets/" → "data/pets", keeping "/" itself.
    static func trimmed(_ path: String) -> String {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }

    /// File endings that promise an image: such a file that is not one is damaged, not ignored.
    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "jpe", "jfif"]

    /// The first bytes of a file hold its header unless large metadata (EXIF, ICC) comes first;
    /// then the whole file is read.
    static let headerBytes = 65536

    /// Reads every file's header on both cores; results in file order.
    static func probe(_ paths: [String]) -> [Probe] {
        let results = Slots<Probe>(count: paths.count, initial: .ignored)
        DispatchQueue.concurrentPerform(iterations: paths.count) { i in
            results[i] = probe(paths[i])
        }
        return results.values
    }

    static func probe(_ path: String) -> Probe {
        let promisesImage = imageExtensions.contains((path as NSString).pathExtension.lowercased())
        do {
            let (start, size) = try ImageDecoding.readFile(path, limit: headerBytes)
            guard ImageFormat(magic: start) != nil else {
                // Checked with the name too: a "cat.png" holding HTML is a broken download, not a stray file.
                return promisesImage ? .bad(start.isEmpty ? .empty(path: path) : .notAnImage(path: path, kind: ImageDecoding.describe(start)))
                    : .ignored
            }
            do {
                return .image(try ImageDecoding.header(start, path: path))
            } catch let error as ImageError where size > start.count {
                if case .tooLarge = error { return .bad(error) }
                return .image(try ImageDecoding.header(try ImageDecoding.readFile(path).bytes, path: path))
            }
        } catch let error as ImageError {
            return .bad(error)
        } catch {
            return .bad(.unreadable(path: path, reason: "\(error)"))
        }
    }

    /// Moves `fraction` of each class (rounded, at least one kept for training) to the test split,
    /// drawn per class from the seed's stream for that class: adding images to one class leaves
    /// the others' split alone. Images keep their file order within each split.
    static func holdOut(_ images: [Image], fraction: Double, seed: UInt64, classCount: Int) -> [Image] {
        var result = images
        for label in 0..<classCount {
            let members = images.indices.filter { images[$0].label == label }
            let testCount = min(Int((Double(members.count) * fraction).rounded()), max(0, members.count - 1))
            var random = Random(seed: seed, stream: UInt64(label))
            for k in random.permutation(members.count).prefix(testCount) { result[members[k]].isTest = true }
        }
        return result
    }

    /// Decodes, converts and resizes each image straight into its slot of one preallocated array.
    /// Images that fail are errors, or with `skipBad` are listed in `skipped` and left out.
    static func decode(_ images: [Image], shape: Shape, skipBad: Bool,
                       skipped: inout [ImageFolderReport.SkippedFile]) throws -> Split {
        let values = shape.values
        let failures = Slots<ImageError?>(count: images.count, initial: nil)
        var pixels = [Float](unsafeUninitializedCapacity: images.count * values) { buffer, count in
            let base = SharedPointer(buffer.baseAddress)
            DispatchQueue.concurrentPerform(iterations: images.count) { i in
                let slot = base.address! + i * values
                do {
                    let pixels = try DatasetCatalog.decodeImage(path: images[i].path, height: shape.height, width: shape.width,
                                                                color: shape.color, crop: shape.crop)
                    pixels.withUnsafeBufferPointer { slot.initialize(from: $0.baseAddress!, count: values) }
                } catch {
                    slot.initialize(repeating: 0, count: values)
                    failures[i] = error as? ImageError ?? .unreadable(path: images[i].path, reason: "\(error)")
                }
            }
            count = images.count * values
        }
        var labels = images.map(\.label)
        let failed = failures.values
        guard failed.contains(where: { $0 != nil }) else { return Split(images: pixels, labels: labels) }
        if !skipBad, let first = failed.compactMap({ $0 }).first { throw ImageFolderError.badImage(first) }
        // Close the gaps the skipped images leave, in place.
        var kept = 0
        pixels.withUnsafeMutableBufferPointer { buffer in
            for i in images.indices {
                if let error = failed[i] {
                    skipped.append(.init(path: images[i].path, reason: DatasetCatalog.reason(error)))
                    continue
                }
                if kept != i {
                    (buffer.baseAddress! + kept * values).update(from: buffer.baseAddress! + i * values, count: values)
                    labels[kept] = labels[i]
                }
                kept += 1
            }
        }
        pixels.removeLast((images.count - kept) * values)
        labels.removeLast(images.count - kept)
        return Split(images: pixels, labels: labels)
    }
}

/// One result per index, written from worker threads (each index by one thread) under a lock.
final class Slots<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Value]

    init(count: Int, initial: Value) { storage = Array(repeating: initial, count: count) }

    subscript(index: Int) -> Value {
        get { lock.withLock { storage[index] } }
        set { lock.withLock { storage[index] = newValue } }
    }

    var values: [Value] { lock.withLock { storage } }
}

/// A pointer handed to worker threads that write disjoint ranges of it.
struct SharedPointer: @unchecked Sendable {
    let address: UnsafeMutablePointer<Float>?
    init(_ address: UnsafeMutablePointer<Float>?) { self.address = address }
}
