import Foundation
import Tensor

/// Pools a sequence to one feature vector with learned additive attention (Bahdanau-style
/// scoring, as in attention-pooled RNN classifiers):
///
///     u_t = tanh(W h_t + b),  score_t = v · u_t,  α = softmax_t(score),  y = Σ_t α_t h_t
///
/// Named as the PyTorch module with `proj = nn.Linear(F, A)` and `score = nn.Linear(A, 1,
/// bias=False)` names them, and initialized as nn.Linear is (uniform ±1/√fan_in).
///
/// Shapes: x [N, T, F] → y [N, F]; proj.weight W [A, F], proj.bias b [A], score.weight v [1, A].
/// Cache: u [N·T, A] (after tanh) and α [N, T]; the input x (owned by the layer below).
public final class AttentionPool: Layer {
    public let features: Int, attentionSize: Int
    public let weight: Parameter, bias: Parameter, score: Parameter
    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var input: Tensor?
    private let projected = Scratch(), weights = Scratch()
    // Backward: dL/d(W h_t + b) [N·T, A], dL/dα then dL/dscore [N, T], the bias gradient [A].
    private let projectedGradient = Scratch(), scoreGradient = Scratch(), biasScratch = Scratch()

    public init(features: Int, attentionSize: Int, random: inout Random) {
        precondition(features >= 1 && attentionSize >= 1, "AttentionPool needs at least one feature and one attention unit")
        self.features = features
        self.attentionSize = attentionSize
        let projBound = 1 / Float(features).squareRoot(), scoreBound = 1 / Float(attentionSize).squareRoot()
        weight = uniformParameter("proj.weight", [attentionSize, features], bound: projBound, random: &random)
        bias = uniformParameter("proj.bias", [attentionSize], bound: projBound, random: &random)
        score = uniformParameter("score.weight", [1, attentionSize], bound: scoreBound, random: &random)
    }

    private init(sharing other: AttentionPool) {
        features = other.features; attentionSize = other.attentionSize
        weight = Parameter(sharing: other.weight)
        bias = Parameter(sharing: other.bias)
        score = Parameter(sharing: other.score)
    }

    public func replica() -> Layer { AttentionPool(sharing: self) }
    public var parameters: [Parameter] { [weight, bias, score] }
    public var description: String { "AttentionPool(\(features), attention \(attentionSize))" }

    /// [T, F] → [F].
    public func outputShape(for input: [Int]) throws -> [Int] {
        try checkSequenceShape(input, features: features, layer: description)
        return [features]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.shape.count == 3 && x.shape[1] >= 1 && x.shape[2] == features, "\(description) got input \(x.shape)")
        let (n, steps, f, size) = (x.shape[0], x.shape[1], features, attentionSize)
        let rows = n * steps
        input = x
        output.resize([n, f])
        projected.reserve(rows * size); weights.reserve(rows)
        let (u, alpha) = (projected.base, weights.base)
        x.data.withUnsafeBufferPointer { xp in
            let x = xp.baseAddress!
            // u = tanh(x·Wᵀ + b)  ([N·T, F]·[F, A])
            weight.value.data.withUnsafeBufferPointer { w in
                BLAS.sgemm(transB: true, m: rows, n: size, k: f, a: x, lda: f, b: w.baseAddress!, ldb: f, c: u, ldc: size)
            }
            bias.value.data.withUnsafeBufferPointer { b in
                for r in 0..<rows {
                    let row = u + r * size
                    for j in stride(from: 0, to: size, by: 8) {
                        let lanes = min(8, size - j)
                        store8(tanh8(load8(row + j, lanes) + load8(b.baseAddress! + j, lanes)), row + j, lanes)
                    }
                }
            }
            // α = softmax over each sample's steps of v·u_t
            score.value.data.withUnsafeBufferPointer { v in
                for r in 0..<rows {
                    let row = u + r * size
                    var s: Float = 0
                    for j in 0..<size { s += v[j] * row[j] }
                    alpha[r] = s
                }
            }
            for sample in 0..<n {
                let a = alpha + sample * steps
                var top = a[0]
                for t in 1..<steps { top = max(top, a[t]) }
                var total: Float = 0
                for t in 0..<steps { a[t] = expf(a[t] - top); total += a[t] }
                let inverse = 1 / total
                for t in 0..<steps { a[t] *= inverse }
            }
            // y[n] = Σ_t α[n, t] x[n, t]
            output.data.withUnsafeMutableBufferPointer { yp in
                for sample in 0..<n {
                    let y = yp.baseAddress! + sample * f
                    y.update(repeating: 0, count: f)
                    for t in 0..<steps {
                        let share = alpha[sample * steps + t], row = x + (sample * steps + t) * f
                        for j in 0..<f { y[j] += share * row[j] }
                    }
                }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        guard let x = input else { return inputGradient }
        let (n, steps, f, size) = (x.shape[0], x.shape[1], features, attentionSize)
        let rows = n * steps
        precondition(dout.count == n * f, "\(description): gradient \(dout.shape) for output \(output.shape)")
        inputGradient.resize(x.shape)
        projectedGradient.reserve(rows * size); scoreGradient.reserve(rows); biasScratch.reserve(size)
        let (u, alpha, du, ds) = (projected.base, weights.base, projectedGradient.base, scoreGradient.base)
        x.data.withUnsafeBufferPointer { xp in
            dout.data.withUnsafeBufferPointer { dyp in
                inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                    let (x, dy, dx) = (xp.baseAddress!, dyp.baseAddress!, dxp.baseAddress!)
                    // dα[n, t] = dy[n]·x[n, t]; dscore = α ⊙ (dα − Σ_t α dα); dx[n, t] = α[n, t] dy[n] (so far)
                    for sample in 0..<n {
                        let dyRow = dy + sample * f
                        var expected: Float = 0
                        for t in 0..<steps {
                            let r = sample * steps + t, row = x + r * f, dxRow = dx + r * f, share = alpha[r]
                            var dot: Float = 0
                            for j in 0..<f { dot += dyRow[j] * row[j]; dxRow[j] = share * dyRow[j] }
                            ds[r] = dot
                            expected += share * dot
                        }
                        for t in 0..<steps {
                            let r = sample * steps + t
                            ds[r] = alpha[r] * (ds[r] - expected)
                        }
                    }
                    // dv += Σ_r dscore[r] u[r]; du = dscore ⊗ v ⊙ (1 − u²)
                    score.grad.data.withUnsafeMutableBufferPointer { dv in
                        for r in 0..<rows {
                            let row = u + r * size, d = ds[r]
                            for j in 0..<size { dv[j] += d * row[j] }
                        }
                    }
                    score.value.data.withUnsafeBufferPointer { v in
                        for r in 0..<rows {
                            let row = u + r * size, drow = du + r * size, d = ds[r]
                            for j in 0..<size { drow[j] = d * v[j] * (1 - row[j] * row[j]) }
                        }
                    }
                    // dW += duᵀ·x ([A, N·T]·[N·T, F]); db += Σ_r du[r]; dx += du·W ([N·T, A]·[A, F])
                    weight.grad.data.withUnsafeMutableBufferPointer { dw in
                        BLAS.sgemm(transA: true, m: size, n: f, k: rows, a: du, lda: size, b: x, ldb: f,
                                   beta: 1, c: dw.baseAddress!, ldc: f)
                    }
                    let sums = biasScratch.base
                    columnSums(du, rows: rows, columns: size, into: sums)
                    bias.grad.data.withUnsafeMutableBufferPointer { db in
                        for j in 0..<size { db[j] += sums[j] }
                    }
                    weight.value.data.withUnsafeBufferPointer { w in
                        BLAS.sgemm(m: rows, n: f, k: size, a: du, lda: size, b: w.baseAddress!, ldb: f,
                                   beta: 1, c: dx, ldc: f)
                    }
                }
            }
        }
        return inputGradient
    }
}

// MARK: - In a spec

/// `attention [A]`: a sequence pooled to one vector by learned additive attention:
/// α = softmax over time of v·tanh(W h_t + b), out = Σ α_t h_t (A: W's size, default F).
/// Tensors `N.proj.weight`, `N.proj.bias`, `N.score.weight`.
public struct AttentionSpec: LayerSpec, Equatable {
    public static let keyword = "attention"
    public static let grammar = "attention [A]   a sequence to one vector, weighted by learned attention"
    var size: Int?

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.count <= 1 else { throw SpecError("takes at most one size, e.g. attention 64") }
        if let word = arguments.first {
            guard let a = Int(word), (1...65_536).contains(a) else {
                throw SpecError("the attention size '\(word)' must be a whole number from 1 to 65536")
            }
            size = a
        }
    }

    public var text: String { ([AttentionSpec.keyword] + (size.map { [String($0)] } ?? [])).joined(separator: " ") }

    public func outputShape(for input: [Int]) throws -> [Int] { throw RecurrentOptions.needsSequence(AttentionSpec.keyword, SampleShape(input)) }
    public func output(for input: SampleShape) throws -> SampleShape {
        guard input.isSequence else { throw RecurrentOptions.needsSequence(AttentionSpec.keyword, input) }
        return SampleShape([input.dims[1]])
    }
    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        throw RecurrentOptions.needsSequence(AttentionSpec.keyword, SampleShape(input))
    }
    public func makeLayer(for input: SampleShape, fastPaths: Bool, random: inout Random) throws -> Layer {
        AttentionPool(features: input.dims[1], attentionSize: size ?? input.dims[1], random: &random)
    }
    public func parameterCount(for input: SampleShape) -> Int {
        let f = input.dims.last ?? 0, a = size ?? f
        return a * f + a + a
    }
}
