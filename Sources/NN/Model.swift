import Tensor

/// A model: a chain of named layers (some of them containers: residual blocks, per-frame
/// networks), like Flux's `Chain`. A model compiled from a spec (`ModelSpec.compile`) prints
/// as that spec, and its tensors are named as PyTorch's module tree of the same layers names
/// them ("0.weight", "3.body.0.weight", "10.bias").
public final class Model: @unchecked Sendable, CustomStringConvertible {
    /// The top-level chain; `layers` are its children.
    public let root: Chain
    public var layers: [(name: String, layer: Layer)] { root.children }
    /// One sample's input shape, [C, D…] (or [F]).
    public let inputShape: [Int]
    public let parameters: [Parameter]
    /// Non-trained state saved with the weights (batchnorm's running statistics).
    public let buffers: [Parameter]
    /// The spec it was compiled from, and its modules for `summary`; nil for a model put
    /// together by hand (tests, older checkpoints' recipes).
    public let spec: ModelSpec?
    public let modules: [ModuleSummary]
    /// Top-level modules (as `summary` numbers them) whose parameters training leaves as they
    /// are; see Freezing.swift.
    public internal(set) var frozenModules: Set<Int> = []
    /// What the optimizer steps: the parameters of the modules not frozen, in `parameters`' order.
    public internal(set) var trainableParameters: [Parameter] = []
    /// The first top-level layer with a trainable parameter: backward stops there, since no
    /// layer before it has anything to learn.
    public internal(set) var firstTrainedLayer = 0

    /// Checks every layer's shapes against the input before any data flows, and names every
    /// tensor by its path in the tree.
    public convenience init(inputShape: [Int], layers: [(name: String, layer: Layer)], spec: ModelSpec? = nil,
                            modules: [ModuleSummary] = []) throws {
        try self.init(inputShape: inputShape, layers: layers, spec: spec, modules: modules, namesTensors: true)
    }

    /// `namesTensors` false for replicas: their tensors carry the names already, and some are
    /// shared with the model (batchnorm's buffers), which worker threads must not write.
    private init(inputShape: [Int], layers: [(name: String, layer: Layer)], spec: ModelSpec?,
                 modules: [ModuleSummary], namesTensors: Bool) throws {
        self.inputShape = inputShape
        self.root = Chain(layers)
        self.spec = spec
        self.modules = modules
        if namesTensors {
            for (name, layer) in layers { nameTensors(of: layer, prefix: name + ".") }
        }
        parameters = root.parameters
        buffers = root.buffers
        try validate()
        // Nothing frozen: every parameter trains, and nobody reads the input gradient of the
        // layers before the first one with parameters, nor that one's.
        freeze([])
    }

    /// Runs the per-sample shape through every layer; throws naming the first layer that
    /// cannot take its input. Returns the output shape ([classes] for a classifier).
    @discardableResult
    public func validate() throws -> [Int] {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw ModelError("the input shape must be positive sizes, e.g. [1, 28, 28] (got \(inputShape))")
        }
        return try root.outputShape(for: inputShape)
    }

    /// Logits [N, classes] for a batch [C, N, H, W] (or [C, N, T, H, W] clips).
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        root.forward(x, training: training)
    }

    /// Logits, calling `observe(index, output)` after each top-level layer (for `stats`, on an
    /// unfused replica: the layers' caches are overwritten).
    public func forward(_ x: Tensor, training: Bool, observe: (Int, Tensor) -> Void) -> Tensor {
        var h = x
        for (index, (_, layer)) in layers.enumerated() {
            h = layer.forward(h, training: training)
            observe(index, h)
        }
        return h
    }

    /// The output of top-level layers `range` for a batch of what layer `range.lowerBound`
    /// takes: the logits from a cached prefix's outputs on, or a prefix's outputs.
    public func forward(_ x: Tensor, training: Bool, layers range: Range<Int>) -> Tensor {
        var h = x
        for (_, layer) in layers[range] { h = layer.forward(h, training: training) }
        return h
    }

    /// Backpropagates dL/dlogits down to the first layer with a trainable parameter,
    /// accumulating parameter gradients.
    public func backward(_ dlogits: Tensor) {
        var g = dlogits
        for (_, layer) in layers[firstTrainedLayer...].reversed() { g = layer.backward(g) }
    }

    /// Before a training step on a worker: the step's random stream for layers that draw (dropout).
    public func prepareStep(seed: UInt64, step: Int, worker: Int) {
        root.prepareStep(seed: seed, step: step, worker: worker)
    }

    public func zeroGrads() {
        for p in parameters { p.grad.zero() }
    }

    /// Shares the weights, owns gradients and buffers: one per training thread.
    public func replica() -> Model {
        // swiftlint:disable:next force_try
        let replica = try! Model(inputShape: inputShape, layers: layers.map { (name: $0.name, layer: $0.layer.replica()) },
                                 spec: spec, modules: modules, namesTensors: false)
        replica.freeze(frozenModules)
        return replica
    }

    /// A replica (shared weights, own gradients, buffers and caches) whose fused layers are
    /// split back into their modules: every module's output exists, for `forward(_:training:observe:)`.
    public static func unfusedReplica(of model: Model) -> Model {
        // swiftlint:disable:next force_try
        let replica = try! Model(inputShape: model.inputShape, layers: model.root.unfused().children, spec: model.spec,
                                 modules: model.modules, namesTensors: false)
        replica.freeze(model.frozenModules)
        return replica
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Values one sample's forward pass produces, over all modules (what a batch multiplies).
    public var activationsPerSample: Int {
        var shape = inputShape, total = 0
        for (_, layer) in layers {
            shape = (try? layer.outputShape(for: shape)) ?? shape
            total += shape.reduce(1, *)
        }
        return total
    }

    public struct SummaryRow: Sendable {
        public let layer: String
        public let outputShape: [Int]
        public let parameters: Int
    }

    /// One row per layer: what it is, the per-sample shape it outputs, its parameter count.
    /// For a model compiled from a spec, one row per module as PyTorch's module tree names
    /// them ("0: conv 3x3 16", "1: relu", …, "9: flatten (implied)"), a container's modules
    /// indented under it ("3: res", "  3.body.0: conv 3x3 16").
    public func summary() -> [SummaryRow] {
        if !modules.isEmpty {
            return modules.map {
                SummaryRow(layer: String(repeating: "  ", count: $0.depth) + "\($0.path): \($0.text)\($0.implied ? " (implied)" : "")",
                           outputShape: $0.outputShape, parameters: $0.parameters)
            }
        }
        var shape = inputShape
        return layers.map { name, layer in
            shape = (try? layer.outputShape(for: shape)) ?? shape
            return SummaryRow(layer: "\(name): \(layer)", outputShape: shape,
                              parameters: layer.parameters.reduce(0) { $0 + $1.value.count })
        }
    }

    /// The spec it was built from; else Flux-style, one layer a line:
    /// "Chain(\n  Conv((3, 3), 1 => 16, pad=1, relu),\n  …\n)".
    public var description: String {
        if let spec { return spec.text }
        return "Chain(\n" + layers.map { "  \($0.layer)," }.joined(separator: "\n") + "\n)"
    }
}

extension Model {
    /// The Flux model-zoo MNIST convnet (conv.jl), compiled from its spec (ModelSpec.referenceConvNet).
    public static func referenceConvNet(inputShape: [Int] = [1, 28, 28], classes: Int = 10, seed: UInt64,
                                        fastPaths: Bool = true) throws -> Model {
        guard classes > 0 else { throw ModelError("a classifier needs at least 1 class (got \(classes))") }
        do {
            return try ModelSpec.referenceConvNet(classes: classes).compile(inputShape: inputShape, classes: classes,
                                                                            seed: seed, fastPaths: fastPaths)
        } catch let error as SpecError {
            throw ModelError(error.message)
        }
    }

    /// Flatten, then Dense+ReLU for each hidden size, then Dense to the classes (ModelSpec.mlp).
    public static func mlp(inputShape: [Int] = [1, 28, 28], hidden: [Int] = [128], classes: Int = 10, seed: UInt64) throws -> Model {
        guard classes > 0 else { throw ModelError("a classifier needs at least 1 class (got \(classes))") }
        do {
            return try ModelSpec.mlp(hidden: hidden, classes: classes).compile(inputShape: inputShape, classes: classes, seed: seed)
        } catch let error as SpecError {
            throw ModelError(error.message)
        }
    }
}
