import CBLAS
import Tensor

/// Convolution's `.portable` algorithm: N-dimensional convolution (1-, 2- or 3-D), any stride,
/// symmetric zero padding, channel groups, optional fused ReLU, as GEMMs over chunks of
/// samples. The reference for the fast algorithms (hand-tuned for their geometries); written as
/// plain loops, so it covers every spatial rank.
///
/// Shapes (k = rank = kernel.count, G = groups, Cg = C/G, OCg = OC/G): x [C, N, D1…Dk] →
/// y [OC, N, O1…Ok] with Oi = ⌊(Di + 2·pi − ki) / si⌋ + 1. weight [OC, Cg, k1…kk] (PyTorch's
/// layout; as a matrix [OC, Cg·∏k], columns in c, k1…kk order: group g's block W_g is rows
/// g·OCg ..< (g+1)·OCg); bias [OC].
///
/// Forward:  per chunk of samples and per group g, cols = im2col(x's channels of g)
///           [Cg·∏k, samples·∏O] (padding read as zero) and y[g's rows, chunk] = W_g·cols; then
///           y[:, chunk] = relu?(y + b): a chunk's output is a column block of each output
///           channel's row of y.
/// Backward: per chunk (last first): dy′ = dy ⊙ (y > 0) if relu (a copy); db += Σ_row dy′; per
///           group (last first), cols again, dW_g += dy′_g·colsᵀ and, if needed,
///           dcols = W_gᵀ·dy′_g (over cols), dx[g's channels] += col2im(dcols).
/// Depthwise (one input channel a group, mobilenet's): direct loops over each plane instead,
/// no cols (`depthwiseForward`, `depthwiseBackward`).
/// Internally every rank runs as 3-D, with leading sizes of 1 (kernel 1, stride 1, padding 0).
/// Cache: the input x (owned by the layer below, unchanged until the next forward), y (the
/// ReLU mask), dy′ (under a ReLU), one chunk's cols of one group. Buffers grow once and are
/// reused.
final class PortableConvolution {
    let inChannels: Int, outChannels: Int
    let kernel: [Int], stride: [Int], padding: [Int]
    let groups: Int
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
    private let cols = Scratch()             // [Cg·∏k, samples·∏O], one chunk of one group; dcols in backward
    private var colsHeld: (samples: Range<Int>, group: Int)?   // whose cols the buffer holds
    private var geometry: Geometry?

    /// The weights and bias are the layer's (Convolution), which checked the sizes.
    init(inChannels: Int, outChannels: Int, kernel: [Int], stride: [Int], padding: [Int], groups: Int = 1,
         activation: Activation, weight: Parameter, bias: Parameter, description: String) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.activation = activation
        self.weight = weight
        self.bias = bias
        self.description = description
    }

    // MARK: geometry

    /// One input shape's sizes, every rank as 3-D: input d, output o, kernel k, stride s,
    /// padding p (leading dimensions of size 1), `rows` = Cg·∏k (one group's cols), `columns` =
    /// ∏o (one sample); `groupChannels` = Cg, `groupOutputs` = OCg.
    struct Geometry {
        let inputShape: [Int], outputShape: [Int]
        let c, n: Int
        let groupChannels, groupOutputs: Int
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
                         groupChannels: inChannels / groups, groupOutputs: outChannels / groups,
                         d: lifted(spatial, 1), o: lifted(outSpatial, 1), k: lifted(kernel, 1),
                         s: lifted(stride, 1), p: lifted(padding, 0),
                         rows: inChannels / groups * kernel.reduce(1, *), columns: outSpatial.reduce(1, *))
        geometry = g
        colsHeld = nil
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
        output.resize(g.outputShape)
        if isDepthwise { return depthwiseForward(x, g) }
        let chunk = chunkSize(g)
        let ldy = g.n * g.columns
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                weight.value.data.withUnsafeBufferPointer { wp in
                    bias.value.data.withUnsafeBufferPointer { bp in
                        for first in Swift.stride(from: 0, to: g.n, by: chunk) {
                            let samples = first..<min(first + chunk, g.n), span = samples.count * g.columns
                            let y = yp.baseAddress! + first * g.columns
                            cols.reserve(g.rows * span)
                            for group in 0..<groups {
                                im2col(xp.baseAddress!, samples, group: group, g)
                                BLAS.sgemm(m: g.groupOutputs, n: span, k: g.rows, a: wp.baseAddress! + group * g.groupOutputs * g.rows,
                                           lda: g.rows, b: cols.base, ldb: span, c: y + group * g.groupOutputs * ldy, ldc: ldy,
                                           sameA: groups == 1 && first > 0)
                            }
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

    /// The walk im2col and col2im share: for each cols row (c, kz, ky, kx) of `group`'s channels
    /// and each output row (b, oz, oy) of the chunk, `body(colsRow, outputRow, inputRow, xs)` with the row's start in
    /// cols, the offset of its output row within the chunk's columns, the offset in x (or dx) of
    /// the input element for ox = 0 (it may lie outside the row: only ox in `xs` are in range),
    /// and the output columns whose input lies inside x. Rows that see padding are reported
    /// through `paddedRow` first (im2col zeroes them).
    @inline(__always)
    private func forEachSegment(_ samples: Range<Int>, group: Int, _ g: Geometry, paddedRow: (UnsafeMutablePointer<Float>) -> Void,
                                body: (UnsafeMutablePointer<Float>, Int, Int, Range<Int>) -> Void) {
        let span = samples.count * g.columns
        let (d0, d1, d2) = g.d, (o0, o1, o2) = g.o, (s0, s1, s2) = g.s
        var row = 0
        for ch in (group * g.groupChannels)..<((group + 1) * g.groupChannels) {
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

    /// cols[(c, kz, ky, kx), (b − first)·∏o + (oz, oy, ox)] = x[c, b, oz·s + kz − p, …], 0 in the
    /// padding, for the channels c of `group`.
    private func im2col(_ x: UnsafePointer<Float>, _ samples: Range<Int>, group: Int, _ g: Geometry) {
        let span = samples.count * g.columns, s2 = g.s.2
        // Most of a row is real input; zero it all when padding shows, then fill.
        forEachSegment(samples, group: group, g, paddedRow: { $0.update(repeating: 0, count: span) }) { rowBase, outputRow, inputRow, xs in
            let src = x + inputRow, dst = rowBase + outputRow
            if s2 == 1 {
                (dst + xs.lowerBound).update(from: src + xs.lowerBound, count: xs.count)
            } else {
                for ox in xs { dst[ox] = src[ox * s2] }
            }
        }
        colsHeld = (samples, group)
    }

    /// dx[c, b, oz·s + kz − p, …] += dcols[(c, kz, ky, kx), (b − first)·∏o + (oz, oy, ox)]: im2col's
    /// transpose, for the channels c of `group`.
    private func col2im(_ dx: UnsafeMutablePointer<Float>, _ samples: Range<Int>, group: Int, _ g: Geometry) {
        let s2 = g.s.2
        forEachSegment(samples, group: group, g, paddedRow: { _ in }) { rowBase, outputRow, inputRow, xs in
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
        if isDepthwise { return depthwiseBackward(dout, x, g) }
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
                            if cols.capacity < g.rows * span { colsHeld = nil }   // growing loses what it held
                            cols.reserve(g.rows * span)
                            for group in (0..<groups).reversed() {   // forward's last group first, likewise
                                if colsHeld?.samples != samples || colsHeld?.group != group {
                                    im2col(xp.baseAddress!, samples, group: group, g)
                                }
                                let rowOffset = group * g.groupOutputs
                                weight.grad.data.withUnsafeMutableBufferPointer { dw in
                                    BLAS.sgemm(transB: true, m: g.groupOutputs, n: g.rows, k: span, a: dy + rowOffset * ldy, lda: ldy,
                                               b: cols.base, ldb: span, beta: 1, c: dw.baseAddress! + rowOffset * g.rows, ldc: g.rows)
                                }
                                colsHeld = nil   // overwritten below, or by the next group or chunk
                                guard needsInputGradient else { continue }
                                weight.value.data.withUnsafeBufferPointer { wp in
                                    BLAS.sgemm(transA: true, m: g.rows, n: span, k: g.groupOutputs, a: wp.baseAddress! + rowOffset * g.rows,
                                               lda: g.rows, b: dy + rowOffset * ldy, ldb: ldy, c: cols.base, ldc: span)
                                }
                                inputGradient.data.withUnsafeMutableBufferPointer { dx in
                                    col2im(dx.baseAddress!, samples, group: group, g)
                                }
                            }
                        }
                    }
                }
            }
        }
        return inputGradient
    }

    // MARK: depthwise: direct loops

    /// Whether the direct loops run instead of im2col and GEMMs: each group sees one input
    /// channel (a depthwise convolution, OC/C outputs a channel). There im2col would copy the
    /// input ∏k times for a one-row GEMM per group, ∏k multiply-adds an output; the loops do
    /// those in place, over planes that stay in L1.
    private var isDepthwise: Bool { groups > 1 && groups == inChannels }

    /// Kernel tap (kz, ky, kx) of one (output channel, sample) plane: `body(outputRow, inputRow,
    /// xs)` for each output row (oz, oy) whose input row lies inside x, with the offsets of the
    /// output row in its plane and of the input element for ox = 0 in its plane (it may lie
    /// outside the row: only ox in `xs` are in range).
    @inline(__always)
    private func forEachTapRow(_ g: Geometry, _ kz: Int, _ ky: Int, _ kx: Int, body: (Int, Int, Range<Int>) -> Void) {
        let zs = Self.validRange(d: g.d.0, o: g.o.0, s: g.s.0, p: g.p.0, kk: kz)
        let ys = Self.validRange(d: g.d.1, o: g.o.1, s: g.s.1, p: g.p.1, kk: ky)
        let xs = Self.validRange(d: g.d.2, o: g.o.2, s: g.s.2, p: g.p.2, kk: kx)
        guard !xs.isEmpty else { return }
        for oz in zs {
            let iz = oz * g.s.0 + kz - g.p.0
            for oy in ys {
                let iy = oy * g.s.1 + ky - g.p.1
                body((oz * g.o.1 + oy) * g.o.2, (iz * g.d.1 + iy) * g.d.2 + kx - g.p.2, xs)
            }
        }
    }

    /// y[o, b] = relu?(b[o] + Σ_tap w[o, tap]·x[o / (OC/C), b] shifted by the tap).
    private func depthwiseForward(_ x: Tensor, _ g: Geometry) -> Tensor {
        output.zero()
        let taps = g.rows, perChannel = g.groupOutputs, s2 = g.s.2, ldy = g.n * g.columns
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                weight.value.data.withUnsafeBufferPointer { wp in
                    for o in 0..<outChannels {
                        for b in 0..<g.n {
                            let yPlane = yp.baseAddress! + (o * g.n + b) * g.columns
                            let xPlane = xp.baseAddress! + (o / perChannel * g.n + b) * g.inputVolume
                            var tap = o * taps
                            for kz in 0..<g.k.0 {
                                for ky in 0..<g.k.1 {
                                    for kx in 0..<g.k.2 {
                                        let w = wp[tap]
                                        tap += 1
                                        forEachTapRow(g, kz, ky, kx) { outputRow, inputRow, xs in
                                            let dst = yPlane + outputRow, src = xPlane + inputRow
                                            if s2 == 1 {
                                                for ox in xs { dst[ox] += w * src[ox] }
                                            } else {
                                                for ox in xs { dst[ox] += w * src[ox * s2] }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    bias.value.data.withUnsafeBufferPointer { bp in
                        addBias(yp.baseAddress!, bp.baseAddress!, rows: outChannels, columns: ldy, stride: ldy, relu: activation == .relu)
                    }
                }
            }
        }
        return output
    }

    /// g = dy′ (masked under a ReLU, into `maskedGradient`); db += Σ g; dw[o, tap] += Σ g·(x
    /// shifted by the tap); dx[c] += Σ_tap w[o, tap]·g shifted back, over c's outputs o.
    private func depthwiseBackward(_ dout: Tensor, _ x: Tensor, _ g: Geometry) -> Tensor {
        let taps = g.rows, perChannel = g.groupOutputs, s2 = g.s.2, ldy = g.n * g.columns
        let relu = activation == .relu, inputGradientNeeded = needsInputGradient
        x.data.withUnsafeBufferPointer { xp in
            dout.data.withUnsafeBufferPointer { dyp in
                output.data.withUnsafeBufferPointer { yp in
                    maskedGradient.data.withUnsafeMutableBufferPointer { mp in
                        inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                            weight.value.data.withUnsafeBufferPointer { wp in
                                weight.grad.data.withUnsafeMutableBufferPointer { dwp in
                                    let dy = bias.grad.data.withUnsafeMutableBufferPointer { db in
                                        accumulateBiasGradient(db.baseAddress!, dy: dyp.baseAddress!,
                                                               relu: relu ? (yp.baseAddress!, mp.baseAddress!) : nil,
                                                               rows: outChannels, columns: ldy, stride: ldy)
                                    }
                                    for o in 0..<outChannels {
                                        for b in 0..<g.n {
                                            let gPlane = dy + (o * g.n + b) * g.columns
                                            let inputPlane = (o / perChannel * g.n + b) * g.inputVolume
                                            let xPlane = xp.baseAddress! + inputPlane
                                            var tap = o * taps
                                            for kz in 0..<g.k.0 {
                                                for ky in 0..<g.k.1 {
                                                    for kx in 0..<g.k.2 {
                                                        let w = wp[tap]
                                                        var total: Float = 0
                                                        forEachTapRow(g, kz, ky, kx) { outputRow, inputRow, xs in
                                                            let gRow = gPlane + outputRow, src = xPlane + inputRow
                                                            if s2 == 1 {
                                                                total += dot(gRow + xs.lowerBound, src + xs.lowerBound, count: xs.count)
                                                            } else {
                                                                for ox in xs { total += gRow[ox] * src[ox * s2] }
                                                            }
                                                            guard inputGradientNeeded else { return }
                                                            let dst = dxp.baseAddress! + inputPlane + inputRow
                                                            if s2 == 1 {
                                                                for ox in xs { dst[ox] += w * gRow[ox] }
                                                            } else {
                                                                for ox in xs { dst[ox * s2] += w * gRow[ox] }
                                                            }
                                                        }
                                                        dwp[tap] += total
                                                        tap += 1
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return inputGradient
    }
}

/// Σ a[i]·b[i] over `count` floats, 4 lanes × 2 accumulators (a plain loop does not vectorize:
/// float addition is not reassociated without fast-math).
@inline(__always)
private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var p = Float4(), q = Float4()
    var i = 0
    while i + 8 <= count {
        p += load4(a + i) * load4(b + i)
        q += load4(a + i + 4) * load4(b + i + 4)
        i += 8
    }
    var total = (p + q).sum()
    while i < count { total += a[i] * b[i]; i += 1 }
    return total
}
