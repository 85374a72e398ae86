import CBLAS
import Tensor

/// What a layer applies to its output; `.relu` is fused into the layer's own passes.
public enum Activation: String, Sendable {
    case identity, relu
}

/// 2-D convolution, stride 1, zero padding, optional fused ReLU, as GEMMs over chunks of images.
///
/// Shapes: x [C, N, H, W] → y [OC, N, OH, OW], OH = H + 2·pad − kh + 1, OW = W + 2·pad − kw + 1.
/// weight [OC, C, kh, kw] (PyTorch's layout; as a matrix [OC, C·kh·kw], columns in c, ky, kx
/// order); bias [OC].
///
/// Forward:  padded = x with a zero border [C, N, H+2p, W+2p]; per chunk of images,
///           cols = im2col(padded) [C·kh·kw, images·OH·OW] and y[:, chunk] = W·cols;
///           y[:, chunk] = relu?(y + b) while it is still in cache.
/// Backward: per chunk (last first): dy ⊙= (y > 0) if relu; db += Σ_row dy; cols again;
///           dW += dy·colsᵀ and, unless this is the model's first layer, dcols = Wᵀ·dy
///           (written over cols), dx = col2im(dcols) (a gather straight into dx).
/// Chunks are sized so that cols stays in the L2 cache (`chunkBytes`): the im2col matrix is
/// 9× the input for a 3×3 kernel, and writing it out whole and reading it back three times
/// was memory traffic of ~50 GB an epoch. Backward rebuilds each chunk's cols from the padded
/// input (cheap, from cache) except the last one, which forward left in the buffer.
/// Cache: padded input, y (the ReLU mask). Buffers grow once and are reused.
public final class Conv2D: Layer {
    public let inChannels: Int, outChannels: Int
    public let kernelHeight: Int, kernelWidth: Int
    public let padding: Int
    public let activation: Activation
    public let weight: Parameter
    public let bias: Parameter
    /// False for a model's first layer: nobody reads dx there, and computing it is a third of
    /// the layer's backward work.
    public var needsInputGradient = true

    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private let padded = Scratch()          // [C, N, H+2p, W+2p] + slack, border always zero
    private let cols = Scratch()            // [C·kh·kw, images·OH·OW] + slack, one chunk; dcols in backward
    private var colsChunk: Range<Int>?      // the images whose cols the buffer holds
    private var paddedShape: [Int] = []
    private var inputShape: [Int] = []

    /// The most bytes one chunk's cols may take: about half of a 1 MB L2 cache (256 KB to 1 MB
    /// measured within 2 % of each other; the whole batch at once 11 % slower).
    public var chunkBytes = 512 * 1024

    public var relu: Bool { activation == .relu }
    /// The kernel side when square (as the reference model's are).
    public var kernel: Int { kernelHeight }

    public init(_ inChannels: Int, _ outChannels: Int, kernel: (height: Int, width: Int), padding: Int = 0,
                activation: Activation = .identity, random: inout Random) {
        precondition(inChannels > 0 && outChannels > 0 && kernel.height > 0 && kernel.width > 0 && padding >= 0,
                     "Conv2D needs positive channel counts and kernel sizes and a non-negative padding")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelHeight = kernel.height
        self.kernelWidth = kernel.width
        self.padding = padding
        self.activation = activation
        let area = kernel.height * kernel.width
        weight = Parameter(name: "weight", value: glorotUniform([outChannels, inChannels, kernel.height, kernel.width],
                                                                fanIn: inChannels * area, fanOut: outChannels * area,
                                                                random: &random))
        bias = Parameter(name: "bias", value: Tensor([outChannels]))
    }

    public convenience init(_ inChannels: Int, _ outChannels: Int, kernel: Int, padding: Int = 0,
                            activation: Activation = .identity, random: inout Random) {
        self.init(inChannels, outChannels, kernel: (kernel, kernel), padding: padding, activation: activation, random: &random)
    }

    private init(sharing other: Conv2D) {
        inChannels = other.inChannels; outChannels = other.outChannels
        kernelHeight = other.kernelHeight; kernelWidth = other.kernelWidth
        padding = other.padding; activation = other.activation
        weight = Parameter(sharing: other.weight)
        bias = Parameter(sharing: other.bias)
        needsInputGradient = other.needsInputGradient
        chunkBytes = other.chunkBytes
    }

    public func replica() -> Layer { Conv2D(sharing: self) }

    public var parameters: [Parameter] { [weight, bias] }

    public var description: String {
        "Conv((\(kernelHeight), \(kernelWidth)), \(inChannels) => \(outChannels)"
            + (padding > 0 ? ", pad=\(padding)" : "") + (relu ? ", relu" : "") + ")"
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 3, input[0] == inChannels else {
            throw ModelError("\(description) needs \(inChannels)×H×W inputs, got \(shapeText(input))")
        }
        let h = input[1] + 2 * padding - kernelHeight + 1, w = input[2] + 2 * padding - kernelWidth + 1
        guard h > 0, w > 0 else {
            throw ModelError("\(description) cannot take \(input[1])×\(input[2]) images: the kernel is larger than the padded image")
        }
        return [outChannels, h, w]
    }

    // MARK: forward

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[0] == inChannels, "\(description) got input \(x.shape)")
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (hp, wp) = (h + 2 * padding, w + 2 * padding)
        let (oh, ow) = (hp - kernelHeight + 1, wp - kernelWidth + 1)
        let rows = c * kernelHeight * kernelWidth, columns = n * oh * ow
        inputShape = x.shape
        if paddedShape != [c, n, hp, wp] {
            padded.reserve(c * n * hp * wp + vectorSlack)
            padded.zero(c * n * hp * wp + vectorSlack)   // the border is never written again
            paddedShape = [c, n, hp, wp]
        }
        let chunk = chunkSize(images: n, rows: rows, imageColumns: oh * ow)
        cols.reserve(rows * chunk * oh * ow + vectorSlack)
        output.resize([outChannels, n, oh, ow])

        let planes = c * n
        x.data.withUnsafeBufferPointer { xp in
            for plane in 0..<planes {
                copyRows(xp.baseAddress! + plane * h * w, srcStride: w,
                         padded.base + plane * hp * wp + padding * wp + padding, dstStride: wp,
                         rows: h, width: w)
            }
        }
        weight.value.data.withUnsafeBufferPointer { wt in
            output.data.withUnsafeMutableBufferPointer { yp in
                bias.value.data.withUnsafeBufferPointer { b in
                    for first in stride(from: 0, to: n, by: chunk) {
                        let images = first..<min(first + chunk, n), span = images.count * oh * ow
                        im2col(images, c: c, n: n, hp: hp, wp: wp, oh: oh, ow: ow)
                        let y = yp.baseAddress! + first * oh * ow
                        BLAS.sgemm(m: outChannels, n: span, k: rows, a: wt.baseAddress!, lda: rows,
                                   b: cols.base, ldb: span, c: y, ldc: columns, sameA: first > 0)
                        addBias(y, b.baseAddress!, rows: outChannels, columns: span, stride: columns, relu: relu)
                    }
                }
            }
        }
        return output
    }

    private func im2col(_ images: Range<Int>, c: Int, n: Int, hp: Int, wp: Int, oh: Int, ow: Int) {
        ollie_im2col(padded.base, cols.base, Int32(c), Int32(n), Int32(images.lowerBound), Int32(images.count),
                     Int32(hp), Int32(wp), Int32(kernelHeight), Int32(kernelWidth), Int32(oh), Int32(ow))
        colsChunk = images
    }

    /// Images per chunk: as many as keep one chunk's cols within `chunkBytes`, at least one.
    private func chunkSize(images: Int, rows: Int, imageColumns: Int) -> Int {
        let bytesPerImage = rows * imageColumns * MemoryLayout<Float>.size
        return max(1, min(images, chunkBytes / bytesPerImage))
    }

    // MARK: backward

    /// `dout` is masked in place by the ReLU: it belongs to the layer above, which is done with it.
    public func backward(_ dout: Tensor) -> Tensor {
        let (c, n) = (inputShape[0], inputShape[1])
        let (hp, wp) = (paddedShape[2], paddedShape[3])
        let (oh, ow) = (output.shape[2], output.shape[3])
        let rows = c * kernelHeight * kernelWidth, columns = n * oh * ow
        precondition(dout.count == outChannels * columns, "\(description): gradient \(dout.shape) for output \(output.shape)")
        let (h, w) = (inputShape[2], inputShape[3])
        if needsInputGradient { inputGradient.resize(inputShape) }
        let chunk = chunkSize(images: n, rows: rows, imageColumns: oh * ow)
        let firsts = Array(stride(from: 0, to: n, by: chunk).reversed())   // forward's last chunk first
        dout.data.withUnsafeMutableBufferPointer { dyp in
          inputGradient.data.withUnsafeMutableBufferPointer { dx in
            output.data.withUnsafeBufferPointer { yp in
                weight.value.data.withUnsafeBufferPointer { wt in
                    weight.grad.data.withUnsafeMutableBufferPointer { dw in
                        bias.grad.data.withUnsafeMutableBufferPointer { db in
                            for first in firsts {
                                let images = first..<min(first + chunk, n), span = images.count * oh * ow
                                let dy = dyp.baseAddress! + first * oh * ow
                                for o in 0..<outChannels {
                                    let row = dy + o * columns
                                    db[o] += relu ? ollie_relu_mask_sum(row, yp.baseAddress! + first * oh * ow + o * columns, Int32(span))
                                                  : sum(row, count: span)
                                }
                                if colsChunk != images { im2col(images, c: c, n: n, hp: hp, wp: wp, oh: oh, ow: ow) }
                                BLAS.sgemm(transB: true, m: outChannels, n: rows, k: span, a: dy, lda: columns,
                                           b: cols.base, ldb: span, beta: 1, c: dw.baseAddress!, ldc: rows)
                                colsChunk = nil   // overwritten below, or by the next chunk
                                guard needsInputGradient else { continue }
                                BLAS.sgemm(transA: true, m: rows, n: span, k: outChannels, a: wt.baseAddress!, lda: rows,
                                           b: dy, ldb: columns, c: cols.base, ldc: span, sameA: first != firsts[0])
                                ollie_col2im(cols.base, dx.baseAddress!, Int32(c), Int32(n), Int32(first), Int32(images.count),
                                             Int32(h), Int32(w), Int32(padding), Int32(kernelHeight), Int32(kernelWidth),
                                             Int32(oh), Int32(ow))
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

// MARK: kernels

/// y[o, :] += b[o], then max(0, ·) when fused: one pass over the GEMM's output.
/// Shapes: y [rows, columns] with rows `stride` apart, b [rows].
func addBias(_ y: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int, relu: Bool) {
    for o in 0..<rows {
        let row = y + o * stride, bo = b[o]
        if relu {
            for i in 0..<columns { row[i] = max(row[i] + bo, 0) }
        } else {
            for i in 0..<columns { row[i] += bo }
        }
    }
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
