import Tensor

/// Freezing, as Keras' `trainable = False` and fastai's `freeze`: a frozen module's parameters
/// are left out of the optimizer's step, its batchnorm uses (and keeps) its running statistics
/// even while training, its dropout still acts. Modules are the top-level ones as `summary`
/// numbers them; a layer the compiler fused from several (a convolution, its ReLU and a pool)
/// holds its parameters in its first module.
extension Model {
    /// How many top-level modules `summary` numbers: 0 up to this.
    public var topLevelModuleCount: Int {
        modules.isEmpty ? layers.count : modules.reduce(0) { $0 + ($1.depth == 0 ? 1 : 0) }
    }

    /// The top-level modules each engine layer computes, in layer order ([0, 3) for a convolution
    /// fused with the ReLU and the pool after it). A model put together by hand: one each.
    public var moduleRanges: [Range<Int>] {
        guard !modules.isEmpty else { return layers.indices.map { $0..<($0 + 1) } }
        let starts = layers.map { Int($0.name) ?? 0 }
        return starts.indices.map { starts[$0]..<(($0 + 1) < starts.count ? starts[$0 + 1] : topLevelModuleCount) }
    }

    /// The top-level module of each of `parameters`, in the same order.
    public var parameterModules: [Int] {
        zip(layers, moduleRanges).flatMap { named, range in Array(repeating: range.lowerBound, count: named.layer.parameters.count) }
    }

    /// Parameter values in the top-level modules `set`.
    public func parameterCount(inModules set: Set<Int>) -> Int {
        zip(parameters, parameterModules).reduce(0) { $0 + (set.contains($1.1) ? $1.0.value.count : 0) }
    }

    public var trainableParameterCount: Int { trainableParameters.reduce(0) { $0 + $1.value.count } }

    /// Freezes exactly the top-level modules `set` (the others train): the optimizer's
    /// parameters, where backward stops, which layers compute an input gradient, and the
    /// batchnorm layers that keep their running statistics. Replicas made afterwards copy it.
    public func freeze(_ set: Set<Int>) {
        frozenModules = set
        trainableParameters = zip(parameters, parameterModules).filter { !set.contains($0.1) }.map(\.0)
        let trainable = Set(trainableParameters.map { ObjectIdentifier($0) })
        firstTrainedLayer = layers.firstIndex { $0.layer.parameters.contains { trainable.contains(ObjectIdentifier($0)) } } ?? layers.count
        for (index, (named, range)) in zip(layers, moduleRanges).enumerated() {
            // Only what lies after a trained layer needs the gradient of its input.
            (named.layer as? SkipsInputGradient)?.needsInputGradient = index > firstTrainedLayer
            let frozen = set.contains(range.lowerBound)
            forEachLayer(in: named.layer) { ($0 as? BatchNorm)?.isFrozen = frozen }
        }
    }

    /// Engine layers [0, end) that, frozen, compute a fixed function of their input while
    /// training: no trainable parameter, no dropout, no batchnorm on batch statistics. Their
    /// outputs can be computed once per sample (Trainer's feature cache).
    public var deterministicFrozenPrefix: Int {
        let trainable = Set(trainableParameters.map { ObjectIdentifier($0) })
        var end = 0
        for (_, layer) in layers {
            var fixed = !layer.parameters.contains { trainable.contains(ObjectIdentifier($0)) }
            forEachLayer(in: layer) { inner in
                if let dropout = inner as? Dropout, dropout.probability > 0 { fixed = false }
                if let norm = inner as? BatchNorm, !norm.isFrozen { fixed = false }
            }
            guard fixed else { break }
            end += 1
        }
        return end
    }
}

/// Calls `body` on `layer` and every layer inside it (containers' children, fused layers' parts).
func forEachLayer(in layer: Layer, _ body: (Layer) -> Void) {
    body(layer)
    if let container = layer as? Container {
        for (_, child) in container.children { forEachLayer(in: child, body) }
    }
}
