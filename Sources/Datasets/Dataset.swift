/// One half of a dataset: samples as Float32 in [0, 1] and their labels.
public struct Split: Sendable {
    /// count × (frames ×) height × width × channels values, one sample after another, converted
    /// once at load.
    public let images: [Float]
    /// count labels in 0..<classCount.
    public let labels: [Int32]
    public var count: Int { labels.count }

    public init(images: [Float], labels: [Int32]) {
        self.images = images
        self.labels = labels
    }
}

/// A labelled dataset of images (or clips: `frames` images each) held in memory, ready to train on.
public struct Dataset: Sendable {
    /// "mnist", "fashion-mnist", or the folder name for `load idx DIR`.
    public let name: String
    public let train: Split
    public let test: Split
    public let height: Int, width: Int, channels: Int
    /// Frames per sample: 1 for images; T for clips, whose samples are [C, T, H, W] to a model.
    public let frames: Int
    public let classNames: [String]
    public var classCount: Int { classNames.count }
    /// The folder the files were read from.
    public let source: String
    /// The normalisation the values carry (`load … normalize`), nil for pixels in [0, 1]:
    /// augmentation changes pixels, not normalised values.
    public internal(set) var normalization: Normalization?

    public init(name: String, train: Split, test: Split, height: Int, width: Int, channels: Int, frames: Int = 1,
                classNames: [String], source: String) {
        self.frames = frames
        self.name = name
        self.train = train
        self.test = test
        self.height = height
        self.width = width
        self.channels = channels
        self.classNames = classNames
        self.source = source
    }

    /// One sample's shape as a model takes it: [C, H, W] for images, [C, T, H, W] for clips.
    public var sampleShape: [Int] { [channels] + (frames > 1 ? [frames] : []) + [height, width] }

    /// Values per sample in `Split.images`.
    public var valuesPerSample: Int { channels * frames * height * width }
}
