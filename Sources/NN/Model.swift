import Tensor

/// An ordered chain of named layers, like Flux's `Chain`: builds and prints as its description.
/// Parameters carry PyTorch-style names ("conv1.weight", "fc.bias").
public final class Model: @unchecked Sendable, CustomStringConvertible {
    public let layers: [(name: String, layer: Layer)]
    /// One sample's input shape, [C, H, W].
    public let inputShape: [Int]
    public let parameters: [Parameter]

    /// Whether convolution + max-pool pairs run fused (see `Step`); the same numbers either way
    /// up to float rounding (tested), so this exists for that test.
    public let fusesConvolutionAndPool: Bool
    private let steps: [Step]

    /// Checks every layer's shapes against the input before any data flows.
    public init(inputShape: [Int], layers: [(name: String, layer: Layer)], fusesConvolutionAndPool: Bool = true) throws {
        self.inputShape = inputShape
        self.layers = layers
        self.fusesConvolutionAndPool = fusesConvolutionAndPool
        steps = Model.plan(layers.map(\.layer), fusing: fusesConvolutionAndPool)
        var params: [Parameter] = []
        for (name, layer) in layers {
            for p in layer.parameters where !p.name.contains(".") { p.name = "\(name).\(p.name)" }
            params += layer.parameters
        }
        parameters = params
        try validate()
        // Nobody reads the first layer's input gradient; skip computing it.
        if let conv = layers.first?.layer as? Conv2D { conv.needsInputGradient = false }
        if let dense = layers.first(where: { !($0.layer is Flatten) })?.layer as? Dense { dense.needsInputGradient = false }
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

    /// Backpropagates dL/dlogits through every layer, accumulating parameter gradients.
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
    /// model) is never written out and read back (Conv2D.forward(_:pooledBy:)).
    enum Step {
        case layer(Layer)
        case convolutionThenPool(Conv2D, MaxPool2D)
    }

    static func plan(_ layers: [Layer], fusing: Bool) -> [Step] {
        var steps: [Step] = [], i = 0
        while i < layers.count {
            if fusing, i + 1 < layers.count, let conv = layers[i] as? Conv2D, let pool = layers[i + 1] as? MaxPool2D {
                steps.append(.convolutionThenPool(conv, pool))
                i += 2
            } else {
                steps.append(.layer(layers[i]))
                i += 1
            }
        }
        return steps
    }

    public func zeroGrads() {
        for p in parameters { p.grad.zero() }
    }

    /// Shares the weights, owns gradients and buffers: one per training thread.
    public func replica() -> Model {
        // The layer names are already applied to the parameters; keep them.
        // swiftlint:disable:next force_try
        try! Model(inputShape: inputShape, layers: layers.map { (name: $0.name, layer: $0.layer.replica()) },
                   fusesConvolutionAndPool: fusesConvolutionAndPool)
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    public struct SummaryRow: Sendable {
        public let layer: String
        public let outputShape: [Int]
        public let parameters: Int
    }

    /// One row per layer: what it is, the per-sample shape it outputs, its parameter count.
    public func summary() -> [SummaryRow] {
        var shape = inputShape
        return layers.map { name, layer in
            shape = (try? layer.outputShape(for: shape)) ?? shape
            return SummaryRow(layer: "\(name): \(layer)", outputShape: shape,
                              parameters: layer.parameters.reduce(0) { $0 + $1.value.count })
        }
    }

    /// Flux-style, one layer a line: "Chain(\n  Conv((3, 3), 1 => 16, pad=1, relu),\n  …\n)".
    public var description: String {
        "Chain(\n" + layers.map { "  \($0.layer)," }.joined(separator: "\n") + "\n)"
    }
}

extension Model {
    /// The Flux model-zoo MNIST convnet (conv.jl): three 3×3 convs with ReLU and 2×2 max
    /// pooling (28 → 14 → 7 → 3), flatten (3·3·32 = 288), Dense 288 → 10.
    public static func referenceConvNet(inputShape: [Int] = [1, 28, 28], classes: Int = 10, seed: UInt64) throws -> Model {
        guard classes > 0 else { throw ModelError("a classifier needs at least 1 class (got \(classes))") }
        guard inputShape.count == 3, inputShape[0] > 0, inputShape[1] / 8 > 0, inputShape[2] / 8 > 0 else {
            throw ModelError("the convnet takes C×H×W images and pools three times by 2, so it needs at least 8×8 (got \(shapeText(inputShape)))")
        }
        let c = inputShape[0], h = inputShape[1] / 2 / 2 / 2, w = inputShape[2] / 2 / 2 / 2
        var random = Random(seed: seed)
        let conv1 = Conv2D(c, 16, kernel: 3, padding: 1, activation: .relu, random: &random)
        let conv2 = Conv2D(16, 32, kernel: 3, padding: 1, activation: .relu, random: &random)
        let conv3 = Conv2D(32, 32, kernel: 3, padding: 1, activation: .relu, random: &random)
        let fc = Dense(32 * h * w, classes, random: &random)
        return try Model(inputShape: inputShape, layers: [
            ("conv1", conv1), ("pool1", MaxPool2D(2)),
            ("conv2", conv2), ("pool2", MaxPool2D(2)),
            ("conv3", conv3), ("pool3", MaxPool2D(2)),
            ("flatten", Flatten()), ("fc", fc),
        ])
    }

    /// Flatten, then Dense+ReLU for each hidden size, then Dense to the classes.
    public static func mlp(inputShape: [Int] = [1, 28, 28], hidden: [Int] = [128], classes: Int = 10, seed: UInt64) throws -> Model {
        guard classes > 0 else { throw ModelError("a classifier needs at least 1 class (got \(classes))") }
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw ModelError("the input shape must be positive sizes, e.g. [1, 28, 28] (got \(inputShape))")
        }
        guard hidden.allSatisfy({ $0 > 0 }) else { throw ModelError("hidden layer sizes must be positive (got \(hidden))") }
        var random = Random(seed: seed)
        var layers: [(name: String, layer: Layer)] = [("flatten", Flatten())]
        var width = inputShape.reduce(1, *)
        for (i, size) in hidden.enumerated() {
            layers.append(("fc\(i + 1)", Dense(width, size, random: &random)))
            layers.append(("relu\(i + 1)", ReLU()))
            width = size
        }
        layers.append(("fc\(hidden.count + 1)", Dense(width, classes, random: &random)))
        return try Model(inputShape: inputShape, layers: layers)
    }
}
