import Tensor

/// Activations with channels and any number of spatial dimensions to feature rows, in
/// PyTorch's flatten order (c, d1, …, dk) per sample.
///
/// Shapes: x [C, N, D1…Dk] (k ≥ 1) → y [N, C·∏D]; an input that is already [N, F] passes through.
public final class Flatten: Layer {
    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var inputShape: [Int] = []

    public init() {}
    public func replica() -> Layer { Flatten() }
    public var parameters: [Parameter] { [] }
    public var description: String { "flatten" }
    public func outputShape(for input: [Int]) throws -> [Int] { [input.reduce(1, *)] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = x.shape
        guard x.shape.count >= 3 else { return x }
        let (c, n) = (x.shape[0], x.shape[1]), volume = x.count / max(1, c * n)
        output.resize([n, c * volume])
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                for ch in 0..<c {
                    for b in 0..<n {
                        (yp.baseAddress! + (b * c + ch) * volume).update(from: xp.baseAddress! + (ch * n + b) * volume, count: volume)
                    }
                }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        guard inputShape.count >= 3 else { return dout }
        let (c, n) = (inputShape[0], inputShape[1]), volume = inputShape.dropFirst(2).reduce(1, *)
        inputGradient.resize(inputShape)
        dout.data.withUnsafeBufferPointer { dyp in
            inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                for ch in 0..<c {
                    for b in 0..<n {
                        (dxp.baseAddress! + (ch * n + b) * volume).update(from: dyp.baseAddress! + (b * c + ch) * volume, count: volume)
                    }
                }
            }
        }
        return inputGradient
    }
}

// MARK: - In a spec

/// `flatten`: every sample to one row of features, in PyTorch's order (implied before the
/// first `dense`).
public struct FlattenSpec: LayerSpec, Equatable {
    public static let keyword = "flatten"
    public static let grammar = "flatten   to flat features (implied before dense)"

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.isEmpty else { throw SpecError("takes no arguments") }
    }

    public init() {}

    public var text: String { FlattenSpec.keyword }

    public func outputShape(for input: [Int]) throws -> [Int] { [input.reduce(1, *)] }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer { Flatten() }
}
