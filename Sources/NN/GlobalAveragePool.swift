import Tensor

/// The mean over all spatial positions of each channel of each sample, any spatial rank
/// (PyTorch's AdaptiveAvgPool to size 1; Flux's GlobalMeanPool). The rank is kept, so a
/// Flatten after it gives [N, C].
///
/// Shapes: x [C, N, D1…Dk] → y [C, N, 1, …, 1] (k ones); per sample [C, D1…Dk] → [C, 1, …, 1].
/// Backward: dx = dy / ∏D at every position of the plane. Cache: the input shape only.
public final class GlobalAveragePool: Layer {
    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var inputShape: [Int] = []
    private var outputShape: [Int] = []

    public init() {}
    public func replica() -> Layer { GlobalAveragePool() }
    public var parameters: [Parameter] { [] }
    public var description: String { "GlobalMeanPool()" }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count >= 2 else {
            throw ModelError("\(description) needs C×D… inputs with at least one spatial dimension, got \(shapeText(input)) (flat features have nothing to pool)")
        }
        return [input[0]] + Array(repeating: 1, count: input.count - 1)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.shape.count >= 3, "\(description) got input \(x.shape)")
        if x.shape != inputShape {
            inputShape = x.shape
            outputShape = [x.shape[0], x.shape[1]] + Array(repeating: 1, count: x.shape.count - 2)
        }
        output.resize(outputShape)
        let planes = x.shape[0] * x.shape[1], area = x.count / planes, scale = 1 / Float(area)
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                for plane in 0..<planes { yp[plane] = sum(xp.baseAddress! + plane * area, count: area) * scale }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        let planes = inputShape[0] * inputShape[1]
        precondition(dout.count == planes, "\(description): gradient \(dout.shape) for output \(outputShape)")
        inputGradient.resize(inputShape)
        let area = inputGradient.count / planes, scale = 1 / Float(area)
        dout.data.withUnsafeBufferPointer { dyp in
            inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                for plane in 0..<planes {
                    (dxp.baseAddress! + plane * area).update(repeating: dyp[plane] * scale, count: area)
                }
            }
        }
        return inputGradient
    }
}

// MARK: - In a spec

/// `gap`: global average pooling, each channel to its mean over every spatial position
/// (C×D… → C×1×…).
public struct GlobalAveragePoolSpec: LayerSpec, Equatable {
    public static let keyword = "gap"
    public static let grammar = "gap   global average pooling to C×1×…; on a sequence, its mean over time"

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.isEmpty else { throw SpecError("takes no arguments") }
    }

    public var text: String { GlobalAveragePoolSpec.keyword }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count >= 2 else { throw SpecError("needs channels and spatial dimensions, got \(describe(input))") }
        return [input[0]] + Array(repeating: 1, count: input.count - 1)
    }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer { GlobalAveragePool() }

    /// On a sequence T×F: the mean over time, F features.
    public func output(for input: SampleShape) throws -> SampleShape {
        input.isSequence ? SampleShape([input.dims[1]]) : SampleShape(try outputShape(for: input.dims))
    }

    public func makeLayer(for input: SampleShape, fastPaths: Bool, random: inout Random) throws -> Layer {
        input.isSequence ? SequenceMean() : GlobalAveragePool()
    }
}
