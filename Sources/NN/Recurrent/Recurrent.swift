import Tensor

/// One direction of a recurrent layer (LSTMDirection, GRUDirection): its parameters, its
/// caches, and its kernels over a batch of sequences x [N, T, F] (row n·T + t is sample n's
/// step t).
protocol RecurrentDirection: AnyObject {
    var parameters: [Parameter] { get }
    /// A direction sharing these parameter values, owning its gradients and caches.
    func sharingParameters() -> RecurrentDirection
    /// Writes h into y: at (n, t) → y[(n·T + t)·yRowStride] when `sequence`, else the last
    /// step's at y[n·yRowStride].
    func forward(_ x: UnsafePointer<Float>, n: Int, steps: Int, y: UnsafeMutablePointer<Float>,
                 yRowStride: Int, sequence: Bool)
    /// From dy (laid out as forward wrote y), accumulates the parameter gradients and writes
    /// (or with `addToDx` adds) dL/dx into dx when it is given.
    func backward(_ x: UnsafePointer<Float>, n: Int, steps: Int, dy: UnsafePointer<Float>, dyRowStride: Int,
                  sequence: Bool, dx: UnsafeMutablePointer<Float>?, addToDx: Bool)
}

/// What LSTM and GRU share: one direction or two over a batch of sequences, their outputs side
/// by side (forward ⊕ reverse, as PyTorch's bidirectional output), their input gradients summed.
///
/// Shapes: x [N, T, F] → y [N, T, D·H] (returnsSequence) or [N, D·H] (the forward direction's
/// last state ⊕ the reverse direction's state after it has read the whole sequence); D = 2
/// when bidirectional. Backward never writes into dout or x; dx is a tensor the layer owns.
public class RecurrentLayer: Layer, SkipsInputGradient {
    public let inputs: Int, hidden: Int
    public let bidirectional: Bool, returnsSequence: Bool
    public var needsInputGradient = true
    /// "LSTM", "GRU": what `description` calls it.
    let kind: String
    let directions: [RecurrentDirection]
    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var input: Tensor?

    init(kind: String, inputs: Int, hidden: Int, bidirectional: Bool, returnsSequence: Bool,
         directions: [RecurrentDirection]) {
        precondition(inputs >= 1 && hidden >= 1, "\(kind) needs at least one input and one hidden feature")
        self.kind = kind
        self.inputs = inputs
        self.hidden = hidden
        self.bidirectional = bidirectional
        self.returnsSequence = returnsSequence
        self.directions = directions
    }

    required init(sharing other: RecurrentLayer) {
        kind = other.kind
        inputs = other.inputs; hidden = other.hidden
        bidirectional = other.bidirectional; returnsSequence = other.returnsSequence
        needsInputGradient = other.needsInputGradient
        directions = other.directions.map { $0.sharingParameters() }
    }

    public func replica() -> Layer { type(of: self).init(sharing: self) }
    public var parameters: [Parameter] { directions.flatMap(\.parameters) }
    public var description: String { "\(kind)(\(inputs) => \(hidden)\(bidirectional ? ", bidirectional" : ""))" }

    /// [T, F] → [T, D·H], or [D·H] for the last state.
    public func outputShape(for input: [Int]) throws -> [Int] {
        try checkSequenceShape(input, features: inputs, layer: description)
        let width = directions.count * hidden
        return returnsSequence ? [input[0], width] : [width]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.shape.count == 3 && x.shape[1] >= 1 && x.shape[2] == inputs, "\(description) got input \(x.shape)")
        let (n, steps) = (x.shape[0], x.shape[1])
        let width = directions.count * hidden
        input = x
        output.resize(returnsSequence ? [n, steps, width] : [n, width])
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                for (d, direction) in directions.enumerated() {
                    direction.forward(xp.baseAddress!, n: n, steps: steps, y: yp.baseAddress! + d * hidden,
                                      yRowStride: width, sequence: returnsSequence)
                }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        guard let x = input else { return inputGradient }
        let (n, steps) = (x.shape[0], x.shape[1])
        let width = directions.count * hidden
        precondition(dout.count == (returnsSequence ? n * steps * width : n * width),
                     "\(description): gradient \(dout.shape) for output \(output.shape)")
        if needsInputGradient { inputGradient.resize(x.shape) }
        x.data.withUnsafeBufferPointer { xp in
            dout.data.withUnsafeBufferPointer { dyp in
                inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                    for (d, direction) in directions.enumerated() {
                        direction.backward(xp.baseAddress!, n: n, steps: steps, dy: dyp.baseAddress! + d * hidden,
                                           dyRowStride: width, sequence: returnsSequence,
                                           dx: needsInputGradient ? dxp.baseAddress! : nil, addToDx: d > 0)
                    }
                }
            }
        }
        return inputGradient
    }
}
