import Tensor

/// What a layer applies to its output; `.relu` is fused into the layer's own passes.
public enum Activation: String, Sendable {
    case identity, relu
}

/// How a `Convolution` computes; chosen from its geometry (`choose`), all computing the same
/// function (the tests compare them with each other and with naive references).
public enum ConvolutionAlgorithm: String, Sendable {
    /// 2-D, stride 1, the same padding on both axes: im2col in L2-sized chunks of images, and the
    /// fusion with a max-pool after it (ChunkedPlaneConvolution.swift).
    case chunkedPlane
    /// Any rank, stride 1, paddings below the kernel: im2col (or an implicit one, where the kernels take the rows) in
    /// L2-sized blocks of frames; dx as a convolution of dy (StrideOneConvolution.swift).
    case strideOne
    /// Any rank, stride, padding and groups: plain loops, the reference for the others
    /// (PortableConvolution.swift).
    case portable

    /// The fastest algorithm that takes this geometry; `.portable` without fast paths.
    public static func choose(kernel: [Int], stride: [Int], padding: [Int], groups: Int = 1,
                              fastPaths: Bool) -> ConvolutionAlgorithm {
        guard fastPaths else { return .portable }
        return [.chunkedPlane, .strideOne].first { $0.takes(kernel: kernel, stride: stride, padding: padding, groups: groups) }
            ?? .portable
    }

    /// Whether this algorithm computes a convolution of this geometry. Only the portable one
    /// splits its channels into groups.
    public func takes(kernel: [Int], stride: [Int], padding: [Int], groups: Int = 1) -> Bool {
        switch self {
        case .chunkedPlane: groups == 1 && kernel.count == 2 && stride == [1, 1] && padding[0] == padding[1]
        case .strideOne: groups == 1 && stride.allSatisfy { $0 == 1 } && zip(kernel, padding).allSatisfy { $1 < $0 }
        case .portable: true
        }
    }
}

/// A convolution of any spatial rank (1-, 2- or 3-D), any stride, symmetric zero padding,
/// optional channel groups, optional fused ReLU: Flux's `Conv`, one layer whatever algorithm
/// computes it.
///
/// Shapes (k = rank = kernel.count, G = groups): x [C, N, D1…Dk] → y [OC, N, O1…Ok] with
/// Oi = ⌊(Di + 2·pi − ki) / si⌋ + 1 (`slidingWindowOutputSizes`). weight [OC, C/G, k1…kk]
/// (PyTorch's layout; as a matrix [OC, (C/G)·∏k], columns in c, k1…kk order); bias [OC].
/// Output channels g·OC/G ..< (g+1)·OC/G see only input channels g·C/G ..< (g+1)·C/G
/// (PyTorch's `groups`; G = C is a depthwise convolution).
///
/// Forward:  y = relu?(W ⋆ x + b), as GEMMs over im2col matrices in cache-sized chunks.
/// Backward: g = dy ⊙ (y > 0) under a ReLU (a copy the layer owns: dy is only read, as it may
///           feed other consumers), db += Σ g (`accumulateBiasGradient`), dW += g·colsᵀ and,
///           unless this is the model's first layer, dx = Wᵀ ⋆ g.
/// `algorithm` is chosen from the geometry (`ConvolutionAlgorithm.choose`); with `fastPaths`
/// off it is the portable one. A chunked-plane convolution followed by a square 2-D max-pool,
/// or a stride-one one followed by a k×2×2 max-pool, can run fused with it (`canFuse(with:)`,
/// `forward(_:pooledBy:)`).
/// Cache: the algorithm's (the input or a zero-bordered copy, y for the ReLU mask, one chunk's
/// cols). Buffers grow once and are reused.
public final class Convolution: Layer, SkipsInputGradient {
    public let inChannels: Int, outChannels: Int
    public let kernel: [Int], stride: [Int], padding: [Int]
    /// Channel groups: 1 for an ordinary convolution, `inChannels` for a depthwise one.
    public let groups: Int
    public let activation: Activation
    public let weight: Parameter
    public let bias: Parameter
    public let algorithm: ConvolutionAlgorithm

    /// The algorithm with its caches.
    enum Engine {
        case chunkedPlane(ChunkedPlaneConvolution)
        case strideOne(StrideOneConvolution)
        case portable(PortableConvolution)
    }
    let engine: Engine

    /// False for a model's first layer: nobody reads dx there, and computing it is a third of
    /// the layer's backward work.
    public var needsInputGradient: Bool {
        get {
            switch engine {
            case .chunkedPlane(let e): e.needsInputGradient
            case .strideOne(let e): e.needsInputGradient
            case .portable(let e): e.needsInputGradient
            }
        }
        set {
            switch engine {
            case .chunkedPlane(let e): e.needsInputGradient = newValue
            case .strideOne(let e): e.needsInputGradient = newValue
            case .portable(let e): e.needsInputGradient = newValue
            }
        }
    }

    /// The most bytes one chunk's cols may take (at least one sample's or frame's, whatever this
    /// says); each algorithm has its own measured default.
    public var chunkBytes: Int {
        get {
            switch engine {
            case .chunkedPlane(let e): e.chunkBytes
            case .strideOne(let e): e.chunkBytes
            case .portable(let e): e.chunkBytes
            }
        }
        set {
            switch engine {
            case .chunkedPlane(let e): e.chunkBytes = newValue
            case .strideOne(let e): e.chunkBytes = newValue
            case .portable(let e): e.chunkBytes = newValue
            }
        }
    }

    public var rank: Int { kernel.count }
    public var relu: Bool { activation == .relu }

    /// The fastest algorithm for this geometry (`fastPaths`), else the portable one.
    public convenience init(inChannels: Int, outChannels: Int, kernel: [Int], stride: [Int]? = nil, padding: [Int]? = nil,
                            groups: Int = 1, activation: Activation = .identity, fastPaths: Bool = true, random: inout Random) {
        let stride = stride ?? kernel.map { _ in 1 }, padding = padding ?? kernel.map { _ in 0 }
        self.init(inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride, padding: padding,
                  groups: groups, activation: activation,
                  algorithm: .choose(kernel: kernel, stride: stride, padding: padding, groups: groups, fastPaths: fastPaths),
                  random: &random)
    }

    /// With the given algorithm, which must take this geometry (the tests compare them).
    public init(inChannels: Int, outChannels: Int, kernel: [Int], stride: [Int], padding: [Int], groups: Int = 1,
                activation: Activation = .identity, algorithm: ConvolutionAlgorithm, random: inout Random) {
        precondition((1...3).contains(kernel.count), "a convolution takes 1, 2 or 3 kernel sizes, got \(kernel)")
        precondition(stride.count == kernel.count && padding.count == kernel.count,
                     "a convolution needs one stride and one padding per kernel dimension (kernel \(kernel), stride \(stride), padding \(padding))")
        precondition(inChannels > 0 && outChannels > 0 && kernel.allSatisfy { $0 > 0 } && stride.allSatisfy { $0 > 0 }
                     && padding.allSatisfy { $0 >= 0 },
                     "a convolution needs positive channel counts, kernel sizes and strides and non-negative paddings")
        precondition(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0,
                     "a convolution's groups (\(groups)) must divide its input (\(inChannels)) and output (\(outChannels)) channels")
        precondition(algorithm.takes(kernel: kernel, stride: stride, padding: padding, groups: groups),
                     "the \(algorithm) convolution cannot take kernel \(kernel), stride \(stride), padding \(padding), groups \(groups)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.activation = activation
        self.algorithm = algorithm
        (weight, bias) = convolutionParameters(inChannels: inChannels, outChannels: outChannels, kernel: kernel, groups: groups,
                                               random: &random)
        engine = Self.makeEngine(algorithm, inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride,
                                 padding: padding, groups: groups, activation: activation, weight: weight, bias: bias)
    }

    /// 2-D, stride 1, the same padding on both axes (Flux's `Conv((3, 3), 1 => 16, pad=1, relu)`).
    public convenience init(_ inChannels: Int, _ outChannels: Int, kernel: (height: Int, width: Int), padding: Int = 0,
                            activation: Activation = .identity, random: inout Random) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernel: [kernel.height, kernel.width],
                  padding: [padding, padding], activation: activation, random: &random)
    }

    public convenience init(_ inChannels: Int, _ outChannels: Int, kernel: Int, padding: Int = 0,
                            activation: Activation = .identity, random: inout Random) {
        self.init(inChannels, outChannels, kernel: (kernel, kernel), padding: padding, activation: activation, random: &random)
    }

    private init(sharing other: Convolution) {
        inChannels = other.inChannels; outChannels = other.outChannels
        kernel = other.kernel; stride = other.stride; padding = other.padding; groups = other.groups
        activation = other.activation
        algorithm = other.algorithm
        weight = Parameter(sharing: other.weight)
        bias = Parameter(sharing: other.bias)
        engine = Self.makeEngine(algorithm, inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride,
                                 padding: padding, groups: groups, activation: activation, weight: weight, bias: bias)
        needsInputGradient = other.needsInputGradient
        chunkBytes = other.chunkBytes
    }

    private static func makeEngine(_ algorithm: ConvolutionAlgorithm, inChannels: Int, outChannels: Int, kernel: [Int],
                                   stride: [Int], padding: [Int], groups: Int, activation: Activation,
                                   weight: Parameter, bias: Parameter) -> Engine {
        let description = NDLayerText.convolution(kernel: kernel, inChannels, outChannels, stride: stride, padding: padding,
                                                  groups: groups, activation: activation)
        switch algorithm {
        case .chunkedPlane:
            return .chunkedPlane(ChunkedPlaneConvolution(inChannels, outChannels, kernel: (kernel[0], kernel[1]), padding: padding[0],
                                                         activation: activation, weight: weight, bias: bias, description: description))
        case .strideOne:
            return .strideOne(StrideOneConvolution(inChannels: inChannels, outChannels: outChannels, kernel: kernel, padding: padding,
                                                   activation: activation, weight: weight, bias: bias, description: description))
        case .portable:
            return .portable(PortableConvolution(inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride,
                                                 padding: padding, groups: groups, activation: activation, weight: weight,
                                                 bias: bias, description: description))
        }
    }

    public func replica() -> Layer { Convolution(sharing: self) }
    public var parameters: [Parameter] { [weight, bias] }

    /// Flux's form, the same for every algorithm: "Conv((3, 3), 1 => 16, stride=2, pad=1, relu)",
    /// "Conv((3, 3), 32 => 32, pad=1, groups=32)".
    public var description: String {
        NDLayerText.convolution(kernel: kernel, inChannels, outChannels, stride: stride, padding: padding, groups: groups,
                                activation: activation)
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == rank + 1, input[0] == inChannels else {
            throw ModelError("\(description) needs \(inChannels)×\(Array(repeating: "D", count: rank).joined(separator: "×")) inputs"
                             + " (\(inChannels) channels, \(rank) spatial dimension\(rank == 1 ? "" : "s")), got \(shapeText(input))")
        }
        guard let sizes = slidingWindowOutputSizes(input: Array(input.dropFirst()), window: kernel, stride: stride, padding: padding) else {
            throw ModelError("\(description) cannot take \(shapeText(Array(input.dropFirst()))) inputs: the kernel"
                             + " (\(shapeText(kernel))) is larger than the padded input")
        }
        return [outChannels] + sizes
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        switch engine {
        case .chunkedPlane(let e): e.forward(x)
        case .strideOne(let e): e.forward(x)
        case .portable(let e): e.forward(x)
        }
    }

    /// `dout` is only read: under a ReLU its masked copy goes to a buffer the layer owns.
    public func backward(_ dout: Tensor) -> Tensor {
        switch engine {
        case .chunkedPlane(let e): e.backward(dout)
        case .strideOne(let e): e.backward(dout)
        case .portable(let e): e.backward(dout)
        }
    }

    // MARK: fused with a max-pool

    /// Whether this convolution and `pool` after it can run as one chunked step
    /// (`forward(_:pooledBy:)`): a chunked-plane convolution (2-D, stride 1) and a square 2-D max
    /// pool with stride = window, or a stride-one convolution (any rank) and a k×2×2 max pool
    /// with stride = window. Then each chunk's output is pooled while it is in cache, and
    /// backward routes the pooled gradient straight into the convolution's, masked by its
    /// ReLU: the chunked-plane one never writes its full-size output (the largest activation:
    /// 16×28×28 floats an image in the reference model) nor its gradient, the stride-one one
    /// saves the pool's full-size gradient and the pass that masks it. Never a grouped
    /// convolution or a padded pool (no algorithm takes them; checked here too).
    public func canFuse(with pool: Pooling) -> Bool {
        guard groups == 1, pool.padding.allSatisfy({ $0 == 0 }) else { return false }
        switch (engine, pool.engine) {
        case (.chunkedPlane, .squareMax): return true
        case (.strideOne, .portable(let frames)): return frames.takesFrames && pool.rank == rank
        default: return false
        }
    }

    /// Convolution (+ ReLU) and then `pool`, chunk by chunk (`canFuse(with: pool)` must hold).
    /// Returns and fills `pool`'s output and cache as `pool.forward` would;
    /// `backward(pooledGradient:pooledBy:)` undoes both.
    public func forward(_ x: Tensor, pooledBy pool: Pooling) -> Tensor {
        switch (engine, pool.engine) {
        case (.chunkedPlane(let conv), .squareMax(let maxPool)): return conv.forward(x, pooledBy: maxPool)
        case (.strideOne(let conv), .portable(let frames)) where canFuse(with: pool): return conv.forward(x, pooledBy: frames)
        default: preconditionFailure("\(description) cannot run fused with \(pool)")
        }
    }

    /// The backward of `forward(_:pooledBy:)`, from the gradient of the pooled output (only read).
    public func backward(pooledGradient dout: Tensor, pooledBy pool: Pooling) -> Tensor {
        switch (engine, pool.engine) {
        case (.chunkedPlane(let conv), .squareMax(let maxPool)): return conv.backward(pooledGradient: dout, pooledBy: maxPool)
        case (.strideOne(let conv), .portable(let frames)) where canFuse(with: pool):
            return conv.backward(pooledGradient: dout, pooledBy: frames)
        default: preconditionFailure("\(description) cannot run fused with \(pool)")
        }
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
                            groups: Int = 1, activation: Activation) -> String {
        "Conv(\(tuple(kernel)), \(inChannels) => \(outChannels)"
            + (stride.allSatisfy { $0 == 1 } ? "" : ", stride=\(compact(stride))")
            + (padding.allSatisfy { $0 == 0 } ? "" : ", pad=\(compact(padding))")
            + (groups == 1 ? "" : ", groups=\(groups)")
            + (activation == .relu ? ", relu" : "") + ")"
    }

    /// "2" when every dimension has the same value, else the tuple.
    static func compact(_ values: [Int]) -> String {
        values.allSatisfy({ $0 == values[0] }) ? "\(values[0])" : tuple(values)
    }
}
