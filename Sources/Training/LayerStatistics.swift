import NN
import Tensor

/// One layer's numbers for one training step (`stats`): how large its weights and gradient
/// are, how far the step moved the weights, and what its outputs looked like.
public struct LayerStatistics: Equatable, Sendable {
    /// The layer's name in the model: the index its tensors are named by ("3" for "3.weight").
    public var layer: String
    /// ‖w‖ over all the layer's parameters after the step; nil for a layer without any.
    public var weightNorm: Double?
    /// ‖g‖ of the step's (minibatch mean) gradient.
    public var gradientNorm: Double?
    /// ‖Δw‖ / ‖w‖ of the step, ‖w‖ taken before it.
    public var updateRatio: Double?
    /// Mean and (population) standard deviation of the layer's outputs over the batch.
    public var activationMean: Double
    public var activationStd: Double
    /// The share of the outputs that are exactly zero: dead units, for a layer ending in ReLU.
    public var zeroShare: Double

    /// The value of one statistic (nil when the layer has no parameters to measure).
    public func value(_ statistic: LayerStatistic) -> Double? {
        switch statistic {
        case .weightNorm: weightNorm
        case .gradientNorm: gradientNorm
        case .updateRatio: updateRatio
        case .activationMean: activationMean
        case .activationStd: activationStd
        case .deadShare: zeroShare
        }
    }
}

/// The statistics `stats` shows and `set stats on` records; their metric names, named once.
public enum LayerStatistic: String, CaseIterable, Sendable {
    case weightNorm = "weight_norm"
    case gradientNorm = "grad_norm"
    case updateRatio = "update_ratio"
    case activationMean = "activation_mean"
    case activationStd = "activation_std"
    case deadShare = "dead_share"

    /// The metric a run records it under: `stats.3.grad_norm`.
    public func metricName(layer: String) -> String { "stats.\(layer).\(rawValue)" }
}

/// Every layer's statistics for one step, and which step it was.
public struct StepStatistics: Equatable, Sendable {
    /// The step's number (1 for a run's first), and where it fell.
    public var step: Int
    public var epoch: Int
    public var batch: Int
    public var layers: [LayerStatistics]
}

/// Measures one step: the gradient as the workers summed it, the weights before and after the
/// optimizer moved them, and every layer's output. Only a measured step pays for this (a copy
/// of the weights and one more forward pass); the trainer measures the last batch of every
/// epoch and of every `train`.
struct StatisticsProbe {
    /// The layers measured: the probe's (the model unfused: a convolution and the max-pool
    /// fused after it are two rows), each with the model's parameters of the same names (the
    /// ones the step sums gradients into and updates).
    private let layers: [(name: String, parameters: [Parameter])]
    /// Per layer: Σw² and Σg² before the step, and the weights then.
    private var before: [(weights: [[Float]], squaredNorm: Double, squaredGradient: Double)] = []
    /// Per layer: count, Σx, Σx², zeros of its outputs.
    private var outputs: [(count: Int, sum: Double, squares: Double, zeros: Int)]

    init(probe: Model, model: Model) {
        let byName = Dictionary(model.parameters.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        layers = probe.layers.map { named in (named.name, named.layer.parameters.compactMap { byName[$0.name] }) }
        outputs = Array(repeating: (0, 0, 0, 0), count: layers.count)
    }

    /// Before the optimizer step: the weights and the summed gradients.
    mutating func recordBeforeStep() {
        before = layers.map { _, parameters in
            (parameters.map(\.value.data), squaredSum(parameters.map(\.value.data)), squaredSum(parameters.map(\.grad.data)))
        }
    }

    /// One worker's slice through `probe` (an unfused replica with the same weights), every
    /// layer's output counted.
    mutating func recordOutputs(of probe: Model, input: Tensor) {
        _ = probe.forward(input, training: true) { index, output in
            var sum = 0.0, squares = 0.0, zeros = 0
            for v in output.data {
                let x = Double(v)
                sum += x
                squares += x * x
                if v == 0 { zeros += 1 }
            }
            outputs[index].count += output.count
            outputs[index].sum += sum
            outputs[index].squares += squares
            outputs[index].zeros += zeros
        }
    }

    /// After the optimizer step: every layer's numbers.
    func statistics(step: Int, epoch: Int, batch: Int) -> StepStatistics {
        let layers = layers.enumerated().map { i, named -> LayerStatistics in
            let parameters = named.parameters
            let out = outputs[i]
            let n = Double(max(out.count, 1))
            let mean = out.sum / n
            var stats = LayerStatistics(layer: named.name, activationMean: mean,
                                        activationStd: (max(0, out.squares / n - mean * mean)).squareRoot(),
                                        zeroShare: Double(out.zeros) / n)
            guard !parameters.isEmpty else { return stats }
            var moved = 0.0
            for (p, old) in zip(parameters, before[i].weights) {
                for (a, b) in zip(p.value.data, old) { moved += Double(a - b) * Double(a - b) }
            }
            stats.weightNorm = squaredSum(parameters.map(\.value.data)).squareRoot()
            stats.gradientNorm = before[i].squaredGradient.squareRoot()
            let norm = before[i].squaredNorm.squareRoot()
            stats.updateRatio = norm > 0 ? moved.squareRoot() / norm : nil
            return stats
        }
        return StepStatistics(step: step, epoch: epoch, batch: batch, layers: layers)
    }
}

private func squaredSum(_ arrays: [[Float]]) -> Double {
    arrays.reduce(0) { total, values in values.reduce(total) { $0 + Double($1) * Double($1) } }
}
