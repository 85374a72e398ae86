/// Everything that can go wrong finding, fetching or reading a dataset. Each case prints as one
/// line naming the file or folder and what the user can do about it.
public enum DatasetError: Error, CustomStringConvertible, Equatable {
    /// `load NAME` with a name the catalog does not know.
    case unknownDataset(String, known: [String])
    /// Not on the search path and downloading was not allowed.
    case notFound(String, searched: [String])
    /// Not on the search path and every mirror failed; `reasons` has one entry per failed attempt.
    case downloadFailed(String, searched: [String], reasons: [String])
    /// The download folder could not be created or written.
    case cacheNotWritable(path: String, reason: String)
    case notADirectory(String)
    case missingFile(directory: String, file: String)
    case unreadable(path: String, reason: String)
    /// The first four bytes are not the IDX magic number this file should have.
    case badMagic(path: String, found: UInt32, expected: UInt32)
    /// A header that parses but cannot describe real data (absurd sizes, wrong element type).
    case badHeader(path: String, reason: String)
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    case trailingBytes(path: String, expectedBytes: Int, actualBytes: Int)
    case corruptGzip(path: String, reason: String)
    case countMismatch(images: String, imageCount: Int, labels: String, labelCount: Int)
    case labelOutOfRange(path: String, label: Int, index: Int, classCount: Int)
    /// Training and test images of different sizes cannot feed one model.
    case shapeMismatch(train: String, trainShape: [Int], test: String, testShape: [Int])
    /// `normalize` words that are neither `imagenet` nor MEAN/STD.
    case badNormalization(String)
    case normalizationChannels(String, channels: Int)

    public var description: String {
        switch self {
        case let .unknownDataset(name, known):
            return "unknown dataset '\(name)'; known: \(known.joined(separator: ", ")); or read a folder of IDX files with `load idx DIR`"
        case let .notFound(name, searched):
            return "\(name) not found; looked in \(searched.joined(separator: ", ")). \(Self.howToGet(name))"
        case let .downloadFailed(name, searched, reasons):
            return "\(name) not found in \(searched.joined(separator: ", ")) and the download failed (\(reasons.joined(separator: "; "))). \(Self.howToGet(name))"
        case let .cacheNotWritable(path, reason):
            return "cannot write the download folder \(path) (\(reason)); set XDG_CACHE_HOME to a writable folder, or put the files on OLLIE_DATA_PATH"
        case let .notADirectory(path):
            return "\(path) is not a folder; give a folder holding \(IDXFiles.all.joined(separator: ", ")) (each may end in .gz)"
        case let .missingFile(directory, file):
            return "\(directory) has no \(file) or \(file).gz; a dataset folder needs all four IDX files (\(IDXFiles.all.joined(separator: ", ")))"
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason); check the path and its permissions"
        case let .badMagic(path, found, expected):
            return "\(path) starts with 0x\(Self.hex(found)), but an IDX \(expected == IDX.labelMagic ? "label" : "image") file starts with 0x\(Self.hex(expected)); is it the right file?"
        case let .badHeader(path, reason):
            return "\(path) has an unusable IDX header (\(reason)); fetch the file again"
        case let .truncated(path, expected, actual):
            return "\(path) is truncated: its header promises \(expected) bytes of data but it holds \(actual); fetch the file again"
        case let .trailingBytes(path, expected, actual):
            return "\(path) holds \(actual) bytes of data where its header promises \(expected); the file is damaged, fetch it again"
        case let .corruptGzip(path, reason):
            return "\(path) is not a valid gzip file (\(reason)); delete it and fetch it again"
        case let .countMismatch(images, imageCount, labels, labelCount):
            return "\(images) has \(imageCount) images but \(labels) has \(labelCount) labels; the two files do not belong together, fetch a matching pair"
        case let .labelOutOfRange(path, label, index, classCount):
            return "\(path): label \(label) at position \(index) is outside 0…\(classCount - 1) (\(classCount) classes); give the right class names or check the file"
        case let .shapeMismatch(train, trainShape, test, testShape):
            return "\(train) holds \(Self.shape(trainShape)) images but \(test) holds \(Self.shape(testShape)); training and test images must be the same size"
        case let .badNormalization(word):
            return "normalize needs imagenet or MEAN/STD with one number or three (per channel) each, std above 0, e.g. normalize 0.5/0.25 (got '\(word)')"
        case let .normalizationChannels(words, channels):
            return "normalize \(words) is for 3 channels but the data has \(channels); give one mean and std (normalize 0.5/0.25) or load it rgb"
        }
    }

    /// The last sentence of a not-found message: where the files can come from.
    private static func howToGet(_ name: String) -> String {
        var ways = "Put the four IDX files in <dir>/\(name)/ and set OLLIE_DATA_PATH=<dir>"
        if let package = KnownDataset.named(name)?.debianPackage { ways += ", or `apt-get install \(package)`" }
        return ways + ", or load a folder with `load idx DIR`"
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    private static func shape(_ sizes: [Int]) -> String { sizes.map(String.init).joined(separator: "×") }
}
