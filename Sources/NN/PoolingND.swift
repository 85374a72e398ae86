import CBLAS
import Tensor

/// N-dimensional (1-, 2- or 3-D) max or average pooling, any window and stride, no padding;
/// sizes round down, like PyTorch's and Flux's default (7 with window 2 → 3).
///
/// Shapes (k = rank = kernel.count): x [C, N, D1…Dk] → y [C, N, O1…Ok], Oi = ⌊(Di − ki) / si⌋ + 1.
/// Max:     y = the window's max; ties go to the first position in (d1, …, dk) order, as PyTorch's.
///          Backward: dx[winner] += dy (windows overlap when the stride is below the window).
/// Average: y = the window's mean; backward spreads dy / ∏k over the window.
/// Internally every rank runs as 3-D, with leading sizes of 1.
/// Cache (max): `winners` [C, N, O…]: each output's arg-max as an offset in its (c, n) input plane.
public final class PoolingND: Layer {
    public enum Kind: String, Sendable {
        case max, avg
    }

    public let kernel: [Int], stride: [Int]
    public let kind: Kind
    public var rank: Int { kernel.count }

    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var winners: [Int32] = []
    private var geometry: Geometry?
    private var frameOutput: [Float] = [], frameWinners: [Int32] = []   // one pooled frame, for ollie_maxpool_frames

    public init(kernel: [Int], stride: [Int], kind: Kind) {
        precondition((1...3).contains(kernel.count), "PoolingND takes 1, 2 or 3 window sizes, got \(kernel)")
        precondition(stride.count == kernel.count, "PoolingND needs one stride per window dimension (window \(kernel), stride \(stride))")
        precondition(kernel.allSatisfy { $0 > 0 } && stride.allSatisfy { $0 > 0 }, "PoolingND needs positive window sizes and strides")
        self.kernel = kernel
        self.stride = stride
        self.kind = kind
    }

    public func replica() -> Layer { PoolingND(kernel: kernel, stride: stride, kind: kind) }
    public var parameters: [Parameter] { [] }

    /// Flux's form: "MaxPool((2, 2))", "MeanPool((3,), stride=2)".
    public var description: String {
        (kind == .max ? "MaxPool(" : "MeanPool(") + NDLayerText.tuple(kernel)
            + (stride == kernel ? "" : ", stride=\(NDLayerText.compact(stride))") + ")"
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == rank + 1 else {
            throw ModelError("\(description) needs C×\(Array(repeating: "D", count: rank).joined(separator: "×")) inputs"
                             + " (\(rank) spatial dimension\(rank == 1 ? "" : "s")), got \(shapeText(input))")
        }
        var shape = [input[0]]
        for i in 0..<rank {
            guard input[i + 1] >= kernel[i] else {
                throw ModelError("\(description) needs inputs of at least \(shapeText(kernel)), got \(shapeText(Array(input.dropFirst())))")
            }
            shape.append((input[i + 1] - kernel[i]) / stride[i] + 1)
        }
        return shape
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
        precondition(zip(spatial, kernel).allSatisfy { $0 >= $1 }, "\(description): input \(x.shape) is smaller than the window")
        let outSpatial = (0..<rank).map { (spatial[$0] - kernel[$0]) / stride[$0] + 1 }
        let g = Geometry(inputShape: x.shape, outputShape: [x.shape[0], x.shape[1]] + outSpatial,
                         planes: x.shape[0] * x.shape[1],
                         d: lifted(spatial), o: lifted(outSpatial), k: lifted(kernel), s: lifted(stride))
        geometry = g
        return g
    }

    // MARK: forward

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
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

    public func backward(_ dout: Tensor) -> Tensor {
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

// MARK: - In a spec

/// `pool K [stride S] [max|avg]`: max (default) or average pooling over every spatial
/// dimension, stride K by default, no padding, sizes rounding down (7 → 3, as the reference).
public struct PoolSpec: LayerSpec, Equatable {
    public static let keyword = "pool"
    public static let grammar = "pool K [stride S] [max|avg]   K: 2, 2x2, 1x2x2…; stride default K"

    var kernel: Sizes
    var stride: Sizes?
    var average = false

    public init(keyword: String, arguments: [String]) throws {
        guard let first = arguments.first else { throw SpecError("needs a window size, e.g. pool 2") }
        kernel = try Sizes(parsing: first, "the window", range: 1...1024)
        var rest = arguments.dropFirst()
        while let word = rest.popFirst()?.lowercased() {
            switch word {
            case "stride":
                guard let value = rest.popFirst() else { throw SpecError("stride needs a size, e.g. stride 2") }
                stride = try Sizes(parsing: value, "the stride", range: 1...1024)
            case "max": average = false
            case "avg", "average", "mean": average = true
            default: throw SpecError("unexpected '\(word)'")
            }
        }
        if stride == kernel { stride = nil }
    }

    public var text: String {
        var words = [PoolSpec.keyword, kernel.text]
        if let stride { words += ["stride", stride.text] }
        if average { words.append("avg") }
        return words.joined(separator: " ")
    }

    func geometry(rank: Int) throws -> (kernel: [Int], stride: [Int]) {
        guard let k = kernel.resolved(rank: rank) else { throw SpecError("needs a \(kernel.values.count)-D input") }
        guard let s = (stride ?? kernel).resolved(rank: rank) else {
            throw SpecError("the stride \((stride ?? kernel).text) has the wrong number of sizes for a \(rank)-D input")
        }
        return (k, s)
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count >= 2 else { throw SpecError("needs channels and spatial dimensions, got \(describe(input))") }
        let g: (kernel: [Int], stride: [Int])
        do { g = try geometry(rank: input.count - 1) } catch let error as SpecError {
            throw SpecError("\(error.message), got \(describe(input))")
        }
        var out = [input[0]]
        for d in 0..<g.kernel.count {
            guard input[d + 1] >= g.kernel[d] else {
                throw SpecError("the window \(kernel.text) is larger than the input \(describe(input))")
            }
            out.append((input[d + 1] - g.kernel[d]) / g.stride[d] + 1)
        }
        return out
    }

    /// Fast path: 2-D max pooling with a square window and an equal stride is MaxPool2D (and
    /// fuses with the convolution before it).
    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        let g = try geometry(rank: input.count - 1)
        if fastPaths, !average, g.kernel.count == 2, g.kernel[0] == g.kernel[1], g.stride == g.kernel {
            return MaxPool2D(g.kernel[0])
        }
        return PoolingND(kernel: g.kernel, stride: g.stride, kind: average ? .avg : .max)
    }
}
