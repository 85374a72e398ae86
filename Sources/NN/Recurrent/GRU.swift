import Foundation
import Tensor

/// Gated recurrent unit over a sequence: PyTorch's one-layer nn.GRU(batch_first=True), with its
/// equations, gate order (r, z, n), parameter names and init, from a zero h.
///
///     r = σ(W_ir x_t + b_ir + W_hr h + b_hr)      z = σ(W_iz x_t + b_iz + W_hz h + b_hz)
///     n = tanh(W_in x_t + b_in + r ⊙ (W_hn h + b_hn))
///     h_t = (1 − z) ⊙ n + z ⊙ h
///
/// Shapes: x [N, T, F] → y [N, T, D·H] (returnsSequence: each step's forward h_t ⊕ reverse h_t)
/// or [N, D·H] (forward h_{T−1} ⊕ reverse h_0, the reverse direction's state after it has read
/// the whole sequence); D = 2 when bidirectional. Per direction: weight_ih [3H, F],
/// weight_hh [3H, H], bias_ih [3H], bias_hh [3H], rows in gate order r, z, n.
/// The reverse direction reads t = T−1 … 0.
///
/// Cache per direction, batch-major like x (row n·T + t is sample n's step t):
///   gates [N, T, 3H]   r, z, n after their activations
///   hiddenN [N, T, H]  W_hn h + b_hn (what r multiplies)
///   hPrev [N, T, H]    the state step t started from (zero at the direction's first step)
public final class GRU: RecurrentLayer {
    public convenience init(inputs: Int, hidden: Int, bidirectional: Bool, returnsSequence: Bool, random: inout Random) {
        var made: [RecurrentDirection] = [GRUDirection(inputs: inputs, hidden: hidden, reverse: false, random: &random)]
        if bidirectional { made.append(GRUDirection(inputs: inputs, hidden: hidden, reverse: true, random: &random)) }
        self.init(kind: "GRU", inputs: inputs, hidden: hidden, bidirectional: bidirectional, returnsSequence: returnsSequence,
                  directions: made)
    }
}

/// One direction of a GRU: its four parameters, its caches, and the kernels over them.
final class GRUDirection: RecurrentDirection {
    let weights: RecurrentWeights
    let inputs: Int, hidden: Int
    // Caches (see GRU).
    private let gates = Scratch(), hiddenN = Scratch(), hPrev = Scratch()
    // [N, 3H]: one step's h·W_hhᵀ + b_hh in forward.
    private let hiddenProjection = Scratch()
    // [N, T, 3H] each in backward: dL/d(x·W_ihᵀ + b_ih) and dL/d(h·W_hhᵀ + b_hh).
    private let inputGateGradient = Scratch(), hiddenGateGradient = Scratch()
    // [N, H]: dL/dh flowing back from the step after (in reading order).
    private let hCarry = Scratch()
    // [3H]: a bias gradient. [H]: the last step's h.
    private let biasScratch = Scratch(), lastState = Scratch()

    var parameters: [Parameter] { weights.parameters }

    init(inputs: Int, hidden: Int, reverse: Bool, random: inout Random) {
        weights = RecurrentWeights(gates: 3, inputs: inputs, hidden: hidden, reverse: reverse, random: &random)
        self.inputs = inputs; self.hidden = hidden
    }

    func sharingParameters() -> RecurrentDirection { GRUDirection(sharing: self) }

    init(sharing other: GRUDirection) {
        weights = RecurrentWeights(sharing: other.weights)
        inputs = other.inputs; hidden = other.hidden
    }

    /// x [N, T, F]; writes h into y: at (n, t) → y[(n·T + t)·yRowStride] when `sequence`, else
    /// the last step's at y[n·yRowStride].
    func forward(_ x: UnsafePointer<Float>, n: Int, steps: Int, y: UnsafeMutablePointer<Float>,
                 yRowStride: Int, sequence: Bool) {
        let (h, g3, rows) = (hidden, 3 * hidden, n * steps)
        gates.reserve(rows * g3)
        hiddenN.reserve(rows * h); hPrev.reserve(rows * h)
        hiddenProjection.reserve(n * g3); lastState.reserve(h)
        let (a, hn, hp, hproj, sink) = (gates.base, hiddenN.base, hPrev.base, hiddenProjection.base, lastState.base)

        // Every step's input projection at once: gates = x·W_ihᵀ + b_ih  ([N·T, F]·[F, 3H]).
        weights.weightIH.value.data.withUnsafeBufferPointer { w in
            BLAS.sgemm(transB: true, m: rows, n: g3, k: inputs, a: x, lda: inputs,
                       b: w.baseAddress!, ldb: inputs, c: a, ldc: g3)
        }
        weights.biasIH.value.data.withUnsafeBufferPointer { b in
            for r in 0..<rows {
                let row = a + r * g3
                for j in 0..<g3 { row[j] += b[j] }
            }
        }

        weights.weightHH.value.data.withUnsafeBufferPointer { whh in
            weights.biasHH.value.data.withUnsafeBufferPointer { bhh in
                for s in 0..<steps {
                    let t = weights.time(s, steps)
                    // hproj = h_prev·W_hhᵀ + b_hh  ([N, H]·[H, 3H]); just b_hh from the zero state.
                    for sample in 0..<n { (hproj + sample * g3).update(from: bhh.baseAddress!, count: g3) }
                    if s == 0 {
                        for sample in 0..<n { (hp + (sample * steps + t) * h).update(repeating: 0, count: h) }
                    } else {
                        BLAS.sgemm(transB: true, m: n, n: g3, k: h, a: hp + t * h, lda: steps * h,
                                   b: whh.baseAddress!, ldb: h, beta: 1, c: hproj, ldc: g3)
                    }
                    // The last step's state goes nowhere but the output: write it to the sink.
                    let last = s == steps - 1, next = last ? t : weights.time(s + 1, steps)
                    for sample in 0..<n {
                        let row = sample * steps + t
                        let gate = a + row * g3, hpj = hproj + sample * g3
                        let h0 = hp + row * h, hnRow = hn + row * h
                        let hOut = last ? sink : hp + (sample * steps + next) * h
                        for j in stride(from: 0, to: h, by: 8) {
                            let lanes = min(8, h - j)
                            let r = sigmoid8(load8(gate + j, lanes) + load8(hpj + j, lanes))
                            let z = sigmoid8(load8(gate + h + j, lanes) + load8(hpj + h + j, lanes))
                            let hnj = load8(hpj + 2 * h + j, lanes)
                            let nj = tanh8(load8(gate + 2 * h + j, lanes) + r * hnj)
                            store8(r, gate + j, lanes); store8(z, gate + h + j, lanes); store8(nj, gate + 2 * h + j, lanes)
                            store8(hnj, hnRow + j, lanes)
                            store8((1 - z) * nj + z * load8(h0 + j, lanes), hOut + j, lanes)
                        }
                        if sequence || last {
                            (y + (sequence ? row : sample) * yRowStride).update(from: hOut, count: h)
                        }
                    }
                }
            }
        }
    }

    /// Full backpropagation through time from dy (laid out as `forward` wrote y). Accumulates
    /// the parameter gradients; writes dx [N, T, F] (adds to it when `addToDx`) unless dx is nil.
    func backward(_ x: UnsafePointer<Float>, n: Int, steps: Int, dy: UnsafePointer<Float>, dyRowStride: Int,
                  sequence: Bool, dx: UnsafeMutablePointer<Float>?, addToDx: Bool) {
        let (h, g3, rows) = (hidden, 3 * hidden, n * steps)
        inputGateGradient.reserve(rows * g3); hiddenGateGradient.reserve(rows * g3)
        hCarry.reserve(n * h)
        hCarry.zero(n * h)
        let (a, hn, hp) = (gates.base, hiddenN.base, hPrev.base)
        let (dgx, dgh, dhCarry) = (inputGateGradient.base, hiddenGateGradient.base, hCarry.base)

        weights.weightHH.value.data.withUnsafeBufferPointer { whh in
            for s in stride(from: steps - 1, through: 0, by: -1) {
                let t = weights.time(s, steps), last = s == steps - 1
                for sample in 0..<n {
                    let row = sample * steps + t
                    let gate = a + row * g3, dinput = dgx + row * g3, dhidden = dgh + row * g3
                    let h0 = hp + row * h, hnRow = hn + row * h
                    let dhRow = dhCarry + sample * h
                    let dyRow: UnsafePointer<Float>? = sequence || last ? dy + (sequence ? row : sample) * dyRowStride : nil
                    for j in stride(from: 0, to: h, by: 8) {
                        let lanes = min(8, h - j)
                        let r = load8(gate + j, lanes), z = load8(gate + h + j, lanes), nj = load8(gate + 2 * h + j, lanes)
                        var dh = load8(dhRow + j, lanes)
                        if let dyRow { dh += load8(dyRow + j, lanes) }
                        let dn = dh * (1 - z) * (1 - nj * nj)
                        let dz = dh * (load8(h0 + j, lanes) - nj) * z * (1 - z)
                        let dr = dn * load8(hnRow + j, lanes) * r * (1 - r)
                        store8(dr, dinput + j, lanes); store8(dz, dinput + h + j, lanes); store8(dn, dinput + 2 * h + j, lanes)
                        store8(dr, dhidden + j, lanes); store8(dz, dhidden + h + j, lanes); store8(dn * r, dhidden + 2 * h + j, lanes)
                        store8(dh * z, dhRow + j, lanes)
                    }
                }
                // dh_prev = dh·z + dhidden[:, t]·W_hh  ([N, 3H]·[3H, H]); the first state is a constant.
                if s > 0 {
                    BLAS.sgemm(m: n, n: h, k: g3, a: dgh + t * g3, lda: steps * g3,
                               b: whh.baseAddress!, ldb: h, beta: 1, c: dhCarry, ldc: h)
                }
            }
        }

        // dW_ih += dinputᵀ·x, dW_hh += dhiddenᵀ·h_prev over all N·T rows; the biases their column sums.
        weights.weightIH.grad.data.withUnsafeMutableBufferPointer { dw in
            BLAS.sgemm(transA: true, m: g3, n: inputs, k: rows, a: dgx, lda: g3, b: x, ldb: inputs,
                       beta: 1, c: dw.baseAddress!, ldc: inputs)
        }
        weights.weightHH.grad.data.withUnsafeMutableBufferPointer { dw in
            BLAS.sgemm(transA: true, m: g3, n: h, k: rows, a: dgh, lda: g3, b: hp, ldb: h,
                       beta: 1, c: dw.baseAddress!, ldc: h)
        }
        biasScratch.reserve(g3)
        let sums = biasScratch.base
        columnSums(dgx, rows: rows, columns: g3, into: sums)
        weights.biasIH.grad.data.withUnsafeMutableBufferPointer { db in
            for j in 0..<g3 { db[j] += sums[j] }
        }
        columnSums(dgh, rows: rows, columns: g3, into: sums)
        weights.biasHH.grad.data.withUnsafeMutableBufferPointer { db in
            for j in 0..<g3 { db[j] += sums[j] }
        }
        // dx (+)= dinput·W_ih  ([N·T, 3H]·[3H, F])
        guard let dx else { return }
        weights.weightIH.value.data.withUnsafeBufferPointer { w in
            BLAS.sgemm(m: rows, n: inputs, k: g3, a: dgx, lda: g3, b: w.baseAddress!, ldb: inputs,
                       beta: addToDx ? 1 : 0, c: dx, ldc: inputs)
        }
    }
}

// MARK: - In a spec

/// `gru H [bi] [seq]`: PyTorch's nn.GRU, as `lstm` is nn.LSTM.
public struct GRUSpec: RecurrentSpec, Equatable {
    public static let keyword = "gru"
    public static let grammar = "gru H [bi] [seq]   GRU over a sequence: its last step, or seq: every step"
    public static let gates = 3
    public let options: RecurrentOptions

    public init(options: RecurrentOptions) { self.options = options }

    public static func layer(inputs: Int, options: RecurrentOptions, random: inout Random) -> Layer {
        GRU(inputs: inputs, hidden: options.hidden, bidirectional: options.bidirectional,
            returnsSequence: options.returnsSequence, random: &random)
    }
}
