import CBLAS
import Tensor

/// Pooling's `.squareMax` algorithm: 2-D max pooling with a square window and an equal stride;
/// sizes round down (7 → 3), like PyTorch's and Flux's default.
///
/// Shapes: x [C, N, H, W] → y [C, N, H/s, W/s].
/// Cache: `winners` [C, N, H/s, W/s] (Int32): for each output, the offset of its max within the
/// (c, n) input plane (the first one on ties), which backward routes the gradient to.
/// After a chunked-plane convolution the two run fused: ChunkedPlaneConvolution pools each chunk
/// of its output through `prepare`/`pool(planes:…)` and routes gradients back through `route`.
final class SquareMaxPool {
    let size: Int
    private let description: String
    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var winners: [Int32] = []
    private var inputShape: [Int] = []
    private var outputHeight = 0, outputWidth = 0

    init(_ size: Int, description: String) {
        self.size = size
        self.description = description
    }

    func forward(_ x: Tensor) -> Tensor {
        precondition(x.shape.count == 4, "\(description) got input \(x.shape)")
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        prepare(inputShape: x.shape)
        x.data.withUnsafeBufferPointer { xp in
            pool(planes: xp.baseAddress!, count: c * n, into: 0, inputHeight: h, inputWidth: w)
        }
        return output
    }

    /// Sizes the output and winners for an input of `inputShape` [C, N, H, W]; returns the output.
    @discardableResult
    func prepare(inputShape: [Int]) -> Tensor {
        guard let sizes = slidingWindowOutputSizes(input: Array(inputShape.dropFirst(2)), window: [size, size],
                                                   stride: [size, size], padding: [0, 0]) else {
            preconditionFailure("\(description): input \(inputShape) is smaller than the window")
        }
        self.inputShape = inputShape
        (outputHeight, outputWidth) = (sizes[0], sizes[1])
        output.resize([inputShape[0], inputShape[1], outputHeight, outputWidth])
        if winners.count != output.count { winners = [Int32](repeating: 0, count: output.count) }
        return output
    }

    /// Pools `count` consecutive [H, W] input planes into output planes `first`..<first+count
    /// (and their winners): one call per run of planes, since each access to the arrays costs
    /// more than pooling a 7×7 plane.
    func pool(planes input: UnsafePointer<Float>, count: Int, into first: Int, inputHeight h: Int, inputWidth w: Int) {
        let (oh, ow) = (outputHeight, outputWidth)
        output.data.withUnsafeMutableBufferPointer { yp in
            winners.withUnsafeMutableBufferPointer { wp in
                for plane in 0..<count {
                    let x = input + plane * h * w
                    let out = yp.baseAddress! + (first + plane) * oh * ow, win = wp.baseAddress! + (first + plane) * oh * ow
                    if size == 2 {
                        let status = ollie_maxpool2(x, out, win, Int32(h), Int32(w))
                        precondition(status == 0, "\(description): the \(Kernels.setName) kernels' 2×2 max pooling failed")
                    } else {
                        maxPool(x, out, win, w: w, oh: oh, ow: ow, size: size)
                    }
                }
            }
        }
    }

    /// For backward and the chunked-plane convolution's fused one: routes output planes
    /// `first`..<first+count of `dout` to their winners in `dx` (that many consecutive zeroed
    /// input planes), skipping windows whose max is ≤ 0 when `masked` (the ReLU's derivative);
    /// returns the sum of what was routed, plane by plane.
    func route(_ dout: Tensor, planes first: Int, count: Int, masked: Bool, into dx: UnsafeMutablePointer<Float>) -> Float {
        routeToWinners(dout, output: output, winners: winners, planes: first, count: count, outputSize: outputHeight * outputWidth,
                       inputSize: inputShape[2] * inputShape[3], masked: masked, into: dx)
    }

    /// dx = 0, then dx[winner] = dy: a memset and the kernel table's scatter (windows do not
    /// overlap, so each cell gets at most one gradient).
    func backward(_ dout: Tensor) -> Tensor {
        let (c, n) = (inputShape[0], inputShape[1])
        precondition(dout.count == output.count, "\(description): gradient \(dout.shape) for output \(output.shape)")
        inputGradient.resize(inputShape)
        inputGradient.zero()
        inputGradient.data.withUnsafeMutableBufferPointer { dxp in
            _ = route(dout, planes: 0, count: c * n, masked: false, into: dxp.baseAddress!)
        }
        return inputGradient
    }
}

/// Any square window. Shapes: x one [H, W] plane → y, winners one [OH, OW] plane.
private func maxPool(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ winners: UnsafeMutablePointer<Int32>,
                     w: Int, oh: Int, ow: Int, size: Int) {
    for oy in 0..<oh {
        for ox in 0..<ow {
            var best = oy * size * w + ox * size
            var top = x[best]
            for dy in 0..<size {
                let rowStart = (oy * size + dy) * w + ox * size
                for dx in 0..<size where x[rowStart + dx] > top {
                    top = x[rowStart + dx]
                    best = rowStart + dx
                }
            }
            y[oy * ow + ox] = top
            winners[oy * ow + ox] = Int32(best)
        }
    }
}
