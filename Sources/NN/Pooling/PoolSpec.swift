import Tensor

// MARK: - In a spec

/// `pool K [stride S] [pad P] [max|avg]`: max (default) or average pooling over every spatial
/// dimension, stride K by default, sizes rounding down (7 → 3, as the reference). `pad P`
/// (at most K÷2, as PyTorch requires) pads each side; max ignores the padding and average
/// divides by the cells inside the input (PyTorch's `count_include_pad=False`, ONNX's default).
public struct PoolSpec: LayerSpec, Equatable {
    public static let keyword = "pool"
    public static let grammar = "pool K [stride S] [pad P] [max|avg]   K: 2, 2x2, 1x2x2…; stride default K; P ≤ K÷2"

    var kernel: Sizes
    var stride: Sizes?
    /// nil: none.
    var padding: Sizes?
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
            case "pad", "padding":
                guard let value = rest.popFirst() else { throw SpecError("pad needs a size, e.g. pad 1") }
                padding = try Sizes(parsing: value, "the padding", range: 0...1024)
            case "max": average = false
            case "avg", "average", "mean": average = true
            default: throw SpecError("unexpected '\(word)'")
            }
        }
        if stride == kernel { stride = nil }
        if padding?.values.allSatisfy({ $0 == 0 }) == true { padding = nil }
        if let padding { try PoolSpec.checkPadding(padding.values, kernel: kernel.values) }
    }

    /// Each padding at most half its window (PyTorch's rule: every window then holds a cell of
    /// the input). One value applies to every axis; counts that differ are the rank check's.
    static func checkPadding(_ padding: [Int], kernel: [Int]) throws {
        let pairs: [(Int, Int)]
        switch (padding.count, kernel.count) {
        case (1, _): pairs = kernel.map { (padding[0], $0) }
        case (_, 1): pairs = padding.map { ($0, kernel[0]) }
        case (let p, let k) where p == k: pairs = Array(zip(padding, kernel))
        default: return
        }
        if let (p, k) = pairs.first(where: { $0.0 > $0.1 / 2 }) {
            throw SpecError("pad \(p) is more than half the window \(k); use pad \(k / 2) or less (PyTorch's rule)")
        }
    }

    public var text: String {
        var words = [PoolSpec.keyword, kernel.text]
        if let stride { words += ["stride", stride.text] }
        if let padding { words += ["pad", padding.text] }
        if average { words.append("avg") }
        return words.joined(separator: " ")
    }

    func geometry(rank: Int) throws -> (kernel: [Int], stride: [Int], padding: [Int]) {
        guard let k = kernel.resolved(rank: rank) else { throw SpecError("needs a \(kernel.values.count)-D input") }
        guard let s = (stride ?? kernel).resolved(rank: rank) else {
            throw SpecError("the stride \((stride ?? kernel).text) has the wrong number of sizes for a \(rank)-D input")
        }
        guard let p = (padding ?? Sizes(values: [0])).resolved(rank: rank) else {
            throw SpecError("the padding \(padding?.text ?? "0") has the wrong number of sizes for a \(rank)-D input")
        }
        try PoolSpec.checkPadding(p, kernel: k)
        return (k, s, p)
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count >= 2 else { throw SpecError("needs channels and spatial dimensions, got \(describe(input))") }
        let g: (kernel: [Int], stride: [Int], padding: [Int])
        do { g = try geometry(rank: input.count - 1) } catch let error as SpecError {
            throw SpecError("\(error.message), got \(describe(input))")
        }
        guard let sizes = slidingWindowOutputSizes(input: Array(input.dropFirst()), window: g.kernel, stride: g.stride,
                                                   padding: g.padding) else {
            throw SpecError("the window \(kernel.text) is larger than the\(padding == nil ? "" : " padded") input \(describe(input))")
        }
        return [input[0]] + sizes
    }

    /// One Pooling layer; with `fastPaths`, unpadded 2-D max pooling with a square window and an
    /// equal stride runs as `.squareMax` (and fuses with a chunked-plane convolution before it).
    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        try makePooling(for: input, fastPaths: fastPaths)
    }

    func makePooling(for input: [Int], fastPaths: Bool) throws -> Pooling {
        let g = try geometry(rank: input.count - 1)
        return Pooling(kernel: g.kernel, stride: g.stride, padding: g.padding, kind: average ? .avg : .max, fastPaths: fastPaths)
    }
}
