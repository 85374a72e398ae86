import Tensor

/// A network applied to every frame of a clip with the same weights (Keras' TimeDistributed):
/// a batch of N clips of T frames is a batch of N·T images to it, and its per-frame features
/// come out as N sequences of T steps.
///
/// Shapes: x [C, N, T, H, W] is, value for value, the frame batch [C, N·T, H, W] (no copy);
/// the network's output [N·T, F] is the sequence batch [N, T, F].
public final class PerFrame: Container {
    public let net: Chain
    public var needsInputGradient = true {
        didSet { net.skipInputGradients(!needsInputGradient) }
    }
    private var clipShape: [Int] = []

    public init(net: Chain) { self.net = net }

    public var children: [(name: String, layer: Layer)] { [("net", net)] }

    public func replica() -> Layer {
        let copy = PerFrame(net: net.replica() as! Chain)   // swiftlint:disable:this force_cast
        if !needsInputGradient { copy.needsInputGradient = false }
        return copy
    }

    public var description: String { "PerFrame(\(net))" }

    /// [C, T, H, W] → [T, F].
    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count >= 3 else { throw ModelError("\(description) needs clips C×T×H×W, got \(shapeText(input))") }
        let features = try net.outputShape(for: [input[0]] + input.dropFirst(2))
        guard features.count == 1 else { throw ModelError("\(description) must give flat features a frame, got \(shapeText(features))") }
        return [input[1], features[0]]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        clipShape = x.shape
        let (c, n, t) = (x.shape[0], x.shape[1], x.shape[2])
        let features = net.forward(x.viewed(as: [c, n * t] + x.shape.dropFirst(3)), training: training)
        return features.viewed(as: [n, t, features.count / (n * t)])
    }

    public func backward(_ dout: Tensor) -> Tensor {
        let (n, t) = (clipShape[1], clipShape[2])
        let dx = net.backward(dout.viewed(as: [n * t, dout.count / (n * t)]))
        return needsInputGradient ? dx.viewed(as: clipShape) : dx
    }
}

extension PerFrame: SkipsInputGradient {}

// MARK: - In a spec

/// `frames(A | B | …)`: the network applied to every frame of a clip, weights shared across
/// frames, giving a sequence of T feature vectors (flattened if the network ends on an image).
/// Tensors: `N.net.K.…` (PyTorch: a module whose `net` nn.Sequential runs on [N·T, C, H, W]).
public struct FramesSpec: ContainerSpec, Equatable {
    public static let keyword = "frames"
    public static let aliases = ["timedistributed"]
    public static let grammar = "frames(A | B | …)   A | B | … on every frame of a clip: a sequence T×F"
    public static let example = "frames(conv 3 16 relu | pool 2 | dense 64 relu)"

    public let body: ModelSpec

    public init(keyword: String, body: ModelSpec) throws { self.body = body }

    public var text: String { "\(FramesSpec.keyword)(\(body.text))" }

    /// One frame's shape for a clip [C, T, H, W]; refuses anything else.
    func frame(of input: SampleShape) throws -> SampleShape {
        guard !input.isSequence, input.dims.count == 4 else {
            if input.isSequence { throw SpecError("frames(…) needs clips (C×T×H×W, from load videos), got \(input.text)") }
            throw SpecError("frames(…) needs clips (C×T×H×W, from load videos), got \(input.text); on images use the layers without frames(…)")
        }
        return SampleShape([input.dims[0]] + input.dims.dropFirst(2))
    }

    func plan(for input: SampleShape) throws -> [PlannedModule] {
        let planned = try body.plan(input: frame(of: input), flattenAtEnd: true)
        guard let out = planned.last?.output, !out.isSequence, out.dims.count == 1 else {
            throw SpecError("frames(…) must give each frame flat features, got \(planned.last?.output.text ?? "nothing")")
        }
        return planned
    }

    public func output(for input: SampleShape) throws -> SampleShape {
        let features = try plan(for: input).last!.output.dims[0]
        return SampleShape([input.dims[1], features], sequence: true)
    }

    public func parameterCount(for input: SampleShape) -> Int {
        ((try? plan(for: input)) ?? []).reduce(0) { $0 + $1.module.layer.parameterCount(for: $1.input) }
    }

    public func compile(for input: SampleShape, fastPaths: Bool, random: inout Random, path: String,
                        depth: Int) throws -> (Layer, [ModuleSummary]) {
        let (layers, rows) = try ModelSpec.compileChain(try plan(for: input), fastPaths: fastPaths, random: &random,
                                                        path: path + "net.", depth: depth)
        return (PerFrame(net: Chain(layers)), rows)
    }
}
