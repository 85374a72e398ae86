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
                        if size == 2 {
                            pool2x2(input, out, win, w: w, oh: oh, ow: ow)
                            continue
                        }
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

    /// The common 2×2 case with selects instead of branches (ties go to the first, as above).
    private func pool2x2(_ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                         _ win: UnsafeMutablePointer<Int32>, w: Int, oh: Int, ow: Int) {
        for oy in 0..<oh {
            let r0 = 2 * oy * w, r1 = r0 + w
            for ox in 0..<ow {
                let i0 = r0 + 2 * ox, i2 = r1 + 2 * ox
                let a = input[i0], b = input[i0 + 1], c = input[i2], d = input[i2 + 1]
                let ab = b > a ? b : a, iab = b > a ? i0 + 1 : i0
                let cd = d > c ? d : c, icd = d > c ? i2 + 1 : i2
                out[oy * ow + ox] = cd > ab ? cd : ab
                win[oy * ow + ox] = Int32(cd > ab ? icd : iab)
            }
        }
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
