import Foundation
import Tensor

/// RMSprop exactly as torch.optim.RMSprop with its defaults (α 0.99, ε 1e-8, no momentum, not
/// centered): d ← g + wd·p (L2, when wd > 0), v ← αv + (1−α)d², p ← p − lr·d/(√v + ε).
/// Keras' RMSprop differs in its defaults (ρ 0.9, ε 1e-7, ε inside the root): the same rule,
/// with a shorter memory.
public final class RMSprop: Optimizer {
    public var kind: String { OptimizerKind.rmsprop.rawValue }
    public var learningRate: Float
    public var weightDecay: Float
    public let alpha: Float, epsilon: Float
    public private(set) var stepCount = 0
    /// v per parameter: PyTorch's `square_avg`.
    private var squareAverages = ParameterState<Tensor>()

    public init(learningRate: Float, alpha: Float = 0.99, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.alpha = alpha
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public var constants: [String: Float] { ["alpha": alpha, "epsilon": epsilon] }

    public func step(_ parameters: [Parameter], rateScales: [Float]?) {
        stepCount += 1
        let (a, eps, wd) = (alpha, epsilon, weightDecay)
        for (index, p) in parameters.enumerated() {
            let lr = learningRate * (rateScales?[index] ?? 1)
            let square = squareAverages.state(p) { Tensor(p.value.shape) }
            withBuffers(p, square) { w, g, v in
                if wd == 0 {
                    for i in 0..<w.count {
                        v[i] = a * v[i] + (1 - a) * g[i] * g[i]
                        w[i] -= lr * (g[i] / (v[i].squareRoot() + eps))
                    }
                } else {
                    for i in 0..<w.count {
                        let d = g[i] + wd * w[i]
                        v[i] = a * v[i] + (1 - a) * d * d
                        w[i] -= lr * (d / (v[i].squareRoot() + eps))
                    }
                }
            }
        }
    }

    public func state(for parameters: [Parameter]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for p in parameters { out["\(p.name).square_avg"] = squareAverages[p] ?? Tensor(p.value.shape) }
        return out
    }

    public func restore(_ tensors: [String: Tensor], stepCount: Int, for parameters: [Parameter]) throws {
        var restored = ParameterState<Tensor>()
        for p in parameters { restored[p] = try stateTensor(tensors, "\(p.name).square_avg", p) }
        squareAverages = restored
        self.stepCount = stepCount
    }
}
