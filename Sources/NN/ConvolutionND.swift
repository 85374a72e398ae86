import CBLAS
import Tensor

/// N-dimensional convolution (1-, 2- or 3-D), any stride, symmetric zero padding, optional fused
/// ReLU, as GEMMs over chunks of samples. The portable sibling of Conv2D (which is 2-D, stride 1
/// and hand-tuned); written as plain loops, so one type covers every spatial rank.
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
/// ReLU mask), one chunk's cols. Buffers grow once and are reused.
public final class ConvolutionND: Layer {
    public let inChannels: Int, outChannels: Int
    public let kernel: [Int], stride: [Int], padding: [Int]
    public let activation: Activation
    public let weight: Parameter
    public let bias: Parameter
    /// False for a model's first layer: nobody reads dx there.
    public var needsInputGradient = true
    /// The most bytes one chunk's cols may take (at least one sample's, whatever this says):
    /// keeps the im2col matrix, written once and read twice, in cache.
    public var chunkBytes = 1 << 20

    public var rank: Int { kernel.count }

    private let output = Tensor([0])
    private let maskedGradient = Tensor([0])   // dout ⊙ (y > 0), under a ReLU
    private let inputGradient = Tensor([0])
    private var input: Tensor?
    private let cols = Scratch()             // [C·∏k, samples·∏O], one chunk; dcols in backward
    private var colsChunk: Range<Int>?       // the samples whose cols the buffer holds
    private var geometry: Geometry?

    public init(inChannels: Int, outChannels: Int, kernel: [Int], stride: [Int], padding: [Int],
                activation: Activation = .identity, random: inout Random) {
        precondition((1...3).contains(kernel.count), "ConvolutionND takes 1, 2 or 3 kernel sizes, got \(kernel)")
        precondition(stride.count == kernel.count && padding.count == kernel.count,
                     "ConvolutionND needs one stride and one padding per kernel dimension (kernel \(kernel), stride \(stride), padding \(padding))")
        precondition(inChannels > 0 && outChannels > 0 && kernel.allSatisfy { $0 > 0 } && stride.allSatisfy { $0 > 0 }
                     && padding.allSatisfy { $0 >= 0 },
                     "ConvolutionND needs positive channel counts, kernel sizes and strides and non-negative paddings")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.activation = activation
        (weight, bias) = convolutionParameters(inChannels: inChannels, outChannels: outChannels, kernel: kernel, random: &random)
    }

    private init(sharing other: ConvolutionND) {
        inChannels = other.inChannels; outChannels = other.outChannels
        kernel = other.kernel; stride = other.stride; padding = other.padding
        activation = other.activation
        weight = Parameter(sharing: other.weight)
        bias = Parameter(sharing: other.bias)
        needsInputGradient = other.needsInputGradient
        chunkBytes = other.chunkBytes
    }

    public func replica() -> Layer { ConvolutionND(sharing: self) }
    public var parameters: [Parameter] { [weight, bias] }

    public var description: String {
        NDLayerText.convolution(kernel: kernel, inChannels, outChannels, stride: stride, padding: padding, activation: activation)
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == rank + 1, input[0] == inChannels else {
            throw ModelError("\(description) needs \(inChannels)×\(Array(repeating: "D", count: rank).joined(separator: "×")) inputs"
                             + " (\(inChannels) channels, \(rank) spatial dimension\(rank == 1 ? "" : "s")), got \(shapeText(input))")
        }
        var shape = [outChannels]
        for i in 0..<rank {
            let padded = input[i + 1] + 2 * padding[i]
            guard padded >= kernel[i] else {
                throw ModelError("\(description) cannot take \(shapeText(Array(input.dropFirst()))) inputs: the kernel"
                                 + " (\(shapeText(kernel))) is larger than the padded input in dimension \(i + 1)")
            }
            shape.append((padded - kernel[i]) / stride[i] + 1)
        }
        return shape
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
        var outSpatial: [Int] = []
        for i in 0..<rank {
            let padded: Int = spatial[i] + 2 * padding[i]
            precondition(padded >= kernel[i], "\(description): input \(x.shape) is smaller than the kernel")
            outSpatial.append((padded - kernel[i]) / stride[i] + 1)
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

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
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
    public func backward(_ dout: Tensor) -> Tensor {
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

/// How the N-D layers print their sizes in their descriptions.
enum NDLayerText {
    /// "(3, 3)", and "(3,)" for one size, as Julia and Python print tuples.
    static func tuple(_ values: [Int]) -> String {
        values.count == 1 ? "(\(values[0]),)" : "(" + values.map(String.init).joined(separator: ", ") + ")"
    }

    /// Flux's form of a convolution: "Conv((3, 3), 1 => 16, stride=2, pad=1, relu)"; a 1-D kernel
    /// prints as "(3,)". The portable and fast layers of the same convolution print the same.
    static func convolution(kernel: [Int], _ inChannels: Int, _ outChannels: Int, stride: [Int], padding: [Int],
                            activation: Activation) -> String {
        "Conv(\(tuple(kernel)), \(inChannels) => \(outChannels)"
            + (stride.allSatisfy { $0 == 1 } ? "" : ", stride=\(compact(stride))")
            + (padding.allSatisfy { $0 == 0 } ? "" : ", pad=\(compact(padding))")
            + (activation == .relu ? ", relu" : "") + ")"
    }

    /// "2" when every dimension has the same value, else the tuple.
    static func compact(_ values: [Int]) -> String {
        values.allSatisfy({ $0 == values[0] }) ? "\(values[0])" : tuple(values)
    }
}

// MARK: - In a spec

/// `conv K OUT [stride S] [pad P|same|valid] [ACT]`: a convolution over every spatial
/// dimension of its input. K is one size for all of them (`3`) or one each (`3x3`, `1x3x3`);
/// its rank must match the input's. Padding defaults to K÷2 on each side (PyTorch's
/// `padding=K//2`, size-preserving at stride 1 for odd K); `valid` is none.
public struct ConvSpec: LayerSpec, Equatable {
    public static let keyword = "conv"
    public static let grammar = "conv K OUT [stride S] [pad P|same|valid] [ACT]   K: 3, 3x3, 3x3x3, 1x3x3…; pad default K÷2"
    public static let acceptsInlineActivation = true

    enum Padding: Equatable, Sendable {
        case half            // K÷2, the default (and `same` for odd kernels)
        case sizes(Sizes)    // `pad P` / `pad 1x0x0`; `valid` is pad 0
    }

    var kernel: Sizes
    var outChannels: Int
    var stride = Sizes(values: [1])
    var padding = Padding.half

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.count >= 2 else { throw SpecError("needs a kernel size and an output channel count") }
        kernel = try Sizes(parsing: arguments[0], "the kernel", range: 1...1024)
        guard let out = Int(arguments[1]), (1...65_536).contains(out) else {
            throw SpecError("the output channel count '\(arguments[1])' must be a whole number from 1 to 65536")
        }
        outChannels = out
        var rest = arguments.dropFirst(2)
        while let word = rest.popFirst()?.lowercased() {
            switch word {
            case "stride":
                guard let value = rest.popFirst() else { throw SpecError("stride needs a size, e.g. stride 2") }
                stride = try Sizes(parsing: value, "the stride", range: 1...1024)
            case "pad", "padding":
                guard let value = rest.popFirst() else { throw SpecError("pad needs a size, same or valid, e.g. pad 1") }
                padding = try ConvSpec.padding(value.lowercased(), kernel: kernel)
            case "same", "valid":
                padding = try ConvSpec.padding(word, kernel: kernel)
            default:
                throw SpecError("unexpected '\(word)' (an activation goes last: relu, leakyrelu, tanh, sigmoid, gelu)")
            }
        }
    }

    static func padding(_ word: String, kernel: Sizes) throws -> Padding {
        switch word {
        case "same":
            guard kernel.values.allSatisfy({ $0 % 2 == 1 }) else {
                throw SpecError("pad same needs odd kernel sizes (got \(kernel.text)); give the padding: pad P")
            }
            return .half
        case "valid": return .sizes(Sizes(values: [0]))
        default:
            let sizes = try Sizes(parsing: word, "the padding", range: 0...1024)
            return sizes.values == kernel.values.map({ $0 / 2 }) || (sizes.values.count == 1 && kernel.values.allSatisfy { $0 / 2 == sizes.values[0] })
                ? .half : .sizes(sizes)
        }
    }

    public var text: String {
        var words = [ConvSpec.keyword, kernel.text, String(outChannels)]
        if stride.values.contains(where: { $0 != 1 }) { words += ["stride", stride.text] }
        if case .sizes(let p) = padding { words += p.values.allSatisfy({ $0 == 0 }) ? ["valid"] : ["pad", p.text] }
        return words.joined(separator: " ")
    }

    /// Kernel, stride and padding resolved for an input of `rank` spatial dimensions.
    func geometry(rank: Int) throws -> (kernel: [Int], stride: [Int], padding: [Int]) {
        guard let k = kernel.resolved(rank: rank) else {
            throw SpecError("needs a \(kernel.values.count)-D input")
        }
        guard let s = stride.resolved(rank: rank) else {
            throw SpecError("the stride \(stride.text) has \(stride.values.count) sizes for a \(rank)-D input")
        }
        let p: [Int]
        switch padding {
        case .half: p = k.map { $0 / 2 }
        case .sizes(let sizes):
            guard let resolved = sizes.resolved(rank: rank) else {
                throw SpecError("the padding \(sizes.text) has \(sizes.values.count) sizes for a \(rank)-D input")
            }
            p = resolved
        }
        return (k, s, p)
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count >= 2 else { throw SpecError("needs channels and spatial dimensions, got \(describe(input)); a convolution cannot follow dense or flatten") }
        let g: (kernel: [Int], stride: [Int], padding: [Int])
        do { g = try geometry(rank: input.count - 1) } catch let error as SpecError {
            throw SpecError("\(error.message), got \(describe(input))")
        }
        guard let sizes = slidingWindowOutputSizes(input: Array(input.dropFirst()), window: g.kernel, stride: g.stride,
                                                   padding: g.padding) else {
            throw SpecError("the kernel \(kernel.text) is larger than the padded input \(describe(input))")
        }
        return [outChannels] + sizes
    }

    public func parameterCount(for input: [Int]) -> Int {
        let area = (try? geometry(rank: input.count - 1))?.kernel.reduce(1, *) ?? 0
        return outChannels * input[0] * area + outChannels
    }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        try makeLayer(for: input, fastPaths: fastPaths, activation: .identity, random: &random)
    }

    /// With `activation` fused in (a `relu` module right after it, as the compiler rewrites it).
    /// Fast path: a 2-D convolution at stride 1 with equal padding on both axes is Conv2D
    /// (chunked im2col, ollie's AVX-512 GEMMs, and the conv → max-pool fusion); any other
    /// stride-1 convolution (3-D over clips, 1-D, unequal paddings) is StrideOneConvolution;
    /// anything else, or everything without fast paths, is the portable ConvolutionND.
    func makeLayer(for input: [Int], fastPaths: Bool, activation: Activation, random: inout Random) throws -> Layer {
        let g = try geometry(rank: input.count - 1)
        if fastPaths, g.kernel.count == 2, g.stride == [1, 1], g.padding[0] == g.padding[1] {
            return Conv2D(input[0], outChannels, kernel: (g.kernel[0], g.kernel[1]), padding: g.padding[0],
                          activation: activation, random: &random)
        }
        if fastPaths, g.stride.allSatisfy({ $0 == 1 }), zip(g.kernel, g.padding).allSatisfy({ $1 < $0 }) {
            return StrideOneConvolution(inChannels: input[0], outChannels: outChannels, kernel: g.kernel, padding: g.padding,
                                        activation: activation, random: &random)
        }
        return ConvolutionND(inChannels: input[0], outChannels: outChannels, kernel: g.kernel, stride: g.stride,
                             padding: g.padding, activation: activation, random: &random)
    }
}
