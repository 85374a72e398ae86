import Foundation
import Tensor

/// An elementwise activation function, any shape: relu, relu6 = min(max(x, 0), 6) (PyTorch's
/// `nn.ReLU6`, MobileNet's), leaky relu (negative slope 0.01), tanh, sigmoid, or the exact GELU
/// x·Φ(x) (PyTorch's default `nn.GELU()`, with erf).
///
/// Shapes: x [any] → y [same]. Forward writes y and, in the same pass, f′(x), so backward is
/// one multiply: dx = dy ⊙ f′(x). Cache: `derivative` [same as x].
public final class ElementwiseActivation: Layer {
    public enum Kind: String, Sendable, CaseIterable {
        case relu, relu6, leakyRelu = "leakyrelu", tanh, sigmoid, gelu
    }

    /// PyTorch's default negative slope for nn.LeakyReLU.
    public static let leakySlope: Float = 0.01

    public let kind: Kind
    private let output = Tensor([0])
    private let derivative = Tensor([0])
    private let inputGradient = Tensor([0])

    public init(_ kind: Kind) { self.kind = kind }
    public func replica() -> Layer { ElementwiseActivation(kind) }
    public var parameters: [Parameter] { [] }
    /// Flux's names: "relu", "relu6", "leakyrelu", "tanh", "sigmoid", "gelu".
    public var description: String { kind.rawValue }
    public func outputShape(for input: [Int]) throws -> [Int] { input }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        output.resize(x.shape)
        derivative.resize(x.shape)
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                derivative.data.withUnsafeMutableBufferPointer { dp in
                    switch kind {
                    case .relu:
                        for i in 0..<xp.count { let v = xp[i]; yp[i] = max(v, 0); dp[i] = v > 0 ? 1 : 0 }
                    case .relu6:
                        // PyTorch's hardtanh backward: slope 1 strictly inside (0, 6), 0 at and beyond the kinks.
                        for i in 0..<xp.count { let v = xp[i]; yp[i] = min(max(v, 0), 6); dp[i] = v > 0 && v < 6 ? 1 : 0 }
                    case .leakyRelu:
                        let slope = Self.leakySlope
                        for i in 0..<xp.count { let v = xp[i]; yp[i] = v > 0 ? v : slope * v; dp[i] = v > 0 ? 1 : slope }
                    case .tanh:
                        for i in 0..<xp.count { let t = tanh(xp[i]); yp[i] = t; dp[i] = 1 - t * t }
                    case .sigmoid:
                        for i in 0..<xp.count { let s = 1 / (1 + exp(-xp[i])); yp[i] = s; dp[i] = s * (1 - s) }
                    case .gelu:
                        // Φ(x) = (1 + erf(x/√2))/2, φ(x) = e^(−x²/2)/√(2π); d/dx x·Φ(x) = Φ(x) + x·φ(x).
                        let invSqrt2: Float = 0.707_106_78, invSqrt2Pi: Float = 0.398_942_28
                        for i in 0..<xp.count {
                            let v = xp[i], cdf = 0.5 * (1 + erf(v * invSqrt2))
                            yp[i] = v * cdf
                            dp[i] = cdf + v * invSqrt2Pi * exp(-0.5 * v * v)
                        }
                    }
                }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        multiplyElementwise(dout, by: derivative, into: inputGradient)
    }
}

// MARK: - In a spec

/// `relu`, `relu6`, `leakyrelu`, `tanh`, `sigmoid`, `gelu`: on their own, or inline after `conv` or
/// `dense` (`conv 3x3 16 relu`), where they are still a module of their own.
public struct ActivationSpec: LayerSpec, Equatable {
    public enum Kind: String, CaseIterable, Sendable {
        case relu, relu6, leakyrelu, tanh, sigmoid, gelu
    }

    public static let keyword = "relu"
    public static var aliases: [String] { Kind.allCases.dropFirst().map(\.rawValue) }
    public static let grammar = "relu | relu6 | leakyrelu | tanh | sigmoid | gelu   inline after conv or dense, or on their own"

    public var kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.isEmpty else { throw SpecError("takes no arguments") }
        guard let kind = Kind(rawValue: keyword) else { throw SpecError("unknown activation '\(keyword)'") }
        self.kind = kind
    }

    public var text: String { kind.rawValue }

    public func outputShape(for input: [Int]) throws -> [Int] { input }

    /// Elementwise: a sequence stays a sequence.
    public func output(for input: SampleShape) throws -> SampleShape { input }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        switch kind {
        case .relu: ReLU()
        case .relu6: ElementwiseActivation(.relu6)
        case .leakyrelu: ElementwiseActivation(.leakyRelu)
        case .tanh: ElementwiseActivation(.tanh)
        case .sigmoid: ElementwiseActivation(.sigmoid)
        case .gelu: ElementwiseActivation(.gelu)
        }
    }
}
