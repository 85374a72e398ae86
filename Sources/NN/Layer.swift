import Tensor

/// A trainable tensor: its value and the gradient that backward passes accumulate into (+=).
public final class Parameter: @unchecked Sendable {
    /// PyTorch-style key, e.g. "conv1.weight" (set by the model that owns the layer).
    public var name: String
    public let value: Tensor
    public let grad: Tensor

    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value
        self.grad = Tensor(value.shape)
    }

    /// A parameter that shares this one's value storage object but owns its gradient: what a
    /// data-parallel worker trains with.
    public init(sharing other: Parameter) {
        self.name = other.name
        self.value = other.value
        self.grad = Tensor(other.value.shape)
    }
}

/// One layer: forward and backward side by side, its parameters, and the cache backward needs.
///
/// Shapes are per batch. Image activations are [C, N, H, W] (see `Tensor`); flat ones [N, F].
/// `forward` returns a tensor the layer owns and overwrites on the next call; `backward` takes
/// the gradient of the loss with respect to that output and returns the gradient with respect
/// to the input of the last `forward`, accumulating parameter gradients (+=).
public protocol Layer: AnyObject, CustomStringConvertible {
    var parameters: [Parameter] { get }
    /// The output shape for one sample's input shape ([C, H, W] or [F]); throws when the layer
    /// cannot take that input, so `build` rejects a bad model before any data flows.
    func outputShape(for input: [Int]) throws -> [Int]
    func forward(_ x: Tensor, training: Bool) -> Tensor
    func backward(_ dout: Tensor) -> Tensor
    /// A copy that shares parameter values but owns gradients and caches (for a worker thread).
    func replica() -> Layer
    /// Tensors that are state but not trained (batchnorm's running statistics): saved with
    /// checkpoints under the same naming as parameters, never stepped by an optimizer.
    var buffers: [Parameter] { get }
    /// Called before each training step on each worker, so a layer that draws random numbers
    /// (dropout) draws them as a function of (seed, step, worker): the same seed and thread
    /// count give the same bits, and a resumed run needs no generator state beyond the step.
    func prepareStep(seed: UInt64, step: Int, worker: Int)
}

extension Layer {
    public var buffers: [Parameter] { [] }
    public func prepareStep(seed: UInt64, step: Int, worker: Int) {}
}

/// A layer that can skip computing its input gradient (when nothing before it needs one).
public protocol SkipsInputGradient: AnyObject {
    var needsInputGradient: Bool { get set }
}

extension Dense: SkipsInputGradient {}
