import Foundation
import NN
import ONNXProto

/// An ollie model as an ONNX model (opset 17, IR version 8) that onnxruntime and other ONNX
/// runtimes run for inference: the graph takes "input" in the standard layout, [N, C, H, W]
/// (clips [N, C, T, H, W], flat features [N, F]), N symbolic, and gives "logits" [N, classes].
///
/// Every tensor of the model is an initializer under ollie's own name ("3.body.0.weight",
/// "2.weight_ih_l0"), with ollie's values and PyTorch's layout; where ONNX wants another
/// arrangement (an LSTM's gate order, a transposed attention weight) the graph rearranges them
/// with nodes that runtimes fold once at load. Inference form: dropout is left out, batchnorm
/// uses its running statistics. Metadata: what the caller passes, and "ollie.spec", the spec text.
public enum ONNXExport {
    public static let opsetVersion: Int64 = 17
    public static let irVersion: Int64 = 8
    public static let inputName = "input", outputName = "logits"
    /// The symbolic batch size of the input and the logits.
    public static let batchDimension = "N"
    /// The metadata key of the model's spec text (the same key checkpoints use).
    public static let specKey = "ollie.spec"

    /// The model as an ONNX ModelProto; throws one line for a model without a spec, or with a
    /// layer ONNX export cannot express.
    public static func model(_ model: Model, metadata: [String: String]) throws -> Onnx_ModelProto {
        guard let spec = model.spec else {
            throw ONNXError("this model was not built from a spec, and ONNX export records the spec with the graph; build it from one (build SPEC) and export that")
        }
        let classes: [Int]
        do { classes = try model.validate() } catch { throw ONNXError("cannot export a model that does not build: \(error)") }
        guard classes.count == 1 else {
            throw ONNXError("the model gives \(classes.map(String.init).joined(separator: "×")) outputs a sample, not a vector of class scores; end it with dense CLASSES")
        }
        let graph = ONNXGraph()
        let output = try graph.chain(model.layers, path: "", input: ONNXValue(name: inputName, shape: model.inputShape))
        graph.finish(output: output.name, as: outputName)

        var proto = Onnx_ModelProto()
        proto.irVersion = irVersion
        proto.producerName = "ollie"
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = opsetVersion
        proto.opsetImport = [opset]
        proto.docString = spec.text
        var body = Onnx_GraphProto()
        body.name = "ollie"
        body.node = graph.nodes
        body.initializer = graph.initializers
        body.input = [valueInfo(inputName, batchOf: model.inputShape)]
        body.output = [valueInfo(outputName, batchOf: classes)]
        proto.graph = body
        var entries = metadata
        entries[specKey] = spec.text
        proto.metadataProps = entries.sorted { $0.key < $1.key }.map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            return entry
        }
        return proto
    }

    /// A float tensor [N, dims…], N symbolic.
    static func valueInfo(_ name: String, batchOf dims: [Int]) -> Onnx_ValueInfoProto {
        var shape = Onnx_TensorShapeProto()
        var batch = Onnx_TensorShapeProto.Dimension()
        batch.dimParam = batchDimension
        shape.dim = [batch] + dims.map { size in
            var dim = Onnx_TensorShapeProto.Dimension()
            dim.dimValue = Int64(size)
            return dim
        }
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.shape = shape
        var type = Onnx_TypeProto()
        type.tensorType = tensor
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type = type
        return info
    }
}

/// A value flowing through the graph: its name, and one sample's shape as ollie states it
/// ([C, D…], [F], or a sequence [T, F]). In the graph every value has the standard layout:
/// [N, C, D…], [N, F], sequences batch first [N, T, F].
struct ONNXValue {
    var name: String
    var shape: [Int]
}

/// A layer the exporter can write as ONNX nodes. Containers call back into the graph for
/// their children.
protocol ONNXExpressible: Layer {
    /// Writes the nodes computing this layer on `input` (its module path `path`, e.g. "3.body.0")
    /// and returns its output; the output's per-sample shape is the layer's `outputShape`.
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue
}

/// The nodes and initializers of the graph being written; names every value after the module
/// that makes it ("3.body.0/Conv"), keeping them unique.
final class ONNXGraph {
    private(set) var nodes: [Onnx_NodeProto] = []
    private(set) var initializers: [Onnx_TensorProto] = []
    private var taken: Set<String> = [ONNXExport.inputName]
    /// Constants by the name asked for → the name they got (written once, however often read).
    private var constants: [String: String] = [:]

    /// The chain's layers one after another; a fused layer (a convolution and its max-pool) is
    /// written as its modules, under their own module names.
    func chain(_ children: [(name: String, layer: Layer)], path: String, input: ONNXValue) throws -> ONNXValue {
        var value = input
        for (name, layer) in children {
            if let fused = layer as? Unfusable {
                value = try chain(fused.unfusedParts(named: name), path: path, input: value)
                continue
            }
            value = try express(layer, path: path.isEmpty ? name : path + "." + name, input: value)
        }
        return value
    }

    func express(_ layer: Layer, path: String, input: ONNXValue) throws -> ONNXValue {
        guard let expressible = layer as? ONNXExpressible else {
            throw ONNXError("ONNX export cannot express layer \(path) (\(layer)) yet; export a model without it")
        }
        return try expressible.express(in: self, path: path, input: input)
    }

    /// A node `op` of `inputs`; returns its outputs' names (`outputs` of them; "" skips an
    /// optional output).
    @discardableResult
    func node(_ op: String, _ inputs: [String], path: String, attributes: [Onnx_AttributeProto] = [],
              outputs: [Bool] = [true]) -> [String] {
        var node = Onnx_NodeProto()
        node.opType = op
        node.name = unique(path + "/" + op)
        node.input = inputs
        node.output = outputs.enumerated().map { index, wanted in
            wanted ? (index == 0 ? node.name : unique(node.name + ":\(index)")) : ""
        }
        node.attribute = attributes
        nodes.append(node)
        return node.output
    }

    /// One-output node: its output's name.
    func op(_ op: String, _ inputs: [String], path: String, _ attributes: Onnx_AttributeProto...) -> String {
        node(op, inputs, path: path, attributes: attributes)[0]
    }

    /// `parameter` as an initializer under its ollie name (once, however often it is read).
    func tensor(_ parameter: Parameter) -> String {
        guard !taken.contains(parameter.name) else { return parameter.name }
        taken.insert(parameter.name)
        initializers.append(Onnx_TensorProto(name: parameter.name, shape: parameter.value.shape, floats: parameter.value.data))
        return parameter.name
    }

    /// A float constant; scalars when `shape` is [].
    func constant(_ name: String, shape: [Int] = [], floats: [Float]) -> String {
        constant(name) { Onnx_TensorProto(name: $0, shape: shape, floats: floats) }
    }

    /// An int64 constant (shapes, axes, indices).
    func constant(_ name: String, int64s: [Int]) -> String {
        constant(name) { Onnx_TensorProto(name: $0, shape: [int64s.count], int64s: int64s.map(Int64.init)) }
    }

    private func constant(_ name: String, _ make: (String) -> Onnx_TensorProto) -> String {
        if let given = constants[name] { return given }
        let given = unique(name)
        constants[name] = given
        initializers.append(make(given))
        return given
    }

    /// Renames the graph's last value to `name` (an Identity when it is the input itself).
    func finish(output: String, as name: String) {
        guard let producer = nodes.lastIndex(where: { $0.output.contains(output) }) else {
            node("Identity", [output], path: "output")
            nodes[nodes.count - 1].output = [name]
            return
        }
        nodes[producer].output = nodes[producer].output.map { $0 == output ? name : $0 }
    }

    private func unique(_ name: String) -> String {
        var candidate = name, count = 1
        while taken.contains(candidate) {
            count += 1
            candidate = "\(name)_\(count)"
        }
        taken.insert(candidate)
        return candidate
    }
}

// MARK: - Attributes

extension Onnx_AttributeProto {
    static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = values.map(Int64.init)
        return a
    }

    static func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = value
        return a
    }

    static func string(_ name: String, _ value: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(value.utf8)
        return a
    }
}
