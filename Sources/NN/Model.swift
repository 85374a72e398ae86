import Tensor

/// An ordered chain of named layers, like Flux's `Chain`. A model compiled from a spec
/// (`ModelSpec.compile`) prints as that spec, and its tensors are named as PyTorch's
/// nn.Sequential of the same layers names them ("0.weight", "10.bias").
public final class Model: @unchecked Sendable, CustomStringConvertible {
    public let layers: [(name: String, layer: Layer)]
    /// One sample's input shape, [C, D…] (or [F]).
    public let inputShape: [Int]
    public let parameters: [Parameter]
    /// Non-trained state saved with the weights (batchnorm's running statistics).
    public let buffers: [Parameter]
    /// The spec it was compiled from, and its modules for `summary`; nil for a model put
    /// together by hand (tests, older checkpoints' recipes).
    public let spec: ModelSpec?
    public let modules: [ModuleSummary]

    /// Whether convolution + max-pool pairs run fused (see `Step`); the same numbers either way
    /// up to float rounding (tested), so this exists for that test.
    public let fusesConvolutionAndPool: Bool
    private let steps: [Step]

    /// Checks every layer's shapes against the input before any data flows.
    public init(inputShape: [Int], layers: [(name: String, layer: Layer)], fusesConvolutionAndPool: Bool = true,
                spec: ModelSpec? = nil, modules: [ModuleSummary] = []) throws {
        self.inputShape = inputShape
        self.layers = layers
        self.fusesConvolutionAndPool = fusesConvolutionAndPool
        self.spec = spec
        self.modules = modules
        steps = Model.plan(layers.map(\.layer), fusing: fusesConvolutionAndPool)
        var params: [Parameter] = [], buffers: [Parameter] = []
        for (name, layer) in layers {
            for p in layer.parameters + layer.buffers where !p.name.contains(".") { p.name = "\(name).\(p.name)" }
            params += layer.parameters
            buffers += layer.buffers
        }
        parameters = params
        self.buffers = buffers
        try validate()
        // Nobody reads the input gradient of the layers before the first one with parameters,
        // nor that one's: skip computing them.
        for (_, layer) in layers {
            (layer as? SkipsInputGradient)?.needsInputGradient = false
            if !layer.parameters.isEmpty { break }
        }
    }

    /// Runs the per-sample shape through every layer; throws naming the first layer that
    /// cannot take its input. Returns the output shape ([classes] for a classifier).
    @discardableResult
    public func validate() throws -> [Int] {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw ModelError("the input shape must be positive sizes, e.g. [1, 28, 28] (got \(inputShape))")
        }
        var shape = inputShape
        for (name, layer) in layers {
            do { shape = try layer.outputShape(for: shape) } catch {
                throw ModelError("layer \(name): \(error)")
            }
        }
        return shape
    }

    /// Logits [N, classes] for a batch [C, N, H, W].
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var h = x
        for step in steps {
            switch step {
            case .layer(let layer): h = layer.forward(h, training: training)
            case .convolutionThenPool(let conv, let pool): h = conv.forward(h, pooledBy: pool)
            }
        }
        return h
    }

    /// Logits, layer by layer and never fused, calling `observe(index, output)` after each
    /// layer (for `stats`, on a replica: the layers' caches are overwritten).
    public func forward(_ x: Tensor, training: Bool, observe: (Int, Tensor) -> Void) -> Tensor {
        var h = x
        for (index, (_, layer)) in layers.enumerated() {
            h = layer.forward(h, training: training)
            observe(index, h)
        }
        return h
    }

    /// Backpropagates dL/dlogits    /// Backpropagates dL/dlogits through every layer, accumulating parameter gradients.
    public func backward(_ dlogits: Tensor) {
        var g = dlogits
        for step in steps.reversed() {
            switch step {
            case .layer(let layer): g = layer.backward(g)
            case .convolutionThenPool(let conv, let pool): g = conv.backward(pooledGradient: g, pooledBy: pool)
            }
        }
    }

    /// How forward and backward run the layers: one at a time, except that a convolution
    /// followed by a max-pool runs as one step, chunk by chunk, so that the convolution's
    /// full-size output (the largest activation: 16×28×28 floats an image in the reference
    /// model) is never written out and read back (Convolution.forward(_:pooledBy:)).
    enum Step {
        case layer(Layer)
        case convolutionThenPool(Convolution, Pooling)
    }

    static func plan(_ layers: [Layer], fusing: Bool) -> [Step] {
        var steps: [Step] = [], i = 0
        while i < layers.count {
            if fusing, i + 1 < layers.count, let conv = layers[i] as? Convolution, let pool = layers[i + 1] as? Pooling, conv.canFuse(with: pool) {
                steps.append(.convolutionThenPool(conv, pool))
                i += 2
            } else {
                steps.append(.layer(layers[i]))
                i += 1
            }
        }
        return steps
    }

    /// Before a training step on a worker: the step's random stream for layers that draw (dropout).
    public func prepareStep(seed: UInt64, step: Int, worker: Int) {
        for (_, layer) in layers { layer.prepareStep(seed: seed, step: step, worker: worker) }
    }

    public func zeroGrads() {
        for p in parameters { p.grad.zero() }
    }

    /// Shares the weights, owns gradients and buffers: one per training thread.
    public func replica() -> Model {
        // The layer names are already applied to the parameters; keep them.
        // swiftlint:disable:next force_try
        try! Model(inputShape: inputShape, layers: layers.map { (name: $0.name, layer: $0.layer.replica()) },
                   fusesConvolutionAndPool: fusesConvolutionAndPool, spec: spec, modules: modules)
    }

    /// A replica (shared weights, own gradients, buffers and caches) whose layers run one by
    /// one, never fused: every layer's output exists, for `forward(_:training:observe:)`.
    public static func unfusedReplica(of model: Model) -> Model {
        // swiftlint:disable:next force_try
        try! Model(inputShape: model.inputShape, layers: model.layers.map { (name: $0.name, layer: $0.layer.replica()) },
                   fusesConvolutionAndPool: false, spec: model.spec, modules: model.modules)
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
    /// For a model compiled from a spec, one row per module as PyTorch's nn.Sequential numbers
    /// them ("0: conv 3x3 16", "1: relu", …, "9: flatten (implied)").
    public func summary() -> [SummaryRow] {
        if !modules.isEmpty {
            return modules.map {
                SummaryRow(layer: "\($0.index): \($0.text)\($0.implied ? " (implied)" : "")", outputShape: $0.outputShape, parameters: $0.parameters)
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
