import Tensor

/// Image activations to feature rows, in PyTorch's flatten order (c, h, w) per sample.
///
/// Shapes: x [C, N, H, W] → y [N, C·H·W]; an input that is already [N, F] passes through.
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
        guard x.shape.count == 4 else { return x }
        let (c, n, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        output.resize([n, c * plane])
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                for ch in 0..<c {
                    for b in 0..<n {
                        (yp.baseAddress! + (b * c + ch) * plane).update(from: xp.baseAddress! + (ch * n + b) * plane, count: plane)
                    }
                }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        guard inputShape.count == 4 else { return dout }
        let (c, n, plane) = (inputShape[0], inputShape[1], inputShape[2] * inputShape[3])
        inputGradient.resize(inputShape)
        dout.data.withUnsafeBufferPointer { dyp in
            inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                for ch in 0..<c {
                    for b in 0..<n {
                        (dxp.baseAddress! + (ch * n + b) * plane).update(from: dyp.baseAddress! + (b * c + ch) * plane, count: plane)
                    }
                }
            }
        }
        return inputGradient
    }
}
