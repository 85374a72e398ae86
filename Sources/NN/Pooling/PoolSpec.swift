import Tensor

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
        guard let sizes = slidingWindowOutputSizes(input: Array(input.dropFirst()), window: g.kernel, stride: g.stride,
                                                   padding: g.kernel.map { _ in 0 }) else {
            throw SpecError("the window \(kernel.text) is larger than the input \(describe(input))")
        }
        return [input[0]] + sizes
    }

    /// One Pooling layer; with `fastPaths`, 2-D max pooling with a square window and an equal
    /// stride runs as `.squareMax` (and fuses with a chunked-plane convolution before it).
    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        try makePooling(for: input, fastPaths: fastPaths)
    }

    func makePooling(for input: [Int], fastPaths: Bool) throws -> Pooling {
        let g = try geometry(rank: input.count - 1)
        return Pooling(kernel: g.kernel, stride: g.stride, kind: average ? .avg : .max, fastPaths: fastPaths)
    }
}
