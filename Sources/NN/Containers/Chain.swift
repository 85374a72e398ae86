import Tensor

/// Layers run one after another, like Flux's `Chain` or PyTorch's nn.Sequential: the model's
/// top level, a residual block's body, a per-frame network. Children are named by their
/// module index in the spec ("0", "2", …: an activation fused into the layer before it keeps
/// its own index, so the next name skips one).
public final class Chain: Container {
    public let children: [(name: String, layer: Layer)]
    private var propagates = true

    /// False when nobody reads its input gradient (a backbone first in the model): its first
    /// layers, up to the first with parameters, then skip theirs; true asks them for it again.
    public var needsInputGradient = true {
        didSet {
            guard propagates, needsInputGradient != oldValue else { return }
            skipInputGradients(!needsInputGradient)
        }
    }

    public init(_ children: [(name: String, layer: Layer)]) {
        self.children = children
    }

    /// Its children's replicas keep their own flags; the chain's is copied without touching them.
    public func replica() -> Layer {
        let copy = Chain(children.map { ($0.name, $0.layer.replica()) })
        copy.setWithoutPropagating(needsInputGradient)
        return copy
    }

    private func setWithoutPropagating(_ value: Bool) {
        propagates = false
        needsInputGradient = value
        propagates = true
    }

    public var description: String { "Chain(" + children.map { $0.layer.description }.joined(separator: ", ") + ")" }

    public func outputShape(for input: [Int]) throws -> [Int] {
        var shape = input
        for (name, layer) in children {
            do { shape = try layer.outputShape(for: shape) } catch {
                throw ModelError("layer \(name): \(error)")
            }
        }
        return shape
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var h = x
        for (_, layer) in children { h = layer.forward(h, training: training) }
        return h
    }

    public func backward(_ dout: Tensor) -> Tensor {
        var g = dout
        for (_, layer) in children.reversed() { g = layer.backward(g) }
        return g
    }

    /// The same chain with every fused pair split back into its layers (sharing weights), so
    /// each module's output exists on its own (for `stats`).
    public func unfused() -> Chain {
        Chain(children.flatMap { name, layer -> [(name: String, layer: Layer)] in
            if let fused = layer as? Unfusable { return fused.unfusedParts(named: name) }
            return [(name, layer.replica())]
        })
    }

    /// Tells the layers before the first one with parameters, and that one, that nobody reads
    /// their input gradient; `false`: every layer's is read again (the chain's own input
    /// gradient is needed: something before it trains).
    func skipInputGradients(_ skip: Bool = true) {
        for (_, layer) in children {
            (layer as? SkipsInputGradient)?.needsInputGradient = !skip
            if skip && !layer.parameters.isEmpty { break }
        }
    }
}

/// A layer the compiler made by fusing several modules into one (a convolution and the
/// max-pool after it): it can give back its parts, replicated, under their own module names.
public protocol Unfusable: Layer {
    func unfusedParts(named name: String) -> [(name: String, layer: Layer)]
}

extension Chain: SkipsInputGradient {}
