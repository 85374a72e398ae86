import Tensor

// What the sequence layers share: the [T, F] shape check, PyTorch's uniform init, the gate
// activations and the column sums of a gate-gradient matrix.
//
// A batch of sequences is [N, T, F]: batch-major, then time, then features (PyTorch's
// batch_first). Every step of every sample is one row of an [N·T, F] matrix, so a layer's input
// projection over the whole sequence is one GEMM.

/// Throws unless `input` is one sample's sequence [T, F] with T ≥ 1 and F == `features`.
func checkSequenceShape(_ input: [Int], features: Int, layer: String) throws {
    guard input.count == 2, input[0] >= 1, input[1] == features else {
        throw ModelError("\(layer) needs a sequence T×\(features) (steps × features), got \(shapeText(input))")
    }
}

/// One direction's four tensors, named and initialised as PyTorch's (weight_ih_l0 [G·H, F],
/// weight_hh_l0 [G·H, H], bias_ih_l0 and bias_hh_l0 [G·H], `_reverse` for the direction that
/// reads backwards; each uniform in ±1/√H, drawn in that order), G the gates a step computes
/// (LSTM 4, GRU 3); and the order the direction reads the steps in.
struct RecurrentWeights {
    let inputs: Int, hidden: Int, reverse: Bool
    let weightIH: Parameter, weightHH: Parameter, biasIH: Parameter, biasHH: Parameter

    init(gates: Int, inputs: Int, hidden: Int, reverse: Bool, random: inout Random) {
        self.inputs = inputs; self.hidden = hidden; self.reverse = reverse
        let suffix = reverse ? "_l0_reverse" : "_l0", bound = 1 / Float(hidden).squareRoot(), rows = gates * hidden
        weightIH = uniformParameter("weight_ih" + suffix, [rows, inputs], bound: bound, random: &random)
        weightHH = uniformParameter("weight_hh" + suffix, [rows, hidden], bound: bound, random: &random)
        biasIH = uniformParameter("bias_ih" + suffix, [rows], bound: bound, random: &random)
        biasHH = uniformParameter("bias_hh" + suffix, [rows], bound: bound, random: &random)
    }

    /// The same values, gradients of its own (a worker's replica).
    init(sharing other: RecurrentWeights) {
        inputs = other.inputs; hidden = other.hidden; reverse = other.reverse
        weightIH = Parameter(sharing: other.weightIH); weightHH = Parameter(sharing: other.weightHH)
        biasIH = Parameter(sharing: other.biasIH); biasHH = Parameter(sharing: other.biasHH)
    }

    var parameters: [Parameter] { [weightIH, weightHH, biasIH, biasHH] }

    /// The time index of the s-th step this direction reads.
    @inline(__always)
    func time(_ s: Int, _ steps: Int) -> Int { reverse ? steps - 1 - s : s }
}

/// A parameter uniform in [−bound, bound), as PyTorch initializes recurrent weights
/// (bound 1/√hidden) and nn.Linear's weight and bias (bound 1/√fan_in).
func uniformParameter(_ name: String, _ shape: [Int], bound: Float, random: inout Random) -> Parameter {
    let t = Tensor(shape)
    for i in 0..<t.count { t.data[i] = random.uniform(-bound, bound) }
    return Parameter(name: name, value: t)
}

/// sums[j] = Σ_r m[r·columns + j] over `rows` rows (a bias gradient from its rows' gradients).
func columnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>) {
    sums.update(repeating: 0, count: columns)
    for r in 0..<rows {
        let row = m + r * columns
        for j in 0..<columns { sums[j] += row[j] }
    }
}

// MARK: - Gate activations, eight lanes at a time

// The gate activations are most of an LSTM's forward time when computed with libm (tanhf, expf:
// some 30 ns a call, five calls per hidden unit per step). These are Eigen's rational tanh
// (generic_fast_tanh_float: |error| ≤ 4e-7 over all floats) on 8-lane vectors, with
// σ(x) = (1 + tanh(x/2)) / 2; a row's last 1–7 values go through the same code, padded.

typealias Float8 = SIMD8<Float>

/// tanh(x) to within 4e-7 (a 13/6 odd/even rational function on x clamped to ±7.905).
@inline(__always)
func tanh8(_ v: Float8) -> Float8 {
    let limit: Float = 7.90531110763549805
    var x = v.replacing(with: limit, where: v .> limit)
    x = x.replacing(with: -limit, where: x .< -limit)
    let x2 = x * x
    var p = x2 * Float(-2.76076847742355e-16) + Float(2.00018790482477e-13)
    p = x2 * p + Float(-8.60467152213735e-11)
    p = x2 * p + Float(5.12229709037114e-08)
    p = x2 * p + Float(1.48572235717979e-05)
    p = x2 * p + Float(6.37261928875436e-04)
    p = x2 * p + Float(4.89352455891786e-03)
    var q = x2 * Float(1.19825839466702e-06) + Float(1.18534705686654e-04)
    q = x2 * q + Float(2.26843463243900e-03)
    q = x2 * q + Float(4.89352518554385e-03)
    return x * p / q
}

/// σ(x) = (1 + tanh(x/2)) / 2.
@inline(__always)
func sigmoid8(_ v: Float8) -> Float8 { 0.5 + 0.5 * tanh8(0.5 * v) }

/// The `lanes` (1…8) floats at p, zero-padded to 8.
@inline(__always)
func load8(_ p: UnsafePointer<Float>, _ lanes: Int) -> Float8 {
    if lanes == 8 { return UnsafeRawPointer(p).loadUnaligned(as: Float8.self) }
    var v = Float8()
    for k in 0..<lanes { v[k] = p[k] }
    return v
}

/// Writes the first `lanes` (1…8) values of v to p.
@inline(__always)
func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self); return }
    for k in 0..<lanes { p[k] = v[k] }
}

// MARK: - In a spec

/// `H [bi] [seq]`: what `lstm` and `gru` share.
public struct RecurrentOptions: Equatable, Sendable {
    var hidden: Int
    var bidirectional = false
    var returnsSequence = false

    init(_ arguments: [String], keyword: String) throws {
        guard let first = arguments.first else { throw SpecError("needs a hidden size, e.g. \(keyword) 64") }
        guard let h = Int(first), (1...65_536).contains(h) else {
            throw SpecError("the hidden size '\(first)' must be a whole number from 1 to 65536")
        }
        hidden = h
        for word in arguments.dropFirst() {
            switch word.lowercased() {
            case "bi", "bidirectional": bidirectional = true
            case "seq", "sequence", "sequences": returnsSequence = true
            default: throw SpecError("unexpected '\(word)' (after the size: bi, seq)")
            }
        }
    }

    func text(_ keyword: String) -> String {
        ([keyword, String(hidden)] + (bidirectional ? ["bi"] : []) + (returnsSequence ? ["seq"] : [])).joined(separator: " ")
    }

    /// [T, F] → [H·dirs] (the last step), or [T, H·dirs] with `seq`.
    func output(for input: SampleShape, keyword: String) throws -> SampleShape {
        guard input.isSequence else { throw RecurrentOptions.needsSequence(keyword, input) }
        let width = hidden * (bidirectional ? 2 : 1)
        return returnsSequence ? SampleShape([input.dims[0], width], sequence: true) : SampleShape([width])
    }

    static func needsSequence(_ keyword: String, _ input: SampleShape) -> SpecError {
        SpecError("needs a sequence T×F (frames(…) over clips, or a recurrent layer with seq), got \(input.text); \(keyword) cannot read an image or flat features")
    }
}

/// A recurrent layer in a spec (`lstm`, `gru`): `H [bi] [seq]` after its keyword, a sequence
/// T×F in, and its engine layer.
public protocol RecurrentSpec: LayerSpec {
    var options: RecurrentOptions { get }
    init(options: RecurrentOptions)
    /// The gates a step computes (LSTM 4, GRU 3): each has F + H weights and two biases a unit.
    static var gates: Int { get }
    static func layer(inputs: Int, options: RecurrentOptions, random: inout Random) -> Layer
}

extension RecurrentSpec {
    public init(keyword: String, arguments: [String]) throws {
        self.init(options: try RecurrentOptions(arguments, keyword: Self.keyword))
    }

    public var text: String { options.text(Self.keyword) }

    public func outputShape(for input: [Int]) throws -> [Int] {
        throw RecurrentOptions.needsSequence(Self.keyword, SampleShape(input))
    }

    public func output(for input: SampleShape) throws -> SampleShape { try options.output(for: input, keyword: Self.keyword) }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        throw RecurrentOptions.needsSequence(Self.keyword, SampleShape(input))
    }

    public func makeLayer(for input: SampleShape, fastPaths: Bool, random: inout Random) throws -> Layer {
        Self.layer(inputs: input.dims[1], options: options, random: &random)
    }

    public func parameterCount(for input: SampleShape) -> Int {
        let h = options.hidden, f = input.dims.last ?? 0
        return (options.bidirectional ? 2 : 1) * Self.gates * (h * f + h * h + 2 * h)
    }
}
