/// Small vector kernels shared by the layers. Written with SIMD types because LLVM will not
/// reorder a Float sum by itself (that changes rounding), so a plain loop stays scalar.

/// Σ x[0..<n], with 16 lanes of partial sums.
@inlinable
public func vectorSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    let raw = UnsafeRawPointer(x)
    while i + 16 <= n {
        acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    var total = acc.sum()
    while i < n { total += x[i]; i += 1 }
    return total
}

/// dy[i] = 0 where y[i] ≤ 0: the ReLU backward mask, in place.
@inlinable
public func reluMask(_ dy: UnsafeMutablePointer<Float>, by y: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    let zero = SIMD16<Float>()
    let yRaw = UnsafeRawPointer(y), dyRaw = UnsafeMutableRawPointer(dy)
    while i + 16 <= n {
        let yv = yRaw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        let dv = dyRaw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        dyRaw.storeBytes(of: zero.replacing(with: dv, where: yv .> zero), toByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    while i < n { if !(y[i] > 0) { dy[i] = 0 }; i += 1 }
}
