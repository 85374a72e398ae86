import Tensor

/// Batch normalization with PyTorch's defaults (momentum 0.1, eps 1e-5, affine, running stats),
/// per channel over the batch and every spatial position, or per feature over the batch.
///
/// Shapes: x [C, N, D1…Dk] (per sample [C, D…]) or [N, F] with F = C (per sample [F]) → y, same.
/// weight γ [C] (init 1), bias β [C] (init 0); buffers running_mean [C] (0), running_var [C] (1),
/// num_batches_tracked [1] (counted in Float).
/// Training: μ, σ² = the batch mean and biased variance over the n = N·∏D values of a channel;
///           x̂ = (x − μ)/√(σ² + eps), y = γ·x̂ + β; running_mean ← (1 − m)·running_mean + m·μ,
///           running_var ← (1 − m)·running_var + m·σ²·n/(n − 1), num_batches_tracked += 1.
///           Backward through the batch statistics: dx = γ/√(σ² + eps)·(dy − mean(dy) − x̂·mean(dy·x̂)).
/// Not training: μ, σ² = the running statistics; backward is the affine map dx = γ/√(σ² + eps)·dy.
/// Both: dγ += Σ dy·x̂, dβ += Σ dy.
/// Frozen (`isFrozen`, its module frozen): training uses and keeps the running statistics, as
/// Keras' BatchNormalization with trainable=False does; backward is then the affine map.
/// Replicas share γ and β and the same buffer tensors, but only the original updates the
/// running statistics (PyTorch DDP broadcasts rank 0's buffers), so workers do not race on them.
/// Cache: x̂ [same as x], 1/√(σ² + eps) per channel, and whether forward was training.
public final class BatchNorm: Layer {
    public let channels: Int
    public let momentum: Float
    public let epsilon: Float
    public let weight: Parameter
    public let bias: Parameter
    public let runningMean: Parameter
    public let runningVariance: Parameter
    public let batchesTracked: Parameter
    /// True on the layer a model is built with, false on its replicas.
    public var updatesRunningStatistics: Bool
    /// In a frozen module: the running statistics even while training, and they stay as they are.
    public var isFrozen = false

    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private let normalized = Tensor([0])             // x̂
    private var inverseDeviation: [Float]            // [C]: 1/√(σ² + eps) of the last forward
    private var trainedLast = false
    private var layout = Layout(channelStride: 0, elementStride: 0, count: 0)

    public init(channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        precondition(channels > 0, "BatchNorm needs a positive channel count, got \(channels)")
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        weight = Parameter(name: "weight", value: Tensor([channels], repeating: 1))
        bias = Parameter(name: "bias", value: Tensor([channels]))
        runningMean = Parameter(name: "running_mean", value: Tensor([channels]))
        runningVariance = Parameter(name: "running_var", value: Tensor([channels], repeating: 1))
        batchesTracked = Parameter(name: "num_batches_tracked", value: Tensor([1]))
        updatesRunningStatistics = true
        inverseDeviation = [Float](repeating: 0, count: channels)
    }

    private init(sharing other: BatchNorm) {
        channels = other.channels; momentum = other.momentum; epsilon = other.epsilon
        weight = Parameter(sharing: other.weight)
        bias = Parameter(sharing: other.bias)
        runningMean = other.runningMean
        runningVariance = other.runningVariance
        batchesTracked = other.batchesTracked
        updatesRunningStatistics = false
        isFrozen = other.isFrozen
        inverseDeviation = [Float](repeating: 0, count: other.channels)
    }

    public func replica() -> Layer { BatchNorm(sharing: self) }
    public var parameters: [Parameter] { [weight, bias] }
    public var buffers: [Parameter] { [runningMean, runningVariance, batchesTracked] }
    public var description: String { "BatchNorm(\(channels))" }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard !input.isEmpty, input[0] == channels else {
            throw ModelError("\(description) needs \(channels) features or \(channels)×D… inputs (\(channels) channels), got \(shapeText(input))")
        }
        return input
    }

    /// Where a channel's values lie: value j of channel c at c·channelStride + j·elementStride,
    /// j < count. [C, N, D…]: one contiguous run per channel; [N, F]: a column.
    struct Layout: Equatable {
        let channelStride, elementStride, count: Int
    }

    private func channelLayout(of shape: [Int]) -> Layout {
        if shape.count == 2 {
            precondition(shape[1] == channels, "\(description) got input \(shape)")
            return Layout(channelStride: 1, elementStride: channels, count: shape[0])
        }
        precondition(shape.count >= 3 && shape[0] == channels, "\(description) got input \(shape)")
        let count = shape.dropFirst().reduce(1, *)
        return Layout(channelStride: count, elementStride: 1, count: count)
    }

    // MARK: forward

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let l = channelLayout(of: x.shape)
        layout = l
        let training = training && !isFrozen   // frozen: as at evaluation
        trainedLast = training
        output.resize(x.shape)
        normalized.resize(x.shape)
        let n = l.count, updating = training && updatesRunningStatistics
        x.data.withUnsafeBufferPointer { xp in
            output.data.withUnsafeMutableBufferPointer { yp in
                normalized.data.withUnsafeMutableBufferPointer { hp in
                    for c in 0..<channels {
                        let base = c * l.channelStride, step = l.elementStride
                        let mean: Float, variance: Float
                        if training {
                            // Two passes in Double: a channel sums up to N·∏D values.
                            var total = 0.0
                            for j in 0..<n { total += Double(xp[base + j * step]) }
                            let mu = total / Double(n)
                            var squares = 0.0
                            for j in 0..<n { let d = Double(xp[base + j * step]) - mu; squares += d * d }
                            mean = Float(mu)
                            variance = Float(squares / Double(n))
                            if updating {
                                let unbiased = n > 1 ? Float(squares / Double(n - 1)) : variance
                                runningMean.value.data[c] = (1 - momentum) * runningMean.value.data[c] + momentum * mean
                                runningVariance.value.data[c] = (1 - momentum) * runningVariance.value.data[c] + momentum * unbiased
                            }
                        } else {
                            mean = runningMean.value.data[c]
                            variance = runningVariance.value.data[c]
                        }
                        let inverse = 1 / (variance + epsilon).squareRoot()
                        inverseDeviation[c] = inverse
                        let gamma = weight.value.data[c], beta = bias.value.data[c]
                        for j in 0..<n {
                            let i = base + j * step, h = (xp[i] - mean) * inverse
                            hp[i] = h
                            yp[i] = gamma * h + beta
                        }
                    }
                }
            }
        }
        if updating { batchesTracked.value.data[0] += 1 }
        return output
    }

    // MARK: backward

    public func backward(_ dout: Tensor) -> Tensor {
        precondition(dout.count == normalized.count, "\(description): gradient \(dout.shape) for output \(output.shape)")
        let l = layout, n = l.count
        inputGradient.resize(normalized.shape)
        dout.data.withUnsafeBufferPointer { dyp in
            normalized.data.withUnsafeBufferPointer { hp in
                inputGradient.data.withUnsafeMutableBufferPointer { dxp in
                    for c in 0..<channels {
                        let base = c * l.channelStride, step = l.elementStride
                        var sumDy = 0.0, sumDyH = 0.0
                        for j in 0..<n {
                            let i = base + j * step
                            sumDy += Double(dyp[i]); sumDyH += Double(dyp[i]) * Double(hp[i])
                        }
                        weight.grad.data[c] += Float(sumDyH)
                        bias.grad.data[c] += Float(sumDy)
                        let scale = weight.value.data[c] * inverseDeviation[c]
                        if trainedLast {
                            // The batch mean and variance depend on every x of the channel.
                            let meanDy = Float(sumDy / Double(n)), meanDyH = Float(sumDyH / Double(n))
                            for j in 0..<n {
                                let i = base + j * step
                                dxp[i] = scale * (dyp[i] - meanDy - hp[i] * meanDyH)
                            }
                        } else {
                            for j in 0..<n {
                                let i = base + j * step
                                dxp[i] = scale * dyp[i]
                            }
                        }
                    }
                }
            }
        }
        return inputGradient
    }
}

// MARK: - In a spec

/// `batchnorm`: per-channel (or per-feature) normalization, PyTorch's defaults: batch
/// statistics while training, running statistics otherwise (momentum 0.1, ε 1e-5).
public struct BatchNormSpec: LayerSpec, Equatable {
    public static let keyword = "batchnorm"
    public static let aliases = ["bn"]
    public static let grammar = "batchnorm   per channel; batch statistics while training, running ones otherwise"

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.isEmpty else { throw SpecError("takes no arguments") }
    }

    public var text: String { BatchNormSpec.keyword }

    public func outputShape(for input: [Int]) throws -> [Int] { input }

    public func parameterCount(for input: [Int]) -> Int { 2 * input[0] }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        BatchNorm(channels: input[0])
    }
}
