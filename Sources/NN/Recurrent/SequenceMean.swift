import Tensor

/// The mean over time of each feature of each sequence: what `gap` does to a sequence.
///
/// Shapes: x [N, T, F] → y [N, F]; per sample [T, F] → [F].
/// Backward: dx[n, t] = dy[n] / T at every step. Cache: the input shape only.
public final class SequenceMean: Layer {
    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var inputShape: [Int] = []

    public init() {}
    public func replica() -> Layer { SequenceMean() }
    public var parameters: [Parameter] { [] }
    public var description: String { "SequenceMean()" }

    /// [T, F] → [F].
    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 2, input[0] >= 1 else {
            throw ModelError("\(description) needs a sequence T×F (steps × features), got \(shapeText(input))")
        }
        return [input[1]]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.shape.count == 3 && x.shape[1] >= 1, "\(description) got input \(x.shape)")
        inputShape = x.shape
        let (n, steps, f) = (x.shape[0], x.shape[1], x.shape[2])
        output.resize([n, f])
        let scale = 1 / Float(steps)
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                for sample in 0..<n {
                    let y = yp.baseAddress! + sample * f
                    y.update(repeating: 0, count: f)
                    for t in 0..<steps {
                        let row = xp.baseAddress! + (sample * steps + t) * f
                        for j in 0..<f { y[j] += row[j] }
                    }
                    for j in 0..<f { y[j] *= scale }
                }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        let (n, steps, f) = (inputShape[0], inputShape[1], inputShape[2])
        precondition(dout.count == n * f, "\(description): gradient \(dout.shape) for output \(output.shape)")
        inputGradient.resize(inputShape)
        let scale = 1 / Float(steps)
        dout.data.withUnsafeBufferPointer { dyp in
            inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                for sample in 0..<n {
                    let dy = dyp.baseAddress! + sample * f
                    for t in 0..<steps {
                        let row = dxp.baseAddress! + (sample * steps + t) * f
                        for j in 0..<f { row[j] = dy[j] * scale }
                    }
                }
            }
        }
        return inputGradient
    }
}
