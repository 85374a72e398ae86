import CBLAS
import Tensor

/// Convolution's `.portable` algorithm: N-dimensional convolution (1-, 2- or 3-D), any stride,
/// symmetric zero padding, optional fused ReLU, as GEMMs over chunks of samples. The reference
/// for the fast algorithms (hand-tuned for their geometries); written as plain loops, so it
/// covers every spatial rank.
///
/// Shapes (k = rank = kernel.count): x [C, N, D1…Dk] → y [OC, N, O1…Ok] with
/// Oi = ⌊(Di + 2·pi − ki) / si⌋ + 1. weight [OC, C, k1…kk] (PyTorch's layout; as a matrix
/// [OC, C·∏k], columns in c, k1…kk order); bias [OC].
///
/// Forward:  per chunk of samples, cols = im2col(x) [C·∏k, samples·∏O] (padding read as zero)
///           and y[:, chunk] = relu?(W·cols + b): a chunk's output is a column block of each
///           output channel's row of y.
/// Backward: per chunk (last first): dy′ = dy ⊙ (y > 0) if relu (a copy); db += Σ_row dy′; cols again;
///           dW += dy′·colsᵀ and, if needed, dcols = Wᵀ·dy′ (over cols), dx += col2im(dcols).
/// Internally every rank runs as 3-D, with leading sizes of 1 (kernel 1, stride 1, padding 0).
/// Cache: the input x (owned by the layer below, unchanged until the next forward), y (the
/// ReLU mask), dy′ (under a ReLU), one chunk's cols. Buffers grow once and are reused.
final class PortableConvolution {
    let inChannels: Int, outChannels: Int
    let kernel: [Int], stride: [Int], padding: [Int]
    let activation: Activation
    let weight: Parameter
    let bias: Parameter
    let description: String
    /// False for a model's first layer: nobody reads dx there.
    var needsInputGradient = true
    /// The most bytes one chunk's cols may take (at least one sample's, whatever this says):
    /// keeps the im2col matrix, written once and read twice, in cache.
    var chunkBytes = 1 << 20

    var rank: Int { kernel.count }

    private let output = Tensor([0])
    private let maskedGradient = Tensor([0])   // dout ⊙ (y > 0), under a ReLU
    private let inputGradient = Tensor([0])
    private var input: Tensor?
    private let cols = Scratch()             // [C·∏k, samples·∏O], one chunk; dcols in backward
    private var colsChunk: Range<Int>?       // the samples whose cols the buffer holds
    private var geometry: Geometry?

    /// The weights and bias are the layer's (Convolution), which checked the sizes.
    init(inChannels: Int, outChannels: Int, kernel: [Int], stride: [Int], padding: [Int], activation: Activation,
         weight: Parameter, bias: Parameter, description: String) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.activation = activation
        self.weight = weight
        self.bias = bias
        self.description = description
    }

    // MARK: geometry

    /// One input shape's sizes, every rank as 3-D: input d, output o, kernel k, stride s,
    /// padding p (leading dimensions of size 1), `rows` = C·∏k, `columns` = ∏o (one sample).
    struct Geometry {
        let inputShape: [Int], outputShape: [Int]
        let c, n: Int
        let d, o, k, s, p: (Int, Int, Int)
        let rows, columns: Int
        var inputVolume: Int { d.0 * d.1 * d.2 }
    }

    private func prepare(_ x: Tensor) -> Geometry {
        if let g = geometry, g.inputShape == x.shape { return g }
        precondition(x.shape.count == rank + 2 && x.shape[0] == inChannels, "\(description) got input \(x.shape)")
        func lifted(_ values: [Int], _ fill: Int) -> (Int, Int, Int) {
            let v = Array(repeating: fill, count: 3 - values.count) + values
            return (v[0], v[1], v[2])
        }
        let spatial = Array(x.shape.dropFirst(2))
        guard let outSpatial = slidingWindowOutputSizes(input: spatial, window: kernel, stride: stride, padding: padding) else {
            preconditionFailure("\(description): input \(x.shape) is smaller than the kernel")
        }
        let g = Geometry(inputShape: x.shape, outputShape: [outChannels, x.shape[1]] + outSpatial,
                         c: x.shape[0], n: x.shape[1],
                         d: lifted(spatial, 1), o: lifted(outSpatial, 1), k: lifted(kernel, 1),
                         s: lifted(stride, 1), p: lifted(padding, 0),
                         rows: inChannels * kernel.reduce(1, *), columns: outSpatial.reduce(1, *))
        geometry = g
        colsChunk = nil
        return g
    }

    /// Samples per chunk: as many as keep one chunk's cols within `chunkBytes`, at least one.
    private func chunkSize(_ g: Geometry) -> Int {
        let bytesPerSample = g.rows * g.columns * MemoryLayout<Float>.size
        return max(1, min(g.n, chunkBytes / max(1, bytesPerSample)))
    }

    // MARK: forward

    func forward(_ x: Tensor) -> Tensor {
        let g = prepare(x)
        input = x
        let chunk = chunkSize(g)
        output.resize(g.outputShape)
        let ldy = g.n * g.columns
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                weight.value.data.withUnsafeBufferPointer { wp in
                    bias.value.data.withUnsafeBufferPointer { bp in
                        for first in Swift.stride(from: 0, to: g.n, by: chunk) {
                            let samples = first..<min(first + chunk, g.n), span = samples.count * g.columns
                            cols.reserve(g.rows * span)
                            im2col(xp.baseAddress!, samples, g)
                            let y = yp.baseAddress! + first * g.columns
                            BLAS.sgemm(m: outChannels, n: span, k: g.rows, a: wp.baseAddress!, lda: g.rows,
                                       b: cols.base, ldb: span, c: y, ldc: ldy, sameA: first > 0)
                            addBias(y, bp.baseAddress!, rows: outChannels, columns: span, stride: ldy, relu: activation == .relu)
                        }
                    }
                }
            }
        }
        return output
    }

    /// The output positions along one axis whose input index o·s + kk − p lies in 0..<d.
    @inline(__always)
    private static func validRange(d: Int, o: Int, s: Int, p: Int, kk: Int) -> Range<Int> {
        // o·s ≥ p − kk and o·s ≤ d − 1 + p − kk.
        let low = p - kk <= 0 ? 0 : (p - kk + s - 1) / s
        let top = d - 1 + p - kk
        let high = top < 0 ? 0 : min(o, top / s + 1)
        return low < high ? low..<high : 0..<0
    }

    /// The walk im2col and col2im share: for each cols row (c, kz, ky, kx) and each output row
    /// (b, oz, oy) of the chunk, `body(colsRow, outputRow, inputRow, xs)` with the row's start in
    /// cols, the offset of its output row within the chunk's columns, the offset in x (or dx) of
    /// the input element for ox = 0 (it may lie outside the row: only ox in `xs` are in range),
    /// and the output columns whose input lies inside x. Rows that see padding are reported
    /// through `paddedRow` first (im2col zeroes them).
    @inline(__always)
    private func forEachSegment(_ samples: Range<Int>, _ g: Geometry, paddedRow: (UnsafeMutablePointer<Float>) -> Void,
                                body: (UnsafeMutablePointer<Float>, Int, Int, Range<Int>) -> Void) {
        let span = samples.count * g.columns
        let (d0, d1, d2) = g.d, (o0, o1, o2) = g.o, (s0, s1, s2) = g.s
        var row = 0
        for ch in 0..<g.c {
            for kz in 0..<g.k.0 {
                let zs = Self.validRange(d: d0, o: o0, s: s0, p: g.p.0, kk: kz)
                for ky in 0..<g.k.1 {
                    let ys = Self.validRange(d: d1, o: o1, s: s1, p: g.p.1, kk: ky)
                    for kx in 0..<g.k.2 {
                        let xs = Self.validRange(d: d2, o: o2, s: s2, p: g.p.2, kk: kx)
                        let rowBase = cols.base + row * span
                        if zs.count < o0 || ys.count < o1 || xs.count < o2 { paddedRow(rowBase) }
                        for b in samples {
                            let plane = (ch * g.n + b) * g.inputVolume
                            let out = (b - samples.lowerBound) * g.columns
                            for oz in zs {
                                let iz = oz * s0 + kz - g.p.0
                                for oy in ys {
                                    let iy = oy * s1 + ky - g.p.1
                                    body(rowBase, out + (oz * o1 + oy) * o2, plane + (iz * d1 + iy) * d2 + kx - g.p.2, xs)
                                }
                            }
                        }
                        row += 1
                    }
                }
            }
        }
    }

    /// cols[(c, kz, ky, kx), (b − first)·∏o + (oz, oy, ox)] = x[c, b, oz·s + kz − p, …], 0 in the padding.
    private func im2col(_ x: UnsafePointer<Float>, _ samples: Range<Int>, _ g: Geometry) {
        let span = samples.count * g.columns, s2 = g.s.2
        // Most of a row is real input; zero it all when padding shows, then fill.
        forEachSegment(samples, g, paddedRow: { $0.update(repeating: 0, count: span) }) { rowBase, outputRow, inputRow, xs in
            let src = x + inputRow, dst = rowBase + outputRow
            if s2 == 1 {
                (dst + xs.lowerBound).update(from: src + xs.lowerBound, count: xs.count)
            } else {
                for ox in xs { dst[ox] = src[ox * s2] }
            }
        }
        colsChunk = samples
    }

    /// dx[c, b, oz·s + kz − p, …] += dcols[(c, kz, ky, kx), (b − first)·∏o + (oz, oy, ox)]: im2col's transpose.
    private func col2im(_ dx: UnsafeMutablePointer<Float>, _ samples: Range<Int>, _ g: Geometry) {
        let s2 = g.s.2
        forEachSegment(samples, g, paddedRow: { _ in }) { rowBase, outputRow, inputRow, xs in
            let dst = dx + inputRow, src = rowBase + outputRow
            for ox in xs { dst[ox * s2] += src[ox] }
        }
    }

    // MARK: backward

    /// `dout` is only read: under a ReLU its masked copy goes to `maskedGradient`.
    func backward(_ dout: Tensor) -> Tensor {
        guard let g = geometry, let x = input else { preconditionFailure("\(description): backward before forward") }
        precondition(dout.count == output.count, "\(description): gradient \(dout.shape) for output \(output.shape)")
        let chunk = chunkSize(g), ldy = g.n * g.columns
        let chunks = (g.n + chunk - 1) / chunk
        if needsInputGradient {
            inputGradient.resize(g.inputShape)
            inputGradient.zero()
        }
        let relu = activation == .relu
        if relu { maskedGradient.resize(output.shape) }
        x.data.withUnsafeBufferPointer { xp in
            dout.data.withUnsafeBufferPointer { dyp in
                output.data.withUnsafeBufferPointer { yp in
                    maskedGradient.data.withUnsafeMutableBufferPointer { mp in
                        for index in (0..<chunks).reversed() {   // forward's last chunk first: its cols are still there
                            let first = index * chunk
                            let samples = first..<min(first + chunk, g.n), span = samples.count * g.columns
                            let offset = first * g.columns
                            let dy = bias.grad.data.withUnsafeMutableBufferPointer { db in
                                accumulateBiasGradient(db.baseAddress!, dy: dyp.baseAddress! + offset,
                                                       relu: relu ? (yp.baseAddress! + offset, mp.baseAddress! + offset) : nil,
                                                       rows: outChannels, columns: span, stride: ldy)
                            }
                            if colsChunk != samples {
                                cols.reserve(g.rows * span)
                                im2col(xp.baseAddress!, samples, g)
                            }
                            weight.grad.data.withUnsafeMutableBufferPointer { dw in
                                BLAS.sgemm(transB: true, m: outChannels, n: g.rows, k: span, a: dy, lda: ldy,
                                           b: cols.base, ldb: span, beta: 1, c: dw.baseAddress!, ldc: g.rows)
                            }
                            colsChunk = nil   // overwritten below, or by the next chunk
                            guard needsInputGradient else { continue }
                            weight.value.data.withUnsafeBufferPointer { wp in
                                BLAS.sgemm(transA: true, m: g.rows, n: span, k: outChannels, a: wp.baseAddress!, lda: g.rows,
                                           b: dy, ldb: ldy, c: cols.base, ldc: span)
                            }
                            inputGradient.data.withUnsafeMutableBufferPointer { dx in col2im(dx.baseAddress!, samples, g) }
                        }
                    }
                }
            }
        }
        return inputGradient
    }
}
