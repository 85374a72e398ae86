import Foundation
import Tensor

/// An update rule over a model's parameters. `step` reads the gradients (the caller zeroes
/// them afterwards); its state is exported per parameter for checkpoints.
public protocol Optimizer: AnyObject {
    /// One of `OptimizerKind`'s names: "adam", "adamw", "sgd", "momentum", "nesterov", "rmsprop".
    var kind: String { get }
    var learningRate: Float { get set }
    /// PyTorch's `weight_decay` for this rule: added to the gradient as wd·p (L2), or for
    /// AdamW taken off the weights as lr·wd·p (decoupled). A live setting, like the learning
    /// rate (`set wd`), so not one of the fixed `constants`; checkpoints record it beside them.
    var weightDecay: Float { get set }
    var stepCount: Int { get }
    /// The update rule's fixed constants by name (Adam's beta1, beta2, epsilon; SGD's
    /// momentum; RMSprop's alpha, epsilon): checkpoints record them, so a resumed run uses the
    /// same rule.
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

/// Every update rule, by the name `set optimizer` takes and checkpoints record: the one place
/// a new optimizer is registered (its file, plus a case here).
public enum OptimizerKind: String, CaseIterable, Sendable {
    case adam, adamw, sgd, momentum, nesterov, rmsprop

    /// A fresh optimizer of this kind; `constants` are a checkpoint's (absent: PyTorch's defaults).
    public func make(learningRate: Float, weightDecay: Float = 0, constants: [String: Float] = [:]) -> Optimizer {
        switch self {
        case .adam, .adamw:
            Adam(learningRate: learningRate, beta1: constants["beta1"] ?? 0.9, beta2: constants["beta2"] ?? 0.999,
                 epsilon: constants["epsilon"] ?? 1e-8, weightDecay: weightDecay, decoupled: self == .adamw)
        case .sgd: SGD(learningRate: learningRate, momentum: 0, weightDecay: weightDecay)
        case .momentum, .nesterov:
            SGD(learningRate: learningRate, momentum: constants["momentum"] ?? 0.9, nesterov: self == .nesterov,
                weightDecay: weightDecay)
        case .rmsprop:
            RMSprop(learningRate: learningRate, alpha: constants["alpha"] ?? 0.99, epsilon: constants["epsilon"] ?? 1e-8,
                    weightDecay: weightDecay)
        }
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

    /// The state of `p`, made by `fresh` the first time.
    mutating func state(_ p: Parameter, _ fresh: () -> State) -> State {
        if let found = self[p] { return found }
        let made = fresh()
        self[p] = made
        return made
    }
}

/// A saved state tensor for `p`, checked against its shape.
func stateTensor(_ tensors: [String: Tensor], _ key: String, _ p: Parameter) throws -> Tensor {
    guard let t = tensors[key] else { throw ModelError("checkpoint has no optimizer state '\(key)'") }
    guard t.shape == p.value.shape else {
        throw ModelError("optimizer state '\(key)' is \(shapeText(t.shape)) in the checkpoint but the parameter is \(shapeText(p.value.shape))")
    }
    return Tensor(p.value.shape, t.data)
}

/// The weights, the gradient and one state buffer of a parameter, as raw pointers (all the
/// same length), for an update loop.
@inline(__always)
func withBuffers<R>(_ p: Parameter, _ state: Tensor,
                    _ body: (UnsafeMutableBufferPointer<Float>, UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> R) -> R {
    p.value.data.withUnsafeMutableBufferPointer { w in
        p.grad.data.withUnsafeBufferPointer { g in
            state.data.withUnsafeMutableBufferPointer { s in body(w, g, s) }
        }
    }
}
