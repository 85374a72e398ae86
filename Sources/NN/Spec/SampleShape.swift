import Tensor

/// One sample's shape as the spec sees it between two layers: an image or clip [C, D…], flat
/// features [F], or a sequence [T, F] of T steps of F features (what `frames(…)` and the
/// recurrent layers make). Sequences and 1-D images are both two numbers; the flag tells them
/// apart, so a convolution cannot take a sequence nor an LSTM an image.
public struct SampleShape: Equatable, Sendable {
    public var dims: [Int]
    public var isSequence: Bool

    public init(_ dims: [Int], sequence: Bool = false) {
        self.dims = dims
        self.isSequence = sequence
    }

    /// "16×64 (a sequence of 16 steps)", "16×14×14 (2-D)", "10 (flat features)": for errors.
    public var text: String {
        isSequence ? "\(dims.map(String.init).joined(separator: "×")) (a sequence of \(dims[0]) steps)" : describe(dims)
    }
}

extension LayerSpec {
    /// Images and features as `outputShape(for:)` says; a sequence is refused, naming what
    /// can take it.
    public func output(for input: SampleShape) throws -> SampleShape {
        guard !input.isSequence else { throw SpecError.takesNoSequence(input) }
        return SampleShape(try outputShape(for: input.dims))
    }

    public func makeLayer(for input: SampleShape, fastPaths: Bool, random: inout Random) throws -> Layer {
        try makeLayer(for: input.dims, fastPaths: fastPaths, random: &random)
    }

    public func parameterCount(for input: SampleShape) -> Int { parameterCount(for: input.dims) }

    /// By how much the layer divides each spatial size (1 each for all but strided ones).
    public func stride(rank: Int) -> [Int] { Array(repeating: 1, count: rank) }
}

extension SpecError {
    static func takesNoSequence(_ input: SampleShape) -> SpecError {
        SpecError("cannot take a sequence (\(input.text)); end it first with lstm H or gru H (without seq), attention or gap")
    }
}
