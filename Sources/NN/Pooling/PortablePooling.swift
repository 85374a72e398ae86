import CBLAS
import Tensor

/// Pooling's `.portable` algorithm: N-dimensional (1-, 2- or 3-D) max or average pooling, any
/// window and stride, padding up to half the window; sizes round down, like PyTorch's and Flux's
/// default (7 with window 2 → 3).
///
/// Shapes (k = rank = kernel.count): x [C, N, D1…Dk] → y [C, N, O1…Ok],
/// Oi = ⌊(Di + 2·pi − ki) / si⌋ + 1; window o covers o·s − p ..< o·s − p + k on each axis, of
/// which only the cells inside x count (at least one does, as p ≤ k/2).
/// Max:     y = the max of those cells; ties go to the first position in (d1, …, dk) order, as
///          PyTorch's. Backward: dx[winner] += dy (windows overlap when the stride is below the window).
/// Average: y = their mean (PyTorch's count_include_pad=False); backward spreads dy / count over them.
/// Internally every rank runs as 3-D, with leading sizes of 1.
/// Cache (max): `winners` [C, N, O…]: each output's arg-max as an offset in its (c, n) input plane.
/// After a stride-one convolution a k×2×2 max pool runs fused with it (`takesFrames`):
/// StrideOneConvolution pools each block's finished samples through `prepare(inputShape:)` and
/// `poolFrames(_:planes:count:)`, and routes gradients back through `route`.
final class PortablePooling {
    typealias Kind = Pooling.Kind

    let kernel: [Int], stride: [Int], padding: [Int]
    let kind: Kind
    private let description: String
    var rank: Int { kernel.count }

    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var winners: [Int32] = []
    private var geometry: Geometry?
    private var frameOutput: [Float] = [], frameWinners: [Int32] = []   // one pooled frame, for ollie_maxpool_frames

    init(kernel: [Int], stride: [Int], padding: [Int]? = nil, kind: Kind, description: String) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding ?? kernel.map { _ in 0 }
        self.kind = kind
        self.description = description
    }

    // MARK: geometry

    /// One input shape's sizes as 3-D: input d, output o, window k, stride s, padding p
    /// (leading sizes 1, padding 0); `planes` = C·N.
    struct Geometry {
        let inputShape: [Int], outputShape: [Int]
        let planes: Int
        let d, o, k, s, p: (Int, Int, Int)
        var padded: Bool { p != (0, 0, 0) }
        var inputVolume: Int { d.0 * d.1 * d.2 }
        var outputVolume: Int { o.0 * o.1 * o.2 }
    }

    /// Whether max pooling runs in the kernel set's k×2×2 loop, a (c, n) volume at a time:
    /// windows of 2×2 on the last two axes (any size on a third), the stride the window, no
    /// padding. The windows do not overlap, so each input cell gets at most one gradient.
    var takesFrames: Bool {
        kind == .max && rank >= 2 && kernel.suffix(2) == [2, 2] && stride == kernel && padding.allSatisfy { $0 == 0 }
    }

    /// Sizes the output and winners for an input of `inputShape` [C, N, D1…Dk]; returns the output.
    @discardableResult
    func prepare(inputShape: [Int]) -> Tensor {
        _ = prepare(shape: inputShape)
        return output
    }

    /// The sizes for an input of `shape`, with the output and winners sized for them.
    private func prepare(shape: [Int]) -> Geometry {
        let g = geometry(for: shape)
        output.resize(g.outputShape)
        if kind == .max, winners.count != output.count { winners = [Int32](repeating: 0, count: output.count) }
        return g
    }

    private func geometry(for shape: [Int]) -> Geometry {
        if let g = geometry, g.inputShape == shape { return g }
        precondition(shape.count == rank + 2, "\(description) got input \(shape)")
        func lifted(_ values: [Int], _ fill: Int = 1) -> (Int, Int, Int) {
            let v = Array(repeating: fill, count: 3 - values.count) + values
            return (v[0], v[1], v[2])
        }
        let spatial = Array(shape.dropFirst(2))
        guard let outSpatial = slidingWindowOutputSizes(input: spatial, window: kernel, stride: stride, padding: padding) else {
            preconditionFailure("\(description): input \(shape) is smaller than the window")
        }
        let g = Geometry(inputShape: shape, outputShape: [shape[0], shape[1]] + outSpatial,
                         planes: shape[0] * shape[1],
                         d: lifted(spatial), o: lifted(outSpatial), k: lifted(kernel), s: lifted(stride), p: lifted(padding, 0))
        geometry = g
        return g
    }

    // MARK: forward

    func forward(_ x: Tensor) -> Tensor {
        let g = prepare(shape: x.shape)
        if takesFrames {
            x.data.withUnsafeBufferPointer { xp in poolFrames(xp.baseAddress!, planes: 0, count: g.planes) }
            return output
        }
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                winners.withUnsafeMutableBufferPointer { wp in
                    for plane in 0..<g.planes {
                        let input = xp.baseAddress! + plane * g.inputVolume
                        var out = plane * g.outputVolume
                        forEachWindow(g) { corner, zs, ys, xs, scale in
                            if kind == .max {
                                // The first cell inside x starts the search: the padding never wins.
                                var best = corner + (zs.lowerBound * g.d.1 + ys.lowerBound) * g.d.2 + xs.lowerBound
                                var top = input[best]
                                for kz in zs {
                                    for ky in ys {
                                        let row = corner + (kz * g.d.1 + ky) * g.d.2
                                        for kx in xs where input[row + kx] > top {
                                            top = input[row + kx]; best = row + kx
                                        }
                                    }
                                }
                                yp[out] = top
                                wp[out] = Int32(best)
                            } else {
                                var total: Float = 0
                                for kz in zs {
                                    for ky in ys {
                                        let row = corner + (kz * g.d.1 + ky) * g.d.2
                                        for kx in xs { total += input[row + kx] }
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
        return output
    }

    /// Every output position of one plane, in order: `body(corner, zs, ys, xs, scale)` with the
    /// plane offset of the window's first cell (o·s − p on each axis; it may lie outside x),
    /// the window offsets on each axis whose cells lie inside x, and 1 / their count (the
    /// average's divisor; 1/∏k where the window lies wholly inside, as without padding).
    @inline(__always)
    private func forEachWindow(_ g: Geometry, body: (Int, Range<Int>, Range<Int>, Range<Int>, Float) -> Void) {
        @inline(__always) func inside(_ start: Int, _ k: Int, _ d: Int) -> Range<Int> { max(0, -start)..<min(k, d - start) }
        let (d1, d2) = (g.d.1, g.d.2), (o0, o1, o2) = g.o, (k0, k1, k2) = g.k, (s0, s1, s2) = g.s, (p0, p1, p2) = g.p
        let fullScale = 1 / Float(k0 * k1 * k2)
        for oz in 0..<o0 {
            let z = oz * s0 - p0, zs = inside(z, k0, g.d.0)
            for oy in 0..<o1 {
                let y = oy * s1 - p1, ys = inside(y, k1, d1)
                for ox in 0..<o2 {
                    let x = ox * s2 - p2, xs = inside(x, k2, d2)
                    let count = zs.count * ys.count * xs.count
                    body((z * d1 + y) * d2 + x, zs, ys, xs, count == k0 * k1 * k2 ? fullScale : 1 / Float(count))
                }
            }
        }
    }

    /// Max pooling with a k×2×2 window and an equal stride (`pool 1x2x2`, `pool 2`) by the
    /// kernel set's C loops: the `count` consecutive (c, n) input volumes at `input` into output
    /// planes `first`..<first+count (and their winners), one volume at a time.
    func poolFrames(_ input: UnsafePointer<Float>, planes first: Int, count: Int) {
        guard let g = geometry else { preconditionFailure("\(description): pooling before its sizes are known") }
        let pooledFrame = g.o.1 * g.o.2
        if frameOutput.count < pooledFrame {
            frameOutput = [Float](repeating: 0, count: pooledFrame)
            frameWinners = [Int32](repeating: 0, count: pooledFrame)
        }
        var status: Int32 = 0
        output.data.withUnsafeMutableBufferPointer { yp in
            winners.withUnsafeMutableBufferPointer { wp in
                frameOutput.withUnsafeMutableBufferPointer { fy in
                    frameWinners.withUnsafeMutableBufferPointer { fw in
                        for plane in 0..<count where status == 0 {
                            let out = (first + plane) * g.outputVolume
                            status = ollie_maxpool_frames(input + plane * g.inputVolume, yp.baseAddress! + out, wp.baseAddress! + out,
                                                          Int32(g.d.0), Int32(g.d.1), Int32(g.d.2), Int32(g.k.0),
                                                          fy.baseAddress!, fw.baseAddress!)
                        }
                    }
                }
            }
        }
        precondition(status == 0, "\(description): the \(Kernels.setName) kernels' max pooling failed")
    }

    /// For backward (k×2×2 windows) and the stride-one convolution's fused one: routes output planes
    /// `first`..<first+count of `dout` to their winners in `dx` (that many consecutive zeroed
    /// input volumes), skipping windows whose max is ≤ 0 when `masked` (the ReLU's derivative);
    /// returns the sum of what was routed, volume by volume.
    func route(_ dout: Tensor, planes first: Int, count: Int, masked: Bool, into dx: UnsafeMutablePointer<Float>) -> Float {
        guard let g = geometry else { preconditionFailure("\(description): backward before forward") }
        precondition(dout.count == output.count, "\(description): gradient \(dout.shape) for output \(output.shape)")
        return routeToWinners(dout, output: output, winners: winners, planes: first, count: count, outputSize: g.outputVolume,
                              inputSize: g.inputVolume, masked: masked, into: dx)
    }

    // MARK: backward

    func backward(_ dout: Tensor) -> Tensor {
        guard let g = geometry else { preconditionFailure("\(description): backward before forward") }
        precondition(dout.count == output.count, "\(description): gradient \(dout.shape) for output \(output.shape)")
        inputGradient.resize(g.inputShape)
        inputGradient.zero()
        if takesFrames {   // windows that do not overlap: the kernel table's scatter
            inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                _ = route(dout, planes: 0, count: g.planes, masked: false, into: dxp.baseAddress!)
            }
            return inputGradient
        }
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
                        forEachWindow(g) { corner, zs, ys, xs, scale in
                            let share = dyp[out] * scale
                            for kz in zs {
                                for ky in ys {
                                    let row = corner + (kz * g.d.1 + ky) * g.d.2
                                    for kx in xs { dx[row + kx] += share }
                                }
                            }
                            out += 1
                        }
                    }
                }
            }
        }
        return inputGradient
    }
}
