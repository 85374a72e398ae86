import CBLAS
import Tensor

/// Convolution's `.chunkedPlane` algorithm: 2-D convolution, stride 1, zero padding, optional
/// fused ReLU, as GEMMs over chunks of images.
///
/// Shapes: x [C, N, H, W] → y [OC, N, OH, OW], OH = H + 2·pad − kh + 1, OW = W + 2·pad − kw + 1.
/// weight [OC, C, kh, kw] (PyTorch's layout; as a matrix [OC, C·kh·kw], columns in c, ky, kx
/// order); bias [OC].
///
/// Forward:  padded = x with a zero border [C, N, H+2p, W+2p]; per chunk of images,
///           cols = im2col(padded) [C·kh·kw, images·OH·OW] and y[:, chunk] = relu?(W·cols + b),
///           the bias and ReLU added in the GEMM's registers (or while y is in cache).
/// Backward: per chunk (last first): dy′ = dy ⊙ (y > 0) if relu (a copy; dy is only read);
///           db += Σ_row dy′ (accumulateBiasGradient); cols again; dW += dy′·colsᵀ and, unless
///           this is the model's first layer, dcols = Wᵀ·dy′ (written over cols),
///           dx = col2im(dcols) (a gather straight into dx).
/// Chunks are sized so that cols stays in the L2 cache (`chunkBytes`): the im2col matrix is
/// 9× the input for a 3×3 kernel, and writing it out whole and reading it back three times
/// was memory traffic of ~50 GB an epoch. Backward rebuilds each chunk's cols from the padded
/// input (cheap, from cache) except the last one, which forward left in the buffer.
/// Followed by a square max-pool, it runs fused with it (`forward(_:pooledBy:)`, for
/// Convolution.forward(_:pooledBy:)): each chunk's output is pooled in cache, and backward
/// rebuilds a chunk's output gradient from the pooled one, so the full-size output and its
/// gradient never exist.
/// Cache: padded input, y (the ReLU mask; unfused only), dy′ (unfused, under a ReLU). Buffers
/// grow once and are reused.
final class ChunkedPlaneConvolution {
    let inChannels: Int, outChannels: Int
    let kernelHeight: Int, kernelWidth: Int
    let padding: Int
    let activation: Activation
    let weight: Parameter
    let bias: Parameter
    let description: String
    /// False for a model's first layer: nobody reads dx there, and computing it is a third of
    /// the layer's backward work.
    var needsInputGradient = true

    private let output = Tensor([0])
    private let maskedGradient = Tensor([0])   // dout ⊙ (y > 0), under a ReLU
    private let inputGradient = Tensor([0])
    private let padded = Scratch()          // [C, N, H+2p, W+2p] + slack, border always zero
    private let cols = Scratch()            // [C·kh·kw, images·OH·OW] + slack, one chunk; dcols in backward
    private var colsChunk: Range<Int>?      // the images whose cols the buffer holds
    private let chunkOutput = Scratch()     // [OC, images·OH·OW]: one chunk's output or its gradient, when pooled

    /// The most bytes one chunk's cols (and, pooled, its output) may take: about half of a 1 MB
    /// L2 cache (256 KB to 1 MB measured within 2 % of each other; the whole batch at once 11 %
    /// slower).
    var chunkBytes = 512 * 1024

    var relu: Bool { activation == .relu }

    /// The weights and bias are the layer's (Convolution), which checked the sizes.
    init(_ inChannels: Int, _ outChannels: Int, kernel: (height: Int, width: Int), padding: Int,
         activation: Activation, weight: Parameter, bias: Parameter, description: String) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelHeight = kernel.height
        self.kernelWidth = kernel.width
        self.padding = padding
        self.activation = activation
        self.weight = weight
        self.bias = bias
        self.description = description
    }

    // MARK: forward

    /// One forward call's sizes: input [c, n, h, w], padded [c, n, hp, wp], output [·, n, oh, ow],
    /// and `rows` = c·kh·kw, the im2col matrix's height.
    struct Geometry {
        let c, n, h, w, hp, wp, oh, ow, rows: Int
        var imageColumns: Int { oh * ow }
        var columns: Int { n * oh * ow }
    }
    private var geometry: Geometry?

    func forward(_ x: Tensor) -> Tensor {
        let g = prepare(x)
        let chunk = chunkSize(g, extraRowsPerColumn: 0)
        output.resize([outChannels, g.n, g.oh, g.ow])
        output.data.withUnsafeMutableBufferPointer { yp in
            for first in stride(from: 0, to: g.n, by: chunk) {
                let images = first..<min(first + chunk, g.n)
                multiply(images, g, into: yp.baseAddress! + first * g.imageColumns, ldc: g.columns)
            }
        }
        return output
    }

    /// Convolution (+ ReLU) and then `pool`, chunk by chunk: each chunk's output is pooled
    /// while it is in cache, so the full-size output is never written. Fills `pool`'s output and
    /// winners as `pool.forward` would; `backward(pooledGradient:pooledBy:)` undoes both.
    func forward(_ x: Tensor, pooledBy pool: SquareMaxPool) -> Tensor {
        let g = prepare(x)
        let chunk = chunkSize(g, extraRowsPerColumn: outChannels)
        let pooled = pool.prepare(inputShape: [outChannels, g.n, g.oh, g.ow])
        chunkOutput.reserve(outChannels * chunk * g.imageColumns)
        for first in stride(from: 0, to: g.n, by: chunk) {
            let images = first..<min(first + chunk, g.n), span = images.count * g.imageColumns
            multiply(images, g, into: chunkOutput.base, ldc: span)
            for o in 0..<outChannels {
                pool.pool(planes: chunkOutput.base + o * span, count: images.count, into: o * g.n + first,
                          inputHeight: g.oh, inputWidth: g.ow)
            }
        }
        return pooled
    }

    /// Copies x into the zero-bordered buffer and records the sizes backward needs.
    private func prepare(_ x: Tensor) -> Geometry {
        precondition(x.shape.count == 4 && x.shape[0] == inChannels, "\(description) got input \(x.shape)")
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (hp, wp) = (h + 2 * padding, w + 2 * padding)
        guard let out = slidingWindowOutputSizes(input: [h, w], window: [kernelHeight, kernelWidth], stride: [1, 1],
                                                 padding: [padding, padding]) else {
            preconditionFailure("\(description): input \(x.shape) is smaller than the kernel")
        }
        let g = Geometry(c: c, n: n, h: h, w: w, hp: hp, wp: wp, oh: out[0], ow: out[1], rows: c * kernelHeight * kernelWidth)
        if geometry.map({ ($0.c, $0.n, $0.hp, $0.wp) != (c, n, hp, wp) }) ?? true {
            padded.reserve(c * n * hp * wp + vectorSlack)
            padded.zero(c * n * hp * wp + vectorSlack)   // the border is never written again
        }
        geometry = g
        x.data.withUnsafeBufferPointer { xp in
            for plane in 0..<(c * n) {
                copyRows(xp.baseAddress! + plane * h * w, srcStride: w,
                         padded.base + plane * hp * wp + padding * wp + padding, dstStride: wp,
                         rows: h, width: w)
            }
        }
        return g
    }

    /// y[:, images] = relu?(W·cols + b) for one chunk; y's rows are `ldc` apart.
    private func multiply(_ images: Range<Int>, _ g: Geometry, into y: UnsafeMutablePointer<Float>, ldc: Int) {
        let span = images.count * g.imageColumns
        cols.reserve(g.rows * span + vectorSlack)
        im2col(images, g)
        weight.value.data.withUnsafeBufferPointer { wt in
            bias.value.data.withUnsafeBufferPointer { b in
                // The bias and ReLU go into the GEMM's tiles where its kernel takes them.
                BLAS.sgemm(m: outChannels, n: span, k: g.rows, a: wt.baseAddress!, lda: g.rows,
                           b: cols.base, ldb: span, c: y, ldc: ldc, sameA: images.lowerBound > 0,
                           bias: b.baseAddress!, relu: relu)
            }
        }
    }

    private func im2col(_ images: Range<Int>, _ g: Geometry) {
        ollie_im2col(padded.base, cols.base, Int32(g.c), Int32(g.n), Int32(images.lowerBound), Int32(images.count),
                     Int32(g.hp), Int32(g.wp), Int32(kernelHeight), Int32(kernelWidth), Int32(g.oh), Int32(g.ow))
        colsChunk = images
    }

    /// Images per chunk: as many as keep one chunk's cols (and `extraRowsPerColumn` more rows,
    /// the fused path's output) within `chunkBytes`, at least one.
    private func chunkSize(_ g: Geometry, extraRowsPerColumn: Int) -> Int {
        let bytesPerImage = (g.rows + extraRowsPerColumn) * g.imageColumns * MemoryLayout<Float>.size
        return max(1, min(g.n, chunkBytes / bytesPerImage))
    }

    // MARK: backward

    /// `dout` is only read: under a ReLU its masked copy goes to `maskedGradient`.
    func backward(_ dout: Tensor) -> Tensor {
        guard let g = geometry else { preconditionFailure("\(description): backward before forward") }
        precondition(dout.count == outChannels * g.columns, "\(description): gradient \(dout.shape) for output \(output.shape)")
        let chunk = chunkSize(g, extraRowsPerColumn: 0)
        let firsts = Array(stride(from: 0, to: g.n, by: chunk).reversed())   // forward's last chunk first
        if relu { maskedGradient.resize(output.shape) }
        dout.data.withUnsafeBufferPointer { dyp in
            output.data.withUnsafeBufferPointer { yp in
                maskedGradient.data.withUnsafeMutableBufferPointer { mp in
                    for first in firsts {
                        let images = first..<min(first + chunk, g.n), span = images.count * g.imageColumns
                        let offset = first * g.imageColumns
                        let dy = bias.grad.data.withUnsafeMutableBufferPointer { db in
                            accumulateBiasGradient(db.baseAddress!, dy: dyp.baseAddress! + offset,
                                                   relu: relu ? (yp.baseAddress! + offset, mp.baseAddress! + offset) : nil,
                                                   rows: outChannels, columns: span, stride: g.columns)
                        }
                        backpropagate(images, g, dy: dy, ldy: g.columns, isFirst: first == firsts[0])
                    }
                }
            }
        }
        return inputGradient
    }

    /// The backward of `forward(_:pooledBy:)`, from the gradient of the pooled output: per chunk
    /// (last first) the pool routes it to its winners, masked by the ReLU (a window's max is
    /// positive exactly when its winner is), into a chunk-sized dy, then as `backward`.
    func backward(pooledGradient dout: Tensor, pooledBy pool: SquareMaxPool) -> Tensor {
        guard let g = geometry else { preconditionFailure("\(description): backward before forward") }
        let chunk = chunkSize(g, extraRowsPerColumn: outChannels)
        let firsts = Array(stride(from: 0, to: g.n, by: chunk).reversed())
        for first in firsts {
            let images = first..<min(first + chunk, g.n), span = images.count * g.imageColumns
            chunkOutput.zero(outChannels * span)
            bias.grad.data.withUnsafeMutableBufferPointer { db in
                for o in 0..<outChannels {
                    db[o] += pool.route(dout, planes: o * g.n + first, count: images.count, masked: relu,
                                        into: chunkOutput.base + o * span)
                }
            }
            backpropagate(images, g, dy: chunkOutput.base, ldy: span, isFirst: first == firsts[0])
        }
        return inputGradient
    }

    /// One chunk's dW += dy·colsᵀ and, unless this is the first layer, dx = col2im(Wᵀ·dy).
    /// dy's rows are `ldy` apart. `isFirst`: backward's first chunk (cols may still be there).
    private func backpropagate(_ images: Range<Int>, _ g: Geometry, dy: UnsafePointer<Float>, ldy: Int, isFirst: Bool) {
        let span = images.count * g.imageColumns
        if isFirst && needsInputGradient { inputGradient.resize([g.c, g.n, g.h, g.w]) }
        if colsChunk != images { im2col(images, g) }
        weight.grad.data.withUnsafeMutableBufferPointer { dw in
            BLAS.sgemm(transB: true, m: outChannels, n: g.rows, k: span, a: dy, lda: ldy,
                       b: cols.base, ldb: span, beta: 1, c: dw.baseAddress!, ldc: g.rows)
        }
        colsChunk = nil   // overwritten below, or by the next chunk
        guard needsInputGradient else { return }
        weight.value.data.withUnsafeBufferPointer { wt in
            BLAS.sgemm(transA: true, m: g.rows, n: span, k: outChannels, a: wt.baseAddress!, lda: g.rows,
                       b: dy, ldb: ldy, c: cols.base, ldc: span, sameA: !isFirst)
        }
        inputGradient.data.withUnsafeMutableBufferPointer { dx in
            ollie_col2im(cols.base, dx.baseAddress!, Int32(g.c), Int32(g.n), Int32(images.lowerBound), Int32(images.count),
                         Int32(g.h), Int32(g.w), Int32(padding), Int32(kernelHeight), Int32(kernelWidth),
                         Int32(g.oh), Int32(g.ow))
        }
    }
}

// MARK: kernels

/// y[o, :] += b[o], then max(0, ·) when fused: one pass over the GEMM's output (the kernel
/// table's ollie_bias_relu). Shapes: y [rows, columns] with rows `stride` apart, b [rows].
func addBias(_ y: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int, relu: Bool) {
    ollie_bias_relu(y, b, Int32(rows), Int32(columns), Int32(stride), relu ? 1 : 0)
}

func shapeText(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "×") }

/// Raw float storage a layer keeps between steps: grows when asked, never shrinks.
final class Scratch {
    private(set) var base: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init() {
        capacity = vectorSlack
        base = .allocate(capacity: capacity)
        base.initialize(repeating: 0, count: capacity)
    }

    deinit { base.deallocate() }

    func reserve(_ count: Int) {
        guard count > capacity else { return }
        base.deallocate()
        base = .allocate(capacity: count)
        base.initialize(repeating: 0, count: count)
        capacity = count
    }

    func zero(_ count: Int) { base.update(repeating: 0, count: count) }
}
