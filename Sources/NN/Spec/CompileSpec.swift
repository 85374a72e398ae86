import Foundation
import Tensor

/// One module of a compiled spec, as `summary` shows it: its path in PyTorch's module tree of
/// the same layers (the prefix of its tensors' names: "3", "3.body.0"), its text, one
/// sample's output shape and its parameter count.
public struct ModuleSummary: Sendable, Equatable {
    /// Its index in its chain (for a top-level module, in the model).
    public var index: Int
    public var path: String
    /// 0 for the model's own modules, 1 inside a container, …
    public var depth: Int
    public var text: String
    public var outputShape: [Int]
    public var parameters: Int
    /// The `flatten` inserted before a `dense` (it is a module of its own in PyTorch too), or
    /// a shortcut projection a residual block adds.
    public var implied: Bool
}

/// One module of a spec with the shapes it takes and makes.
public struct PlannedModule: Sendable {
    public var module: ModelSpec.Module
    public var input: SampleShape
    public var output: SampleShape
    public var implied: Bool
}

extension ModelSpec {
    /// The largest model `build` makes: its parameters with their gradients and Adam moments
    /// (16 bytes each) in half this machine's memory, and one sample's activations with their
    /// gradients (8 bytes each) in a sixteenth of it.
    public static var maximumParameters: Int { Int(ProcessInfo.processInfo.physicalMemory / 32) }
    public static var maximumActivationsPerSample: Int { Int(ProcessInfo.processInfo.physicalMemory / 128) }

    /// The modules with the implied `flatten` before each `dense` that needs one (and, with
    /// `flattenAtEnd`, after the last module when it leaves an image), each with its input and
    /// output shape; throws naming the first layer that cannot take its input (its position
    /// and text as typed), before anything is allocated.
    public func plan(input: SampleShape, flattenAtEnd: Bool = false) throws -> [PlannedModule] {
        var shape = input
        var planned: [PlannedModule] = []
        var position = 0, parameters = 0, activations = 0
        func flatten() {
            let flat = SampleShape([shape.dims.reduce(1, *)])
            planned.append(PlannedModule(module: Module(layer: FlattenSpec(), inline: false), input: shape, output: flat, implied: true))
            shape = flat
        }
        for module in modules {
            if !module.inline { position += 1 }
            if module.layer is DenseSpec, !shape.isSequence, shape.dims.count > 1 { flatten() }
            let output: SampleShape
            do { output = try module.layer.output(for: shape) } catch let error as SpecError {
                throw SpecError("layer \(position) \"\(typedText(of: position))\": \(error.message)")
            }
            parameters += module.layer.parameterCount(for: shape)
            activations += output.dims.reduce(1, *)
            guard parameters <= ModelSpec.maximumParameters, activations <= ModelSpec.maximumActivationsPerSample,
                  output.dims.allSatisfy({ $0 > 0 }) else {
                throw SpecError("layer \(position) \"\(typedText(of: position))\": the model would be too large to train here (\(parameters) parameters, \(activations) activations a sample); use fewer channels or a smaller input")
            }
            planned.append(PlannedModule(module: module, input: shape, output: output, implied: false))
            shape = output
        }
        if flattenAtEnd, !shape.isSequence, shape.dims.count > 1 { flatten() }
        return planned
    }

    /// The top-level plan for samples of `inputShape` (an image, clip or flat features).
    public func plan(inputShape: [Int]) throws -> [PlannedModule] {
        try plan(input: SampleShape(inputShape))
    }

    /// The text of layer `position` (1-based, counting inline activations with their layer).
    func typedText(of position: Int) -> String {
        var parts: [String] = []
        for module in modules {
            if module.inline, !parts.isEmpty { parts[parts.count - 1] += " " + module.layer.text } else { parts.append(module.layer.text) }
        }
        return position >= 1 && position <= parts.count ? parts[position - 1] : ""
    }

    /// Builds the model for samples of `inputShape` and `classes` classes. Layers draw their
    /// initial weights from one generator seeded with `seed`, in order (a container's body,
    /// then its shortcut). `fastPaths`: apply the rewrites that pick specialised kernels
    /// where shapes allow (see `compileChain`); off, every layer is the portable one.
    public func compile(inputShape: [Int], classes: Int, seed: UInt64, fastPaths: Bool = true) throws -> Model {
        guard inputShape.count >= 1, inputShape.allSatisfy({ $0 > 0 }) else {
            throw SpecError("the data's samples have no usable shape (\(inputShape))")
        }
        let planned = try plan(inputShape: inputShape)
        let last = planned.last!.output
        guard last == SampleShape([classes]) else {
            let ending = planned.last!.module.layer
            if last.isSequence {
                throw SpecError("the model ends with a sequence (\(last.text)); end with lstm H or gru H (without seq), attention or gap, then dense \(classes)")
            }
            if ending is DenseSpec {
                throw SpecError("the model ends with \(ending.text) but the data has \(classes) classes; end with dense \(classes)")
            }
            throw SpecError("the model ends with \(describe(last.dims)) outputs; end with dense \(classes) (the data has \(classes) classes)")
        }
        var random = Random(seed: seed)
        let (layers, summaries) = try ModelSpec.compileChain(planned, fastPaths: fastPaths, random: &random, path: "", depth: 0)
        return try Model(inputShape: inputShape, layers: layers, spec: self, modules: summaries)
    }

    /// The engine layers of a planned chain, named by module index, and its summary rows
    /// (paths under `path`: "" at the top, "3.body." inside a block). The fast paths are
    /// rewrites of the plan: a convolution and the `relu` after it become one layer, and then
    /// with a max-pool after them, where their algorithms allow (Convolution.canFuse), one
    /// chunked step (ConvolutionThenPool).
    /// A fused module keeps its index, so tensor names stay PyTorch's.
    static func compileChain(_ planned: [PlannedModule], fastPaths: Bool, random: inout Random, path: String,
                             depth: Int) throws -> (layers: [(name: String, layer: Layer)], summaries: [ModuleSummary]) {
        var layers: [(name: String, layer: Layer)] = []
        var summaries: [ModuleSummary] = []
        func summarize(_ index: Int) {
            let step = planned[index]
            summaries.append(ModuleSummary(index: index, path: path + String(index), depth: depth, text: step.module.layer.shortText,
                                           outputShape: step.output.dims, parameters: step.module.layer.parameterCount(for: step.input),
                                           implied: step.implied))
        }
        var index = 0
        while index < planned.count {
            let step = planned[index]
            summarize(index)
            if let container = step.module.layer as? NestedSpec {
                let (layer, inner) = try container.compile(for: step.input, fastPaths: fastPaths, random: &random,
                                                           path: path + String(index) + ".", depth: depth + 1)
                layers.append((String(index), layer))
                summaries += inner
                index += 1
                continue
            }
            if fastPaths, let conv = step.module.layer as? ConvSpec {
                let fusesReLU = index + 1 < planned.count && (planned[index + 1].module.layer as? ActivationSpec)?.kind == .relu
                let activation: Activation = fusesReLU ? .relu : .identity
                if fusesReLU { summarize(index + 1) }
                let next = index + (fusesReLU ? 2 : 1)
                let convolution = try conv.makeLayer(for: step.input.dims, fastPaths: true, activation: activation, random: &random)
                if next < planned.count, let poolSpec = planned[next].module.layer as? PoolSpec,
                   case let pool = try poolSpec.makePooling(for: planned[next].input.dims, fastPaths: true),
                   convolution.canFuse(with: pool) {
                    summarize(next)
                    layers.append((String(index), ConvolutionThenPool(convolution, pool, poolName: String(next))))
                    index = next + 1
                } else {
                    layers.append((String(index), convolution))
                    index = next
                }
                continue
            }
            layers.append((String(index), try step.module.layer.makeLayer(for: step.input, fastPaths: fastPaths, random: &random)))
            index += 1
        }
        return (layers, summaries)
    }
}

/// A module made of modules (`res(…)`, `frames(…)`, `backbone SOURCE`): compiled as a chain of
/// its own under the module's path, its rows nested in `summary`.
public protocol NestedSpec: LayerSpec {
    var body: ModelSpec { get }
    /// Its engine layer and the summary rows of its modules (under `path`, at `depth`).
    func compile(for input: SampleShape, fastPaths: Bool, random: inout Random, path: String,
                 depth: Int) throws -> (Layer, [ModuleSummary])
}

extension NestedSpec {
    public func outputShape(for input: [Int]) throws -> [Int] { try output(for: SampleShape(input)).dims }
    public func parameterCount(for input: [Int]) -> Int { parameterCount(for: SampleShape(input)) }
    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        try makeLayer(for: SampleShape(input), fastPaths: fastPaths, random: &random)
    }
    public func makeLayer(for input: SampleShape, fastPaths: Bool, random: inout Random) throws -> Layer {
        try compile(for: input, fastPaths: fastPaths, random: &random, path: "", depth: 0).0
    }
}

/// A layer of layers written KEYWORD(A | B | …) (`res(…)`, `frames(…)`), its body a spec of its own.
public protocol ContainerSpec: NestedSpec {
    /// What `help build` and errors show, e.g. `res(conv 3 16 relu | conv 3 16)`.
    static var example: String { get }
    init(keyword: String, body: ModelSpec) throws
}

extension ContainerSpec {
    public init(keyword: String, arguments: [String]) throws {
        throw SpecError("needs its layers in parentheses, e.g. \(keyword)(conv 3 16 relu | conv 3 16)")
    }
}

extension LayerSpec {
    /// What `summary` prints on a module's row: its text, or a container's keyword alone (its
    /// modules have rows of their own under it).
    var shortText: String { (self as? NestedSpec).map { _ in type(of: self).keyword } ?? text }
}
