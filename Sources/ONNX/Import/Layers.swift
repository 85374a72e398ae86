import NN
import ONNXProto
import Tensor

// The layer operators: Conv, BatchNormalization, the activations, pooling, Gemm and MatMul.

/// "3" for one size on every axis, else "3x1".
func sizesText(_ values: [Int]) -> String {
    values.allSatisfy({ $0 == values[0] }) ? String(values[0]) : values.map(String.init).joined(separator: "x")
}

extension GraphWalk {
    /// The padding of a Conv or a pooling node per axis; refuses asymmetric pads, auto_pad
    /// other than NOTSET or VALID, and dilations.
    func symmetricPadding(_ node: Onnx_NodeProto, rank: Int) throws -> [Int] {
        if let dilations = node.ints("dilations"), dilations.contains(where: { $0 != 1 }) {
            throw refuse(node, "dilations \(dilations); ollie has no dilated windows")
        }
        switch node.string("auto_pad") ?? "NOTSET" {
        case "NOTSET", "": break
        case "VALID": return Array(repeating: 0, count: rank)
        case let other: throw refuse(node, "auto_pad \(other); export it with explicit pads")
        }
        let pads = node.ints("pads") ?? Array(repeating: 0, count: 2 * rank)
        guard pads.count == 2 * rank else { throw refuse(node, "\(pads.count) pads for \(rank) spatial dimensions") }
        let begin = Array(pads[..<rank]), end = Array(pads[rank...])
        guard begin == end else {
            throw refuse(node, "asymmetric pads \(pads) (begin \(begin), end \(end)); ollie pads both ends of an axis equally")
        }
        return begin
    }

    /// Conv → `conv K OUT [stride S] [pad P] [groups G]`; weight [OUT, IN/G, k…] as PyTorch's,
    /// a missing bias as zeros (ollie's convolutions have one).
    mutating func conv(_ node: Onnx_NodeProto, _ x: Activation) throws -> Activation {
        guard !x.shape.isSequence, x.shape.dims.count >= 2 else { throw refuse(node, "a convolution needs images, got \(x.shape.text)") }
        let rank = x.shape.dims.count - 1
        let weight = try tensor(node, 1)
        guard weight.shape.count == rank + 2 else { throw refuse(node, "its weight is \(weight.shape) for a \(rank)-D input") }
        let kernel = node.ints("kernel_shape") ?? Array(weight.shape.dropFirst(2))
        let stride = node.ints("strides") ?? Array(repeating: 1, count: rank)
        let padding = try symmetricPadding(node, rank: rank)
        let groups = node.int("group") ?? 1, out = weight.shape[0]
        guard kernel == Array(weight.shape.dropFirst(2)), stride.count == rank, groups >= 1,
              weight.shape[1] * groups == x.shape.dims[0], out % groups == 0 else {
            throw refuse(node, "its weight \(weight.shape) (groups \(groups)) does not fit \(x.shape.text)")
        }
        let bias = has(node, 2) ? try tensor(node, 2) : Tensor([out])
        guard bias.count == out else { throw refuse(node, "its bias has \(bias.count) values for \(out) channels") }
        var words = [sizesText(kernel), String(out), "pad", sizesText(padding)]
        if stride.contains(where: { $0 != 1 }) { words += ["stride", sizesText(stride)] }
        if groups != 1 { words += ["groups", String(groups)] }
        return try append(layer(ConvSpec.self, node, words), to: x, node: node,
                          tensors: ["weight": weight, "bias": Tensor([out], bias.data)],
                          convolution: Piece.ConvolutionGeometry(kernel: kernel, stride: stride, padding: padding, groups: groups))
    }

    /// BatchNormalization (inference) → `batchnorm`. ollie's ε is 1e-5; another ε is folded
    /// into the running variance (σ² + ε is all inference reads).
    mutating func batchNorm(_ node: Onnx_NodeProto, _ x: Activation) throws -> Activation {
        guard (node.int("training_mode") ?? 0) == 0 else { throw refuse(node, "training_mode 1; export the model in eval mode") }
        let channels = x.shape.dims[0]
        let parts = try (1...4).map { try tensor(node, $0) }
        guard parts.allSatisfy({ $0.count == channels }) else { throw refuse(node, "its parameters do not have \(channels) values, one a channel of \(x.shape.text)") }
        let epsilon = node.float("epsilon") ?? 1e-5, ours = BatchNorm(channels: 1).epsilon
        let variance = epsilon == ours ? parts[3].data : parts[3].data.map { $0 + epsilon - ours }
        return try append(BatchNormSpec(keyword: "batchnorm", arguments: []), to: x, node: node, tensors: [
            "weight": Tensor([channels], parts[0].data), "bias": Tensor([channels], parts[1].data),
            "running_mean": Tensor([channels], parts[2].data), "running_var": Tensor([channels], variance),
            "num_batches_tracked": Tensor([1]),
        ])
    }

    /// Relu, Clip(0, 6), LeakyRelu(0.01), Sigmoid, Tanh, Gelu → their activation, inline after
    /// a conv or dense.
    mutating func activationFunction(_ node: Onnx_NodeProto, _ x: Activation) throws -> Activation {
        let word: String
        switch node.opType {
        case "Relu": word = "relu"
        case "Sigmoid": word = "sigmoid"
        case "Tanh": word = "tanh"
        case "Gelu":
            guard (node.string("approximate") ?? "none") == "none" else { throw refuse(node, "GELU's tanh approximation; ollie's gelu is the exact one") }
            word = "gelu"
        case "LeakyRelu":
            let alpha = node.float("alpha") ?? 0.01
            guard alpha == ElementwiseActivation.leakySlope else { throw refuse(node, "LeakyRelu alpha \(alpha); ollie's leakyrelu has slope \(ElementwiseActivation.leakySlope)") }
            word = "leakyrelu"
        default:   // Clip: bounds as inputs (opset 11+) or attributes
            func bound(_ input: Int, _ attribute: String) throws -> Float? {
                if has(node, input) {
                    let values = try tensor(node, input).data
                    guard values.count == 1 else { throw refuse(node, "a Clip bound with \(values.count) values") }
                    return values[0]
                }
                return node.float(attribute)
            }
            let low = try bound(1, "min"), high = try bound(2, "max")
            switch (low, high) {
            case (0?, nil): word = "relu"
            case (0?, 6?): word = "relu6"
            default:
                throw refuse(node, "Clip to [\(low.map { "\($0)" } ?? "-inf"), \(high.map { "\($0)" } ?? "inf")]; ollie has relu (Clip 0) and relu6 (Clip 0 to 6)")
            }
        }
        let layer: ActivationSpec
        do { layer = try ActivationSpec(keyword: word, arguments: []) } catch {
            throw refuse(node, "ollie has no activation \(word) (\(error))")
        }
        let inline = !x.openBias && (x.path.last.map { $0.layer is ConvSpec || $0.layer is DenseSpec } ?? false)
        var out = try append(layer, to: x, node: node, inline: inline)
        out.openBias = false
        return out
    }

    /// MaxPool, AveragePool → `pool K [stride S] [pad P] [avg]` (PyTorch's, averaging over the
    /// window without padding): ceil_mode 1 only where it gives the same sizes, and an
    /// average counting the padding only without padding.
    mutating func pool(_ node: Onnx_NodeProto, _ x: Activation) throws -> Activation {
        guard !x.shape.isSequence, x.shape.dims.count >= 2 else { throw refuse(node, "pooling needs images, got \(x.shape.text)") }
        let rank = x.shape.dims.count - 1
        guard let kernel = node.ints("kernel_shape"), kernel.count == rank else { throw refuse(node, "no kernel_shape for a \(rank)-D input") }
        let stride = node.ints("strides") ?? Array(repeating: 1, count: rank)
        let padding = try symmetricPadding(node, rank: rank)
        let average = node.opType == "AveragePool"
        if average, (node.int("count_include_pad") ?? 0) == 1, padding.contains(where: { $0 > 0 }) {
            throw refuse(node, "an average that counts the padding (count_include_pad 1, pads \(padding)); ollie's avg pool excludes it: export with count_include_pad=False")
        }
        if (node.int("ceil_mode") ?? 0) == 1 {
            for axis in 0..<rank where (x.shape.dims[axis + 1] + 2 * padding[axis] - kernel[axis]) % stride[axis] != 0 {
                throw refuse(node, "ceil_mode 1 rounds the size of \(x.shape.text) up where ollie's pool rounds down; export with ceil_mode=False")
            }
        }
        guard node.output.count < 2 || node.output[1].isEmpty else { throw refuse(node, "its indices output; ollie's pool gives the values only") }
        var words = [sizesText(kernel)]
        if stride != kernel { words += ["stride", sizesText(stride)] }
        if padding.contains(where: { $0 != 0 }) { words += ["pad", sizesText(padding)] }
        if average { words.append("avg") }
        return try append(layer(PoolSpec.self, node, words), to: x, node: node)
    }

    /// Gemm (alpha = beta = 1, A not transposed) → `dense OUT`; B [OUT, IN] when transB, else
    /// [IN, OUT] (transposed to PyTorch's layout); a missing C as a zero bias.
    mutating func gemm(_ node: Onnx_NodeProto, _ x: Activation) throws -> Activation {
        guard (node.float("alpha") ?? 1) == 1, (node.float("beta") ?? 1) == 1, (node.int("transA") ?? 0) == 0 else {
            throw refuse(node, "alpha \(node.float("alpha") ?? 1), beta \(node.float("beta") ?? 1), transA \(node.int("transA") ?? 0); ollie's dense is x·Wᵀ + b (alpha = beta = 1, transA 0)")
        }
        let b = try tensor(node, 1)
        guard b.shape.count == 2 else { throw refuse(node, "its B is \(b.shape), not a matrix") }
        let weight = (node.int("transB") ?? 0) == 1 ? b : transposed(b)
        let out = weight.shape[0]
        let bias = has(node, 2) ? try tensor(node, 2) : Tensor([out])
        guard bias.count == out else { throw refuse(node, "its C has \(bias.count) values for \(out) outputs (ollie's dense adds one bias an output)") }
        return try dense(node, x, weight: weight, bias: Tensor([out], bias.data))
    }

    /// MatMul by a weight [IN, OUT] → `dense OUT` with a zero bias, which an Add right after
    /// it may bring.
    mutating func matMul(_ node: Onnx_NodeProto, _ x: Activation) throws -> Activation {
        let b = try tensor(node, 1)
        guard b.shape.count == 2 else { throw refuse(node, "its B is \(b.shape), not a matrix") }
        var out = try dense(node, x, weight: transposed(b), bias: Tensor([b.shape[1]]))
        out.openBias = true
        return out
    }

    mutating func dense(_ node: Onnx_NodeProto, _ x: Activation, weight: Tensor, bias: Tensor) throws -> Activation {
        guard !x.shape.isSequence, x.shape.dims.count == 1 else {
            throw refuse(node, "a fully connected layer needs flat features [N, F], got \(x.shape.text)")
        }
        guard weight.shape[1] == x.shape.dims[0] else {
            throw refuse(node, "its weight takes \(weight.shape[1]) features, the input has \(x.shape.dims[0])")
        }
        return try append(layer(DenseSpec.self, node, [String(weight.shape[0])]), to: x, node: node,
                          tensors: ["weight": weight, "bias": bias])
    }

    func transposed(_ m: Tensor) -> Tensor {
        let (rows, columns) = (m.shape[0], m.shape[1])
        var values = [Float](repeating: 0, count: m.count)
        for r in 0..<rows { for c in 0..<columns { values[c * rows + r] = m.data[r * columns + c] } }
        return Tensor([columns, rows], values)
    }
}
