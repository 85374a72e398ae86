import Foundation
import Tensor

/// An update rule over a model's parameters. `step` reads the gradients (the caller zeroes
/// them afterwards); its state is exported per parameter for checkpoints.
public protocol Optimizer: AnyObject {
    /// "adam", "sgd" or "momentum".
    var kind: String { get }
    var learningRate: Float { get set }
    var stepCount: Int { get }
    /// The update rule's fixed constants by name (Adam's beta1, beta2, epsilon; SGD's
    /// momentum): checkpoints record them, so a resumed run uses the same rule.
    var constants: [String: Float] { get }
    /// One update of `parameters` (the others are left as they are: frozen), each at the
    /// learning rate times its entry of `rateScales` (nil: all 1; discriminative rates).
    func step(_ parameters: [Parameter], rateScales: [Float]?)
    /// State tensors by key, e.g. "conv1.weight.m".
    func state(for parameters: [Parameter]) -> [String: Tensor]
    /// Restores `state(for:)` output; throws on a missing or mis-shaped tensor.
    func restore(_ tensors: [String: Tensor], stepCount: Int, for parameters: [Parameter]) throws
}

extension Optimizer {
    public func step(_ parameters: [Parameter]) { step(parameters, rateScales: nil) }
}

/// Adam (Kingma & Ba) exactly as Flux/Optimisers.jl writes it:
/// m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  p ← p − lr · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε).
/// PyTorch's `torch.optim.Adam` (amsgrad off, no weight decay) is the same formula written as
/// p ← p − (lr/(1−β₁ᵗ)) · m / (√v/√(1−β₂ᵗ) + ε); they differ only in float rounding.
/// The corrections 1−βᵗ are computed in Double, then rounded once. t counts the steps that
/// updated the parameter, as PyTorch keeps `step` per parameter: one left out while frozen
/// starts its correction afresh when it trains again, instead of taking a nearly unbiased
/// correction to moments that have only just begun (whose first steps would then be ~3× lr).
public final class Adam: Optimizer {
    public let kind = "adam"
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float
    public private(set) var stepCount = 0
    private var moments = ParameterState<Moments>()

    /// A parameter's moments and how many steps updated it.
    final class Moments {
        let m: Tensor, v: Tensor
        var steps: Int
        init(m: Tensor, v: Tensor, steps: Int) { self.m = m; self.v = v; self.steps = steps }
    }

    public init(learningRate: Float = 3e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
    }

    public var constants: [String: Float] { ["beta1": beta1, "beta2": beta2, "epsilon": epsilon] }

    private func moments(_ p: Parameter) -> Moments {
        if let found = moments[p] { return found }
        let fresh = Moments(m: Tensor(p.value.shape), v: Tensor(p.value.shape), steps: 0)
        moments[p] = fresh
        return fresh
    }

    public func step(_ parameters: [Parameter], rateScales: [Float]?) {
        stepCount += 1
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        for (index, p) in parameters.enumerated() {
            let state = moments(p)
            state.steps += 1
            let t = Double(state.steps)
            let correction1 = Float(1 - pow(Double(beta1), t)), correction2 = Float(1 - pow(Double(beta2), t))
            let lr = learningRate * (rateScales?[index] ?? 1)
            let (m, v) = (state.m, state.v)
            p.value.data.withUnsafeMutableBufferPointer { w in
                p.grad.data.withUnsafeBufferPointer { g in
                    m.data.withUnsafeMutableBufferPointer { m in
                        v.data.withUnsafeMutableBufferPointer { v in
                            for i in 0..<w.count {
                                m[i] = b1 * m[i] + (1 - b1) * g[i]
                                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                                w[i] -= lr * (m[i] / correction1) / ((v[i] / correction2).squareRoot() + eps)
                            }
                        }
                    }
                }
            }
        }
    }

    public func state(for parameters: [Parameter]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for p in parameters {
            let state = moments[p] ?? Moments(m: Tensor(p.value.shape), v: Tensor(p.value.shape), steps: 0)   // not stepped yet: zeros
            out["\(p.name).m"] = state.m
            out["\(p.name).v"] = state.v
            // Only a parameter that sat steps out (frozen) needs its own count; a Float, as
            // PyTorch's, exact up to 2²⁴ steps.
            if state.steps != stepCount { out["\(p.name).step"] = Tensor([1], [Float(state.steps)]) }
        }
        return out
    }

    public func restore(_ tensors: [String: Tensor], stepCount: Int, for parameters: [Parameter]) throws {
        var restored = ParameterState<Moments>()
        for p in parameters {
            var steps = stepCount
            if let saved = tensors["\(p.name).step"] {
                guard saved.count == 1, let value = Int(exactly: saved.data[0]), (0...stepCount).contains(value) else {
                    throw ModelError("optimizer state '\(p.name).step' is not a step count from 0 to \(stepCount)")
                }
                steps = value
            }
            restored[p] = Moments(m: try stateTensor(tensors, "\(p.name).m", p), v: try stateTensor(tensors, "\(p.name).v", p), steps: steps)
        }
        moments = restored
        self.stepCount = stepCount
    }
}

/// Stochastic gradient descent, with PyTorch's momentum: b ← μb + g, p ← p − lr·b (μ = 0: plain SGD).
public final class SGD: Optimizer {
    public var kind: String { momentum == 0 ? "sgd" : "momentum" }
    public var learningRate: Float
    public let momentum: Float
    public private(set) var stepCount = 0
    private var buffers = ParameterState<Tensor>()

    public init(learningRate: Float, momentum: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
    }

    public var constants: [String: Float] { ["momentum": momentum] }

    public func step(_ parameters: [Parameter], rateScales: [Float]?) {
        stepCount += 1
        let mu = momentum
        for (index, p) in parameters.enumerated() {
            let lr = learningRate * (rateScales?[index] ?? 1)
            if mu == 0 {
                p.value.data.withUnsafeMutableBufferPointer { w in
                    p.grad.data.withUnsafeBufferPointer { g in
                        for i in 0..<w.count { w[i] -= lr * g[i] }
                    }
                }
                continue
            }
            let buffer = buffers[p] ?? {
                let b = Tensor(p.value.shape); buffers[p] = b; return b
            }()
            p.value.data.withUnsafeMutableBufferPointer { w in
                p.grad.data.withUnsafeBufferPointer { g in
                    buffer.data.withUnsafeMutableBufferPointer { b in
                        for i in 0..<w.count {
                            b[i] = mu * b[i] + g[i]
                            w[i] -= lr * b[i]
                        }
                    }
                }
            }
        }
    }

    public func state(for parameters: [Parameter]) -> [String: Tensor] {
        guard momentum != 0 else { return [:] }
        var out: [String: Tensor] = [:]
        for p in parameters {
            out["\(p.name).momentum"] = buffers[p] ?? Tensor(p.value.shape)
        }
        return out
    }

    public func restore(_ tensors: [String: Tensor], stepCount: Int, for parameters: [Parameter]) throws {
        var restored = ParameterState<Tensor>()
        if momentum != 0 {
            for p in parameters { restored[p] = try stateTensor(tensors, "\(p.name).momentum", p) }
        }
        buffers = restored
        self.stepCount = stepCount
    }
}

/// An optimizer's state per parameter, keyed by the identity of the parameter's value tensor
/// (replicas share it). Each entry holds on to that tensor, so its identity cannot pass to
/// another tensor while the optimizer lives.
struct ParameterState<State> {
    private var entries: [ObjectIdentifier: (owner: Tensor, state: State)] = [:]

    subscript(_ p: Parameter) -> State? {
        get { entries[ObjectIdentifier(p.value)]?.state }
        set { entries[ObjectIdentifier(p.value)] = newValue.map { (owner: p.value, state: $0) } }
    }
}

private func stateTensor(_ tensors: [String: Tensor], _ key: String, _ p: Parameter) throws -> Tensor {
    guard let t = tensors[key] else { throw ModelError("checkpoint has no optimizer state '\(key)'") }
    guard t.shape == p.value.shape else {
        throw ModelError("optimizer state '\(key)' is \(shapeText(t.shape)) in the checkpoint but the parameter is \(shapeText(p.value.shape))")
    }
    return Tensor(p.value.shape, t.data)
}
