import Tensor

/// 2-D convolution, stride 1, zero padding, optional fused ReLU, as one GEMM over the batch.
///
/// Shapes: x [C, N, H, W] → y [OC, N, OH, OW] with OH = H + 2·pad − k + 1 (same for W).
/// weight [OC, C·k·k] (PyTorch's [OC, C, k, k], row order c, ky, kx); bias [OC].
/// Cache: cols [C·k·k, N·OH·OW], the im2col of x, for dW = dy·colsᵀ; y itself for the ReLU mask.
public final class Conv2D: Layer {
    public let inChannels: Int, outChannels: Int, kernel: Int, padding: Int
    public let relu: Bool
    public let weight: Parameter
    public let bias: Parameter
    /// False for a model's first layer: nobody needs dx there, and it is a third of the work.
    public var needsInputGradient = true

    private let cols = Tensor([0])
    private let output = Tensor([0])
    private let columnGradient = Tensor([0])
    private let inputGradient = Tensor([0])
    private var inputShape: [Int] = []

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, padding: Int = 0, relu: Bool = false,
                random: inout Random) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.padding = padding
        self.relu = relu
        let fanIn = inChannels * kernel * kernel, fanOut = outChannels * kernel * kernel
        weight = Parameter(name: "weight", value: glorotUniform([outChannels, fanIn], fanIn: fanIn, fanOut: fanOut, random: &random))
        bias = Parameter(name: "bias", value: Tensor([outChannels]))
    }

    private init(sharing other: Conv2D) {
        inChannels = other.inChannels; outChannels = other.outChannels
        kernel = other.kernel; padding = other.padding; relu = other.relu
        weight = Parameter(sharing: other.weight)
        bias = Parameter(sharing: other.bias)
        needsInputGradient = other.needsInputGradient
    }

    public func replica() -> Layer { Conv2D(sharing: self) }

    public var parameters: [Parameter] { [weight, bias] }

    public var description: String {
        "Conv((\(kernel), \(kernel)), \(inChannels) => \(outChannels)\(padding > 0 ? ", pad=\(padding)" : "")\(relu ? ", relu" : ""))"
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 3, input[0] == inChannels else {
            throw ModelError("\(description) needs \(inChannels)×H×W inputs, got \(input.map(String.init).joined(separator: "×"))")
        }
        let h = input[1] + 2 * padding - kernel + 1, w = input[2] + 2 * padding - kernel + 1
        guard h > 0, w > 0 else {
            throw ModelError("\(description) cannot take \(input[1])×\(input[2]) images: the kernel is larger than the padded image")
        }
        return [outChannels, h, w]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = h + 2 * padding - kernel + 1, ow = w + 2 * padding - kernel + 1
        let rows = c * kernel * kernel, columns = n * oh * ow
        inputShape = x.shape
        cols.resize([rows, columns])
        output.resize([outChannels, n, oh, ow])
        x.data.withUnsafeBufferPointer { xp in
            cols.data.withUnsafeMutableBufferPointer { cp in
                im2col(xp.baseAddress!, cp.baseAddress!, c: c, n: n, h: h, w: w, k: kernel, pad: padding)
            }
        }
        weight.value.data.withUnsafeBufferPointer { wp in
            cols.data.withUnsafeBufferPointer { cp in
                output.data.withUnsafeMutableBufferPointer { yp in
                    BLAS.sgemm(m: outChannels, n: columns, k: rows, a: wp.baseAddress!, lda: rows,
                               b: cp.baseAddress!, ldb: columns, c: yp.baseAddress!, ldc: columns)
                    addBias(yp.baseAddress!, columns: columns)
                }
            }
        }
        return output
    }

    /// y[o, :] += b[o], then max(0, ·) when fused: one pass over the output.
    private func addBias(_ y: UnsafeMutablePointer<Float>, columns: Int) {
        bias.value.data.withUnsafeBufferPointer { b in
            for o in 0..<outChannels {
                let row = y + o * columns, bo = b[o]
                if relu {
                    for i in 0..<columns { row[i] = max(row[i] + bo, 0) }
                } else {
                    for i in 0..<columns { row[i] += bo }
                }
            }
        }
    }

    /// `dout` is modified in place (masked by the ReLU): it belongs to the layer above, which
    /// has no further use for it.
    public func backward(_ dout: Tensor) -> Tensor {
        let rows = inChannels * kernel * kernel, columns = cols.shape[1]
        dout.data.withUnsafeMutableBufferPointer { dyp in
            let dy = dyp.baseAddress!
            if relu {
                output.data.withUnsafeBufferPointer { y in reluMask(dy, by: y.baseAddress!, dyp.count) }
            }
            bias.grad.data.withUnsafeMutableBufferPointer { db in
                for o in 0..<outChannels { db[o] += vectorSum(dy + o * columns, columns) }
            }
            cols.data.withUnsafeBufferPointer { cp in
                weight.grad.data.withUnsafeMutableBufferPointer { dw in
                    BLAS.sgemm(transB: true, m: outChannels, n: rows, k: columns, a: dy, lda: columns,
                               b: cp.baseAddress!, ldb: columns, beta: 1, c: dw.baseAddress!, ldc: rows)
                }
            }
            guard needsInputGradient else { return }
            columnGradient.resize([rows, columns])
            inputGradient.resize(inputShape)
            weight.value.data.withUnsafeBufferPointer { wp in
                columnGradient.data.withUnsafeMutableBufferPointer { dc in
                    BLAS.sgemm(transA: true, m: rows, n: columns, k: outChannels, a: wp.baseAddress!, lda: rows,
                               b: dy, ldb: columns, c: dc.baseAddress!, ldc: columns)
                    inputGradient.data.withUnsafeMutableBufferPointer { dx in
                        col2im(dc.baseAddress!, dx.baseAddress!, c: inputShape[0], n: inputShape[1],
                               h: inputShape[2], w: inputShape[3], k: kernel, pad: padding)
                    }
                }
            }
        }
        return inputGradient
    }
}

/// cols[(c·k + ky)·k + kx, (n·OH + oy)·OW + ox] = x[c, n, oy + ky − pad, ox + kx − pad] (0 outside).
/// Copies contiguous runs of ox; only the padded edges are written separately.
func im2col(_ x: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>,
            c: Int, n: Int, h: Int, w: Int, k: Int, pad: Int) {
    let oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1
    let rowLength = n * oh * ow
    for ch in 0..<c {
        for ky in 0..<k {
            for kx in 0..<k {
                let row = cols + ((ch * k + ky) * k + kx) * rowLength
                // ox range whose ix = ox + kx − pad lies inside 0..<w.
                let oxStart = max(0, pad - kx), oxEnd = min(ow, w + pad - kx)
                for b in 0..<n {
                    let plane = x + (ch * n + b) * h * w
                    for oy in 0..<oh {
                        let out = row + (b * oh + oy) * ow
                        let iy = oy + ky - pad
                        if iy < 0 || iy >= h || oxStart >= oxEnd {
                            out.update(repeating: 0, count: ow)
                            continue
                        }
                        for ox in 0..<oxStart { out[ox] = 0 }
                        (out + oxStart).update(from: plane + iy * w + oxStart + kx - pad, count: oxEnd - oxStart)
                        for ox in oxEnd..<ow { out[ox] = 0 }
                    }
                }
            }
        }
    }
}

/// The adjoint of im2col: dx[c, n, iy, ix] = Σ over the columns that read it.
func col2im(_ cols: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
            c: Int, n: Int, h: Int, w: Int, k: Int, pad: Int) {
    let oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1
    let rowLength = n * oh * ow
    dx.update(repeating: 0, count: c * n * h * w)
    for ch in 0..<c {
        for ky in 0..<k {
            for kx in 0..<k {
                let row = cols + ((ch * k + ky) * k + kx) * rowLength
                let oxStart = max(0, pad - kx), oxEnd = min(ow, w + pad - kx)
                guard oxStart < oxEnd else { continue }
                for b in 0..<n {
                    let plane = dx + (ch * n + b) * h * w
                    for oy in 0..<oh {
                        let iy = oy + ky - pad
                        guard iy >= 0 && iy < h else { continue }
                        let source = row + (b * oh + oy) * ow
                        let target = plane + iy * w + kx - pad
                        for ox in oxStart..<oxEnd { target[ox] += source[ox] }
                    }
                }
            }
        }
    }
}
