import CVideoDecode
import Dispatch
import Foundation
import Tensor

/// What `load(videosDirectory:)` found and did, for the user to check at a glance.
public struct VideoFolderReport: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Where the test clips came from.
    public enum HeldOut: Sendable, Equatable, Codable {
        /// A folder of its own: DIR/test, DIR/val or DIR/valid.
        case folder(String)
        /// UCF101-style lists of relative paths: DIR/trainlist01.txt and DIR/testlist01.txt.
        case lists(train: String, test: String)
        /// This fraction of each class, drawn with the seed; `isDefault` when no fraction was given.
        case fraction(Double, seed: UInt64, isDefault: Bool)
    }

    public let classNames: [String]
    /// Clips per class, indexed like `classNames`.
    public let trainCountPerClass: [Int]
    public let testCountPerClass: [Int]
    public var trainCount: Int { trainCountPerClass.reduce(0, +) }
    public var testCount: Int { testCountPerClass.reduce(0, +) }
    public let heldOut: HeldOut
    /// Frames per clip (T), each height × width.
    public let frames: Int
    public let height: Int, width: Int
    public let color: ImageColor
    /// Clips holding fewer than `frames` frames: their last frame repeats to fill the clip.
    public let shortClipCount: Int
    /// Clips whose displayed size differed from height × width and were resized.
    public let resizedCount: Int
    /// Clips per codec ("h264": 12), as FFmpeg names them.
    public let codecCounts: [String: Int]
    /// Hidden files, files without a video extension, and files outside the class folders.
    public let ignoredFileCount: Int
    /// Clips in the class folders that neither split list names (left out).
    public let unlistedCount: Int
    /// Folders beside train that were not used, and split lists beside the pair used.
    public let unused: [String]
    public let skipped: [ImageFolderReport.SkippedFile]
    /// The clips as Float32 in memory, in MB (2²⁰ bytes).
    public let decodedMegabytes: Double
    /// Read from the decoded cache (nothing was decoded this time).
    public var readFromCache = false

    public var description: String {
        let clips = { (count: Int) in count == 1 ? "clip" : "clips" }
        var lines = ["\(classNames.count) classes (\(Self.list(classNames))), \(trainCount) train + \(testCount) test clips, "
            + "\(frames) frames of \(height)×\(width) \(color == .gray ? "gray" : "RGB"), \(String(format: "%.1f", decodedMegabytes)) MB"]
        switch heldOut {
        case let .folder(path):
            lines.append("test clips from \(path)")
        case let .lists(train, test):
            lines.append("split from the lists \(train) and \(test)")
        case let .fraction(fraction, seed, isDefault):
            let percent = String(format: "%g", fraction * 100)
            lines.append("test clips: \(percent)% of each class, drawn with seed \(seed)"
                + (isDefault ? " (no test folder or split lists, so the default \(percent)%)" : ""))
        }
        lines.append("per class (train/test): " + zip(classNames, zip(trainCountPerClass, testCountPerClass))
            .map { "\($0) \($1.0)/\($1.1)" }.joined(separator: ", "))
        if !codecCounts.isEmpty {
            lines.append("codecs: " + codecCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if shortClipCount > 0 {
            lines.append("\(shortClipCount) \(clips(shortClipCount)) shorter than \(frames) frames: the last frame repeats")
        }
        if resizedCount > 0 { lines.append("resized \(resizedCount) \(clips(resizedCount)) to \(height)×\(width)") }
        if ignoredFileCount > 0 {
            lines.append("ignored \(ignoredFileCount) \(ignoredFileCount == 1 ? "file" : "files") (hidden, not a video, or outside the class folders)")
        }
        if unlistedCount > 0 { lines.append("left out \(unlistedCount) \(clips(unlistedCount)) that no split list names") }
        lines += FolderReportText.closing(unused: unused, skipped: skipped, readFromCache: readFromCache)
        return lines.joined(separator: "\n")
    }

    static func list(_ names: [String]) -> String { FolderReportText.list(names) }
}

/// What can be wrong with a folder of clips. Each case prints as one line naming the folder or
/// file and what to do.
public enum VideoFolderError: Error, CustomStringConvertible, Equatable {
    case notADirectory(String)
    case noClassFolders(String)
    case heldOutWithoutTrain(directory: String, heldOut: String)
    /// A fraction was given but the folder has its own held-out clips (a folder or split lists).
    case fractionWithHeldOut(fraction: Double, source: String)
    case fractionOutOfRange(Double)
    case framesOutOfRange(Int)
    case sizeOutOfRange(height: Int, width: Int)
    case emptyClassFolder(String, ignored: Int)
    case unknownTestClass(String, known: [String])
    /// trainlist*.txt without testlist*.txt, or the other way round.
    case unpairedSplitList(String)
    /// A split list names a clip that is not there.
    case listedClipMissing(list: String, line: Int, path: String)
    /// Without a size, every clip must have the first one's (as displayed).
    case sizeMismatch(path: String, height: Int, width: Int, first: String, firstHeight: Int, firstWidth: Int)
    case tooMuchMemory(megabytes: Int, limitMegabytes: Int, suggestedSide: Int, suggestedFrames: Int)
    case emptySplit(split: String, directory: String)
    /// A clip that could not be read or decoded, when not skipping bad files.
    case badClip(path: String, reason: String)
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notADirectory(path):
            return "\(path) is not a folder; give a folder of class folders (DIR/<class>/clip.mp4) or DIR/train/<class>/… and DIR/test/<class>/…"
        case let .noClassFolders(path):
            return "\(path) has no class folders; put each class's clips in a folder named after it (\(path)/<class>/…)"
        case let .heldOutWithoutTrain(directory, heldOut):
            return "\(directory) has \(heldOut)/ but no train/; put the training clips in \(directory)/train/<class>/…"
        case let .fractionWithHeldOut(fraction, source):
            return "a test fraction of \(String(format: "%g", fraction)) was given but \(source) already says which clips are for testing; leave the fraction out to use it"
        case let .fractionOutOfRange(fraction):
            return "test fraction \(String(format: "%g", fraction)) is outside 0…1; give one such as 0.2 (a fifth of each class held out)"
        case let .framesOutOfRange(frames):
            return "\(frames) frames per clip is not usable; give 1…\(DatasetCatalog.maximumClipFrames), e.g. `frames 16`"
        case let .sizeOutOfRange(height, width):
            return "size \(height)x\(width) is not usable; give each side as 1…\(OLLIE_VIDEO_MAX_SIDE), e.g. `size 112x112`"
        case let .emptyClassFolder(path, ignored):
            let other = ignored == 0 ? "" : " (\(ignored) other \(ignored == 1 ? "file" : "files") ignored)"
            return "class folder \(path) holds no videos (\(DatasetCatalog.videoExtensionList))\(other); add clips or remove the folder"
        case let .unknownTestClass(path, known):
            return "test folder \(path) is not one of the training classes (\(known.joined(separator: ", "))); rename it or add a training folder of that name"
        case let .unpairedSplitList(path):
            return "\(path) has no partner list (trainlist01.txt goes with testlist01.txt); add it, or remove the list to split by fraction"
        case let .listedClipMissing(list, line, path):
            return "\(list) line \(line) names \(path), which is not in the class folders; fix the list, or add `skip-bad` to load the others"
        case let .sizeMismatch(path, height, width, first, firstHeight, firstWidth):
            return "\(path) is \(height)×\(width) but \(first) is \(firstHeight)×\(firstWidth); clips must share one size, "
                + "so give one to resize them all to, e.g. `size \(firstHeight)x\(firstWidth)`"
        case let .tooMuchMemory(megabytes, limit, side, frames):
            var hints: [String] = []
            if side > 0 { hints.append("a smaller `size` (e.g. `size \(side)x\(side)`)") }
            if frames > 0 { hints.append("fewer `frames` (e.g. `frames \(frames)`)") }
            return "the decoded clips would take \(megabytes) MB, more than half this machine's memory (\(limit) MB); give "
                + (hints.isEmpty ? "fewer clips" : hints.joined(separator: " or "))
        case let .emptySplit(split, directory):
            return "no \(split) clips are left from \(directory); give each class more clips"
                + (split == "test" ? " or hold out a larger fraction" : "")
        case let .badClip(path, reason):
            return "\(path): \(reason), or add `skip-bad` to load the other clips"
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason)"
        }
    }

    /// The folder walk's errors in words about clips.
    init(_ error: ImageFolderError) {
        switch error {
        case let .notADirectory(path): self = .notADirectory(path)
        case let .noClassFolders(path): self = .noClassFolders(path)
        case let .heldOutWithoutTrain(directory, heldOut): self = .heldOutWithoutTrain(directory: directory, heldOut: heldOut)
        case let .fractionWithHeldOutFolder(fraction, folder): self = .fractionWithHeldOut(fraction: fraction, source: folder)
        case let .unknownTestClass(path, known): self = .unknownTestClass(path, known: known)
        case let .classFolderHoldsTheClasses(path, _): self = .unreadable(path: path, reason: "\(error)")
        case let .classFoldersOverlap(path, _, _): self = .unreadable(path: path, reason: "\(error)")
        default: self = .unreadable(path: "", reason: "\(error)")
        }
    }
}

extension DatasetCatalog {
    /// Endings that mark a video file; every other file is ignored (and counted).
    static let videoExtensions: Set<String> = ["mp4", "mov", "mkv", "avi", "webm", "m4v", "mpg"]
    static var videoExtensionList: String { videoExtensions.sorted().map { "." + $0 }.joined(separator: " ") }
    static let maximumClipFrames = 1024

    /// Reads a folder of video clips, one folder per class, decoding them with FFmpeg's libraries.
    /// Three layouts:
    ///   DIR/train/<class>/… and DIR/test/<class>/… (or val/, valid/) — the folders are the split;
    ///   DIR/<class>/… with UCF101-style lists DIR/trainlist01.txt and DIR/testlist01.txt (or in
    ///   DIR/ucfTrainTestlist/) of paths like `class/clip.avi`, optionally followed by a label;
    ///   DIR/<class>/… — `testFraction` of each class held out (0.2 when nil), drawn with `seed`.
    /// Each clip becomes `frames` frames evenly spaced over its duration by timestamp (a shorter clip
    /// repeats its last frame), turned to its displayed orientation, resized to `size` (else all must
    /// share the first clip's size; `crop` `.center` keeps each frame's centre at that aspect
    /// first), `color` gray unless `.rgb`. A bad clip is an error unless `skipBad`.
    public static func load(videosDirectory: String, frames: Int = 16, size: (height: Int, width: Int)? = nil,
                            color: ImageColor? = nil, crop: Crop = .none, testFraction: Double? = nil, seed: UInt64 = 0,
                            skipBad: Bool = false, cache: DecodedCache? = nil) throws -> (dataset: Dataset, report: VideoFolderReport) {
        try load(videosDirectory: videosDirectory, frames: frames, size: size, color: color, crop: crop, testFraction: testFraction,
                 seed: seed, skipBad: skipBad, memoryLimitBytes: ProcessInfo.processInfo.physicalMemory / 2, cache: cache)
    }

    /// `memoryLimitBytes` is half the machine's memory outside tests.
    static func load(videosDirectory: String, frames: Int, size: (height: Int, width: Int)?, color: ImageColor?,
                     crop: Crop = .none, testFraction: Double?, seed: UInt64, skipBad: Bool, memoryLimitBytes: UInt64,
                     cache: DecodedCache? = nil) throws -> (dataset: Dataset, report: VideoFolderReport) {
        guard (1...maximumClipFrames).contains(frames) else { throw VideoFolderError.framesOutOfRange(frames) }
        let side = 1...Int(OLLIE_VIDEO_MAX_SIDE)
        if let size, !side.contains(size.height) || !side.contains(size.width) {
            throw VideoFolderError.sizeOutOfRange(height: size.height, width: size.width)
        }
        if let testFraction, !(testFraction > 0 && testFraction < 1) { throw VideoFolderError.fractionOutOfRange(testFraction) }
        let color = color ?? .gray
        let directory = ImageFolderScan.trimmed(videosDirectory)

        // 1. The folder walk (shared with image folders), then which files are clips.
        let listFolder = "ucfTrainTestlist"
        var scan: ImageFolderScan
        do {
            scan = try ImageFolderScan(directory: directory, testFraction: testFraction, notClasses: [listFolder])
        } catch let error as ImageFolderError {
            throw VideoFolderError(error)
        } catch let ImageError.unreadable(path, reason) {
            throw VideoFolderError.unreadable(path: path, reason: reason)
        }
        var clips: [ImageFolderScan.File] = []
        for file in scan.files {
            if videoExtensions.contains((file.path as NSString).pathExtension.lowercased()) {
                clips.append(file)
                scan.folders[file.folder].images += 1
            } else {
                scan.ignoredCount += 1
                scan.folders[file.folder].ignored += 1
            }
        }
        if let empty = scan.folders.first(where: { $0.images == 0 }) {
            throw VideoFolderError.emptyClassFolder(empty.path, ignored: empty.ignored)
        }

        // 2. The split: a held-out folder, split lists, or a fraction of each class.
        var skipped: [ImageFolderReport.SkippedFile] = []
        var unused = scan.unusedFolders
        var unlistedCount = 0
        let heldOut: VideoFolderReport.HeldOut
        var listFiles: [String] = []
        if let folder = scan.heldOutFolder {
            heldOut = .folder(folder)
        } else if let lists = try splitLists(directory: directory, subfolder: listFolder) {
            if let testFraction { throw VideoFolderError.fractionWithHeldOut(fraction: testFraction, source: lists.train) }
            heldOut = .lists(train: lists.train, test: lists.test)
            listFiles = [lists.train, lists.test]
            unused += lists.unused
            scan.ignoredCount -= lists.countedAsIgnored
            var isTest: [String: Bool] = [:]   // lowercased relative path → split
            var missing: [(list: String, line: Int, path: String)] = []
            let byPath = Set(clips.map { relative($0.path, to: directory).lowercased() })
            for (list, test) in [(lists.train, false), (lists.test, true)] {
                for (line, path) in try listedPaths(list) {
                    // Matched without case: UCF101's lists spell some folders differently (HandStandPushups).
                    let key = path.lowercased()
                    if byPath.contains(key) { isTest[key] = test } else { missing.append((list, line, path)) }
                }
            }
            if let first = missing.first, !skipBad {
                throw VideoFolderError.listedClipMissing(list: first.list, line: first.line, path: first.path)
            }
            skipped += missing.map { .init(path: directory + "/" + $0.path, reason: "listed in \($0.list) line \($0.line) but not found") }
            clips = clips.compactMap { file in
                guard let test = isTest[relative(file.path, to: directory).lowercased()] else {
                    unlistedCount += 1
                    return nil
                }
                return ImageFolderScan.File(path: file.path, label: file.label, isTest: test, folder: file.folder)
            }
        } else {
            let fraction = testFraction ?? 0.2
            heldOut = .fraction(fraction, seed: seed, isDefault: testFraction == nil)
        }

        let sizeWords = size.map { "\($0.height)x\($0.width)" } ?? "-"
        let options = "videos dir=\(directory) frames=\(frames) size=\(sizeWords) color=\(color.rawValue)\(crop == .none ? "" : " crop=\(crop.rawValue)") "
            + "test=\(testFraction.map { String($0) } ?? "-") seed=\(seed) skipBad=\(skipBad)"
        let key = cache.map { _ in DecodedCache.key(files: listFiles + scan.files.map(\.path), options: options) }
        if let cache, let key, var (dataset, report) = cache.read(key: key, report: VideoFolderReport.self) {
            report.readFromCache = true
            dataset = Dataset(name: dataset.name, train: dataset.train, test: dataset.test, height: dataset.height,
                              width: dataset.width, channels: dataset.channels, frames: dataset.frames,
                              classNames: dataset.classNames, source: videosDirectory)
            return (dataset, report)
        }

        // 3. Headers of every clip (on both cores): sizes, codecs, and absurd sizes refused.
        let probes = probeClips(clips.map(\.path))
        var kept: [(file: ImageFolderScan.File, info: ollie_clip_info)] = []
        for (file, probe) in zip(clips, probes) {
            switch probe {
            case let .success(info): kept.append((file, info))
            case let .failure(error):
                guard skipBad else { throw error }
                if case let .badClip(path, reason) = error { skipped.append(.init(path: path, reason: reason)) }
            }
        }
        var images = kept.map { ImageFolderScan.Image(path: $0.file.path, label: $0.file.label, isTest: $0.file.isTest,
                                                      header: ImageHeader(format: .png, width: Int($0.info.width),
                                                                          height: Int($0.info.height), channels: 1)) }
        if case let .fraction(fraction, _, _) = heldOut {
            images = ImageFolderScan.holdOut(images, fraction: fraction, seed: seed, classCount: scan.classNames.count)
        }
        let target: (height: Int, width: Int)
        if let size {
            target = size
        } else if let first = images.first {
            target = (first.header.height, first.header.width)
            if let other = images.first(where: { $0.header.height != target.height || $0.header.width != target.width }) {
                throw VideoFolderError.sizeMismatch(path: other.path, height: other.header.height, width: other.header.width,
                                                    first: first.path, firstHeight: target.height, firstWidth: target.width)
            }
        } else {
            throw VideoFolderError.emptySplit(split: "training", directory: directory)
        }
        // Class folders have no order of their own, so the training clips take one drawn from the seed.
        let listed = images.filter { !$0.isTest }, test = images.filter(\.isTest)
        var mixer = Random(seed: seed, stream: 0x6F_7264_6572)   // "order"
        let train = mixer.permutation(listed.count).map { listed[$0] }
        guard !train.isEmpty else { throw VideoFolderError.emptySplit(split: "training", directory: directory) }
        guard !test.isEmpty else { throw VideoFolderError.emptySplit(split: "test", directory: directory) }

        let perPixel = UInt64(images.count * frames * color.channels * 4)
        let bytesNeeded = perPixel * UInt64(target.height * target.width)
        if bytesNeeded > memoryLimitBytes {
            var side = min(Int((Double(memoryLimitBytes) / Double(perPixel)).squareRoot()), Int(OLLIE_VIDEO_MAX_SIDE))
            if side >= 16 { side -= side % 8 }
            let perFrame = UInt64(images.count * target.height * target.width * color.channels * 4)
            let fewerFrames = min(Int(memoryLimitBytes / max(perFrame, 1)), frames - 1)
            throw VideoFolderError.tooMuchMemory(megabytes: Int((Double(bytesNeeded) / 1_048_576).rounded(.up)),
                                                 limitMegabytes: Int(memoryLimitBytes / 1_048_576),
                                                 suggestedSide: max(0, side), suggestedFrames: max(0, fewerFrames))
        }

        // 4. Decode on both cores, one clip per task, into preallocated slots.
        let shape = (frames: frames, height: target.height, width: target.width, channels: color.channels)
        var shortClipCount = 0
        let trainSplit = try decodeClips(train, shape: shape, crop: crop, skipBad: skipBad, skipped: &skipped, shortClips: &shortClipCount)
        let testSplit = try decodeClips(test, shape: shape, crop: crop, skipBad: skipBad, skipped: &skipped, shortClips: &shortClipCount)
        guard trainSplit.count > 0 else { throw VideoFolderError.emptySplit(split: "training", directory: directory) }
        guard testSplit.count > 0 else { throw VideoFolderError.emptySplit(split: "test", directory: directory) }

        let classCount = scan.classNames.count
        func perClass(_ split: Split) -> [Int] {
            var counts = [Int](repeating: 0, count: classCount)
            for label in split.labels { counts[Int(label)] += 1 }
            return counts
        }
        let decodedPaths = Set(images.map(\.path)).subtracting(skipped.map(\.path))
        var codecCounts: [String: Int] = [:]
        for clip in kept where decodedPaths.contains(clip.file.path) {
            codecCounts[codecName(clip.info), default: 0] += 1
        }
        let dataset = Dataset(name: folderName(directory), train: trainSplit, test: testSplit, height: target.height,
                              width: target.width, channels: color.channels, frames: frames,
                              classNames: scan.classNames, source: videosDirectory)
        let report = VideoFolderReport(
            classNames: scan.classNames, trainCountPerClass: perClass(trainSplit), testCountPerClass: perClass(testSplit),
            heldOut: heldOut, frames: frames, height: target.height, width: target.width, color: color,
            shortClipCount: shortClipCount,
            resizedCount: images.filter { decodedPaths.contains($0.path) && ($0.header.height != target.height || $0.header.width != target.width) }.count,
            codecCounts: codecCounts, ignoredFileCount: scan.ignoredCount, unlistedCount: unlistedCount, unused: unused,
            skipped: skipped, decodedMegabytes: Double((trainSplit.images.count + testSplit.images.count) * 4) / 1_048_576)
        if let cache, let key { cache.write(key: key, options: options, dataset: dataset, report: report) }
        return (dataset, report)
    }

    private static func relative(_ path: String, to directory: String) -> String {
        path.hasPrefix(directory + "/") ? String(path.dropFirst(directory.count + 1)) : path
    }

    private static func codecName(_ info: ollie_clip_info) -> String {
        withUnsafeBytes(of: info.codec) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// The split lists to use: the first trainlist*.txt (sorted) and the testlist*.txt of the same
    /// number, in DIR or DIR/ucfTrainTestlist. nil when there are none.
    private static func splitLists(directory: String, subfolder: String) throws
        -> (train: String, test: String, unused: [String], countedAsIgnored: Int)? {
        for folder in [directory, directory + "/" + subfolder] {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { continue }
            func lists(_ prefix: String) -> [String] {
                names.filter { $0.lowercased().hasPrefix(prefix) && $0.lowercased().hasSuffix(".txt") }.sorted()
            }
            let trains = lists("trainlist"), tests = lists("testlist")
            if trains.isEmpty && tests.isEmpty { continue }
            guard let train = trains.first else { throw VideoFolderError.unpairedSplitList(folder + "/" + tests[0]) }
            let number = train.dropFirst("trainlist".count)
            guard let test = tests.first(where: { $0.dropFirst("testlist".count).lowercased() == number.lowercased() }) ?? tests.first else {
                throw VideoFolderError.unpairedSplitList(folder + "/" + train)
            }
            let unused = (trains + tests).filter { $0 != train && $0 != test }.map { folder + "/" + $0 }
            // The folder walk counted the lists in DIR as stray files; they are not.
            return (folder + "/" + train, folder + "/" + test, unused, folder == directory ? trains.count + tests.count : 0)
        }
        return nil
    }

    /// (line number, relative path) for each non-empty line: the path is the first word, an
    /// optional label number after it is not needed (labels come from the sorted folder names).
    private static func listedPaths(_ list: String) throws -> [(Int, String)] {
        let text: String
        do {
            text = try String(contentsOfFile: list, encoding: .utf8)
        } catch {
            throw VideoFolderError.unreadable(path: list, reason: (error as NSError).localizedDescription)
        }
        return text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated().compactMap { index, line in
            guard let word = line.split(whereSeparator: \.isWhitespace).first else { return nil }
            var path = String(word)
            while path.hasPrefix("./") { path.removeFirst(2) }
            return (index + 1, path)
        }
    }

    /// A clip's header: its displayed size, rotation and codec.
    static func probeClip(path: String) throws -> (height: Int, width: Int, rotation: Int, codec: String) {
        var info = ollie_clip_info()
        var error = [CChar](repeating: 0, count: 256)
        guard ollie_probe_clip(path, &info, &error, Int32(error.count)) == 1 else {
            throw VideoFolderError.badClip(path: path, reason: message(error))
        }
        return (Int(info.height), Int(info.width), Int(info.rotation), codecName(info))
    }

    /// A C error buffer's text, up to its terminating zero.
    private static func message(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Every clip's header on both cores; results in file order.
    private static func probeClips(_ paths: [String]) -> [Result<ollie_clip_info, VideoFolderError>] {
        let results = Slots<Result<ollie_clip_info, VideoFolderError>>(count: paths.count, initial: .failure(.badClip(path: "", reason: "")))
        DispatchQueue.concurrentPerform(iterations: paths.count) { i in
            let path = paths[i]
            var info = ollie_clip_info()
            var error = [CChar](repeating: 0, count: 256)
            var size = stat()
            if stat(path, &size) == 0, size.st_size == 0 {
                results[i] = .failure(.badClip(path: path, reason: "empty (0 bytes)"))
            } else if ollie_probe_clip(path, &info, &error, Int32(error.count)) == 1 {
                results[i] = .success(info)
            } else {
                results[i] = .failure(.badClip(path: path, reason: message(error)))
            }
        }
        return results.values
    }

    /// Decodes each clip straight into its slot of one preallocated array (frames × H × W × C values
    /// a clip). Clips that fail are errors, or with `skipBad` are listed in `skipped` and left out.
    private static func decodeClips(_ clips: [ImageFolderScan.Image], shape: (frames: Int, height: Int, width: Int, channels: Int),
                                    crop: Crop, skipBad: Bool, skipped: inout [ImageFolderReport.SkippedFile],
                                    shortClips: inout Int) throws -> Split {
        let values = shape.frames * shape.height * shape.width * shape.channels
        let failures = Slots<String?>(count: clips.count, initial: nil)
        let found = Slots<Int>(count: clips.count, initial: 0)
        var pixels = [Float](unsafeUninitializedCapacity: clips.count * values) { buffer, count in
            let base = SharedPointer(buffer.baseAddress)
            DispatchQueue.concurrentPerform(iterations: clips.count) { i in
                let slot = base.address! + i * values
                let result = decodeClip(path: clips[i].path, frames: shape.frames, height: shape.height, width: shape.width,
                                        channels: shape.channels, crop: crop, into: slot)
                if let failure = result.failure {
                    slot.initialize(repeating: 0, count: values)
                    failures[i] = failure
                }
                found[i] = result.framesFound
            }
            count = clips.count * values
        }
        var labels = clips.map(\.label)
        let failed = failures.values, framesFound = found.values
        shortClips += clips.indices.filter { failed[$0] == nil && framesFound[$0] < shape.frames }.count
        guard failed.contains(where: { $0 != nil }) else { return Split(images: pixels, labels: labels) }
        if !skipBad, let first = failed.indices.first(where: { failed[$0] != nil }) {
            throw VideoFolderError.badClip(path: clips[first].path, reason: failed[first]!)
        }
        // Close the gaps the skipped clips leave, in place.
        var kept = 0
        pixels.withUnsafeMutableBufferPointer { buffer in
            for i in clips.indices {
                if let reason = failed[i] {
                    skipped.append(.init(path: clips[i].path, reason: reason))
                    continue
                }
                if kept != i {
                    (buffer.baseAddress! + kept * values).update(from: buffer.baseAddress! + i * values, count: values)
                    labels[kept] = labels[i]
                }
                kept += 1
            }
        }
        pixels.removeLast((clips.count - kept) * values)
        labels.removeLast(clips.count - kept)
        return Split(images: pixels, labels: labels)
    }
}
