import Tensor

/// A trainable tensor: its value and the gradient that backward passes accumulate into (+=).
public final class Parameter: @unchecked Sendable {
    /// PyTorch-style key, e.g. "3.body.0.weight": the path of the layer in the model, then
    /// `localName` (set once the model is assembled; see `Model.init`).
    public var name: String
    /// The name within its layer ("weight", "weight_ih_l0", "proj.bias").
    public let localName: String
    public let value: Tensor
    public let grad: Tensor

    public init(name: String, value: Tensor) {
        self.name = name
        self.localName = name
        self.value = value
        self.grad = Tensor(value.shape)
    }

    /// A parameter that shares this one's value storage object but owns its gradient: what a
    /// data-parallel worker trains with.
    public init(sharing other: Parameter) {
        self.name = other.name
        self.localName = other.localName
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

/// A layer made of named layers (a chain, a residual block, a per-frame wrapper): the model is
/// a small tree of these over plain layers, and tensor names follow it as PyTorch's module tree
/// would ("3.body.0.weight").
public protocol Container: Layer {
    var children: [(name: String, layer: Layer)] { get }
}

extension Container {
    public var parameters: [Parameter] { children.flatMap(\.layer.parameters) }
    public var buffers: [Parameter] { children.flatMap(\.layer.buffers) }
    public func prepareStep(seed: UInt64, step: Int, worker: Int) {
        for child in children { child.layer.prepareStep(seed: seed, step: step, worker: worker) }
    }
}

/// Names every parameter and buffer under `layer` by its path: "PREFIX" + child names joined
/// by dots + the tensor's local name. Idempotent, so replicas can be named again.
func nameTensors(of layer: Layer, prefix: String) {
    if let container = layer as? Container {
        for (name, child) in container.children { nameTensors(of: child, prefix: prefix + name + ".") }
        return
    }
    for p in layer.parameters + layer.buffers { p.name = prefix + p.localName }
}

/// A layer that can skip computing its input gradient (when nothing before it needs one).
public protocol SkipsInputGradient: AnyObject {
    var needsInputGradient: Bool { get set }
}

extension Dense: SkipsInputGradient {}
