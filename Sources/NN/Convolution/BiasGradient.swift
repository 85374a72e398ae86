import CBLAS

/// A convolution's bias gradient, through its fused ReLU when it has one: db[o] += Σ_j dy′[o, j]
/// over `columns` columns of each of `rows` rows, where dy′ = dy ⊙ (y > 0) under a ReLU, else dy.
/// dy′ is written to `relu.masked` (same layout), never into dy: dy belongs to the layer above,
/// and a tensor may feed several consumers. One read of dy (and y) and one write, as the
/// in-place mask this replaces. Returns what the weight and input gradients read next: the
/// masked copy under a ReLU, else dy itself.
/// Shapes: dy, y, masked [rows, ≥ columns] with rows `stride` apart; db [rows].
func accumulateBiasGradient(_ db: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
                            relu: (y: UnsafePointer<Float>, masked: UnsafeMutablePointer<Float>)?,
                            rows: Int, columns: Int, stride: Int) -> UnsafePointer<Float> {
    guard let relu else {
        for o in 0..<rows { db[o] += sum(dy + o * stride, count: columns) }
        return dy
    }
    for o in 0..<rows {
        db[o] += ollie_relu_mask_sum(dy + o * stride, relu.y + o * stride, relu.masked + o * stride, Int32(columns))
    }
    return UnsafePointer(relu.masked)
}
