import CBLAS
import Tensor

/// Convolution's `.strideOne` algorithm: a stride-1 convolution of any spatial rank (the fast
/// path for clips' 3-D convolutions, and for the 1-D and 2-D ones `.chunkedPlane` does not
/// take), computed in blocks small enough that each block's im2col matrix stays in L2, with the
/// C kernels (CBLAS/im2col.c) and ollie's GEMMs.
///
/// Shapes (every rank lifted to 3-D with leading sizes of 1): x [C, N, D, H, W] →
/// y [OC, N, OD, OH, OW], O = D + 2p − k + 1; weight [OC, C, kd, kh, kw] (PyTorch's layout),
/// bias [OC]. Paddings 0 ≤ p < k on each axis.
///
/// Forward, per block (whole samples, or some output frames of one sample):
///   cols = im2col(x zero-bordered by p) [C·∏k, block columns]; y[:, block] = relu?(W·cols + b).
/// Backward: g = dy ⊙ (y > 0) if relu (a copy; else g = dy); db += Σ g; per block: cols again,
///   dW += g·colsᵀ; and dx as a forward convolution of g: dx[c, z, y, x] = Σ W[o, c, k−1−a…]·g′[o, z + a, …]
///   with g′ = g zero-bordered by k−1−p: an im2col of g′ and one GEMM per block of dx frames, so the input
///   gradient is written once and needs no col2im.
/// Implicit im2col: where the kernel set's conv GEMMs take a pass's output rows as whole
/// segments (Kernels.convWidths: 16 or 8 floats with avx512 and avx2, e.g. 16×16, 32×32 or 8×8
/// frames; implicitSegment), the GEMMs read the zero-bordered input in place through a table of tap offsets and one of segment
/// starts (ollie_conv_gemm, ollie_conv_gemm_nt_add; bias and ReLU applied as tiles are stored),
/// and no cols are written at all.
/// Followed by a k×2×2 max pool, it runs fused with it (`forward(_:pooledBy:)`): each block's
/// finished samples are pooled while they are in cache, and backward routes the pooled gradient
/// straight into g, masked by the ReLU (a window's max is positive exactly when its winner is),
/// so the pool's full-size gradient is never written and masked in a second pass.
/// Winograd: a 3×3×3 convolution with padding 1 whose frames the kernel set's winograd3 takes
/// (usesWinograd) computes y, and dx, by F(2×2×2, 3×3×3) (CBLAS/winograd.c): 3.4× fewer
/// multiply-adds, results that differ by rounding. One sample a call, so a fused pool still
/// finds each finished sample in cache. With 8 channels or more each side, dW too: the
/// set's kernel sums in Winograd's domain and ollie_winograd3_weight_gradient_add takes it back.
/// Cache: x zero-bordered, y (the ReLU mask), g (under a ReLU), one block's cols. Buffers grow
/// once and are reused.
final class StrideOneConvolution {
    let inChannels: Int, outChannels: Int
    let kernel: [Int], padding: [Int]
    let activation: Activation
    let weight: Parameter
    let bias: Parameter
    let description: String
    /// False for a model's first layer: nobody reads dx there.
    var needsInputGradient = true
    /// The most bytes one block's cols may take (at least one frame's, whatever this says).
    var chunkBytes = 1 << 20

    var rank: Int { kernel.count }

    private let output = Tensor([0])
    private let maskedGradient = Tensor([0])      // dout ⊙ (y > 0), under a ReLU
    private let inputGradient = Tensor([0])
    private let paddedInput = ZeroBordered()      // [C, N, D+2p, …]
    private let paddedGradient = ZeroBordered()   // [OC, N, OD+2(k−1−p), …]
    private let cols = Scratch()                  // [rows, block columns] + slack
    private var colsBlock: Block?                 // the forward block whose cols the buffer holds
    private var flippedWeight: [Float] = []       // [C, OC·∏k]: W with its kernel reversed, for dx
    private let winogradWeight = Scratch()        // W (or, for dx, the flipped W) in Winograd's domain
    private let winogradGradient = Scratch()      // dW in Winograd's domain, [64, OC, C]
    private var taps: [Int32] = [], backTaps: [Int32] = []   // implicit im2col: each row's offset in x′ / dy′
    private var segments: [Int32] = []            // implicit im2col: where each segment of columns starts
    private var geometry: Geometry?

    /// The weights and bias are the layer's (Convolution), which checked the sizes (paddings 0 ≤ p < k).
    init(inChannels: Int, outChannels: Int, kernel: [Int], padding: [Int], activation: Activation,
         weight: Parameter, bias: Parameter, description: String) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.padding = padding
        self.activation = activation
        self.weight = weight
        self.bias = bias
        self.description = description
    }

    // MARK: geometry

    /// Three sizes, one per axis of a 3-D volume (lower ranks have leading sizes of 1).
    typealias Triple = (Int, Int, Int)

    static func lifted(_ v: [Int], fill: Int) -> Triple {
        let all = Array(repeating: fill, count: 3 - v.count) + v
        return (all[0], all[1], all[2])
    }

    /// Sizes: input d, output o, kernel k, padding p, and dy's border q = k − 1 − p.
    struct Geometry {
        let inputShape: [Int], outputShape: [Int]
        let n: Int
        let d, o, k, p: Triple
        var q: Triple { (k.0 - 1 - p.0, k.1 - 1 - p.1, k.2 - 1 - p.2) }
    }

    private func prepare(_ x: Tensor) -> Geometry {
        if let g = geometry, g.inputShape == x.shape { return g }
        precondition(x.shape.count == rank + 2 && x.shape[0] == inChannels, "\(description) got input \(x.shape)")
        let spatial = Array(x.shape.dropFirst(2))
        guard let outSpatial = slidingWindowOutputSizes(input: spatial, window: kernel, stride: kernel.map { _ in 1 },
                                                        padding: padding) else {
            preconditionFailure("\(description): input \(x.shape) is smaller than the kernel")
        }
        let g = Geometry(inputShape: x.shape, outputShape: [outChannels, x.shape[1]] + outSpatial, n: x.shape[1],
                         d: Self.lifted(spatial, fill: 1), o: Self.lifted(outSpatial, fill: 1),
                         k: Self.lifted(kernel, fill: 1), p: Self.lifted(padding, fill: 0))
        geometry = g
        colsBlock = nil
        let q = g.q
        taps = Self.tapOffsets(channels: inChannels, n: g.n, padded: (g.d.0 + 2 * g.p.0, g.d.1 + 2 * g.p.1, g.d.2 + 2 * g.p.2), k: g.k)
        backTaps = Self.tapOffsets(channels: outChannels, n: g.n, padded: (g.o.0 + 2 * q.0, g.o.1 + 2 * q.1, g.o.2 + 2 * q.2), k: g.k)
        return g
    }

    // MARK: implicit im2col

    /// The segment width at which a pass producing planes of `height` rows of `width` floats
    /// reads its input in place, or nil for im2col: the widest the kernel set's conv GEMMs take
    /// (Kernels.convWidths) that divides a row, in planes whose columns come in the multiples
    /// those GEMMs need (Kernels.convColumns). None under the portable set.
    private func implicitSegment(height: Int, width: Int) -> Int? {
        let columns = Kernels.convColumns
        return Kernels.convWidths.first { width % $0 == 0 && (height * width) % columns == 0 }
    }

    /// Row (c, kz, ky, kx)'s offset in a zero-bordered [channels, N, padded…] buffer: where tap
    /// (kz, ky, kx) of channel c reads for output position 0 of sample 0.
    static func tapOffsets(channels: Int, n: Int, padded: Triple, k: Triple) -> [Int32] {
        var offsets: [Int32] = []
        offsets.reserveCapacity(channels * k.0 * k.1 * k.2)
        for c in 0..<channels {
            for kz in 0..<k.0 {
                for ky in 0..<k.1 {
                    for kx in 0..<k.2 {
                        offsets.append(Int32(c * n * padded.0 * padded.1 * padded.2 + (kz * padded.1 + ky) * padded.2 + kx))
                    }
                }
            }
        }
        return offsets
    }

    /// Where each `width` output columns of `block` start in the zero-bordered input (for tap 0):
    /// sample b, frame z, row y, column x ↦ ((b·Dp + z)·Hp + y)·Wp + x.
    private func fillSegments(_ block: Block, padded: Triple, out: Triple, width: Int) {
        segments.removeAll(keepingCapacity: true)
        for b in block.first..<(block.first + block.count) {
            for z in block.z0..<(block.z0 + block.zn) {
                for y in 0..<out.1 {
                    let row = ((b * padded.0 + z) * padded.1 + y) * padded.2
                    for x in Swift.stride(from: 0, to: out.2, by: width) { segments.append(Int32(row + x)) }
                }
            }
        }
    }

    private func volume(_ t: Triple) -> Int { t.0 * t.1 * t.2 }

    // MARK: Winograd

    /// Whether a pass from `channels` channels of frames `size` (a 3×3×3 kernel, padding 1: the
    /// output's size too) runs as Winograd's: frames the set's kernel takes, and enough channels
    /// for its 64 GEMMs to pay for the transforms (on Zen 4, one channel ran 2.1× slower than
    /// the implicit GEMM, 3 channels 1.2× slower, 8 channels 1.3× faster, 16 1.7× faster).
    private func usesWinograd(_ g: Geometry, channels: Int, size: Triple) -> Bool {
        guard let width = Kernels.winograd3Width, g.k == (3, 3, 3), g.p == (1, 1, 1), channels >= 8 else { return false }
        // Rows half the width: two rows of tiles fill the kernel's vector.
        return size.0 % 2 == 0 && (size.2 % width == 0 ? size.1 % 2 == 0 : 2 * size.2 == width && size.1 % 4 == 0)
    }

    /// dW += the batch's weight gradient, through Winograd's domain (`dy`: g, [OC, N·volume]).
    private func winogradWeightGradient(_ g: Geometry, dy: UnsafePointer<Float>, into dw: UnsafeMutablePointer<Float>) {
        let count = 64 * outChannels * inChannels
        winogradGradient.reserve(count)
        winogradGradient.zero(count)
        let status = ollie_winograd3_weight_gradient(Int32(inChannels), Int32(outChannels), Int32(g.n), 0, Int32(g.n), Int32(g.d.0),
                                                     Int32(g.d.1), Int32(g.d.2), paddedInput.base, dy, Int32(g.n * volume(g.d)),
                                                     winogradGradient.base)
        precondition(status == 0, "\(description): the \(Kernels.setName) kernels' Winograd weight gradient failed "
                     + "(\(inChannels) → \(outChannels) channels, frames \(g.d)): out of memory")
        ollie_winograd3_weight_gradient_add(winogradGradient.base, Int32(outChannels), Int32(inChannels), dw)
    }

    /// y = relu?(conv(x′) + bias) by winograd3, sample by sample; `weights` [outputs, channels, 27].
    private func winograd(channels: Int, outputs: Int, _ g: Geometry, source: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>?, relu: Bool, into y: UnsafeMutablePointer<Float>,
                          finished: ((Range<Int>) -> Void)? = nil) {
        winogradWeight.reserve(64 * channels * Int(ollie_winograd3_rows(Int32(outputs))))
        ollie_winograd3_weights(weights, Int32(outputs), Int32(channels), winogradWeight.base)
        let stride = g.n * volume(g.d)
        for b in 0..<g.n {
            let status = ollie_winograd3(Int32(channels), Int32(outputs), Int32(g.n), Int32(b), 1, Int32(g.d.0), Int32(g.d.1),
                                         Int32(g.d.2), source, winogradWeight.base, bias, relu ? 1 : 0, y, Int32(stride))
            precondition(status == 0, "\(description): the \(Kernels.setName) kernels' Winograd convolution failed "
                         + "(\(channels) → \(outputs) channels, frames \(g.d)): out of memory")
            finished?(b..<(b + 1))
        }
    }

    // MARK: blocks

    /// Some columns of an im2col: whole samples first..<first+count, or (count 1) the frames
    /// z0..<z0+zn of one sample. Its columns are contiguous in each row of the [_, N, D…] result.
    struct Block: Equatable {
        let first, count, z0, zn: Int
    }

    /// Blocks covering `n` samples of `depth` frames of `plane` positions, each with at most
    /// `chunkBytes` of cols for `rows` rows (one frame at least).
    private func blocks(n: Int, depth: Int, plane: Int, rows: Int) -> [Block] {
        let frameBytes = rows * plane * MemoryLayout<Float>.size
        let frames = max(1, chunkBytes / max(1, frameBytes))
        if frames >= depth {
            let samples = max(1, min(n, frames / depth))
            return Swift.stride(from: 0, to: n, by: samples).map { Block(first: $0, count: min(samples, n - $0), z0: 0, zn: depth) }
        }
        return (0..<n).flatMap { b in
            Swift.stride(from: 0, to: depth, by: frames).map { Block(first: b, count: 1, z0: $0, zn: min(frames, depth - $0)) }
        }
    }

    /// im2col of `block` from a zero-bordered [channels, N, padded…] into cols, for a kernel g.k and output frames of `out`.
    private func im2col(_ source: ZeroBordered, channels: Int, _ block: Block, n: Int, padded: Triple, k: Triple, out: Triple) {
        cols.reserve(channels * k.0 * k.1 * k.2 * block.count * block.zn * out.1 * out.2 + vectorSlack)
        ollie_im2col3d(source.base, cols.base, Int32(channels), Int32(n), Int32(block.first), Int32(block.count),
                       Int32(block.z0), Int32(block.zn), Int32(padded.0), Int32(padded.1), Int32(padded.2),
                       Int32(k.0), Int32(k.1), Int32(k.2), Int32(out.1), Int32(out.2))
    }

    // MARK: forward

    func forward(_ x: Tensor) -> Tensor { forward(x, finished: nil) }

    /// Convolution (+ ReLU) and then `pool` (`takesFrames`), the pool running on each block's
    /// finished samples while they are in cache. Returns and fills `pool`'s output and winners
    /// as `pool.forward` would; `backward(pooledGradient:pooledBy:)` undoes both.
    func forward(_ x: Tensor, pooledBy pool: PortablePooling) -> Tensor {
        let g = prepare(x)
        let pooled = pool.prepare(inputShape: g.outputShape)
        let size = volume(g.o), channels = outChannels
        _ = forward(x) { samples, y in
            for o in 0..<channels {
                let first = o * g.n + samples.lowerBound
                pool.poolFrames(y + first * size, planes: first, count: samples.count)
            }
        }
        return pooled
    }

    /// `finished`, if given, is called after each block with the samples whose output is now
    /// complete, and y.
    private func forward(_ x: Tensor, finished: ((Range<Int>, UnsafePointer<Float>) -> Void)?) -> Tensor {
        let g = prepare(x)
        let rows = inChannels * volume(g.k), plane = g.o.1 * g.o.2
        let padded: Triple = (g.d.0 + 2 * g.p.0, g.d.1 + 2 * g.p.1, g.d.2 + 2 * g.p.2)
        paddedInput.fill(x, channels: inChannels, n: g.n, size: g.d, border: g.p)
        output.resize(g.outputShape)
        let ldy = g.n * volume(g.o)
        if usesWinograd(g, channels: inChannels, size: g.d) {
            output.data.withUnsafeMutableBufferPointer { yp in
                let y = yp.baseAddress!
                weight.value.data.withUnsafeBufferPointer { wp in
                    bias.value.data.withUnsafeBufferPointer { bp in
                        winograd(channels: inChannels, outputs: outChannels, g, source: paddedInput.base, weights: wp.baseAddress!,
                                 bias: bp.baseAddress!, relu: activation == .relu, into: y,
                                 finished: finished.map { callback in { callback($0, y) } })
                    }
                }
            }
            colsBlock = nil
            return output
        }
        let segment = implicitSegment(height: g.o.1, width: g.o.2)
        // In place, a block is sized by its rows of y (and later dy), not by cols.
        let all = blocks(n: g.n, depth: g.o.0, plane: plane, rows: segment != nil ? outChannels + inChannels : rows)
        output.data.withUnsafeMutableBufferPointer { yp in
            weight.value.data.withUnsafeBufferPointer { wp in
                bias.value.data.withUnsafeBufferPointer { bp in
                    for (index, block) in all.enumerated() {
                        let span = block.count * block.zn * plane
                        let y = yp.baseAddress! + (block.first * g.o.0 + block.z0) * plane
                        if let segment {
                            fillSegments(block, padded: padded, out: g.o, width: segment)
                            // Bias and ReLU are added as each tile is stored.
                            let status = ollie_conv_gemm(Int32(outChannels), Int32(span), Int32(rows), wp.baseAddress!, Int32(rows),
                                                         paddedInput.base, taps, segments, Int32(segment), y, Int32(ldy), index > 0 ? 1 : 0,
                                                         bp.baseAddress!, activation == .relu ? 1 : 0)
                            checkKernel(status, "forward", span: span, segment: segment)
                        } else {
                            im2col(paddedInput, channels: inChannels, block, n: g.n, padded: padded, k: g.k, out: g.o)
                            BLAS.sgemm(m: outChannels, n: span, k: rows, a: wp.baseAddress!, lda: rows,
                                       b: cols.base, ldb: span, c: y, ldc: ldy, sameA: index > 0,
                                       bias: bp.baseAddress!, relu: activation == .relu)
                        }
                        if let finished, block.z0 + block.zn == g.o.0 { finished(block.first..<(block.first + block.count), yp.baseAddress!) }
                    }
                }
            }
        }
        colsBlock = segment != nil ? nil : all.last
        return output
    }

    // MARK: backward

    /// `dout` is only read: under a ReLU its masked copy goes to `maskedGradient`.
    func backward(_ dout: Tensor) -> Tensor {
        guard let g = geometry else { preconditionFailure("\(description): backward before forward") }
        precondition(dout.count == output.count, "\(description): gradient \(dout.shape) for output \(output.shape)")
        let ldy = g.n * volume(g.o)
        let relu = activation == .relu
        if relu { maskedGradient.resize(output.shape) }
        dout.data.withUnsafeBufferPointer { dyp in
            output.data.withUnsafeBufferPointer { yp in
                maskedGradient.data.withUnsafeMutableBufferPointer { mp in
                    bias.grad.data.withUnsafeMutableBufferPointer { db in
                        _ = accumulateBiasGradient(db.baseAddress!, dy: dyp.baseAddress!,
                                                   relu: relu ? (yp.baseAddress!, mp.baseAddress!) : nil,
                                                   rows: outChannels, columns: ldy, stride: ldy)
                    }
                }
            }
        }
        return backpropagate(relu ? maskedGradient : dout, g)
    }

    /// The backward of `forward(_:pooledBy:)`, from the gradient of the pooled output (only
    /// read): the pool routes it to its winners in a zeroed g, masked by the ReLU, summing db on
    /// the way; then as `backward`.
    func backward(pooledGradient dout: Tensor, pooledBy pool: PortablePooling) -> Tensor {
        guard let g = geometry else { preconditionFailure("\(description): backward before forward") }
        let size = volume(g.o)
        maskedGradient.resize(output.shape)
        maskedGradient.zero()
        maskedGradient.data.withUnsafeMutableBufferPointer { mp in
            bias.grad.data.withUnsafeMutableBufferPointer { db in
                for o in 0..<outChannels {
                    db[o] += pool.route(dout, planes: o * g.n, count: g.n, masked: activation == .relu,
                                        into: mp.baseAddress! + o * g.n * size)
                }
            }
        }
        return backpropagate(maskedGradient, g)
    }

    /// dW += g·colsᵀ and, unless this is the first layer, dx = Wᵀ ⋆ g; `gradient` is g, only read.
    private func backpropagate(_ gradient: Tensor, _ g: Geometry) -> Tensor {
        let rows = inChannels * volume(g.k), plane = g.o.1 * g.o.2, ldy = g.n * volume(g.o)
        let padded: Triple = (g.d.0 + 2 * g.p.0, g.d.1 + 2 * g.p.1, g.d.2 + 2 * g.p.2)
        gradient.data.withUnsafeBufferPointer { dyp in
            // dW += g·colsᵀ, forward's last block first: its cols are still there.
            let segment = implicitSegment(height: g.o.1, width: g.o.2)
            weight.grad.data.withUnsafeMutableBufferPointer { dw in
                if Kernels.hasWinograd3WeightGradient && usesWinograd(g, channels: min(inChannels, outChannels), size: g.d) {
                    return winogradWeightGradient(g, dy: dyp.baseAddress!, into: dw.baseAddress!)
                }
                for block in blocks(n: g.n, depth: g.o.0, plane: plane, rows: segment != nil ? outChannels + inChannels : rows).reversed() {
                    let span = block.count * block.zn * plane
                    let dy = dyp.baseAddress! + (block.first * g.o.0 + block.z0) * plane
                    if let segment {
                        fillSegments(block, padded: padded, out: g.o, width: segment)
                        let status = ollie_conv_gemm_nt_add(Int32(outChannels), Int32(rows), Int32(span), dy, Int32(ldy),
                                                            paddedInput.base, taps, segments, Int32(segment), dw.baseAddress!, Int32(rows))
                        checkKernel(status, "weight gradient", span: span, segment: segment)
                        continue
                    }
                    if colsBlock != block { im2col(paddedInput, channels: inChannels, block, n: g.n, padded: padded, k: g.k, out: g.o) }
                    colsBlock = nil   // overwritten by the next block or by dx's
                    BLAS.sgemm(transB: true, m: outChannels, n: rows, k: span, a: dy, lda: ldy,
                               b: cols.base, ldb: span, beta: 1, c: dw.baseAddress!, ldc: rows)
                }
            }
        }
        guard needsInputGradient else { return inputGradient }
        inputGradient.resize(g.inputShape)
        flipWeights(g)
        let q = g.q
        paddedGradient.fill(gradient, channels: outChannels, n: g.n, size: g.o, border: q)
        let gradientPadded: Triple = (g.o.0 + 2 * q.0, g.o.1 + 2 * q.1, g.o.2 + 2 * q.2)
        let backRows = outChannels * volume(g.k), inPlane = g.d.1 * g.d.2, ldx = g.n * volume(g.d)
        if usesWinograd(g, channels: outChannels, size: g.d) {
            // dx is the convolution of g′ with the flipped W: [C, OC, 27], C its outputs.
            inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                flippedWeight.withUnsafeBufferPointer { wf in
                    winograd(channels: outChannels, outputs: inChannels, g, source: paddedGradient.base, weights: wf.baseAddress!,
                             bias: nil, relu: false, into: dxp.baseAddress!)
                }
            }
            return inputGradient
        }
        let segment = implicitSegment(height: g.d.1, width: g.d.2)
        inputGradient.data.withUnsafeMutableBufferPointer { dxp in
            flippedWeight.withUnsafeBufferPointer { wf in
                for (index, block) in blocks(n: g.n, depth: g.d.0, plane: inPlane, rows: segment != nil ? outChannels + inChannels : backRows).enumerated() {
                    let span = block.count * block.zn * inPlane
                    let dx = dxp.baseAddress! + (block.first * g.d.0 + block.z0) * inPlane
                    if let segment {
                        fillSegments(block, padded: gradientPadded, out: g.d, width: segment)
                        let status = ollie_conv_gemm(Int32(inChannels), Int32(span), Int32(backRows), wf.baseAddress!, Int32(backRows),
                                                     paddedGradient.base, backTaps, segments, Int32(segment), dx, Int32(ldx), index > 0 ? 1 : 0, nil, 0)
                        checkKernel(status, "input gradient", span: span, segment: segment)
                    } else {
                        im2col(paddedGradient, channels: outChannels, block, n: g.n, padded: gradientPadded, k: g.k, out: g.d)
                        BLAS.sgemm(m: inChannels, n: span, k: backRows, a: wf.baseAddress!, lda: backRows,
                                   b: cols.base, ldb: span, c: dx, ldc: ldx, sameA: index > 0)
                    }
                }
            }
        }
        return inputGradient
    }

    /// A conv GEMM refuses only what implicitSegment should not have chosen, or runs out of memory.
    private func checkKernel(_ status: Int32, _ pass: String, span: Int, segment: Int) {
        precondition(status == 0, "\(description): the \(Kernels.setName) kernels' conv GEMM failed (\(pass), "
                     + "\(span) columns in segments of \(segment)): out of memory, or a shape they do not take")
    }

    /// flippedWeight[c, (o, a, b, e)] = W[o, c, kd−1−a, kh−1−b, kw−1−e]: the kernel of dx's convolution.
    private func flipWeights(_ g: Geometry) {
        let taps = volume(g.k), backRows = outChannels * taps
        if flippedWeight.count != inChannels * backRows { flippedWeight = [Float](repeating: 0, count: inChannels * backRows) }
        weight.value.data.withUnsafeBufferPointer { w in
            flippedWeight.withUnsafeMutableBufferPointer { f in
                for o in 0..<outChannels {
                    for c in 0..<inChannels {
                        let source = w.baseAddress! + (o * inChannels + c) * taps
                        let target = f.baseAddress! + c * backRows + o * taps
                        for i in 0..<taps { target[taps - 1 - i] = source[i] }
                    }
                }
            }
        }
    }
}

/// A [channels, N, D+2p, H+2p, W+2p] copy of a [channels, N, D, H, W] tensor with a zero border
/// (and vector slack after it): the border is zeroed when the shape changes and never written.
final class ZeroBordered {
    private let storage = Scratch()
    private var shape: [Int] = []
    var base: UnsafeMutablePointer<Float> { storage.base }

    func fill(_ x: Tensor, channels: Int, n: Int, size d: StrideOneConvolution.Triple, border p: StrideOneConvolution.Triple) {
        let padded = (d.0 + 2 * p.0, d.1 + 2 * p.1, d.2 + 2 * p.2)
        let volume = padded.0 * padded.1 * padded.2
        let key = [channels, n, d.0, d.1, d.2, p.0, p.1, p.2]
        if shape != key {
            storage.reserve(channels * n * volume + vectorSlack)
            storage.zero(channels * n * volume + vectorSlack)
            shape = key
        }
        x.data.withUnsafeBufferPointer { xp in
            for plane in 0..<(channels * n) {
                for z in 0..<d.0 {
                    copyRows(xp.baseAddress! + (plane * d.0 + z) * d.1 * d.2, srcStride: d.2,
                             storage.base + plane * volume + ((z + p.0) * padded.1 + p.1) * padded.2 + p.2,
                             dstStride: padded.2, rows: d.1, width: d.2)
                }
            }
        }
    }
}
