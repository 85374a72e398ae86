import Tensor

/// A residual block: y = body(x) + shortcut(x), the shortcut the identity or a projection
/// (a 1×1 convolution, and batchnorm when the body has one), as torchvision's ResNets.
///
/// Shapes: x and y are the body's input and output ([C, N, D…], or any shape the body keeps).
/// x feeds two consumers, so backward adds the two input gradients into a tensor the block
/// owns; both branches read the same `dout`, which no layer writes into.
public final class Residual: Container {
    public let body: Chain
    /// Nil: the identity.
    public let shortcut: Chain?
    public var needsInputGradient = true
    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var inputShape: [Int] = []

    public init(body: Chain, shortcut: Chain?) {
        self.body = body
        self.shortcut = shortcut
    }

    public var children: [(name: String, layer: Layer)] {
        [("body", body as Layer)] + (shortcut.map { [("shortcut", $0 as Layer)] } ?? [])
    }

    public func replica() -> Layer {
        let copy = Residual(body: body.replica() as! Chain, shortcut: shortcut.map { $0.replica() as! Chain })   // swiftlint:disable:this force_cast
        if !needsInputGradient { copy.needsInputGradient = false }
        return copy
    }

    public var description: String { "Residual(\(body)\(shortcut.map { ", shortcut: \($0)" } ?? ""))" }

    public func outputShape(for input: [Int]) throws -> [Int] {
        let out = try body.outputShape(for: input)
        let other = try shortcut?.outputShape(for: input) ?? input
        guard out == other else {
            throw ModelError("a residual block's body gives \(shapeText(out)) but its shortcut \(shapeText(other))")
        }
        return out
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = x.shape
        let b = body.forward(x, training: training)
        let s = shortcut?.forward(x, training: training) ?? x
        precondition(b.shape == s.shape, "\(description): body \(b.shape) and shortcut \(s.shape) differ")
        output.resize(b.shape)
        b.data.withUnsafeBufferPointer { bp in
            s.data.withUnsafeBufferPointer { sp in
                output.data.withUnsafeMutableBufferPointer { yp in
                    for i in 0..<yp.count { yp[i] = bp[i] + sp[i] }
                }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        let fromShortcut = shortcut?.backward(dout) ?? dout
        if needsInputGradient {
            inputGradient.resize(inputShape)
            fromShortcut.data.withUnsafeBufferPointer { sp in
                inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                    _ = dxp.update(fromContentsOf: sp)
                }
            }
        }
        let fromBody = body.backward(dout)
        guard needsInputGradient else { return inputGradient }
        fromBody.data.withUnsafeBufferPointer { bp in
            inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                for i in 0..<dxp.count { dxp[i] += bp[i] }
            }
        }
        return inputGradient
    }
}

extension Residual: SkipsInputGradient {}

// MARK: - In a spec

/// `res(A | B | …)`: y = body(x) + shortcut(x), the shortcut the identity when the body keeps
/// the shape, else a 1×1 convolution with the body's stride (then batchnorm when the body has
/// one). Tensors: `N.body.K.…` and `N.shortcut.0.…` (PyTorch: a module with `body` and
/// `shortcut` nn.Sequentials).
public struct ResidualSpec: ContainerSpec, Equatable {
    public static let keyword = "res"
    public static let aliases = ["residual"]
    public static let grammar = "res(A | B | …)   A | B | … plus its input (a 1×1 conv if shapes differ)"
    public static let example = "res(conv 3 16 relu | conv 3 16)"

    public let body: ModelSpec

    public init(keyword: String, body: ModelSpec) throws { self.body = body }

    public var text: String { "\(ResidualSpec.keyword)(\(body.text))" }

    /// The projection the shortcut needs for `input`, or nil when the body keeps the shape.
    func shortcut(for input: SampleShape, output: SampleShape) throws -> ModelSpec? {
        guard input != output else { return nil }
        let rank = input.dims.count - 1
        guard !input.isSequence, !output.isSequence, rank >= 1, output.dims.count == input.dims.count else {
            throw SpecError("res(…): its body turns \(input.text) into \(output.text), which a 1×1 convolution cannot project its input onto; keep the shape (or the rank) in the body")
        }
        let strides = body.stride(rank: rank)
        let strideText = strides.allSatisfy({ $0 == strides[0] }) ? String(strides[0]) : Sizes(values: strides).text
        var modules = [try ConvSpec(keyword: "conv", arguments: ["1", String(output.dims[0]), "stride", strideText, "valid"])]
        let projected = try modules[0].outputShape(for: input.dims)
        guard projected == output.dims else {
            throw SpecError("res(…): its body turns \(input.text) into \(output.text), but a 1×1 convolution with the body's stride \(strideText) gives \(describe(projected)); make the sizes divide by the stride")
        }
        var layers: [ModelSpec.Module] = [ModelSpec.Module(layer: modules.removeFirst(), inline: false)]
        if body.containsBatchNorm { layers.append(ModelSpec.Module(layer: try BatchNormSpec(keyword: "batchnorm", arguments: []), inline: false)) }
        return ModelSpec(modules: layers)
    }

    public func output(for input: SampleShape) throws -> SampleShape {
        let out = try body.plan(input: input).last!.output
        _ = try shortcut(for: input, output: out)
        return out
    }

    public func parameterCount(for input: SampleShape) -> Int {
        guard let planned = try? body.plan(input: input), let out = planned.last?.output else { return 0 }
        let shortcutCount = ((try? shortcut(for: input, output: out)) ?? nil)
            .flatMap { try? $0.plan(input: input) }?.reduce(0) { $0 + $1.module.layer.parameterCount(for: $1.input) } ?? 0
        return planned.reduce(0) { $0 + $1.module.layer.parameterCount(for: $1.input) } + shortcutCount
    }

    public func stride(rank: Int) -> [Int] { body.stride(rank: rank) }

    public func compile(for input: SampleShape, fastPaths: Bool, random: inout Random, path: String,
                        depth: Int) throws -> (Layer, [ModuleSummary]) {
        let planned = try body.plan(input: input)
        let (bodyLayers, bodyRows) = try ModelSpec.compileChain(planned, fastPaths: fastPaths, random: &random,
                                                                path: path + "body.", depth: depth)
        var rows = bodyRows
        var shortcutChain: Chain?
        if let projection = try shortcut(for: input, output: planned.last!.output) {
            let (layers, shortcutRows) = try ModelSpec.compileChain(try projection.plan(input: input), fastPaths: fastPaths,
                                                                    random: &random, path: path + "shortcut.", depth: depth)
            rows += shortcutRows.map { var row = $0; row.implied = true; return row }
            shortcutChain = Chain(layers)
        }
        return (Residual(body: Chain(bodyLayers), shortcut: shortcutChain), rows)
    }
}

extension ModelSpec {
    /// The product of every module's stride along each of `rank` spatial dimensions.
    public func stride(rank: Int) -> [Int] {
        modules.reduce(Array(repeating: 1, count: rank)) { total, module in
            zip(total, module.layer.stride(rank: rank)).map { $0 * $1 }
        }
    }

    /// Whether a batchnorm is among its modules (at any depth).
    var containsBatchNorm: Bool {
        modules.contains { ($0.layer is BatchNormSpec) || (($0.layer as? NestedSpec)?.body.containsBatchNorm ?? false) }
    }
}

extension ConvSpec {
    public func stride(rank: Int) -> [Int] { (try? geometry(rank: rank).stride) ?? Array(repeating: 1, count: rank) }
}

extension PoolSpec {
    public func stride(rank: Int) -> [Int] { (try? geometry(rank: rank).stride) ?? Array(repeating: 1, count: rank) }
}
