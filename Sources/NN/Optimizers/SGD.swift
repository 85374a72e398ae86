import Foundation
import Tensor

/// Stochastic gradient descent exactly as torch.optim.SGD (dampening 0) writes it:
/// d ← g + wd·p (L2 weight decay, when wd > 0); with momentum μ, b ← μb + d and then
/// p ← p − lr·b, or with Nesterov momentum p ← p − lr·(d + μb); plain SGD (μ = 0): p ← p − lr·d.
/// The buffer starts at zero, so the first step's b is d, as PyTorch's clone of the gradient.
public final class SGD: Optimizer {
    public var kind: String {
        (momentum == 0 ? OptimizerKind.sgd : nesterov ? .nesterov : .momentum).rawValue
    }
    public var learningRate: Float
    public var weightDecay: Float
    public let momentum: Float
    public let nesterov: Bool
    public private(set) var stepCount = 0
    private var buffers = ParameterState<Tensor>()

    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov && momentum != 0
        self.weightDecay = weightDecay
    }

    public var constants: [String: Float] { ["momentum": momentum] }

    public func step(_ parameters: [Parameter], rateScales: [Float]?) {
        stepCount += 1
        let (mu, wd) = (momentum, weightDecay)
        for (index, p) in parameters.enumerated() {
            let lr = learningRate * (rateScales?[index] ?? 1)
            if mu == 0 {
                p.value.data.withUnsafeMutableBufferPointer { w in
                    p.grad.data.withUnsafeBufferPointer { g in
                        if wd == 0 {
                            for i in 0..<w.count { w[i] -= lr * g[i] }
                        } else {
                            for i in 0..<w.count { w[i] -= lr * (g[i] + wd * w[i]) }
                        }
                    }
                }
                continue
            }
            let buffer = buffers.state(p) { Tensor(p.value.shape) }
            withBuffers(p, buffer) { w, g, b in
                switch (nesterov, wd == 0) {
                case (false, true):
                    for i in 0..<w.count {
                        b[i] = mu * b[i] + g[i]
                        w[i] -= lr * b[i]
                    }
                case (false, false):
                    for i in 0..<w.count {
                        b[i] = mu * b[i] + (g[i] + wd * w[i])
                        w[i] -= lr * b[i]
                    }
                case (true, _):
                    for i in 0..<w.count {
                        let d = wd == 0 ? g[i] : g[i] + wd * w[i]
                        b[i] = mu * b[i] + d
                        w[i] -= lr * (d + mu * b[i])
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
