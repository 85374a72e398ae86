import Tensor

/// A 2-D convolution (with its ReLU) and the max-pool after it, run as one step, chunk by
/// chunk: the convolution's full-size output (the largest activation: 16×28×28 floats an
/// image in the reference model) is never written out and read back. The spec compiler makes
/// it where the shapes allow (`ModelSpec.compile`); the numbers are the unfused pair's up to
/// float rounding (tested). Its tensors are the convolution's, under the convolution's name.
public final class ConvolutionThenPool: Unfusable {
    public let convolution: Conv2D
    public let pool: MaxPool2D
    /// The pool's module name in the chain (the convolution's is this layer's own).
    let poolName: String

    init(_ convolution: Conv2D, _ pool: MaxPool2D, poolName: String) {
        self.convolution = convolution
        self.pool = pool
        self.poolName = poolName
    }

    public func replica() -> Layer {
        // swiftlint:disable:next force_cast
        ConvolutionThenPool(convolution.replica() as! Conv2D, MaxPool2D(pool.size), poolName: poolName)
    }

    public var parameters: [Parameter] { convolution.parameters }
    public var description: String { "\(convolution) → \(pool)" }

    public func outputShape(for input: [Int]) throws -> [Int] {
        try pool.outputShape(for: convolution.outputShape(for: input))
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor { convolution.forward(x, pooledBy: pool) }
    public func backward(_ dout: Tensor) -> Tensor { convolution.backward(pooledGradient: dout, pooledBy: pool) }

    public func unfusedParts(named name: String) -> [(name: String, layer: Layer)] {
        [(name, convolution.replica()), (poolName, MaxPool2D(pool.size))]
    }
}

extension ConvolutionThenPool: SkipsInputGradient {
    public var needsInputGradient: Bool {
        get { convolution.needsInputGradient }
        set { convolution.needsInputGradient = newValue }
    }
}

extension ConvSpec {
    /// This convolution (with `activation`) and `pool` as one fused layer, when the shapes
    /// allow it: a 2-D convolution at stride 1 with equal padding on both axes (the Conv2D
    /// algorithm), then a square 2-D max-pool whose stride is its window. Nil otherwise (and
    /// nothing drawn from `random`).
    func fusedLayer(for input: [Int], activation: Activation, pool: PoolSpec, poolInput: [Int], poolName: String,
                    random: inout Random) throws -> Layer? {
        let g = try geometry(rank: input.count - 1), p = try pool.geometry(rank: poolInput.count - 1)
        guard g.kernel.count == 2, g.stride == [1, 1], g.padding[0] == g.padding[1],
              !pool.average, p.kernel[0] == p.kernel[1], p.stride == p.kernel else { return nil }
        let convolution = Conv2D(input[0], outChannels, kernel: (g.kernel[0], g.kernel[1]), padding: g.padding[0],
                                 activation: activation, random: &random)
        return ConvolutionThenPool(convolution, MaxPool2D(p.kernel[0]), poolName: poolName)
    }
}
