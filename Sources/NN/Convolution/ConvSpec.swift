import Tensor

// MARK: - In a spec

/// `conv K OUT [stride S] [pad P|same|valid] [groups G] [ACT]`: a convolution over every
/// spatial dimension of its input. K is one size for all of them (`3`) or one each (`3x3`,
/// `1x3x3`); its rank must match the input's. Padding defaults to K÷2 on each side (PyTorch's
/// `padding=K//2`, size-preserving at stride 1 for odd K); `valid` is none. `groups G` splits
/// the channels into G groups convolved separately (PyTorch's `groups`; G = the input channels
/// is a depthwise convolution): G must divide the input and output channels.
public struct ConvSpec: LayerSpec, Equatable {
    public static let keyword = "conv"
    public static let grammar = "conv K OUT [stride S] [pad P|same|valid] [groups G] [ACT]"
        + "   K: 3, 3x3, 3x3x3, 1x3x3…; pad default K÷2; G = IN: depthwise"
    public static let acceptsInlineActivation = true

    enum Padding: Equatable, Sendable {
        case half            // K÷2, the default (and `same` for odd kernels)
        case sizes(Sizes)    // `pad P` / `pad 1x0x0`; `valid` is pad 0
    }

    var kernel: Sizes
    var outChannels: Int
    var stride = Sizes(values: [1])
    var padding = Padding.half
    var groups = 1

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.count >= 2 else { throw SpecError("needs a kernel size and an output channel count") }
        kernel = try Sizes(parsing: arguments[0], "the kernel", range: 1...1024)
        guard let out = Int(arguments[1]), (1...65_536).contains(out) else {
            throw SpecError("the output channel count '\(arguments[1])' must be a whole number from 1 to 65536")
        }
        outChannels = out
        var rest = arguments.dropFirst(2)
        while let word = rest.popFirst()?.lowercased() {
            switch word {
            case "stride":
                guard let value = rest.popFirst() else { throw SpecError("stride needs a size, e.g. stride 2") }
                stride = try Sizes(parsing: value, "the stride", range: 1...1024)
            case "pad", "padding":
                guard let value = rest.popFirst() else { throw SpecError("pad needs a size, same or valid, e.g. pad 1") }
                padding = try ConvSpec.padding(value.lowercased(), kernel: kernel)
            case "same", "valid":
                padding = try ConvSpec.padding(word, kernel: kernel)
            case "groups", "group":
                guard let value = rest.popFirst() else { throw SpecError("groups needs a count, e.g. groups 2") }
                guard let count = Int(value), (1...65_536).contains(count) else {
                    throw SpecError("groups '\(value)' must be a whole number from 1 to 65536")
                }
                groups = count
            default:
                throw SpecError("unexpected '\(word)' (an activation goes last: \(ActivationSpec.Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }
    }

    static func padding(_ word: String, kernel: Sizes) throws -> Padding {
        switch word {
        case "same":
            guard kernel.values.allSatisfy({ $0 % 2 == 1 }) else {
                throw SpecError("pad same needs odd kernel sizes (got \(kernel.text)); give the padding: pad P")
            }
            return .half
        case "valid": return .sizes(Sizes(values: [0]))
        default:
            let sizes = try Sizes(parsing: word, "the padding", range: 0...1024)
            return sizes.values == kernel.values.map({ $0 / 2 }) || (sizes.values.count == 1 && kernel.values.allSatisfy { $0 / 2 == sizes.values[0] })
                ? .half : .sizes(sizes)
        }
    }

    public var text: String {
        var words = [ConvSpec.keyword, kernel.text, String(outChannels)]
        if stride.values.contains(where: { $0 != 1 }) { words += ["stride", stride.text] }
        if case .sizes(let p) = padding { words += p.values.allSatisfy({ $0 == 0 }) ? ["valid"] : ["pad", p.text] }
        if groups > 1 { words += ["groups", String(groups)] }
        return words.joined(separator: " ")
    }

    /// Kernel, stride and padding resolved for an input of `rank` spatial dimensions.
    func geometry(rank: Int) throws -> (kernel: [Int], stride: [Int], padding: [Int]) {
        guard let k = kernel.resolved(rank: rank) else {
            throw SpecError("needs a \(kernel.values.count)-D input")
        }
        guard let s = stride.resolved(rank: rank) else {
            throw SpecError("the stride \(stride.text) has \(stride.values.count) sizes for a \(rank)-D input")
        }
        let p: [Int]
        switch padding {
        case .half: p = k.map { $0 / 2 }
        case .sizes(let sizes):
            guard let resolved = sizes.resolved(rank: rank) else {
                throw SpecError("the padding \(sizes.text) has \(sizes.values.count) sizes for a \(rank)-D input")
            }
            p = resolved
        }
        return (k, s, p)
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count >= 2 else { throw SpecError("needs channels and spatial dimensions, got \(describe(input)); a convolution cannot follow dense or flatten") }
        let g: (kernel: [Int], stride: [Int], padding: [Int])
        do { g = try geometry(rank: input.count - 1) } catch let error as SpecError {
            throw SpecError("\(error.message), got \(describe(input))")
        }
        try checkGroups(inChannels: input[0])
        guard let sizes = slidingWindowOutputSizes(input: Array(input.dropFirst()), window: g.kernel, stride: g.stride,
                                                   padding: g.padding) else {
            throw SpecError("the kernel \(kernel.text) is larger than the padded input \(describe(input))")
        }
        return [outChannels] + sizes
    }

    func checkGroups(inChannels: Int) throws {
        guard inChannels % groups == 0, outChannels % groups == 0 else {
            throw SpecError("groups \(groups) must divide the input channels (\(inChannels)) and the output channels"
                            + " (\(outChannels)); use a divisor of both")
        }
    }

    /// OUT·(IN/G)·∏k weights and OUT biases.
    public func parameterCount(for input: [Int]) -> Int {
        let area = (try? geometry(rank: input.count - 1))?.kernel.reduce(1, *) ?? 0
        return outChannels * (input[0] / groups) * area + outChannels
    }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        try makeLayer(for: input, fastPaths: fastPaths, activation: .identity, random: &random)
    }

    /// With `activation` fused in (a `relu` module right after it, as the compiler rewrites it).
    /// One Convolution layer, which picks its algorithm (ConvolutionAlgorithm.choose): with fast
    /// paths, a 2-D convolution at stride 1 with equal padding on both axes is `.chunkedPlane`
    /// (chunked im2col, the kernel set's GEMMs, and the conv → max-pool fusion); any other
    /// stride-1 convolution (3-D over clips, 1-D, unequal paddings) `.strideOne`; anything else
    /// (a grouped convolution too), or everything without fast paths, `.portable`.
    func makeLayer(for input: [Int], fastPaths: Bool, activation: Activation, random: inout Random) throws -> Convolution {
        let g = try geometry(rank: input.count - 1)
        try checkGroups(inChannels: input[0])
        return Convolution(inChannels: input[0], outChannels: outChannels, kernel: g.kernel, stride: g.stride,
                           padding: g.padding, groups: groups, activation: activation, fastPaths: fastPaths, random: &random)
    }
}
