import Tensor

/// `gap`: global average pooling, each channel to its mean over every spatial position
/// (C×D… → C×1×…).
public struct GlobalAveragePoolSpec: LayerSpec, Equatable {
    public static let keyword = "gap"
    public static let grammar = "gap   global average pooling to C×1×…"

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.isEmpty else { throw SpecError("takes no arguments") }
    }

    public var text: String { GlobalAveragePoolSpec.keyword }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count >= 2 else { throw SpecError("needs channels and spatial dimensions, got \(describe(input))") }
        return [input[0]] + Array(repeating: 1, count: input.count - 1)
    }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer { GlobalAveragePool() }
}

/// `flatten`: every sample to one row of features, in PyTorch's order (implied before the
/// first `dense`).
public struct FlattenSpec: LayerSpec, Equatable {
    public static let keyword = "flatten"
    public static let grammar = "flatten   to flat features (implied before dense)"

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.isEmpty else { throw SpecError("takes no arguments") }
    }

    public init() {}

    public var text: String { FlattenSpec.keyword }

    public func outputShape(for input: [Int]) throws -> [Int] { [input.reduce(1, *)] }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer { Flatten() }
}

/// `dense N [ACT]`: a fully connected layer to N features (Glorot-uniform weights, zero bias).
public struct DenseSpec: LayerSpec, Equatable {
    public static let keyword = "dense"
    public static let aliases = ["linear", "fc"]
    public static let grammar = "dense N [ACT]   fully connected to N features"
    public static let acceptsInlineActivation = true

    var outputs: Int

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.count == 1 else { throw SpecError("needs one size, e.g. dense 10") }
        guard let n = Int(arguments[0]), (1...1_048_576).contains(n) else {
            throw SpecError("the size '\(arguments[0])' must be a whole number from 1 to 1048576")
        }
        outputs = n
    }

    public init(_ outputs: Int) { self.outputs = outputs }

    public var text: String { "\(DenseSpec.keyword) \(outputs)" }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 1 else { throw SpecError("needs flat features, got \(describe(input)); flatten or gap first") }
        return [outputs]
    }

    public func parameterCount(for input: [Int]) -> Int { outputs * input.reduce(1, *) + outputs }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        Dense(input[0], outputs, random: &random)
    }
}
