import Tensor

/// `relu`, `leakyrelu`, `tanh`, `sigmoid`, `gelu`: on their own, or inline after `conv` or
/// `dense` (`conv 3x3 16 relu`), where they are still a module of their own.
public struct ActivationSpec: LayerSpec, Equatable {
    public enum Kind: String, CaseIterable, Sendable {
        case relu, leakyrelu, tanh, sigmoid, gelu
    }

    public static let keyword = "relu"
    public static var aliases: [String] { Kind.allCases.dropFirst().map(\.rawValue) }
    public static let grammar = "relu | leakyrelu | tanh | sigmoid | gelu   inline after conv or dense, or on their own"

    public var kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.isEmpty else { throw SpecError("takes no arguments") }
        guard let kind = Kind(rawValue: keyword) else { throw SpecError("unknown activation '\(keyword)'") }
        self.kind = kind
    }

    public var text: String { kind.rawValue }

    public func outputShape(for input: [Int]) throws -> [Int] { input }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        switch kind {
        case .relu: ReLU()
        case .leakyrelu: ElementwiseActivation(.leakyRelu)
        case .tanh: ElementwiseActivation(.tanh)
        case .sigmoid: ElementwiseActivation(.sigmoid)
        case .gelu: ElementwiseActivation(.gelu)
        }
    }
}

/// `dropout P`: zeroes each value with probability P while training (scaling the rest by
/// 1/(1−P)); nothing at evaluation. Its draws come from the session's seed and the step.
public struct DropoutSpec: LayerSpec, Equatable {
    public static let keyword = "dropout"
    public static let grammar = "dropout P   0 ≤ P < 1, training only"

    var probability: Float

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.count == 1, let p = Float(arguments[0]), p.isFinite, p >= 0, p < 1 else {
            throw SpecError("needs a probability from 0 up to (not including) 1, e.g. dropout 0.5")
        }
        probability = p
    }

    public var text: String {
        let shown = String(format: "%g", Double(probability))
        return "\(DropoutSpec.keyword) \(Float(shown) == probability ? shown : String(probability))"
    }

    public func outputShape(for input: [Int]) throws -> [Int] { input }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        Dropout(probability: probability)
    }
}

/// `batchnorm`: per-channel (or per-feature) normalization, PyTorch's defaults: batch
/// statistics while training, running statistics otherwise (momentum 0.1, ε 1e-5).
public struct BatchNormSpec: LayerSpec, Equatable {
    public static let keyword = "batchnorm"
    public static let aliases = ["bn"]
    public static let grammar = "batchnorm   per channel; batch statistics while training, running ones otherwise"

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.isEmpty else { throw SpecError("takes no arguments") }
    }

    public var text: String { BatchNormSpec.keyword }

    public func outputShape(for input: [Int]) throws -> [Int] { input }

    public func parameterCount(for input: [Int]) -> Int { 2 * input[0] }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        BatchNorm(channels: input[0])
    }
}
