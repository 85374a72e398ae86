import Tensor

// Small vector helpers shared by the layer kernels.
//
// The package compiles for baseline x86-64 (SSE2: 4 float lanes) and activation rows are short
// (7, 14, 28 floats), too short for LLVM's auto-vectorized loops, whose main body wants 16+
// iterations. So the row kernels here use explicit 4-lane vectors and no data-dependent
// branches (random signs make branches mispredict half the time). Measured pitfalls: Float
// compares (.>, .<=) with `replacing` compile to cmpps/andps, but SIMD *integer* compares
// (.==) become scalar loops through the stack, and `pointwiseMax` is an unspecialized call.

/// Floats of slack kept after buffers that im2col (CBLAS/im2col.c) reads or writes past a row's end.
let vectorSlack = 16

typealias Float4 = SIMD4<Float>
typealias Int4 = SIMD4<Int32>

@inline(__always)
func load4(_ p: UnsafePointer<Float>) -> Float4 {
    UnsafeRawPointer(p).loadUnaligned(as: Float4.self)
}

@inline(__always)
func store4(_ v: Float4, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float4.self)
}

@inline(__always)
func load4(_ p: UnsafePointer<Int32>) -> Int4 {
    UnsafeRawPointer(p).loadUnaligned(as: Int4.self)
}

@inline(__always)
func store4(_ v: Int4, _ p: UnsafeMutablePointer<Int32>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Int4.self)
}

/// dst[r·dstStride + i] = src[r·srcStride + i] for r < rows, i < width; nothing else changes.
@inline(__always)
func copyRows(_ src: UnsafePointer<Float>, srcStride: Int, _ dst: UnsafeMutablePointer<Float>, dstStride: Int,
              rows: Int, width: Int) {
    let vectorWidth = width & ~3
    for r in 0..<rows {
        let s = src + r * srcStride, d = dst + r * dstStride
        var i = 0
        while i < vectorWidth { store4(load4(s + i), d + i); i += 4 }
        while i < width { d[i] = s[i]; i += 1 }
    }
}

/// Σ x[0..<count], 4 lanes × 4 accumulators (a plain loop does not vectorize: float addition
/// is not reassociated without fast-math).
@inline(__always)
func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var a = Float4(), b = Float4(), c = Float4(), d = Float4()
    var i = 0
    while i + 16 <= count {
        a += load4(x + i); b += load4(x + i + 4); c += load4(x + i + 8); d += load4(x + i + 12)
        i += 16
    }
    var total = ((a + b) + (c + d)).sum()
    while i < count { total += x[i]; i += 1 }
    return total
}

/// Backward of an elementwise layer: dx = dy ⊙ factor (the derivative, or the dropout mask), into `dx`.
func multiplyElementwise(_ dy: Tensor, by factor: Tensor, into dx: Tensor) -> Tensor {
    precondition(dy.count == factor.count, "gradient \(dy.shape) for an output of \(factor.shape)")
    dx.resize(factor.shape)
    dy.data.withUnsafeBufferPointer { dyp in
        factor.data.withUnsafeBufferPointer { fp in
            dx.data.withUnsafeMutableBufferPointer { dxp in
                for i in 0..<fp.count { dxp[i] = dyp[i] * fp[i] }
            }
        }
    }
    return dx
}
