import Tensor

/// Max pooling with a square window and an equal stride; sizes round down (7 → 3).
///
/// Shapes: x [C, N, H, W] → y [C, N, H/s, W/s].
/// Cache: for each output, the offset of the winning input within its (c, n) plane.
public final class MaxPool2D: Layer {
    public let size: Int
    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var winners: [Int32] = []
    private var inputShape: [Int] = []

    public init(_ size: Int = 2) { self.size = size }

    public func replica() -> Layer { MaxPool2D(size) }
    public var parameters: [Parameter] { [] }
    public var description: String { "MaxPool((\(size), \(size)))" }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 3, input[1] >= size, input[2] >= size else {
            throw ModelError("\(description) needs C×H×W inputs of at least \(size)×\(size), got \(input.map(String.init).joined(separator: "×"))")
        }
        return [input[0], input[1] / size, input[2] / size]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = h / size, ow = w / size
        inputShape = x.shape
        output.resize([c, n, oh, ow])
        if winners.count != output.count { winners = [Int32](repeating: 0, count: output.count) }
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                winners.withUnsafeMutableBufferPointer { wp in
                    for plane in 0..<(c * n) {
                        let input = xp.baseAddress! + plane * h * w
                        let out = yp.baseAddress! + plane * oh * ow
                        let win = wp.baseAddress! + plane * oh * ow
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                var best = oy * size * w + ox * size
                                var top = input[best]
                                for dy in 0..<size {
                                    let rowStart = (oy * size + dy) * w + ox * size
                                    for dx in 0..<size where input[rowStart + dx] > top {
                                        top = input[rowStart + dx]
                                        best = rowStart + dx
                                    }
                                }
                                out[oy * ow + ox] = top
                                win[oy * ow + ox] = Int32(best)
                            }
                        }
                    }
                }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        let (h, w) = (inputShape[2], inputShape[3])
        let planes = inputShape[0] * inputShape[1]
        let outPlane = output.shape[2] * output.shape[3]
        inputGradient.resize(inputShape)
        inputGradient.data.withUnsafeMutableBufferPointer { dxp in
            dxp.update(repeating: 0)
            dout.data.withUnsafeBufferPointer { dyp in
                winners.withUnsafeBufferPointer { wp in
                    for plane in 0..<planes {
                        let dx = dxp.baseAddress! + plane * h * w
                        for i in (plane * outPlane)..<((plane + 1) * outPlane) {
                            dx[Int(wp[i])] += dyp[i]
                        }
                    }
                }
            }
        }
        return inputGradient
    }
}
