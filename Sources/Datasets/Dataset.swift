/// One half of a dataset: images as Float32 in [0, 1] and their labels.
public struct Split: Sendable {
    /// count × height × width × channels values, one image after another, converted once at load.
    public let images: [Float]
    /// count labels in 0..<classCount.
    public let labels: [Int32]
    public var count: Int { labels.count }

    public init(images: [Float], labels: [Int32]) {
        self.images = images
        self.labels = labels
    }
}

/// A labelled image dataset held in memory, ready to train on.
public struct Dataset: Sendable {
    /// "mnist", "fashion-mnist", or the folder name for `load idx DIR`.
    public let name: String
    public let train: Split
    public let test: Split
    public let height: Int, width: Int, channels: Int
    public let classNames: [String]
    public var classCount: Int { classNames.count }
    /// The folder the files were read from.
    public let source: String

    public init(name: String, train: Split, test: Split, height: Int, width: Int, channels: Int,
                classNames: [String], source: String) {
        self.name = name
        self.train = train
        self.test = test
        self.height = height
        self.width = width
        self.channels = channels
        self.classNames = classNames
        self.source = source
    }
}
