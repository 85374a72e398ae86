import Tensor

/// A convolution (with its ReLU) and the max-pool after it, run as one step, chunk by chunk
/// (`Convolution.canFuse(with:)`): each chunk's output is pooled in cache, and the pooled
/// gradient goes straight into the convolution's, masked by its ReLU. The spec compiler makes
/// it where the shapes allow (`ModelSpec.compile`); the numbers are the unfused pair's up to
/// float rounding (tested). Its tensors are the convolution's, under the convolution's name.
public final class ConvolutionThenPool: Unfusable {
    public let convolution: Convolution
    public let pool: Pooling
    /// The pool's module name in the chain (the convolution's is this layer's own).
    let poolName: String

    /// `convolution.canFuse(with: pool)` must hold.
    init(_ convolution: Convolution, _ pool: Pooling, poolName: String) {
        precondition(convolution.canFuse(with: pool), "\(convolution) cannot run fused with \(pool)")
        self.convolution = convolution
        self.pool = pool
        self.poolName = poolName
    }

    public func replica() -> Layer {
        // swiftlint:disable:next force_cast
        ConvolutionThenPool(convolution.replica() as! Convolution, pool.replica() as! Pooling, poolName: poolName)
    }

    public var parameters: [Parameter] { convolution.parameters }
    public var description: String { "\(convolution) → \(pool)" }

    public func outputShape(for input: [Int]) throws -> [Int] {
        try pool.outputShape(for: convolution.outputShape(for: input))
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor { convolution.forward(x, pooledBy: pool) }
    public func backward(_ dout: Tensor) -> Tensor { convolution.backward(pooledGradient: dout, pooledBy: pool) }

    public func unfusedParts(named name: String) -> [(name: String, layer: Layer)] {
        [(name, convolution.replica()), (poolName, pool.replica())]
    }
}

extension ConvolutionThenPool: SkipsInputGradient {
    public var needsInputGradient: Bool {
        get { convolution.needsInputGradient }
        set { convolution.needsInputGradient = newValue }
    }
}
