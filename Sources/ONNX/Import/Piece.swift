import NN
import Tensor

/// One module of the spec being imported: its layer, its tensors under their local names
/// ("weight", "running_var", "weight_ih_l0"), and for a container (`res(…)`, `frames(…)`) the
/// modules of its body and (res) the tensors of its shortcut's modules, in order.
struct Piece {
    /// Identifies the piece across the paths of a graph's branches (a residual block's split).
    let id: Int
    var layer: any LayerSpec
    var inline = false
    var tensors: [String: Tensor] = [:]
    var body: [Piece] = []
    var shortcut: [[String: Tensor]] = []
    /// The ids of the pieces a residual block's shortcut was made from.
    var shortcutIDs: [Int] = []
    /// One sample's shape before and after it.
    var input: SampleShape
    var output: SampleShape
    /// The ONNX node it comes from (for errors).
    var node: String
    /// A convolution's geometry, to recognise a residual block's projection shortcut.
    var convolution: ConvolutionGeometry?

    struct ConvolutionGeometry {
        var kernel: [Int], stride: [Int], padding: [Int], groups: Int
    }

    /// Whether a batchnorm is among the pieces, at any depth (ollie's rule for a projection
    /// shortcut's batchnorm).
    static func containsBatchNorm(_ pieces: [Piece]) -> Bool {
        pieces.contains { $0.layer is BatchNormSpec || containsBatchNorm($0.body) }
    }

    /// The spec text of a chain of pieces (an inline activation joins the layer before it).
    static func text(of pieces: [Piece]) -> String {
        var parts: [String] = []
        for piece in pieces {
            let text = piece.layer.text
            if piece.inline, !parts.isEmpty { parts[parts.count - 1] += " " + text } else { parts.append(text) }
        }
        return parts.joined(separator: " | ")
    }

    /// Without a `flatten` right before a `dense` (ollie implies it, as the same module
    /// index), at every depth.
    static func droppingFlattenBeforeDense(_ pieces: [Piece]) -> [Piece] {
        var kept: [Piece] = []
        for (index, piece) in pieces.enumerated() {
            if piece.layer is FlattenSpec, index + 1 < pieces.count, pieces[index + 1].layer is DenseSpec, piece.input.dims.count > 1 { continue }
            var copy = piece
            copy.body = droppingFlattenBeforeDense(piece.body)
            if !piece.body.isEmpty, copy.body.count != piece.body.count || Piece.text(of: copy.body) != Piece.text(of: piece.body),
               let body = try? ModelSpec(parsing: text(of: copy.body)) {
                if piece.layer is ResidualSpec, let layer = try? ResidualSpec(keyword: "res", body: body) { copy.layer = layer }
                if piece.layer is FramesSpec, let layer = try? FramesSpec(keyword: "frames", body: body) { copy.layer = layer }
            }
            kept.append(copy)
        }
        return kept
    }

    /// Puts each piece's tensors into `tensors` under the names compiling the spec gives them:
    /// the module's index in its chain as planned (implied `flatten`s count), then `body.`,
    /// `shortcut.K.` or `net.` inside containers.
    static func name(_ pieces: [Piece], input: SampleShape, prefix: String, flattenAtEnd: Bool = false,
                     into tensors: inout [String: Tensor]) throws {
        let planned = try ModelSpec(parsing: text(of: pieces)).plan(input: input, flattenAtEnd: flattenAtEnd)
        var next = 0
        for (index, step) in planned.enumerated() where !step.implied {
            let piece = pieces[next]
            next += 1
            let path = prefix + "\(index)."
            for (local, tensor) in piece.tensors { tensors[path + local] = tensor }
            if piece.layer is ResidualSpec {
                try name(piece.body, input: step.input, prefix: path + "body.", into: &tensors)
                for (position, shortcut) in piece.shortcut.enumerated() {
                    for (local, tensor) in shortcut { tensors[path + "shortcut.\(position)." + local] = tensor }
                }
            } else if piece.layer is FramesSpec {
                let frame = SampleShape([step.input.dims[0]] + step.input.dims.dropFirst(2))
                try name(piece.body, input: frame, prefix: path + "net.", flattenAtEnd: true, into: &tensors)
            }
        }
    }

    /// Every piece id in the chain, at every depth.
    static func ids(_ pieces: [Piece]) -> [Int] {
        pieces.flatMap { [$0.id] + $0.shortcutIDs + ids($0.body) }
    }
}
