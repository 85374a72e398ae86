/// Multi-index helpers for the naive references written from the definitions (NDLayerTests,
/// GroupedConvolutionTests, PaddedPoolingTests).

/// Every multi-index of `shape`, in row-major order.
func allIndices(_ shape: [Int]) -> [[Int]] {
    var result: [[Int]] = [[]]
    for size in shape { result = result.flatMap { prefix in (0..<size).map { prefix + [$0] } } }
    return result
}

/// The row-major offset of `index` in `shape`.
func offset(_ index: [Int], in shape: [Int]) -> Int {
    zip(index, shape).reduce(0) { $0 * $1.1 + $1.0 }
}
