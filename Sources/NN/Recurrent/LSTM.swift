import Foundation
import Tensor

/// Long short-term memory over a sequence: PyTorch's one-layer nn.LSTM(batch_first=True), with
/// its equations, gate order (i, f, g, o), parameter names and init, from zero h and c.
///
///     i = σ(W_ii x_t + b_ii + W_hi h + b_hi)     f = σ(W_if x_t + b_if + W_hf h + b_hf)
///     g = tanh(W_ig x_t + b_ig + W_hg h + b_hg)  o = σ(W_io x_t + b_io + W_ho h + b_ho)
///     c_t = f ⊙ c + i ⊙ g                         h_t = o ⊙ tanh(c_t)
///
/// Shapes: x [N, T, F] → y [N, T, D·H] (returnsSequence: each step's forward h_t ⊕ reverse h_t)
/// or [N, D·H] (forward h_{T−1} ⊕ reverse h_0, the reverse direction's state after it has read
/// the whole sequence); D = 2 when bidirectional. Per direction: weight_ih [4H, F],
/// weight_hh [4H, H], bias_ih [4H], bias_hh [4H], rows in gate order i, f, g, o.
/// The reverse direction reads t = T−1 … 0.
///
/// Cache per direction, batch-major like x (row n·T + t is sample n's step t), so one GEMM
/// makes every step's input projection and one GEMM each makes dW_ih and dW_hh:
///   gates [N, T, 4H]   i, f, g, o after their activations
///   hPrev, cPrev [N, T, H]   the state step t started from (zero at the direction's first step)
///   tanhC [N, T, H]    tanh(c_t)
public final class LSTM: RecurrentLayer {
    public convenience init(inputs: Int, hidden: Int, bidirectional: Bool, returnsSequence: Bool, random: inout Random) {
        var made: [RecurrentDirection] = [LSTMDirection(inputs: inputs, hidden: hidden, reverse: false, random: &random)]
        if bidirectional { made.append(LSTMDirection(inputs: inputs, hidden: hidden, reverse: true, random: &random)) }
        self.init(kind: "LSTM", inputs: inputs, hidden: hidden, bidirectional: bidirectional, returnsSequence: returnsSequence,
                  directions: made)
    }
}

/// One direction of an LSTM: its four parameters, its caches, and the kernels over them.
final class LSTMDirection: RecurrentDirection {
    let weights: RecurrentWeights
    let inputs: Int, hidden: Int
    // Caches (see LSTM); gateGradient [N, T, 4H] holds dL/d(pre-activation gates) in backward.
    private let gates = Scratch(), hPrev = Scratch(), cPrev = Scratch(), tanhC = Scratch()
    private let gateGradient = Scratch()
    // [N, H] each: dL/dh and dL/dc flowing back from the step after (in reading order).
    private let hCarry = Scratch(), cCarry = Scratch()
    // [4H]: b_ih + b_hh in forward, the bias gradient in backward. [2H]: the last step's h and c.
    private let biasScratch = Scratch(), lastState = Scratch()

    var parameters: [Parameter] { weights.parameters }

    init(inputs: Int, hidden: Int, reverse: Bool, random: inout Random) {
        weights = RecurrentWeights(gates: 4, inputs: inputs, hidden: hidden, reverse: reverse, random: &random)
        self.inputs = inputs; self.hidden = hidden
    }

    func sharingParameters() -> RecurrentDirection { LSTMDirection(sharing: self) }

    init(sharing other: LSTMDirection) {
        weights = RecurrentWeights(sharing: other.weights)
        inputs = other.inputs; hidden = other.hidden
    }

    /// x [N, T, F]; writes h into y: at (n, t) → y[(n·T + t)·yRowStride] when `sequence`, else
    /// the last step's at y[n·yRowStride].
    func forward(_ x: UnsafePointer<Float>, n: Int, steps: Int, y: UnsafeMutablePointer<Float>,
                 yRowStride: Int, sequence: Bool) {
        let (h, g4, rows) = (hidden, 4 * hidden, n * steps)
        gates.reserve(rows * g4)
        hPrev.reserve(rows * h); cPrev.reserve(rows * h); tanhC.reserve(rows * h)
        biasScratch.reserve(g4); lastState.reserve(2 * h)
        let (a, hp, cp, tc, bias, sink) = (gates.base, hPrev.base, cPrev.base, tanhC.base, biasScratch.base, lastState.base)

        weights.biasIH.value.data.withUnsafeBufferPointer { bi in
            weights.biasHH.value.data.withUnsafeBufferPointer { bh in
                for j in 0..<g4 { bias[j] = bi[j] + bh[j] }
            }
        }
        // Every step's input projection at once: gates = x·W_ihᵀ + b_ih + b_hh  ([N·T, F]·[F, 4H]).
        weights.weightIH.value.data.withUnsafeBufferPointer { w in
            BLAS.sgemm(transB: true, m: rows, n: g4, k: inputs, a: x, lda: inputs,
                       b: w.baseAddress!, ldb: inputs, c: a, ldc: g4)
        }
        for r in 0..<rows {
            let row = a + r * g4
            for j in 0..<g4 { row[j] += bias[j] }
        }

        weights.weightHH.value.data.withUnsafeBufferPointer { whh in
            for s in 0..<steps {
                let t = weights.time(s, steps)
                if s == 0 {
                    for sample in 0..<n {
                        (hp + (sample * steps + t) * h).update(repeating: 0, count: h)
                        (cp + (sample * steps + t) * h).update(repeating: 0, count: h)
                    }
                } else {
                    // gates[:, t] += h_prev·W_hhᵀ  ([N, H]·[H, 4H], rows T apart)
                    BLAS.sgemm(transB: true, m: n, n: g4, k: h, a: hp + t * h, lda: steps * h,
                               b: whh.baseAddress!, ldb: h, beta: 1, c: a + t * g4, ldc: steps * g4)
                }
                // The last step's state goes nowhere but the output: write it to the sink.
                let last = s == steps - 1, next = last ? t : weights.time(s + 1, steps)
                for sample in 0..<n {
                    let row = sample * steps + t
                    let gate = a + row * g4, c0 = cp + row * h, tcRow = tc + row * h
                    let hOut = last ? sink : hp + (sample * steps + next) * h
                    let cOut = last ? sink + h : cp + (sample * steps + next) * h
                    for j in stride(from: 0, to: h, by: 8) {
                        let lanes = min(8, h - j)
                        let i = sigmoid8(load8(gate + j, lanes)), f = sigmoid8(load8(gate + h + j, lanes))
                        let g = tanh8(load8(gate + 2 * h + j, lanes)), o = sigmoid8(load8(gate + 3 * h + j, lanes))
                        store8(i, gate + j, lanes); store8(f, gate + h + j, lanes)
                        store8(g, gate + 2 * h + j, lanes); store8(o, gate + 3 * h + j, lanes)
                        let c = f * load8(c0 + j, lanes) + i * g
                        let tanhc = tanh8(c)
                        store8(tanhc, tcRow + j, lanes)
                        store8(c, cOut + j, lanes)
                        store8(o * tanhc, hOut + j, lanes)
                    }
                    if sequence || last {
                        (y + (sequence ? row : sample) * yRowStride).update(from: hOut, count: h)
                    }
                }
            }
        }
    }

    /// Full backpropagation through time from dy (laid out as `forward` wrote y). Accumulates
    /// the parameter gradients; writes dx [N, T, F] (adds to it when `addToDx`) unless dx is nil.
    func backward(_ x: UnsafePointer<Float>, n: Int, steps: Int, dy: UnsafePointer<Float>, dyRowStride: Int,
                  sequence: Bool, dx: UnsafeMutablePointer<Float>?, addToDx: Bool) {
        let (h, g4, rows) = (hidden, 4 * hidden, n * steps)
        gateGradient.reserve(rows * g4)
        hCarry.reserve(n * h); cCarry.reserve(n * h)
        hCarry.zero(n * h); cCarry.zero(n * h)
        let (a, hp, cp, tc, da) = (gates.base, hPrev.base, cPrev.base, tanhC.base, gateGradient.base)
        let (dhCarry, dcCarry) = (hCarry.base, cCarry.base)

        weights.weightHH.value.data.withUnsafeBufferPointer { whh in
            for s in stride(from: steps - 1, through: 0, by: -1) {
                let t = weights.time(s, steps), last = s == steps - 1
                for sample in 0..<n {
                    let row = sample * steps + t
                    let gate = a + row * g4, dgate = da + row * g4
                    let c0 = cp + row * h, tcRow = tc + row * h
                    let dhRow = dhCarry + sample * h, dcRow = dcCarry + sample * h
                    let dyRow: UnsafePointer<Float>? = sequence || last ? dy + (sequence ? row : sample) * dyRowStride : nil
                    for j in stride(from: 0, to: h, by: 8) {
                        let lanes = min(8, h - j)
                        let i = load8(gate + j, lanes), f = load8(gate + h + j, lanes)
                        let g = load8(gate + 2 * h + j, lanes), o = load8(gate + 3 * h + j, lanes)
                        let tanhc = load8(tcRow + j, lanes)
                        var dh = load8(dhRow + j, lanes)
                        if let dyRow { dh += load8(dyRow + j, lanes) }
                        let dc = load8(dcRow + j, lanes) + dh * o * (1 - tanhc * tanhc)
                        store8(dc * g * i * (1 - i), dgate + j, lanes)
                        store8(dc * load8(c0 + j, lanes) * f * (1 - f), dgate + h + j, lanes)
                        store8(dc * i * (1 - g * g), dgate + 2 * h + j, lanes)
                        store8(dh * tanhc * o * (1 - o), dgate + 3 * h + j, lanes)
                        store8(dc * f, dcRow + j, lanes)
                    }
                }
                // dh_prev = dgates[:, t]·W_hh  ([N, 4H]·[4H, H]); the first step's state is a constant.
                if s > 0 {
                    BLAS.sgemm(m: n, n: h, k: g4, a: da + t * g4, lda: steps * g4,
                               b: whh.baseAddress!, ldb: h, c: dhCarry, ldc: h)
                }
            }
        }

        // dW_ih += dgatesᵀ·x, dW_hh += dgatesᵀ·h_prev over all N·T rows; both biases get Σ dgates.
        weights.weightIH.grad.data.withUnsafeMutableBufferPointer { dw in
            BLAS.sgemm(transA: true, m: g4, n: inputs, k: rows, a: da, lda: g4, b: x, ldb: inputs,
                       beta: 1, c: dw.baseAddress!, ldc: inputs)
        }
        weights.weightHH.grad.data.withUnsafeMutableBufferPointer { dw in
            BLAS.sgemm(transA: true, m: g4, n: h, k: rows, a: da, lda: g4, b: hp, ldb: h,
                       beta: 1, c: dw.baseAddress!, ldc: h)
        }
        let bias = biasScratch.base
        columnSums(da, rows: rows, columns: g4, into: bias)
        weights.biasIH.grad.data.withUnsafeMutableBufferPointer { db in
            for j in 0..<g4 { db[j] += bias[j] }
        }
        weights.biasHH.grad.data.withUnsafeMutableBufferPointer { db in
            for j in 0..<g4 { db[j] += bias[j] }
        }
        // dx (+)= dgates·W_ih  ([N·T, 4H]·[4H, F])
        guard let dx else { return }
        weights.weightIH.value.data.withUnsafeBufferPointer { w in
            BLAS.sgemm(m: rows, n: inputs, k: g4, a: da, lda: g4, b: w.baseAddress!, ldb: inputs,
                       beta: addToDx ? 1 : 0, c: dx, ldc: inputs)
        }
    }
}

// MARK: - In a spec

/// `lstm H [bi] [seq]`: PyTorch's nn.LSTM (one layer, batch first) over a sequence; by default
/// its last step's hidden state (bidirectional: the forward last ⊕ the backward first), with
/// `seq` every step's, so layers can stack. Tensors `N.weight_ih_l0` … as PyTorch's.
public struct LSTMSpec: RecurrentSpec, Equatable {
    public static let keyword = "lstm"
    public static let grammar = "lstm H [bi] [seq]   LSTM over a sequence: its last step, or seq: every step"
    public static let gates = 4
    public let options: RecurrentOptions

    public init(options: RecurrentOptions) { self.options = options }

    public static func layer(inputs: Int, options: RecurrentOptions, random: inout Random) -> Layer {
        LSTM(inputs: inputs, hidden: options.hidden, bidirectional: options.bidirectional,
             returnsSequence: options.returnsSequence, random: &random)
    }
}
