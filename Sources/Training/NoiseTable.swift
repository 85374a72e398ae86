import Tensor

/// Gaussian noise for training inputs, fast enough for the hot loop.
///
/// Drawing 47 million normals an epoch with Box–Muller costs ~0.5 s, a quarter of the epoch
/// budget. Instead one table of 2²⁰ standard normals is drawn once from the seed, and each
/// image of each step reads a window of it at an offset hashed from (seed, step, image index).
/// The offsets are independent of the thread count, so the same seed gives the same noise
/// whether one or two workers train.
public struct NoiseTable: Sendable {
    public static let size = 1 << 20
    let values: [Float]
    let seed: UInt64

    public init(seed: UInt64) {
        var random = Random(seed: seed, stream: 0x6E6F_6973_65)   // "noise"
        var values = [Float](repeating: 0, count: Self.size)
        for i in 0..<Self.size { values[i] = random.normal() }
        self.values = values
        self.seed = seed
    }

    /// Adds σ·N(0,1) noise to `count` values of one image at `destination`.
    func addNoise(to destination: UnsafeMutablePointer<Float>, count: Int, sigma: Float,
                  step: Int, image: Int) {
        var h = seed &+ UInt64(truncatingIfNeeded: step) &* 0x9E37_79B9_7F4A_7C15
        h ^= UInt64(truncatingIfNeeded: image) &* 0xC2B2_AE3D_27D4_EB4F
        h = (h ^ (h >> 31)) &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 29
        let offset = Int(h % UInt64(Self.size - count))
        values.withUnsafeBufferPointer { table in
            let source = table.baseAddress! + offset
            for i in 0..<count { destination[i] += sigma * source[i] }
        }
    }
}
