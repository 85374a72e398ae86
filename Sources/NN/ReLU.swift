import Tensor

/// max(0, x), elementwise, any shape. Cache: the output, whose sign is the mask.
public final class ReLU: Layer {
    private let output = Tensor([0])
    private let inputGradient = Tensor([0])

    public init() {}
    public func replica() -> Layer { ReLU() }
    public var parameters: [Parameter] { [] }
    public var description: String { "relu" }
    public func outputShape(for input: [Int]) throws -> [Int] { input }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        output.resize(x.shape)
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                for i in 0..<xp.count { yp[i] = max(xp[i], 0) }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        inputGradient.resize(output.shape)
        output.data.withUnsafeBufferPointer { yp in
            dout.data.withUnsafeBufferPointer { dyp in
                inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                    for i in 0..<yp.count { dxp[i] = yp[i] > 0 ? dyp[i] : 0 }
                }
            }
        }
        return inputGradient
    }
}
