import Tensor

/// How a `Pooling` layer computes; chosen from its geometry (`choose`), both computing the same
/// function (the tests compare them with each other and with naive references).
public enum PoolingAlgorithm: String, Sendable {
    /// 2-D max pooling, square window, stride = window: vector kernels a plane at a time, and the
    /// fusion with a chunked-plane convolution before it (SquareMaxPool.swift).
    case squareMax
    /// Any rank, window and stride, max or average: plain loops (k×2×2 max windows in C where the
    /// CPU has AVX-512), the reference for the other (PortablePooling.swift).
    case portable

    /// The fastest algorithm that takes this pooling; `.portable` without fast paths.
    public static func choose(kernel: [Int], stride: [Int], kind: Pooling.Kind, fastPaths: Bool) -> PoolingAlgorithm {
        fastPaths && squareMax.takes(kernel: kernel, stride: stride, kind: kind) ? .squareMax : .portable
    }

    /// Whether this algorithm computes a pooling of this window, stride and kind.
    public func takes(kernel: [Int], stride: [Int], kind: Pooling.Kind) -> Bool {
        switch self {
        case .squareMax: kind == .max && kernel.count == 2 && kernel[0] == kernel[1] && stride == kernel
        case .portable: true
        }
    }
}

/// Max or average pooling of any spatial rank (1-, 2- or 3-D), any window and stride, no
/// padding: Flux's `MaxPool` and `MeanPool`, one layer whatever algorithm computes it.
///
/// Shapes (k = rank = kernel.count): x [C, N, D1…Dk] → y [C, N, O1…Ok],
/// Oi = ⌊(Di − ki) / si⌋ + 1 (`slidingWindowOutputSizes`; sizes round down, 7 with window 2 → 3).
/// Max:     y = the window's max, ties to the first position; backward routes dy to the winners.
/// Average: y = the window's mean; backward spreads dy / ∏k over the window.
/// `algorithm` is chosen from the window (`PoolingAlgorithm.choose`); with `fastPaths` off it
/// is the portable one. After a chunked-plane convolution a square max pool can run fused with
/// it (`Convolution.canFuse(with:)`).
/// Cache (max): each output's winner, as an offset in its (c, n) input plane.
public final class Pooling: Layer {
    public enum Kind: String, Sendable {
        case max, avg
    }

    public let kernel: [Int], stride: [Int]
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
    /// defaults to the window.
    public convenience init(kernel: [Int], stride: [Int]? = nil, kind: Kind = .max, fastPaths: Bool = true) {
        let stride = stride ?? kernel
        self.init(kernel: kernel, stride: stride, kind: kind,
                  algorithm: .choose(kernel: kernel, stride: stride, kind: kind, fastPaths: fastPaths))
    }

    /// With the given algorithm, which must take this pooling (the tests compare them).
    public init(kernel: [Int], stride: [Int], kind: Kind, algorithm: PoolingAlgorithm) {
        precondition((1...3).contains(kernel.count), "pooling takes 1, 2 or 3 window sizes, got \(kernel)")
        precondition(stride.count == kernel.count, "pooling needs one stride per window dimension (window \(kernel), stride \(stride))")
        precondition(kernel.allSatisfy { $0 > 0 } && stride.allSatisfy { $0 > 0 }, "pooling needs positive window sizes and strides")
        precondition(algorithm.takes(kernel: kernel, stride: stride, kind: kind),
                     "the \(algorithm) pooling cannot take a \(kind) window \(kernel) at stride \(stride)")
        self.kernel = kernel
        self.stride = stride
        self.kind = kind
        self.algorithm = algorithm
        let description = Self.description(kernel: kernel, stride: stride, kind: kind)
        switch algorithm {
        case .squareMax: engine = .squareMax(SquareMaxPool(kernel[0], description: description))
        case .portable: engine = .portable(PortablePooling(kernel: kernel, stride: stride, kind: kind, description: description))
        }
    }

    public func replica() -> Layer { Pooling(kernel: kernel, stride: stride, kind: kind, algorithm: algorithm) }
    public var parameters: [Parameter] { [] }

    /// Flux's form, the same for every algorithm: "MaxPool((2, 2))", "MeanPool((3,), stride=2)".
    public var description: String { Self.description(kernel: kernel, stride: stride, kind: kind) }

    private static func description(kernel: [Int], stride: [Int], kind: Kind) -> String {
        (kind == .max ? "MaxPool(" : "MeanPool(") + NDLayerText.tuple(kernel)
            + (stride == kernel ? "" : ", stride=\(NDLayerText.compact(stride))") + ")"
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == rank + 1 else {
            throw ModelError("\(description) needs C×\(Array(repeating: "D", count: rank).joined(separator: "×")) inputs"
                             + " (\(rank) spatial dimension\(rank == 1 ? "" : "s")), got \(shapeText(input))")
        }
        guard let sizes = slidingWindowOutputSizes(input: Array(input.dropFirst()), window: kernel, stride: stride,
                                                   padding: kernel.map { _ in 0 }) else {
            throw ModelError("\(description) needs inputs of at least \(shapeText(kernel)), got \(shapeText(Array(input.dropFirst())))")
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
