import Foundation
import Tensor

/// One module of a compiled spec, as `summary` shows it: its position in PyTorch's
/// nn.Sequential of the same layers (the prefix of its tensors' names), its text, one sample's
/// output shape and its parameter count.
public struct ModuleSummary: Sendable, Equatable {
    public var index: Int
    public var text: String
    public var outputShape: [Int]
    public var parameters: Int
    /// The `flatten` inserted before a `dense` (it is a module of its own in PyTorch too).
    public var implied: Bool
}

extension ModelSpec {
    /// The largest model `build` makes: its parameters with their gradients and Adam moments
    /// (16 bytes each) in half this machine's memory, and one sample's activations with their
    /// gradients (8 bytes each) in a sixteenth of it.
    public static var maximumParameters: Int { Int(ProcessInfo.processInfo.physicalMemory / 32) }
    public static var maximumActivationsPerSample: Int { Int(ProcessInfo.processInfo.physicalMemory / 128) }

    /// The modules with the implied `flatten` before each `dense` that needs one, each with
    /// its input and output shape; throws naming the first layer that cannot take its input
    /// (its position and text as typed), before anything is allocated.
    public func plan(inputShape: [Int]) throws -> [(module: Module, input: [Int], output: [Int], implied: Bool)] {
        var shape = inputShape
        var planned: [(module: Module, input: [Int], output: [Int], implied: Bool)] = []
        var position = 0, parameters = 0, activations = 0
        for module in modules {
            if !module.inline { position += 1 }
            if module.layer is DenseSpec, shape.count > 1 {
                let flat = [shape.reduce(1, *)]
                planned.append((Module(layer: FlattenSpec(), inline: false), shape, flat, true))
                shape = flat
            }
            let output: [Int]
            do { output = try module.layer.outputShape(for: shape) } catch let error as SpecError {
                throw SpecError("layer \(position) \"\(typedText(of: position))\": \(error.message)")
            }
            let count = module.layer.parameterCount(for: shape)
            parameters += count
            activations += output.reduce(1, *)
            guard parameters <= ModelSpec.maximumParameters, activations <= ModelSpec.maximumActivationsPerSample,
                  output.allSatisfy({ $0 > 0 }) else {
                throw SpecError("layer \(position) \"\(typedText(of: position))\": the model would be too large to train here (\(parameters) parameters, \(activations) activations a sample); use fewer channels or a smaller input")
            }
            planned.append((module, shape, output, false))
            shape = output
        }
        return planned
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
    /// initial weights from one generator seeded with `seed`, in order. `fastPaths`: apply the
    /// rewrites that pick specialised kernels where shapes allow (a conv followed by `relu`
    /// fuses the activation; 2-D stride-1 convs are Conv2D, square 2-D max pools MaxPool2D,
    /// and Model runs such a pair as one chunked step); off, every layer is the portable one.
    public func compile(inputShape: [Int], classes: Int, seed: UInt64, fastPaths: Bool = true) throws -> Model {
        guard inputShape.count >= 1, inputShape.allSatisfy({ $0 > 0 }) else {
            throw SpecError("the data's samples have no usable shape (\(inputShape))")
        }
        let planned = try plan(inputShape: inputShape)
        let last = planned.last!.output
        guard last == [classes] else {
            let ending = planned.last!.module.layer
            if ending is DenseSpec {
                throw SpecError("the model ends with \(ending.text) but the data has \(classes) classes; end with dense \(classes)")
            }
            throw SpecError("the model ends with \(describe(last)) outputs; end with dense \(classes) (the data has \(classes) classes)")
        }
        var random = Random(seed: seed)
        var layers: [(name: String, layer: Layer)] = []
        var summaries: [ModuleSummary] = []
        var index = 0
        while index < planned.count {
            let step = planned[index]
            summaries.append(ModuleSummary(index: index, text: step.module.layer.text, outputShape: step.output,
                                           parameters: step.module.layer.parameterCount(for: step.input), implied: step.implied))
            // Rewrite: a convolution and the relu after it run as one layer (the relu keeps its
            // index, so tensor names stay PyTorch's).
            if fastPaths, let conv = step.module.layer as? ConvSpec, index + 1 < planned.count,
               (planned[index + 1].module.layer as? ActivationSpec)?.kind == .relu {
                layers.append((String(index), try conv.makeLayer(for: step.input, fastPaths: true, activation: .relu, random: &random)))
                summaries.append(ModuleSummary(index: index + 1, text: planned[index + 1].module.layer.text,
                                               outputShape: planned[index + 1].output, parameters: 0, implied: false))
                index += 2
                continue
            }
            layers.append((String(index), try step.module.layer.makeLayer(for: step.input, fastPaths: fastPaths, random: &random)))
            index += 1
        }
        return try Model(inputShape: inputShape, layers: layers, spec: self, modules: summaries)
    }
}
