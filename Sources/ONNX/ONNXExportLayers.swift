import NN
import ONNXProto

// How each of ollie's layers is written as ONNX nodes (opset 17), in the standard layout:
// images [N, C, D…], flat features [N, F], sequences [N, T, F]. A layer that is not here
// cannot be exported (ONNXGraph.express says which).

// MARK: - Containers

extension Chain: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        try graph.chain(children, path: path, input: input)
    }
}

/// y = body(x) + shortcut(x), the shortcut the identity or its projection.
extension Residual: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        let body = try graph.chain(self.body.children, path: path + ".body", input: input)
        let shortcut = try self.shortcut.map { try graph.chain($0.children, path: path + ".shortcut", input: input) } ?? input
        return ONNXValue(name: graph.op("Add", [body.name, shortcut.name], path: path), shape: body.shape)
    }
}

/// Clips [N, C, T, H, W] → frames [N·T, C, H, W] → the network → [N·T, F] → sequences [N, T, F].
extension PerFrame: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        let (channels, steps, frame) = (input.shape[0], input.shape[1], Array(input.shape.dropFirst(2)))
        let timeFirst = graph.op("Transpose", [input.name], path: path,
                                 .ints("perm", [0, 2, 1] + (0..<frame.count).map { $0 + 3 }))
        let frames = graph.op("Reshape", [timeFirst, graph.constant(path + "/frame_shape", int64s: [-1, channels] + frame)], path: path)
        let features = try graph.chain(net.children, path: path + ".net", input: ONNXValue(name: frames, shape: [channels] + frame))
        guard features.shape.count == 1 else {
            throw ONNXError("layer \(path) (\(self)) gives \(features.shape) a frame, not flat features; it cannot be exported")
        }
        let sequences = graph.op("Reshape", [features.name, graph.constant(path + "/sequence_shape", int64s: [-1, steps, features.shape[0]])],
                                 path: path)
        return ONNXValue(name: sequences, shape: [steps, features.shape[0]])
    }
}

// MARK: - Convolution and pooling

/// Conv with its stride, symmetric padding (pads: every dimension's begin, then every end) and
/// channel groups (weight [OUT, IN/G, k…] in both), then its fused ReLU as a node of its own.
extension Convolution: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        var y = graph.op("Conv", [input.name, graph.tensor(weight), graph.tensor(bias)], path: path,
                         .ints("kernel_shape", kernel), .ints("strides", stride), .ints("pads", padding + padding),
                         .int("group", groups))
        switch activation {
        case .identity: break
        case .relu: y = graph.op("Relu", [y], path: path)
        }
        return ONNXValue(name: y, shape: try outputShape(for: input.shape))
    }
}

/// MaxPool / AveragePool, sizes rounding down (ceil_mode 0), as ollie's. Padding: max never
/// picks it, average divides by the cells inside the input (count_include_pad 0), in both.
extension Pooling: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        let op: String
        switch kind {
        case .max: op = "MaxPool"
        case .avg: op = "AveragePool"
        }
        let y = graph.op(op, [input.name], path: path, .ints("kernel_shape", kernel), .ints("strides", stride),
                         .ints("pads", padding + padding))
        return ONNXValue(name: y, shape: try outputShape(for: input.shape))
    }
}

/// [N, C, D…] → [N, C, 1, …, 1], the rank kept as ollie's.
extension GlobalAveragePool: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        ONNXValue(name: graph.op("GlobalAveragePool", [input.name], path: path), shape: try outputShape(for: input.shape))
    }
}

/// [N, C, D…] → [N, C·∏D] in (c, d…) order, as ollie's and PyTorch's flatten; [N, F] stays.
extension Flatten: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        ONNXValue(name: graph.op("Flatten", [input.name], path: path, .int("axis", 1)), shape: try outputShape(for: input.shape))
    }
}

// MARK: - Dense, normalization, dropout

/// y = x·Wᵀ + b: Gemm with transB, W kept [Out, In].
extension Dense: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        let y = graph.op("Gemm", [input.name, graph.tensor(weight), graph.tensor(bias)], path: path, .int("transB", 1))
        return ONNXValue(name: y, shape: try outputShape(for: input.shape))
    }
}

/// Inference form: the running statistics and ollie's epsilon. ONNX's channel axis is 1 for
/// [N, C, D…] and for [N, F] alike.
extension BatchNorm: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        let y = graph.op("BatchNormalization", [input.name, graph.tensor(weight), graph.tensor(bias), graph.tensor(runningMean),
                                                graph.tensor(runningVariance)], path: path, .float("epsilon", epsilon))
        return ONNXValue(name: y, shape: input.shape)
    }
}

/// The identity at inference: no node.
extension Dropout: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue { input }
}

// MARK: - Activations

extension ReLU: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        ONNXValue(name: graph.op("Relu", [input.name], path: path), shape: input.shape)
    }
}

extension ElementwiseActivation: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        let x = input.name, y: String
        switch kind {
        case .relu: y = graph.op("Relu", [x], path: path)
        case .relu6:
            y = graph.op("Clip", [x, graph.constant("relu6/min", floats: [0]), graph.constant("relu6/max", floats: [6])], path: path)
        case .leakyRelu: y = graph.op("LeakyRelu", [x], path: path, .float("alpha", ElementwiseActivation.leakySlope))
        case .tanh: y = graph.op("Tanh", [x], path: path)
        case .sigmoid: y = graph.op("Sigmoid", [x], path: path)
        case .gelu:
            // The exact GELU as ollie computes it: x·(1 + erf(x·(1/√2)))/2 (ONNX's Gelu op is opset 20).
            let scaled = graph.op("Mul", [x, graph.constant("gelu/inverse_sqrt2", floats: [0.707_106_78])], path: path)
            let erf = graph.op("Erf", [scaled], path: path)
            let cdf = graph.op("Mul", [graph.op("Add", [erf, graph.constant("gelu/one", floats: [1])], path: path),
                                       graph.constant("gelu/half", floats: [0.5])], path: path)
            y = graph.op("Mul", [x, cdf], path: path)
        }
        return ONNXValue(name: y, shape: input.shape)
    }
}

// MARK: - Sequences

/// ONNX's LSTM and GRU (time first, so the sequences go [N, T, F] → [T, N, F] and back), with
/// ollie's PyTorch-named tensors rearranged in the graph: rows from PyTorch's gate order to
/// ONNX's (LSTM i,f,g,o → i,o,f,c; GRU r,z,n → z,r,h), directions stacked, B = [b_ih, b_hh].
/// GRU applies r after the hidden projection (linear_before_reset 1), as PyTorch does.
/// Output: every step's forward ⊕ reverse state [N, T, D·H] (`seq`), or Y_h: the forward
/// direction's last state ⊕ the reverse direction's after it has read the whole sequence.
extension RecurrentLayer: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        let op: String, order: [Int]
        switch self {
        case is LSTM: (op, order) = ("LSTM", [0, 3, 1, 2])
        case is GRU: (op, order) = ("GRU", [1, 0, 2])
        default: throw ONNXError("ONNX export cannot express layer \(path) (\(self)) yet; export a model without it")
        }
        let steps = input.shape[0], directions = bidirectional ? 2 : 1, width = directions * hidden
        let rows = graph.constant(path + "/gate_order", int64s: order.flatMap { gate in (gate * hidden)..<((gate + 1) * hidden) })
        let first = graph.constant("axes/0", int64s: [0])
        func named(_ local: String) throws -> Parameter {
            guard let p = parameters.first(where: { $0.localName == local }) else {
                throw ONNXError("layer \(path) (\(self)) has no tensor \(local); it cannot be exported")
            }
            return p
        }
        /// One direction's tensor, rows in ONNX's gate order, with a leading direction axis.
        func reordered(_ local: String) throws -> String {
            graph.op("Gather", [graph.tensor(try named(local)), rows], path: path, .int("axis", 0))
        }
        func stacked(_ perDirection: [String]) -> String {
            let expanded = perDirection.map { graph.op("Unsqueeze", [$0, first], path: path) }
            return expanded.count == 1 ? expanded[0] : graph.op("Concat", expanded, path: path, .int("axis", 0))
        }
        let suffixes = bidirectional ? ["_l0", "_l0_reverse"] : ["_l0"]
        let w = stacked(try suffixes.map { try reordered("weight_ih" + $0) })
        let r = stacked(try suffixes.map { try reordered("weight_hh" + $0) })
        let b = stacked(try suffixes.map {
            graph.op("Concat", [try reordered("bias_ih" + $0), try reordered("bias_hh" + $0)], path: path, .int("axis", 0))
        })
        let timeFirst = graph.op("Transpose", [input.name], path: path, .ints("perm", [1, 0, 2]))
        var attributes: [Onnx_AttributeProto] = [.int("hidden_size", hidden), .string("direction", bidirectional ? "bidirectional" : "forward")]
        if op == "GRU" { attributes.append(.int("linear_before_reset", 1)) }
        let outputs = graph.node(op, [timeFirst, w, r, b], path: path, attributes: attributes,
                                 outputs: [returnsSequence, !returnsSequence])
        if returnsSequence {
            // Y [T, D, N, H] → [N, T, D, H] → [N, T, D·H]
            let batchFirst = graph.op("Transpose", [outputs[0]], path: path, .ints("perm", [2, 0, 1, 3]))
            let y = graph.op("Reshape", [batchFirst, graph.constant(path + "/output_shape", int64s: [0, steps, width])], path: path)
            return ONNXValue(name: y, shape: [steps, width])
        }
        // Y_h [D, N, H] → [N, D, H] → [N, D·H]
        let batchFirst = graph.op("Transpose", [outputs[1]], path: path, .ints("perm", [1, 0, 2]))
        let y = graph.op("Reshape", [batchFirst, graph.constant(path + "/output_shape", int64s: [0, width])], path: path)
        return ONNXValue(name: y, shape: [width])
    }
}

/// u = tanh(x·Wᵀ + b) [N, T, A], α = softmax over time of u·vᵀ [N, T, 1], y = Σ_t α_t x_t [N, F].
extension AttentionPool: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        let transposed = graph.op("Transpose", [graph.tensor(weight)], path: path, .ints("perm", [1, 0]))
        let projected = graph.op("Add", [graph.op("MatMul", [input.name, transposed], path: path), graph.tensor(bias)], path: path)
        let u = graph.op("Tanh", [projected], path: path)
        let v = graph.op("Transpose", [graph.tensor(score)], path: path, .ints("perm", [1, 0]))
        let alpha = graph.op("Softmax", [graph.op("MatMul", [u, v], path: path)], path: path, .int("axis", 1))
        let weighted = graph.op("Mul", [input.name, alpha], path: path)
        let y = graph.op("ReduceSum", [weighted, graph.constant("axes/1", int64s: [1])], path: path, .int("keepdims", 0))
        return ONNXValue(name: y, shape: try outputShape(for: input.shape))
    }
}

/// `gap` on a sequence: the mean over time (opset 17's ReduceMean takes its axes as an attribute).
extension SequenceMean: ONNXExpressible {
    func express(in graph: ONNXGraph, path: String, input: ONNXValue) throws -> ONNXValue {
        let y = graph.op("ReduceMean", [input.name], path: path, .ints("axes", [1]), .int("keepdims", 0))
        return ONNXValue(name: y, shape: try outputShape(for: input.shape))
    }
}
