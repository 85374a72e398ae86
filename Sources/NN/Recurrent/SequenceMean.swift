import Tensor

/// The mean over time of a sequence batch: x [N, T, F] → y [N, F] (`gap` on a sequence).
public final class SequenceMean: Layer {
    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var inputShape: [Int] = []

    public init() {}
    public func replica() -> Layer { SequenceMean() }
    public var parameters: [Parameter] { [] }
    public var description: String { "SequenceMean()" }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 2 else { throw ModelError("\(description) needs sequences T×F, got \(shapeText(input))") }
        return [input[1]]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = x.shape
        let (n, t, f) = (x.shape[0], x.shape[1], x.shape[2]), scale = 1 / Float(t)
        output.resize([n, f])
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                for b in 0..<n {
                    for i in 0..<f { yp[b * f + i] = 0 }
                    for s in 0..<t {
                        for i in 0..<f { yp[b * f + i] += xp[(b * t + s) * f + i] }
                    }
                    for i in 0..<f { yp[b * f + i] *= scale }
                }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        let (n, t, f) = (inputShape[0], inputShape[1], inputShape[2]), scale = 1 / Float(t)
        inputGradient.resize(inputShape)
        dout.data.withUnsafeBufferPointer { dyp in
            inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                for b in 0..<n {
                    for s in 0..<t {
                        for i in 0..<f { dxp[(b * t + s) * f + i] = dyp[b * f + i] * scale }
                    }
                }
            }
        }
        return inputGradient
    }
}
