import Tensor

/// A trained network without its classifier head, with its weights: what `backbone SOURCE`
/// puts in a model (fastai's `create_body`, Keras' `include_top=False`). Made by whoever can
/// read SOURCE (an ONNX file, a checkpoint, a run: the session) from the whole network.
public struct Backbone: @unchecked Sendable {
    /// As typed: `resnet18.onnx`, `run-3`, `digits.safetensors`.
    public let source: String
    /// The kept modules: everything up to and including the last top-level global pooling,
    /// or, without one, everything before the trailing dense layers (and their activations,
    /// dropouts and flattens).
    public let spec: ModelSpec
    /// The whole network's input, one sample ([C, H, W]): what it was trained on.
    public let inputShape: [Int]
    /// The kept modules' tensors, named relative to `spec` ("0.weight", "3.body.0.bias").
    public let tensors: [String: Tensor]
    /// How its inputs were made (`load` words, normalisation), when the source says; for notes.
    public let recipe: [String: String]

    /// Cuts the head off `network` and keeps the tensors of what is left.
    public init(source: String, network: ModelSpec, inputShape: [Int], tensors: [String: Tensor],
                recipe: [String: String] = [:]) throws {
        let modules = network.modules
        let kept: Int
        if let gap = modules.lastIndex(where: { $0.layer is GlobalAveragePoolSpec }) {
            kept = gap + 1
        } else {
            let head = modules.reversed().prefix { $0.layer is DenseSpec || $0.layer is ActivationSpec || $0.layer is DropoutSpec
                || $0.layer is FlattenSpec }
            guard head.contains(where: { $0.layer is DenseSpec }) else {
                throw SpecError("backbone \(source): \(network.text) has no classifier head to remove (no gap and no dense at its end)")
            }
            kept = modules.count - head.count
        }
        guard kept > 0 else { throw SpecError("backbone \(source): nothing is left of \(network.text) without its head") }
        self.source = source
        self.spec = ModelSpec(modules: Array(modules.prefix(kept)))
        self.inputShape = inputShape
        // Module K's tensors are "K.…": keep those of the kept modules.
        self.tensors = tensors.filter { name, _ in
            guard let index = name.split(separator: ".").first.flatMap({ Int($0) }) else { return false }
            return index < kept
        }
        self.recipe = recipe
    }
}

/// `backbone SOURCE`: a trained network's layers without its head, with their weights, as
/// one module (`build backbone resnet18.onnx | dense 5`, `frames(backbone run-3) | lstm 64 |
/// dense 5`). Its modules are numbered and named as in SOURCE under its own index
/// (`0.3.weight`); `freeze backbone` keeps them as trained.
public struct BackboneSpec: NestedSpec {
    public static let keyword = "backbone"
    public static let grammar = "backbone SOURCE   a trained net without its head: FILE.onnx, checkpoint or run-N"

    public let source: String
    /// Filled by `ModelSpec.resolvingBackbones` before the spec is planned.
    public let backbone: Backbone?

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.count == 1 else {
            throw SpecError("needs one SOURCE: an ONNX file, a checkpoint or a run, e.g. backbone run-3 or backbone resnet18.onnx")
        }
        source = arguments[0]
        backbone = nil
    }

    public init(_ backbone: Backbone) {
        source = backbone.source
        self.backbone = backbone
    }

    public var text: String { "\(BackboneSpec.keyword) \(source)" }

    public var body: ModelSpec { backbone?.spec ?? ModelSpec(modules: []) }

    func resolved() throws -> Backbone {
        guard let backbone else { throw SpecError("backbone \(source) was not read (only a session can read its SOURCE)") }
        return backbone
    }

    public func output(for input: SampleShape) throws -> SampleShape {
        let backbone = try resolved()
        guard !input.isSequence, input.dims.count == backbone.inputShape.count, input.dims[0] == backbone.inputShape[0] else {
            throw SpecError("backbone \(source) takes \(describe(backbone.inputShape)) inputs, got \(input.text)")
        }
        return try backbone.spec.plan(input: input).last!.output
    }

    public func parameterCount(for input: SampleShape) -> Int {
        ((try? backbone?.spec.plan(input: input)) ?? []).reduce(0) { $0 + $1.module.layer.parameterCount(for: $1.input) }
    }

    public func stride(rank: Int) -> [Int] { body.stride(rank: rank) }

    /// SOURCE's layers with SOURCE's weights (every tensor must be there, with its shape).
    public func compile(for input: SampleShape, fastPaths: Bool, random: inout Random, path: String,
                        depth: Int) throws -> (Layer, [ModuleSummary]) {
        let backbone = try resolved()
        let (layers, rows) = try ModelSpec.compileChain(try backbone.spec.plan(input: input), fastPaths: fastPaths,
                                                        random: &random, path: path, depth: depth)
        let chain = Chain(layers)
        nameTensors(of: chain, prefix: "")
        for p in chain.parameters + chain.buffers {
            guard let trained = backbone.tensors[p.name] else {
                throw SpecError("backbone \(source) has no tensor '\(p.name)'; was it saved from another network?")
            }
            guard trained.shape == p.value.shape else {
                throw SpecError("backbone \(source): '\(p.name)' is \(shapeText(trained.shape)) there but \(shapeText(p.value.shape)) here")
            }
            p.value.data = trained.data
        }
        return (chain, rows)
    }
}

extension ModelSpec {
    /// The same spec with every `backbone SOURCE` (at any depth) read by `read`.
    public func resolvingBackbones(_ read: (String) throws -> Backbone) throws -> ModelSpec {
        ModelSpec(modules: try modules.map { module in
            var module = module
            if let backbone = module.layer as? BackboneSpec {
                if backbone.backbone == nil { module.layer = BackboneSpec(try read(backbone.source)) }
            } else if let container = module.layer as? ContainerSpec {
                module.layer = try type(of: container).init(keyword: type(of: container).keyword,
                                                            body: try container.body.resolvingBackbones(read))
            }
            return module
        })
    }

    /// Every `backbone` of the spec, at any depth, in order.
    public var backbones: [BackboneSpec] {
        modules.flatMap { module -> [BackboneSpec] in
            if let backbone = module.layer as? BackboneSpec { return [backbone] }
            return (module.layer as? ContainerSpec)?.body.backbones ?? []
        }
    }
}
