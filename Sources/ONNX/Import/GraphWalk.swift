import Foundation
import NN
import ONNXProto
import Tensor

/// Activations flowing through the graph: the modules from the graph input to here (a branch
/// shares its first modules with the others, by piece id) and one sample's shape.
struct Activation {
    var path: [Piece]
    var shape: SampleShape
    /// A sequence's ONNX tensor is [N, T, F], or with `timeMajor` [T, N, F].
    var timeMajor = false
    /// The last piece is a `dense` made from a MatMul, whose bias an Add may still bring.
    var openBias = false
}

/// A recurrent layer's ONNX output on its way to an activation: its axes by label ("T", "D",
/// "N", "H", and "DH" once D and H are merged), as Transpose, Squeeze, Gather, Flatten and
/// Reshape rearrange them. `Y` [T, D, N, H] becomes a sequence (the layer's `seq`), `Y_h`
/// [D, N, H] the last state, both directions side by side.
struct RecurrentValue {
    var path: [Piece]
    var layer: Piece
    var directions: Int
    var hidden: Int
    var axes: [String]
    var isSequence: Bool
}

/// What an ONNX value is to the importer.
enum Value {
    case activation(Activation)
    case constant(Onnx_TensorProto)
    /// Shape arithmetic (Shape, Gather, Concat…); nil is the batch size.
    case integers([Int?])
    /// ConstantOfShape(0): a recurrent layer's initial state.
    case zeros
    case recurrent(RecurrentValue)
}

/// Walks a graph in topological order, giving each value its meaning, and refuses in one line
/// what ollie cannot express.
struct GraphWalk {
    let graph: Onnx_GraphProto
    let source: String
    var values: [String: Value] = [:]
    var nextID = 0
    /// Every piece made, by id, to name one whose output never reaches the graph's output.
    var made: [Int: String] = [:]

    init(graph: Onnx_GraphProto, source: String) {
        self.graph = graph
        self.source = source
    }

    /// The modules, one sample's shape as the spec reads it, the data's input shape and the
    /// output's per-sample shape.
    mutating func run() throws -> (pieces: [Piece], input: SampleShape, inputShape: [Int], output: SampleShape) {
        for tensor in graph.initializer { values[tensor.name] = .constant(tensor) }
        let (name, input, inputShape, start) = try graphInput()
        values[name] = .activation(start)
        for node in graph.node { try visit(node) }
        guard graph.output.count == 1 else {
            throw ONNXError("\(source): the graph has \(graph.output.count) outputs (\(graph.output.map(\.name).joined(separator: ", "))); ollie imports a classifier with one")
        }
        guard case .activation(let out)? = values[graph.output[0].name] else {
            throw ONNXError("\(source): the graph's output '\(graph.output[0].name)' is not computed from its input by layers ollie has")
        }
        let used = Piece.ids(out.path)
        if let twice = Dictionary(grouping: used, by: { $0 }).first(where: { $0.value.count > 1 }) {
            throw ONNXError("\(source): node '\(made[twice.key] ?? "?")' feeds two branches that are not a residual block; ollie imports a chain of layers with res(…) blocks")
        }
        if let lost = made.keys.sorted().first(where: { !used.contains($0) }) {
            throw ONNXError("\(source): node '\(made[lost]!)' does not lead to the graph's output through a chain of layers; ollie imports a chain with res(…) blocks, not side branches")
        }
        return (out.path, input, inputShape, out.shape)
    }

    /// The one graph input that is not an initializer: its per-sample shape (the batch, dim 0,
    /// may be symbolic) and the modules that read it. [N, T, F] feeding an LSTM or a GRU is a
    /// sequence, read as the clip [1, T, 1, F] by `frames(flatten)`.
    mutating func graphInput() throws -> (String, SampleShape, [Int], Activation) {
        let weights = Set(graph.initializer.map(\.name))
        let inputs = graph.input.filter { !weights.contains($0.name) }
        guard inputs.count == 1 else {
            throw ONNXError("\(source): the graph has \(inputs.count) inputs (\(inputs.map(\.name).joined(separator: ", "))); ollie imports a model with one")
        }
        let input = inputs[0]
        let dims = input.type.tensorType.shape.dim
        guard input.type.tensorType.elemType == Int32(Onnx_TensorProto.DataType.float.rawValue) else {
            throw ONNXError("\(source): the input '\(input.name)' is not float32; export the model with a float input")
        }
        guard (2...5).contains(dims.count) else {
            throw ONNXError("\(source): the input '\(input.name)' has \(dims.count) dimensions; ollie imports [N, F], [N, T, F], [N, C, L], [N, C, H, W] or [N, C, D, H, W]")
        }
        var sample: [Int] = []
        for (axis, dim) in dims.enumerated().dropFirst() {
            guard case .dimValue(let size)? = dim.value, size > 0 else {
                throw ONNXError("\(source): the input '\(input.name)' has an unknown size at dimension \(axis); export it with fixed sizes (only the batch, dimension 0, may vary)")
            }
            sample.append(Int(size))
        }
        if sample.count == 2, graph.node.contains(where: { $0.opType == "LSTM" || $0.opType == "GRU" }) {
            let sequence = SampleShape(sample, sequence: true)
            let clip = SampleShape([1, sample[0], 1, sample[1]])
            let flatten = Piece(id: makeID(input.name), layer: FlattenSpec(), input: SampleShape([1, 1, sample[1]]),
                                output: SampleShape([sample[1]]), node: input.name)
            let frames = Piece(id: makeID(input.name), layer: try FramesSpec(keyword: "frames", body: ModelSpec(parsing: "flatten")),
                               body: [flatten], input: clip, output: sequence, node: input.name)
            return (input.name, clip, clip.dims, Activation(path: [frames], shape: sequence))
        }
        return (input.name, SampleShape(sample), sample, Activation(path: [], shape: SampleShape(sample)))
    }

    mutating func makeID(_ node: String) -> Int {
        nextID += 1
        made[nextID] = node
        return nextID
    }

    // MARK: - Nodes

    mutating func visit(_ node: Onnx_NodeProto) throws {
        let op = node.opType
        switch op {
        case "Constant": try set(node, 0, constant(node))
        case "Dropout", "Identity": try set(node, 0, value(node, 0))
        case "Conv": try set(node, 0, .activation(conv(node, try activation(node, 0))))
        case "BatchNormalization": try set(node, 0, .activation(batchNorm(node, try activation(node, 0))))
        case "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "Gelu":
            try set(node, 0, .activation(activationFunction(node, try activation(node, 0))))
        case "MaxPool", "AveragePool": try set(node, 0, .activation(pool(node, try activation(node, 0))))
        case "GlobalAveragePool":
            let x = try activation(node, 0)
            guard !x.shape.isSequence, x.shape.dims.count >= 2 else { throw refuse(node, "global average pooling needs images, got \(x.shape.text)") }
            try set(node, 0, .activation(append(GlobalAveragePoolSpec(keyword: "gap", arguments: []), to: x, node: node)))
        case "Gemm": try set(node, 0, .activation(gemm(node, try activation(node, 0))))
        case "MatMul": try set(node, 0, .activation(matMul(node, try activation(node, 0))))
        case "Add": try set(node, 0, .activation(add(node)))
        case "Flatten", "Reshape", "Squeeze": try set(node, 0, reshape(node))
        case "Transpose": try set(node, 0, transpose(node))
        case "Shape", "Gather", "Unsqueeze", "Concat", "ConstantOfShape": try set(node, 0, shapeArithmetic(node))
        case "LSTM", "GRU": try recurrent(node)
        default:
            throw refuse(node, "ollie cannot import the operator \(op); it imports \(ONNXImport.operators.joined(separator: ", "))")
        }
    }

    mutating func set(_ node: Onnx_NodeProto, _ output: Int, _ value: Value) throws {
        guard output < node.output.count, !node.output[output].isEmpty else { throw refuse(node, "it has no output \(output)") }
        values[node.output[output]] = value
    }

    /// One line naming the node, its operator and what is wrong.
    func refuse(_ node: Onnx_NodeProto, _ why: String) -> ONNXError {
        ONNXError("\(source): node '\(Self.name(of: node))' (\(node.opType)): \(why)")
    }

    static func name(of node: Onnx_NodeProto) -> String {
        node.name.isEmpty ? (node.output.first ?? "?") : node.name
    }

    func value(_ node: Onnx_NodeProto, _ input: Int) throws -> Value {
        guard input < node.input.count, !node.input[input].isEmpty else { throw refuse(node, "it lacks input \(input)") }
        guard let value = values[node.input[input]] else {
            throw refuse(node, "its input '\(node.input[input])' is not made by any node before it (the graph is not in topological order, or reads a value ollie cannot import)")
        }
        return value
    }

    /// Whether input `input` is given (ONNX skips an optional input with an empty name).
    func has(_ node: Onnx_NodeProto, _ input: Int) -> Bool { input < node.input.count && !node.input[input].isEmpty }

    func activation(_ node: Onnx_NodeProto, _ input: Int) throws -> Activation {
        guard case .activation(let x) = try value(node, input) else {
            throw refuse(node, "its input '\(node.input[input])' is not the activations of the layers before it")
        }
        return x
    }

    /// A weight: an initializer or a Constant.
    func weight(_ node: Onnx_NodeProto, _ input: Int) throws -> Onnx_TensorProto {
        guard case .constant(let tensor) = try value(node, input) else {
            throw refuse(node, "its input \(input) ('\(node.input[input])') is computed, not a stored weight; ollie imports fixed weights")
        }
        return tensor
    }

    func tensor(_ node: Onnx_NodeProto, _ input: Int) throws -> Tensor {
        do { return try weight(node, input).tensor() } catch let error as ONNXError { throw refuse(node, error.message) }
    }

    /// The integers of a constant or of shape arithmetic.
    func integers(_ node: Onnx_NodeProto, _ input: Int) throws -> [Int?] {
        switch try value(node, input) {
        case .integers(let values): return values
        case .constant(let tensor):
            do { return try tensor.integerValues().map { $0 } } catch let error as ONNXError { throw refuse(node, error.message) }
        default: throw refuse(node, "its input '\(node.input[input])' is not a list of integers")
        }
    }

    /// A piece made from `layer` appended to the path of `x`, its output shape checked.
    mutating func append(_ layer: any LayerSpec, to x: Activation, node: Onnx_NodeProto, tensors: [String: Tensor] = [:],
                         inline: Bool = false, convolution: Piece.ConvolutionGeometry? = nil) throws -> Activation {
        let output: SampleShape
        do { output = try layer.output(for: x.shape) } catch { throw refuse(node, "\(layer.text) cannot take \(x.shape.text): \(error)") }
        let piece = Piece(id: makeID(Self.name(of: node)), layer: layer, inline: inline, tensors: tensors, input: x.shape, output: output,
                          node: Self.name(of: node), convolution: convolution)
        return Activation(path: x.path + [piece], shape: output, timeMajor: x.timeMajor)
    }

    /// A layer spec from its words, or one line saying ollie has no such layer.
    func layer<Spec: LayerSpec>(_ type: Spec.Type, _ node: Onnx_NodeProto, _ arguments: [String]) throws -> Spec {
        do { return try Spec(keyword: Spec.keyword, arguments: arguments) } catch {
            throw refuse(node, "ollie cannot express it as `\(([Spec.keyword] + arguments).joined(separator: " "))`: \(error)")
        }
    }

    // MARK: - Constants and shape arithmetic

    func constant(_ node: Onnx_NodeProto) throws -> Value {
        if let tensor = node.attributeValue("value")?.t {
            var named = tensor
            named.name = node.output.first ?? tensor.name
            return .constant(named)
        }
        if let value = node.attributeValue("value_float") { return .constant(Onnx_TensorProto(name: node.output[0], shape: [], floats: [value.f])) }
        if let value = node.attributeValue("value_floats") {
            return .constant(Onnx_TensorProto(name: node.output[0], shape: [value.floats.count], floats: value.floats))
        }
        if let value = node.attributeValue("value_int") { return .integers([Int(value.i)]) }
        if let value = node.attributeValue("value_ints") { return .integers(value.ints.map { Int($0) }) }
        throw refuse(node, "a Constant without a tensor, float or integer value")
    }

    /// Shape, Gather, Unsqueeze, Concat and ConstantOfShape on integers (the arithmetic
    /// exporters write to size a reshape or a recurrent layer's zero initial state); Gather
    /// and Unsqueeze also pick one direction's state of a recurrent layer.
    func shapeArithmetic(_ node: Onnx_NodeProto) throws -> Value {
        switch node.opType {
        case "Shape":
            var dims: [Int?]
            switch try value(node, 0) {
            case .activation(let x): dims = x.shape.isSequence ? (x.timeMajor ? [x.shape.dims[0], nil, x.shape.dims[1]] : [nil] + x.shape.dims) : [nil] + x.shape.dims
            case .recurrent(let r): dims = r.axes.map { r.size(of: $0) }
            case .constant(let t): dims = t.shape
            default: throw refuse(node, "the shape of a value ollie does not track")
            }
            let start = node.attributeValue("start").map { Int($0.i) } ?? 0, end = node.attributeValue("end").map { Int($0.i) } ?? dims.count
            let from = start < 0 ? max(0, dims.count + start) : min(start, dims.count)
            let to = end < 0 ? max(0, dims.count + end) : min(end, dims.count)
            return .integers(from < to ? Array(dims[from..<to]) : [])
        case "Gather":
            if case .recurrent(let r) = try value(node, 0) { return try gatherDirection(node, r) }
            let data = try integers(node, 0), indices = try integers(node, 1)
            guard (node.attributeValue("axis").map { $0.i } ?? 0) == 0 else { throw refuse(node, "Gather on shape integers along an axis other than 0") }
            return .integers(try indices.map { index in
                guard let index, (-data.count..<data.count).contains(index) else { throw refuse(node, "Gather index \(index.map(String.init) ?? "?") outside \(data.count) values") }
                return data[index < 0 ? data.count + index : index]
            })
        case "Unsqueeze":
            return .integers(try integers(node, 0))
        case "Concat":
            return .integers(try node.input.indices.flatMap { try integers(node, $0) })
        default:   // ConstantOfShape
            if let fill = node.attributeValue("value")?.t {
                let values: [Float]
                do { values = try fill.floatValues() } catch let error as ONNXError { throw refuse(node, error.message) }
                guard values.allSatisfy({ $0 == 0 }) else { throw refuse(node, "a ConstantOfShape of \(values) (ollie imports only the zeros of an initial state)") }
            }
            return .zeros
        }
    }
}

extension RecurrentValue {
    /// The size of an axis (nil for the batch).
    func size(of axis: String) -> Int? {
        switch axis {
        case "T": return layer.input.dims[0]
        case "D": return directions
        case "H": return hidden
        case "DH": return directions * hidden
        default: return nil
        }
    }
}

extension Onnx_NodeProto {
    func attributeValue(_ name: String) -> Onnx_AttributeProto? { attribute.first { $0.name == name } }
    func ints(_ name: String) -> [Int]? { attributeValue(name).map { $0.ints.map { Int($0) } } }
    func int(_ name: String) -> Int? { attributeValue(name).map { Int($0.i) } }
    func float(_ name: String) -> Float? { attributeValue(name).map(\.f) }
    func string(_ name: String) -> String? { attributeValue(name).map { String(decoding: $0.s, as: UTF8.self) } }
}
