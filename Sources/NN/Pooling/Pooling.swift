import Tensor

/// How a `Pooling` layer computes; chosen from its geometry (`choose`), both computing the same
/// function (the tests compare them with each other and with naive references).
public enum PoolingAlgorithm: String, Sendable {
    /// 2-D max pooling, square window, stride = window, no padding: vector kernels a plane at a
    /// time, and the fusion with a chunked-plane convolution before it (SquareMaxPool.swift).
    case squareMax
    /// Any rank, window, stride and padding, max or average: plain loops (unpadded k×2×2 max
    /// windows in the kernel set's C loops), the reference for the other (PortablePooling.swift).
    case portable

    /// The fastest algorithm that takes this pooling; `.portable` without fast paths.
    /// `padding` nil: none.
    public static func choose(kernel: [Int], stride: [Int], padding: [Int]? = nil, kind: Pooling.Kind,
                              fastPaths: Bool) -> PoolingAlgorithm {
        fastPaths && squareMax.takes(kernel: kernel, stride: stride, padding: padding, kind: kind) ? .squareMax : .portable
    }

    /// Whether this algorithm computes a pooling of this window, stride, padding (nil: none) and kind.
    public func takes(kernel: [Int], stride: [Int], padding: [Int]? = nil, kind: Pooling.Kind) -> Bool {
        switch self {
        case .squareMax: kind == .max && kernel.count == 2 && kernel[0] == kernel[1] && stride == kernel
            && (padding ?? []).allSatisfy { $0 == 0 }
        case .portable: true
        }
    }
}

/// Max or average pooling of any spatial rank (1-, 2- or 3-D), any window and stride, padding
/// up to half the window: Flux's `MaxPool` and `MeanPool` (PyTorch's with
/// `count_include_pad=False`), one layer whatever algorithm computes it.
///
/// Shapes (k = rank = kernel.count): x [C, N, D1…Dk] → y [C, N, O1…Ok],
/// Oi = ⌊(Di + 2·pi − ki) / si⌋ + 1 (`slidingWindowOutputSizes`; sizes round down, 7 with
/// window 2 → 3).
/// Max:     y = the max of the window's cells inside x (the padding is −∞), ties to the first
///          position; backward routes dy to the winners.
/// Average: y = the mean of the window's cells inside x (the padding is not counted); backward
///          spreads dy / (that count) over them.
/// `algorithm` is chosen from the window (`PoolingAlgorithm.choose`); with `fastPaths` off it
/// is the portable one. After a chunked-plane convolution a square max pool, and after a
/// stride-one convolution a k×2×2 max pool, can run fused with it (`Convolution.canFuse(with:)`).
/// Cache (max): each output's winner, as an offset in its (c, n) input plane.
public final class Pooling: Layer {
    public enum Kind: String, Sendable {
        case max, avg
    }

    public let kernel: [Int], stride: [Int]
    /// Cells added on each side of each axis, at most half the window; zeros for none.
    public let padding: [Int]
    public let kind: Kind
    public let algorithm: PoolingAlgorithm
    public var rank: Int { kernel.count }

    /// The algorithm with its caches.
    enum Engine {
        case squareMax(SquareMaxPool)
        case portable(PortablePooling)
    }
    let engine: Engine

    /// The fastest algorithm for this window (`fastPaths`), else the portable one. The stride
    /// defaults to the window, the padding to none.
    public convenience init(kernel: [Int], stride: [Int]? = nil, padding: [Int]? = nil, kind: Kind = .max, fastPaths: Bool = true) {
        let stride = stride ?? kernel
        self.init(kernel: kernel, stride: stride, padding: padding, kind: kind,
                  algorithm: .choose(kernel: kernel, stride: stride, padding: padding, kind: kind, fastPaths: fastPaths))
    }

    /// With the given algorithm, which must take this pooling (the tests compare them).
    public init(kernel: [Int], stride: [Int], padding: [Int]? = nil, kind: Kind, algorithm: PoolingAlgorithm) {
        let padding = padding ?? kernel.map { _ in 0 }
        precondition((1...3).contains(kernel.count), "pooling takes 1, 2 or 3 window sizes, got \(kernel)")
        precondition(stride.count == kernel.count && padding.count == kernel.count,
                     "pooling needs one stride and one padding per window dimension (window \(kernel), stride \(stride), padding \(padding))")
        precondition(kernel.allSatisfy { $0 > 0 } && stride.allSatisfy { $0 > 0 }, "pooling needs positive window sizes and strides")
        precondition(zip(padding, kernel).allSatisfy { $0 >= 0 && $0 <= $1 / 2 },
                     "pooling's padding \(padding) must be between 0 and half the window \(kernel)")
        precondition(algorithm.takes(kernel: kernel, stride: stride, padding: padding, kind: kind),
                     "the \(algorithm) pooling cannot take a \(kind) window \(kernel) at stride \(stride), padding \(padding)")
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.kind = kind
        self.algorithm = algorithm
        let description = Self.description(kernel: kernel, stride: stride, padding: padding, kind: kind)
        switch algorithm {
        case .squareMax: engine = .squareMax(SquareMaxPool(kernel[0], description: description))
        case .portable:
            engine = .portable(PortablePooling(kernel: kernel, stride: stride, padding: padding, kind: kind, description: description))
        }
    }

    public func replica() -> Layer { Pooling(kernel: kernel, stride: stride, padding: padding, kind: kind, algorithm: algorithm) }
    public var parameters: [Parameter] { [] }

    /// Flux's form, the same for every algorithm: "MaxPool((2, 2))", "MeanPool((3,), stride=2)",
    /// "MaxPool((3, 3), stride=2, pad=1)".
    public var description: String { Self.description(kernel: kernel, stride: stride, padding: padding, kind: kind) }

    private static func description(kernel: [Int], stride: [Int], padding: [Int], kind: Kind) -> String {
        (kind == .max ? "MaxPool(" : "MeanPool(") + NDLayerText.tuple(kernel)
            + (stride == kernel ? "" : ", stride=\(NDLayerText.compact(stride))")
            + (padding.allSatisfy { $0 == 0 } ? "" : ", pad=\(NDLayerText.compact(padding))") + ")"
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == rank + 1 else {
            throw ModelError("\(description) needs C×\(Array(repeating: "D", count: rank).joined(separator: "×")) inputs"
                             + " (\(rank) spatial dimension\(rank == 1 ? "" : "s")), got \(shapeText(input))")
        }
        guard let sizes = slidingWindowOutputSizes(input: Array(input.dropFirst()), window: kernel, stride: stride,
                                                   padding: padding) else {
            let smallest = zip(kernel, padding).map { $0 - 2 * $1 }   // the window within the padded input
            throw ModelError("\(description) needs inputs of at least \(shapeText(smallest)), got \(shapeText(Array(input.dropFirst())))")
        }
        return [input[0]] + sizes
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        switch engine {
        case .squareMax(let e): e.forward(x)
        case .portable(let e): e.forward(x)
        }
    }

    /// `dout` is only read.
    public func backward(_ dout: Tensor) -> Tensor {
        switch engine {
        case .squareMax(let e): e.backward(dout)
        case .portable(let e): e.backward(dout)
        }
    }
}
