import CBLAS
import Tensor

/// Pooling's `.portable` algorithm: N-dimensional (1-, 2- or 3-D) max or average pooling, any
/// window and stride, no padding; sizes round down, like PyTorch's and Flux's default (7 with
/// window 2 → 3).
///
/// Shapes (k = rank = kernel.count): x [C, N, D1…Dk] → y [C, N, O1…Ok], Oi = ⌊(Di − ki) / si⌋ + 1.
/// Max:     y = the window's max; ties go to the first position in (d1, …, dk) order, as PyTorch's.
///          Backward: dx[winner] += dy (windows overlap when the stride is below the window).
/// Average: y = the window's mean; backward spreads dy / ∏k over the window.
/// Internally every rank runs as 3-D, with leading sizes of 1.
/// Cache (max): `winners` [C, N, O…]: each output's arg-max as an offset in its (c, n) input plane.
final class PortablePooling {
    typealias Kind = Pooling.Kind

    let kernel: [Int], stride: [Int]
    let kind: Kind
    private let description: String
    var rank: Int { kernel.count }

    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var winners: [Int32] = []
    private var geometry: Geometry?
    private var frameOutput: [Float] = [], frameWinners: [Int32] = []   // one pooled frame, for ollie_maxpool_frames

    init(kernel: [Int], stride: [Int], kind: Kind, description: String) {
        self.kernel = kernel
        self.stride = stride
        self.kind = kind
        self.description = description
    }

    // MARK: geometry

    /// One input shape's sizes as 3-D: input d, output o, window k, stride s (leading sizes 1);
    /// `planes` = C·N.
    struct Geometry {
        let inputShape: [Int], outputShape: [Int]
        let planes: Int
        let d, o, k, s: (Int, Int, Int)
        var inputVolume: Int { d.0 * d.1 * d.2 }
        var outputVolume: Int { o.0 * o.1 * o.2 }
    }

    private func prepare(_ x: Tensor) -> Geometry {
        if let g = geometry, g.inputShape == x.shape { return g }
        precondition(x.shape.count == rank + 2, "\(description) got input \(x.shape)")
        func lifted(_ values: [Int]) -> (Int, Int, Int) {
            let v = Array(repeating: 1, count: 3 - values.count) + values
            return (v[0], v[1], v[2])
        }
        let spatial = Array(x.shape.dropFirst(2))
        guard let outSpatial = slidingWindowOutputSizes(input: spatial, window: kernel, stride: stride,
                                                        padding: kernel.map { _ in 0 }) else {
            preconditionFailure("\(description): input \(x.shape) is smaller than the window")
        }
        let g = Geometry(inputShape: x.shape, outputShape: [x.shape[0], x.shape[1]] + outSpatial,
                         planes: x.shape[0] * x.shape[1],
                         d: lifted(spatial), o: lifted(outSpatial), k: lifted(kernel), s: lifted(stride))
        geometry = g
        return g
    }

    // MARK: forward

    func forward(_ x: Tensor) -> Tensor {
        let g = prepare(x)
        output.resize(g.outputShape)
        if kind == .max, winners.count != output.count { winners = [Int32](repeating: 0, count: output.count) }
        let (d1, d2) = (g.d.1, g.d.2), (o0, o1, o2) = g.o, (k0, k1, k2) = g.k, (s0, s1, s2) = g.s
        let scale = 1 / Float(k0 * k1 * k2)
        if kind == .max, g.k.1 == 2, g.k.2 == 2, g.s == g.k, poolFrames(x, g) { return output }
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                winners.withUnsafeMutableBufferPointer { wp in
                    for plane in 0..<g.planes {
                        let input = xp.baseAddress! + plane * g.inputVolume
                        var out = plane * g.outputVolume
                        for oz in 0..<o0 {
                            for oy in 0..<o1 {
                                for ox in 0..<o2 {
                                    let corner = ((oz * s0) * d1 + oy * s1) * d2 + ox * s2
                                    if kind == .max {
                                        var best = corner, top = input[corner]
                                        for kz in 0..<k0 {
                                            for ky in 0..<k1 {
                                                let row = corner + (kz * d1 + ky) * d2
                                                for kx in 0..<k2 where input[row + kx] > top {
                                                    top = input[row + kx]; best = row + kx
                                                }
                                            }
                                        }
                                        yp[out] = top
                                        wp[out] = Int32(best)
                                    } else {
                                        var total: Float = 0
                                        for kz in 0..<k0 {
                                            for ky in 0..<k1 {
                                                let row = corner + (kz * d1 + ky) * d2
                                                for kx in 0..<k2 { total += input[row + kx] }
                                            }
                                        }
                                        yp[out] = total * scale
                                    }
                                    out += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        return output
    }

    /// Max pooling with a k×2×2 window and an equal stride (`pool 1x2x2`, `pool 2`) in C with
    /// AVX-512, one (c, n) volume at a time; false where the CPU has no AVX-512.
    private func poolFrames(_ x: Tensor, _ g: Geometry) -> Bool {
        let pooledFrame = g.o.1 * g.o.2
        if frameOutput.count < pooledFrame {
            frameOutput = [Float](repeating: 0, count: pooledFrame)
            frameWinners = [Int32](repeating: 0, count: pooledFrame)
        }
        var status: Int32 = 0
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                winners.withUnsafeMutableBufferPointer { wp in
                    frameOutput.withUnsafeMutableBufferPointer { fy in
                        frameWinners.withUnsafeMutableBufferPointer { fw in
                            for plane in 0..<g.planes where status == 0 {
                                status = ollie_maxpool_frames(xp.baseAddress! + plane * g.inputVolume,
                                                              yp.baseAddress! + plane * g.outputVolume,
                                                              wp.baseAddress! + plane * g.outputVolume,
                                                              Int32(g.d.0), Int32(g.d.1), Int32(g.d.2), Int32(g.k.0),
                                                              fy.baseAddress!, fw.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
        return status == 0
    }

    // MARK: backward

    func backward(_ dout: Tensor) -> Tensor {
        guard let g = geometry else { preconditionFailure("\(description): backward before forward") }
        precondition(dout.count == output.count, "\(description): gradient \(dout.shape) for output \(output.shape)")
        inputGradient.resize(g.inputShape)
        inputGradient.zero()
        let (d1, d2) = (g.d.1, g.d.2), (o0, o1, o2) = g.o, (k0, k1, k2) = g.k, (s0, s1, s2) = g.s
        let scale = 1 / Float(k0 * k1 * k2)
        dout.data.withUnsafeBufferPointer { dyp in
            inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                winners.withUnsafeBufferPointer { wp in
                    for plane in 0..<g.planes {
                        let dx = dxp.baseAddress! + plane * g.inputVolume
                        let first = plane * g.outputVolume
                        if kind == .max {
                            for i in first..<(first + g.outputVolume) { dx[Int(wp[i])] += dyp[i] }
                            continue
                        }
                        var out = first
                        for oz in 0..<o0 {
                            for oy in 0..<o1 {
                                for ox in 0..<o2 {
                                    let corner = ((oz * s0) * d1 + oy * s1) * d2 + ox * s2
                                    let share = dyp[out] * scale
                                    for kz in 0..<k0 {
                                        for ky in 0..<k1 {
                                            let row = dx + corner + (kz * d1 + ky) * d2
                                            for kx in 0..<k2 { row[kx] += share }
                                        }
                                    }
                                    out += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        return inputGradient
    }
}
