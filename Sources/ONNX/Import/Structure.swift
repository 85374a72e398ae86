import NN
import ONNXProto
import Tensor

// The operators that shape the chain rather than compute a layer: Add (a residual block, or a
// MatMul's bias), Flatten / Reshape / Squeeze, and Transpose.

extension GraphWalk {
    /// Add of two branches → `res(body)`; Add of a weight right after a MatMul → its bias.
    mutating func add(_ node: Onnx_NodeProto) throws -> Activation {
        let first = try value(node, 0), second = try value(node, 1)
        switch (first, second) {
        case (.activation(let a), .activation(let b)): return try residual(node, a, b)
        case (.activation(let x), .constant), (.constant, .activation(let x)):
            let weightInput = { if case .constant = first { return 0 } else { return 1 } }()
            guard x.openBias, var last = x.path.last, let bias = try? tensor(node, weightInput), bias.count == last.output.dims[0] else {
                throw refuse(node, "it adds a constant to activations other than as a MatMul's bias; ollie has no such layer")
            }
            last.tensors["bias"] = Tensor([bias.count], bias.data)
            var out = x
            out.path[out.path.count - 1] = last
            out.openBias = false
            return out
        default:
            throw refuse(node, "it adds values that are not two branches of activations nor a bias")
        }
    }

    /// y = body(x) + shortcut(x): one branch is the block's input itself (identity), or a
    /// 1×1 Conv (+ BatchNormalization) of it with the body's stride (projection), as ollie's
    /// `res(…)` builds it: its shortcut conv has a bias, and a batchnorm exactly when the body
    /// has one. So a shortcut batchnorm is folded into the conv when the body has none, and an
    /// identity batchnorm is filled in when the body has one and the shortcut none.
    mutating func residual(_ node: Onnx_NodeProto, _ a: Activation, _ b: Activation) throws -> Activation {
        let common = zip(a.path, b.path).prefix { $0.id == $1.id }.count
        let restA = Array(a.path[common...]), restB = Array(b.path[common...])
        guard a.shape == b.shape, a.timeMajor == b.timeMajor else {
            throw refuse(node, "it adds \(a.shape.text) to \(b.shape.text); ollie's res(…) adds two values of one shape")
        }
        guard !restA.isEmpty || !restB.isEmpty else { throw refuse(node, "it adds a value to itself; ollie has no layer doubling its input") }
        let input = (restA.first ?? restB.first)!.input
        var reasons: [String] = []
        for (body, shortcut) in [(restA, restB), (restB, restA)] where !body.isEmpty {
            do {
                let block = try residualBlock(node, body: body, shortcut: shortcut, input: input, output: a.shape)
                return Activation(path: Array(a.path[..<common]) + [block], shape: a.shape, timeMajor: a.timeMajor)
            } catch let error as ONNXError { reasons.append(error.message) }
        }
        throw refuse(node, "its two branches are not a residual block ollie's res(…) builds: neither is the block's input nor a 1×1 convolution of it (+ batchnorm) with the other's stride (\(reasons.last ?? ""))")
    }

    mutating func residualBlock(_ node: Onnx_NodeProto, body: [Piece], shortcut: [Piece], input: SampleShape,
                                output: SampleShape) throws -> Piece {
        let bodySpec: ModelSpec, res: ResidualSpec
        do {
            bodySpec = try ModelSpec(parsing: Piece.text(of: body))
            res = try ResidualSpec(keyword: "res", body: bodySpec)
            guard try res.output(for: input) == output else { throw ONNXError("the body gives another shape") }
        } catch { throw ONNXError("res(\(Piece.text(of: body))) cannot take \(input.text): \(error)") }
        var block = Piece(id: makeID(Self.name(of: node)), layer: res, body: body, input: input, output: output, node: Self.name(of: node))
        if shortcut.isEmpty {
            guard input == output else { throw ONNXError("the identity shortcut cannot add \(input.text) to \(output.text)") }
            return block
        }
        guard input != output else { throw ONNXError("its shortcut is a projection where the shapes agree; ollie's res(…) uses the identity there") }
        let rank = input.dims.count - 1
        guard let geometry = shortcut[0].convolution, geometry.kernel.allSatisfy({ $0 == 1 }), geometry.padding.allSatisfy({ $0 == 0 }),
              geometry.groups == 1, geometry.stride == bodySpec.stride(rank: rank),
              shortcut.count == 1 || (shortcut.count == 2 && shortcut[1].layer is BatchNormSpec) else {
            throw ONNXError("the shortcut \(Piece.text(of: shortcut)) is not a 1×1 convolution with the body's stride \(bodySpec.stride(rank: rank)) (+ batchnorm)")
        }
        var conv = shortcut[0].tensors
        block.shortcutIDs = shortcut.map(\.id)
        let bodyHasBatchNorm = Piece.containsBatchNorm(body)
        switch (shortcut.count == 2, bodyHasBatchNorm) {
        case (true, true): block.shortcut = [conv, shortcut[1].tensors]
        case (false, false): block.shortcut = [conv]
        case (true, false):
            foldBatchNorm(shortcut[1].tensors, into: &conv)
            block.shortcut = [conv]
        case (false, true):
            // σ² + ε = 1: the batchnorm ollie adds passes the conv's output through.
            let channels = output.dims[0], epsilon = BatchNorm(channels: 1).epsilon
            block.shortcut = [conv, ["weight": Tensor([channels], repeating: 1), "bias": Tensor([channels]),
                                     "running_mean": Tensor([channels]), "running_var": Tensor([channels], repeating: 1 - epsilon),
                                     "num_batches_tracked": Tensor([1])]]
        }
        return block
    }

    /// A batchnorm after a convolution folded into it: w′ = w·γ/√(σ² + ε), b′ = (b − μ)·γ/√(σ² + ε) + β.
    func foldBatchNorm(_ norm: [String: Tensor], into conv: inout [String: Tensor]) {
        let epsilon = BatchNorm(channels: 1).epsilon
        let gamma = norm["weight"]!.data, beta = norm["bias"]!.data, mean = norm["running_mean"]!.data, variance = norm["running_var"]!.data
        let weight = conv["weight"]!, bias = conv["bias"]!
        let perChannel = weight.count / weight.shape[0]
        var w = weight.data, b = bias.data
        for c in 0..<weight.shape[0] {
            let scale = gamma[c] / (variance[c] + epsilon).squareRoot()
            for i in 0..<perChannel { w[c * perChannel + i] *= scale }
            b[c] = (b[c] - mean[c]) * scale + beta[c]
        }
        conv["weight"] = Tensor(weight.shape, w)
        conv["bias"] = Tensor(bias.shape, b)
    }

    /// Flatten (axis 1), Reshape to [N, features] and Squeeze of the 1-sized axes after a
    /// global pool → `flatten`; on a recurrent layer's output they rearrange its axes.
    mutating func reshape(_ node: Onnx_NodeProto) throws -> Value {
        let x = try value(node, 0)
        if case .recurrent(let r) = x { return try reshapeRecurrent(node, r) }
        guard case .activation(let a) = x else { throw refuse(node, "it reshapes a value that is not activations") }
        guard !a.shape.isSequence else { throw refuse(node, "it reshapes a sequence (\(a.shape.text)); ollie keeps a sequence [N, T, F]") }
        let features = a.shape.dims.reduce(1, *)
        switch node.opType {
        case "Flatten":
            guard (node.int("axis") ?? 1) == 1 else { throw refuse(node, "Flatten at axis \(node.int("axis")!); ollie flattens each sample (axis 1)") }
        case "Squeeze":
            let axes = try has(node, 1) ? integers(node, 1).compactMap { $0 } : (node.ints("axes") ?? [])
            let rank = a.shape.dims.count + 1
            let squeezed = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
            guard squeezed == Set(2..<rank), a.shape.dims.dropFirst().allSatisfy({ $0 == 1 }) else {
                throw refuse(node, "a Squeeze of axes \(axes) of \(a.shape.text); ollie imports one only to [N, C] after a global pool")
            }
        default:   // Reshape
            let target = try integers(node, 1)
            let batch = target.first ?? 0
            guard target.count == 2, batch == nil || batch == 0 || batch == -1 || batch == batchSize,
                  target[1] == -1 || target[1] == features else {
                throw refuse(node, "a Reshape to \(target.map { $0.map(String.init) ?? "N" }) of \(a.shape.text); ollie imports a reshape only to [N, \(features)] (flatten)")
            }
        }
        guard a.shape.dims.count > 1 else { return .activation(a) }
        return .activation(try append(FlattenSpec(), to: a, node: node))
    }

    /// The batch size fixed in the graph's input, if it is.
    var batchSize: Int? {
        let weights = Set(graph.initializer.map(\.name))
        guard let input = graph.input.first(where: { !weights.contains($0.name) }), let first = input.type.tensorType.shape.dim.first,
              case .dimValue(let size)? = first.value else { return nil }
        return Int(size)
    }

    /// Transpose: swaps a sequence's batch and time axes, or rearranges a recurrent output's.
    func transpose(_ node: Onnx_NodeProto) throws -> Value {
        let x = try value(node, 0)
        switch x {
        case .activation(var a) where a.shape.isSequence:
            let perm = node.ints("perm") ?? [2, 1, 0]
            guard perm == [1, 0, 2] else { throw refuse(node, "a Transpose \(perm) of a sequence; ollie swaps only its batch and time axes ([1, 0, 2])") }
            a.timeMajor.toggle()
            return .activation(a)
        case .recurrent(var r):
            let perm = node.ints("perm") ?? Array(r.axes.indices.reversed())
            guard perm.sorted() == Array(r.axes.indices) else { throw refuse(node, "a Transpose \(perm) of \(r.axes.count) axes") }
            r.axes = perm.map { r.axes[$0] }
            return try settle(node, r)
        default:
            throw refuse(node, "a Transpose of \(describeValue(x)); ollie keeps images channels first and transposes only sequences")
        }
    }

    func describeValue(_ value: Value) -> String {
        switch value {
        case .activation(let a): return a.shape.text
        case .constant(let t): return "a constant \(t.shape)"
        case .integers: return "shape integers"
        case .zeros: return "zeros"
        case .recurrent: return "a recurrent layer's output"
        }
    }
}
