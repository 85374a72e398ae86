import Tensor

/// Inverted dropout: in training each element is kept with probability 1 − p and scaled by
/// 1/(1 − p), else zeroed; not training it is the identity. Any shape.
///
/// Shapes: x [any] → y [same]. The mask is a pure function of (seed, step, worker, element
/// index), a counter-based hash set by `prepareStep`: no generator state, the same bits on a
/// rerun or a resumed run, and two forwards at the same step see the same mask.
/// Cache: `mask` [same as x]: 0 or 1/(1 − p) per element, what backward multiplies dy by
/// (all ones after a forward that was not training).
public final class Dropout: Layer {
    public let probability: Float
    private let output = Tensor([0])
    private let mask = Tensor([0])
    private let inputGradient = Tensor([0])
    private var streamKey: UInt64 = Dropout.key(seed: 0, step: 0, worker: 0)

    public init(probability: Float) {
        precondition(probability >= 0 && probability < 1, "Dropout needs a probability in [0, 1), got \(probability)")
        self.probability = probability
    }

    public func replica() -> Layer { Dropout(probability: probability) }
    public var parameters: [Parameter] { [] }
    public var description: String { "Dropout(\(probability))" }
    public func outputShape(for input: [Int]) throws -> [Int] { input }

    public func prepareStep(seed: UInt64, step: Int, worker: Int) {
        streamKey = Dropout.key(seed: seed, step: step, worker: worker)
    }

    /// SplitMix64's finalizer: a bijection whose output bits each depend on every input bit.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// One step's stream on one worker, mixed in stages so nearby steps and workers do not collide.
    static func key(seed: UInt64, step: Int, worker: Int) -> UInt64 {
        let w = mix(UInt64(truncatingIfNeeded: worker) &+ 0xD1B5_4A32_D192_ED03)
        let s = mix((UInt64(truncatingIfNeeded: step) &* 0x9E37_79B9_7F4A_7C15) ^ w)
        return mix(seed ^ s)
    }

    /// Whether element `index` is kept: its hash as a uniform in [0, 1) (24 bits) is ≥ p.
    @inline(__always)
    static func keeps(_ index: Int, key: UInt64, probability: Float) -> Bool {
        let h = mix(key &+ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15)
        return Float(h >> 40) * (1.0 / 16_777_216.0) >= probability
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        output.resize(x.shape)
        mask.resize(x.shape)
        let scale = 1 / (1 - probability), key = streamKey, p = probability
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                mask.data.withUnsafeMutableBufferPointer { mp in
                    guard training && p > 0 else {
                        _ = yp.update(fromContentsOf: xp)
                        mp.update(repeating: 1)
                        return
                    }
                    for i in 0..<xp.count {
                        let m: Float = Dropout.keeps(i, key: key, probability: p) ? scale : 0
                        mp[i] = m
                        yp[i] = xp[i] * m
                    }
                }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        multiplyElementwise(dout, by: mask, into: inputGradient)
    }
}

// MARK: - In a spec

/// `dropout P`: zeroes each value with probability P while training (scaling the rest by
/// 1/(1−P)); nothing at evaluation. Its draws come from the session's seed and the step.
public struct DropoutSpec: LayerSpec, Equatable {
    public static let keyword = "dropout"
    public static let grammar = "dropout P   0 ≤ P < 1, training only"

    var probability: Float

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.count == 1, let p = Float(arguments[0]), p.isFinite, p >= 0, p < 1 else {
            throw SpecError("needs a probability from 0 up to (not including) 1, e.g. dropout 0.5")
        }
        probability = p
    }

    public var text: String {
        let shown = String(format: "%g", Double(probability))
        return "\(DropoutSpec.keyword) \(Float(shown) == probability ? shown : String(probability))"
    }

    public func outputShape(for input: [Int]) throws -> [Int] { input }

    /// Elementwise: a sequence stays a sequence.
    public func output(for input: SampleShape) throws -> SampleShape { input }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        Dropout(probability: probability)
    }
}
