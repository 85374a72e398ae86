import Foundation
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

/// A parameter uniform in [−bound, bound), as PyTorch initializes recurrent weights
/// (bound 1/√hidden) and nn.Linear's weight and bias (bound 1/√fan_in).
func uniformParameter(_ name: String, _ shape: [Int], bound: Float, random: inout Random) -> Parameter {
    let t = Tensor(shape)
    for i in 0..<t.count { t.data[i] = random.uniform(-bound, bound) }
    return Parameter(name: name, value: t)
}

@inline(__always)
func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

/// sums[j] = Σ_r m[r·columns + j] over `rows` rows (a bias gradient from its rows' gradients).
func columnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>) {
    sums.update(repeating: 0, count: columns)
    for r in 0..<rows {
        let row = m + r * columns
        for j in 0..<columns { sums[j] += row[j] }
    }
}
