/// Per-channel standardisation of a model's inputs, x ↦ (x − mean) / std, as torchvision's
/// `transforms.Normalize`: what a network trained on normalised inputs (ImageNet's backbones)
/// expects. Written `imagenet` or `MEAN/STD`, each one number or one per channel
/// (`0.5/0.25`, `0.485,0.456,0.406/0.229,0.224,0.225`).
public struct Normalization: Equatable, Sendable, CustomStringConvertible {
    public let mean: [Float]
    public let std: [Float]

    /// torchvision's ImageNet statistics (RGB, for pixels in [0, 1]).
    public static let imagenet = Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    public init(mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }

    /// Reads `imagenet` or `MEAN/STD`; the error says what to write.
    public init(parsing word: String) throws {
        if word.lowercased() == "imagenet" {
            self = .imagenet
            return
        }
        let halves = word.split(separator: "/", omittingEmptySubsequences: false)
        func numbers(_ text: Substring) -> [Float]? {
            let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Float($0) }
            return values.allSatisfy({ $0 != nil && $0!.isFinite }) ? values.map { $0! } : nil
        }
        guard halves.count == 2, let mean = numbers(halves[0]), let std = numbers(halves[1]), mean.count == std.count,
              [1, 3].contains(mean.count), std.allSatisfy({ $0 > 0 && (1 / $0).isFinite }) else {
            throw DatasetError.badNormalization(word)
        }
        self.init(mean: mean, std: std)
    }

    /// The words that give it back: `imagenet`, or `MEAN/STD`.
    public var description: String {
        if self == .imagenet { return "imagenet" }
        func list(_ values: [Float]) -> String { values.map { "\($0)" }.joined(separator: ",") }
        return list(mean) + "/" + list(std)
    }

    /// Whether it fits samples of `channels` channels (one value for all, or one per channel).
    public func fits(channels: Int) -> Bool { mean.count == 1 || mean.count == channels }

    /// Normalises values laid out as `Split.images` is (channels innermost).
    public func apply(to values: [Float], channels: Int) -> [Float] {
        precondition(fits(channels: channels), "normalization for \(mean.count) channels on \(channels)")
        let scale = std.map { 1 / $0 }
        var out = values
        let perChannel = mean.count == 1
        for i in out.indices {
            let c = perChannel ? 0 : i % channels
            out[i] = (out[i] - mean[c]) * scale[c]
        }
        return out
    }

    /// The pixels back in [0, 1], for drawing a normalised sample.
    public func undo(_ values: [Float], channels: Int) -> [Float] {
        let perChannel = mean.count == 1
        return values.indices.map { i in
            let c = perChannel ? 0 : i % channels
            return values[i] * std[c] + mean[c]
        }
    }
}

extension Dataset {
    /// The same data with both splits normalised; throws when the channel counts disagree.
    public func normalized(by normalization: Normalization) throws -> Dataset {
        guard normalization.fits(channels: channels) else {
            throw DatasetError.normalizationChannels(normalization.description, channels: channels)
        }
        func split(_ s: Split) -> Split { Split(images: normalization.apply(to: s.images, channels: channels), labels: s.labels) }
        var normalized = Dataset(name: name, train: split(train), test: split(test), height: height, width: width, channels: channels,
                                 frames: frames, classNames: classNames, source: source)
        normalized.normalization = normalization
        return normalized
    }
}
