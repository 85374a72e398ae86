import Datasets
import NN
import Tensor

/// The outputs of a frozen, deterministic prefix of the model (top-level layers [0, layers):
/// no trainable parameter, no dropout, batchnorm on its running statistics) for every sample of
/// the splits training reads, computed once in inference mode, so an epoch runs only the layers
/// after it. Valid while its key holds: the same frozen modules, the same prefix weights, the
/// same splits (what `Trainer.featureCacheKey` computes).
///
/// Storage: one sample after another, each as its batch slice would hold it: [C, D…] for a
/// channel-major activation (batches [C, N, D…]), else the sample's values in order (batches
/// [N, F] or [N, T, F]).
final class FeatureCache: @unchecked Sendable {
    struct Key: Equatable {
        var frozen: Set<Int>
        var layers: Int
        /// A hash of the bits of every parameter and buffer of the prefix.
        var weights: UInt64
    }

    let key: Key
    /// Top-level modules the prefix computes.
    let modules: Range<Int>
    /// One sample's output of the prefix.
    let sampleShape: [Int]
    let channelMajor: Bool
    var valuesPerSample: Int { sampleShape.reduce(1, *) }
    private(set) var entries: [(split: Split, features: [Float])] = []

    init(key: Key, modules: Range<Int>, sampleShape: [Int], channelMajor: Bool) {
        self.key = key
        self.modules = modules
        self.sampleShape = sampleShape
        self.channelMajor = channelMajor
    }

    var bytes: Int { entries.reduce(0) { $0 + $1.features.count * MemoryLayout<Float>.size } }
    var sampleCount: Int { entries.reduce(0) { $0 + $1.split.count } }

    /// The features of `split` (the very split object's data), if cached.
    func features(for split: Split) -> [Float]? {
        entries.first { $0.split.isSameData(as: split) }?.features
    }

    func add(_ split: Split, features: [Float]) { entries.append((split, features)) }

    /// Copies batch slice `output` ([C, n, D…] or [n, …]) into samples `first..<first+n` of `features`.
    func store(_ output: Tensor, into features: UnsafeMutableBufferPointer<Float>, first: Int) {
        let per = valuesPerSample
        guard output.count > 0 else { return }
        output.data.withUnsafeBufferPointer { out in
            if !channelMajor {
                (features.baseAddress! + first * per).update(from: out.baseAddress!, count: out.count)
                return
            }
            let (channels, n) = (output.shape[0], output.shape[1])
            let plane = per / channels
            for c in 0..<channels {
                for i in 0..<n {
                    (features.baseAddress! + (first + i) * per + c * plane)
                        .update(from: out.baseAddress! + (c * n + i) * plane, count: plane)
                }
            }
        }
    }

    /// Loads samples `indices` of `features` into `input` as a batch slice.
    func load<S: Collection>(_ features: [Float], indices: S, into input: Tensor) where S.Element == Int {
        let n = indices.count, per = valuesPerSample
        input.resize(channelMajor ? [sampleShape[0], n] + sampleShape.dropFirst() : [n] + sampleShape)
        guard n > 0 else { return }
        features.withUnsafeBufferPointer { source in
            input.data.withUnsafeMutableBufferPointer { x in
                let plane = channelMajor ? per / sampleShape[0] : per
                let channels = channelMajor ? sampleShape[0] : 1
                for (i, index) in indices.enumerated() {
                    for c in 0..<channels {
                        (x.baseAddress! + (c * n + i) * plane).update(from: source.baseAddress! + index * per + c * plane, count: plane)
                    }
                }
            }
        }
    }
}

/// What building a feature cache did, for the line `train` says.
public struct FeatureCacheReport: Sendable, Equatable {
    /// The top-level modules whose outputs were cached.
    public var modules: Range<Int>
    public var samples: Int
    public var bytes: Int
    public var seconds: Double
    /// Not built: it would take `bytes`, more than this machine allows; the epochs run every layer.
    public var tooLarge: Bool
}

extension Split {
    /// The same loaded values and labels (shared buffers), not merely equal ones.
    func isSameData(as other: Split) -> Bool {
        func same<T>(_ a: [T], _ b: [T]) -> Bool {
            a.count == b.count && a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { x.baseAddress == $0.baseAddress } }
        }
        return same(images, other.images) && same(labels, other.labels)
    }
}

/// FNV-1a over the bits of `parameters`' values: changes when any weight does (a `restore`).
func weightsHash(_ parameters: [Parameter]) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for p in parameters {
        p.value.data.withUnsafeBufferPointer { values in
            for v in values { hash = (hash ^ UInt64(v.bitPattern)) &* 0x0000_0100_0000_01B3 }
        }
    }
    return hash
}
