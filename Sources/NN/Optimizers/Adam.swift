import CBLAS
import Foundation
import Tensor

/// Adam (Kingma & Ba) exactly as Flux/Optimisers.jl writes it:
/// m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  p ← p − lr · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε).
/// PyTorch's `torch.optim.Adam` (amsgrad off) is the same formula written as
/// p ← p − (lr/(1−β₁ᵗ)) · m / (√v/√(1−β₂ᵗ) + ε); they differ only in float rounding.
///
/// Weight decay as PyTorch has it: `adam` adds wd·p to the gradient before the moments (L2,
/// torch.optim.Adam(weight_decay=)); `adamw` (decoupled, Loshchilov & Hutter,
/// torch.optim.AdamW) first shrinks the weights, p ← p·(1 − lr·wd), then takes the plain Adam
/// step. Both decay every parameter that trains, biases and BatchNorm's included, as PyTorch's
/// default parameter groups do.
///
/// The corrections 1−βᵗ are computed in Double, then rounded once. t counts the steps that
/// updated the parameter, as PyTorch keeps `step` per parameter: one left out while frozen
/// starts its correction afresh when it trains again, instead of taking a nearly unbiased
/// correction to moments that have only just begun (whose first steps would then be ~3× lr).
public final class Adam: Optimizer {
    public var kind: String { decoupled ? OptimizerKind.adamw.rawValue : OptimizerKind.adam.rawValue }
    public var learningRate: Float
    public var weightDecay: Float
    /// AdamW: weight decay taken off the weights, not added to the gradient.
    public let decoupled: Bool
    public let beta1: Float, beta2: Float, epsilon: Float
    public private(set) var stepCount = 0
    private var moments = ParameterState<Moments>()

    /// A parameter's moments and how many steps updated it.
    final class Moments {
        let m: Tensor, v: Tensor
        var steps: Int
        init(m: Tensor, v: Tensor, steps: Int) { self.m = m; self.v = v; self.steps = steps }
    }

    public init(learningRate: Float = 3e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0, decoupled: Bool = false) {
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupled = decoupled
    }

    public var constants: [String: Float] { ["beta1": beta1, "beta2": beta2, "epsilon": epsilon] }

    public func step(_ parameters: [Parameter], rateScales: [Float]?) {
        stepCount += 1
        let (b1, b2, eps, wd) = (beta1, beta2, epsilon, weightDecay)
        for (index, p) in parameters.enumerated() {
            let state = moments.state(p) { Moments(m: Tensor(p.value.shape), v: Tensor(p.value.shape), steps: 0) }
            state.steps += 1
            let t = Double(state.steps)
            let correction1 = Float(1 - pow(Double(beta1), t)), correction2 = Float(1 - pow(Double(beta2), t))
            let lr = learningRate * (rateScales?[index] ?? 1)
            let (m, v) = (state.m, state.v)
            // The step is the kernel table's (CBLAS ollie_adam_step): these formulas, element by
            // element, the same bits in every set.
            var numbers = ollie_adam(lr: lr, beta1: b1, beta2: b2, epsilon: eps, correction1: correction1,
                                     correction2: correction2, wd: wd, keep: 1 - lr * wd,
                                     mode: wd == 0 ? 0 : decoupled ? 1 : 2)
            p.value.data.withUnsafeMutableBufferPointer { w in
                p.grad.data.withUnsafeBufferPointer { g in
                    m.data.withUnsafeMutableBufferPointer { m in
                        v.data.withUnsafeMutableBufferPointer { v in
                            ollie_adam_step(w.baseAddress!, g.baseAddress!, m.baseAddress!, v.baseAddress!, Int32(w.count), &numbers)
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
