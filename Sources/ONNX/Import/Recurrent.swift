import NN
import ONNXProto
import Tensor

// LSTM and GRU nodes → `lstm H [bi] [seq]` / `gru H [bi] [seq]`, with the glue exporters write
// around them (Transpose of the batch-first input, Transpose / Squeeze / Gather / Flatten /
// Reshape of the outputs, ConstantOfShape zeros for the initial state).

extension GraphWalk {
    /// The node's weights reordered to PyTorch's gates and names; its outputs Y [T, D, N, H]
    /// and Y_h [D, N, H] (layout 1: [N, T, D, H], [N, D, H]) as recurrent values.
    mutating func recurrent(_ node: Onnx_NodeProto) throws {
        let lstm = node.opType == "LSTM"
        let x = try activation(node, 0)
        let layout = node.int("layout") ?? 0
        guard x.shape.isSequence, x.timeMajor == (layout == 0) else {
            throw refuse(node, x.shape.isSequence
                ? "its input is \(x.timeMajor ? "time" : "batch")-major but its layout is \(layout)"
                : "a recurrent layer needs a sequence [N, T, F], got \(x.shape.text)")
        }
        guard let hidden = node.int("hidden_size"), hidden > 0 else { throw refuse(node, "no hidden_size") }
        let direction = node.string("direction") ?? "forward"
        guard direction == "forward" || direction == "bidirectional" else {
            throw refuse(node, "direction \(direction); ollie's recurrent layers read forward, or both ways (bi)")
        }
        let directions = direction == "bidirectional" ? 2 : 1
        let defaultActivations = lstm ? ["Sigmoid", "Tanh", "Tanh"] : ["Sigmoid", "Tanh"]
        if let given = node.attributeValue("activations")?.strings.map({ String(decoding: $0, as: UTF8.self) }),
           !given.isEmpty, given != Array([[String]](repeating: defaultActivations, count: directions).joined()) {
            throw refuse(node, "activations \(given); ollie's are \(defaultActivations.joined(separator: ", "))")
        }
        if node.attributeValue("clip") != nil { throw refuse(node, "a cell clip; ollie's cells do not clip") }
        if lstm, (node.int("input_forget") ?? 0) != 0 { throw refuse(node, "input_forget 1 (coupled gates); ollie's LSTM has PyTorch's four") }
        if !lstm, (node.int("linear_before_reset") ?? 0) != 1 {
            throw refuse(node, "linear_before_reset 0; ollie's GRU is PyTorch's (r multiplies W_hn·h + b_hn: linear_before_reset 1)")
        }
        if has(node, 4) { throw refuse(node, "sequence_lens; ollie's sequences all have their full length") }
        for (input, what) in [(5, "initial_h"), (6, "initial_c"), (7, "peepholes P")] where has(node, input) && (lstm || input == 5) {
            switch try value(node, input) {
            case .zeros where input != 7: continue
            case .constant(let t) where input != 7 && ((try? t.floatValues())?.allSatisfy { $0 == 0 } ?? false): continue
            default: throw refuse(node, input == 7 ? "peepholes; ollie's LSTM has none" : "an \(what) that is not zeros; ollie's recurrent layers start from zero")
            }
        }
        let gates = lstm ? 4 : 3, features = x.shape.dims[1]
        // PyTorch's gate order from ONNX's: LSTM i, o, f, c → i, f, g(c), o; GRU z, r, h → r, z, n.
        let order = lstm ? [0, 2, 3, 1] : [1, 0, 2]
        let w = try tensor(node, 1), r = try tensor(node, 2)
        guard w.shape == [directions, gates * hidden, features], r.shape == [directions, gates * hidden, hidden] else {
            throw refuse(node, "its W \(w.shape) and R \(r.shape) are not [\(directions), \(gates * hidden), \(features)] and [\(directions), \(gates * hidden), \(hidden)]")
        }
        let b = has(node, 3) ? try tensor(node, 3) : Tensor([directions, 2 * gates * hidden])
        guard b.shape == [directions, 2 * gates * hidden] else { throw refuse(node, "its B \(b.shape) is not [\(directions), \(2 * gates * hidden)]") }
        func reordered(_ values: ArraySlice<Float>, columns: Int) -> [Float] {
            let block = hidden * columns, start = values.startIndex
            return order.flatMap { values[(start + $0 * block)..<(start + ($0 + 1) * block)] }
        }
        var tensors: [String: Tensor] = [:]
        for d in 0..<directions {
            let suffix = d == 0 ? "_l0" : "_l0_reverse", rows = gates * hidden
            tensors["weight_ih" + suffix] = Tensor([rows, features], reordered(w.data[(d * rows * features)..<((d + 1) * rows * features)], columns: features))
            tensors["weight_hh" + suffix] = Tensor([rows, hidden], reordered(r.data[(d * rows * hidden)..<((d + 1) * rows * hidden)], columns: hidden))
            let biases = b.data[(d * 2 * rows)..<((d + 1) * 2 * rows)]
            tensors["bias_ih" + suffix] = Tensor([rows], reordered(biases.prefix(rows), columns: 1))
            tensors["bias_hh" + suffix] = Tensor([rows], reordered(biases.suffix(rows), columns: 1))
        }
        let words = [String(hidden)] + (directions == 2 ? ["bi"] : [])
        let spec: any LayerSpec = lstm ? try layer(LSTMSpec.self, node, words) : try layer(GRUSpec.self, node, words)
        let piece = Piece(id: makeID(Self.name(of: node)), layer: spec, tensors: tensors, input: x.shape,
                          output: SampleShape([directions * hidden]), node: Self.name(of: node))
        let sequenceAxes = layout == 0 ? ["T", "D", "N", "H"] : ["N", "T", "D", "H"]
        let stateAxes = layout == 0 ? ["D", "N", "H"] : ["N", "D", "H"]
        func output(_ axes: [String], sequence: Bool) -> RecurrentValue {
            RecurrentValue(path: x.path, layer: piece, directions: directions, hidden: hidden, axes: axes, isSequence: sequence)
        }
        if !node.output.isEmpty, !node.output[0].isEmpty { try set(node, 0, settle(node, output(sequenceAxes, sequence: true))) }
        if node.output.count > 1, !node.output[1].isEmpty { try set(node, 1, settle(node, output(stateAxes, sequence: false))) }
    }

    /// A recurrent value as activations once its axes are [N, D·H] (the last state: `lstm H
    /// [bi]`) or [N, T, D·H] / [T, N, D·H] (every step: `lstm H [bi] seq`); else still
    /// recurrent, waiting for more glue.
    func settle(_ node: Onnx_NodeProto, _ r: RecurrentValue) throws -> Value {
        let width = r.directions == 1 ? ["H", "DH"] : ["DH"]
        var piece = r.layer
        if !r.isSequence, r.axes.count == 2, r.axes[0] == "N", width.contains(r.axes[1]) {
            return .activation(Activation(path: r.path + [piece], shape: piece.output))
        }
        if r.isSequence, r.axes.count == 3, Set(r.axes.prefix(2)) == ["T", "N"], width.contains(r.axes[2]) {
            let words = piece.layer.text.split(separator: " ").dropFirst().map(String.init) + ["seq"]
            piece.layer = piece.layer is LSTMSpec ? try layer(LSTMSpec.self, node, words) : try layer(GRUSpec.self, node, words)
            piece.output = SampleShape([piece.input.dims[0], r.directions * r.hidden], sequence: true)
            return .activation(Activation(path: r.path + [piece], shape: piece.output, timeMajor: r.axes[0] == "T"))
        }
        return .recurrent(r)
    }

    /// Squeeze of the direction axis (one direction), Flatten / Reshape merging D and H.
    func reshapeRecurrent(_ node: Onnx_NodeProto, _ r: RecurrentValue) throws -> Value {
        var r = r
        switch node.opType {
        case "Squeeze":
            let axes = try has(node, 1) ? integers(node, 1).compactMap { $0 } : (node.ints("axes") ?? [])
            let removed = Set(axes.map { $0 < 0 ? $0 + r.axes.count : $0 })
            guard !removed.isEmpty, removed.allSatisfy({ (0..<r.axes.count).contains($0) && r.axes[$0] == "D" }), r.directions == 1 else {
                throw refuse(node, "a Squeeze of axes \(axes) of a recurrent output \(r.axes); ollie imports only that of the direction axis of a one-way layer")
            }
            r.axes = r.axes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        case "Flatten":
            let axis = node.int("axis") ?? 1
            guard axis == r.axes.count - 2, r.axes.suffix(2) == ["D", "H"] else {
                throw refuse(node, "a Flatten at axis \(axis) of a recurrent output \(r.axes); ollie imports one that joins the directions' states")
            }
            r.axes = r.axes.dropLast(2) + ["DH"]
        default:   // Reshape
            let target = try integers(node, 1)
            guard target.count == r.axes.count - 1, r.axes.suffix(2) == ["D", "H"],
                  target.last == -1 || target.last == r.directions * r.hidden,
                  zip(target.dropLast(), r.axes).allSatisfy({ $0 == 0 || $0 == -1 || $0 == r.size(of: $1) }) else {
                throw refuse(node, "a Reshape to \(target.map { $0.map(String.init) ?? "N" }) of a recurrent output \(r.axes); ollie imports one that joins the directions' states")
            }
            r.axes = r.axes.dropLast(2) + ["DH"]
        }
        return try settle(node, r)
    }

    /// Gather of index 0 or −1 along the direction axis of a one-way layer, or of the last
    /// step (−1 or T−1) along the time axis of its output: its last state.
    func gatherDirection(_ node: Onnx_NodeProto, _ r: RecurrentValue) throws -> Value {
        var r = r
        let axis = node.int("axis") ?? 0, indices = try integers(node, 1)
        let position = axis < 0 ? axis + r.axes.count : axis
        guard (0..<r.axes.count).contains(position), indices.count == 1, let index = indices[0], r.directions == 1 else {
            throw refuse(node, "a Gather of \(indices) along axis \(axis) of a recurrent output \(r.axes); ollie imports the last step or the state of a one-way layer")
        }
        switch r.axes[position] {
        case "D" where index == 0 || index == -1: break
        case "T" where index == -1 || index == r.layer.input.dims[0] - 1: r.isSequence = false
        default:
            throw refuse(node, "a Gather of index \(index) along the \(r.axes[position]) axis of a recurrent output; ollie imports the last step or the state")
        }
        r.axes.remove(at: position)
        return try settle(node, r)
    }
}
