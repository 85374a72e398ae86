import Foundation
import Tensor

/// What training minimizes, and how a model's outputs are read as answers. The trainer sees
/// only this: a batch's logits [N, K] against N labels in 0..<K give a summed loss and, for
/// training, dL/dlogits; the same logits give each row's predicted class and probabilities.
public protocol Objective: Sendable {
    /// Summed loss over the rows (each weighted by its class's weight, if any); writes
    /// dL/dlogits divided by `normalizer` into `gradient` (resized to the logits' shape). The
    /// normalizer is the whole minibatch's (see `classWeights`), so that slices of one batch
    /// trained on different threads add up to the batch mean.
    func lossAndGradient(logits: Tensor, labels: [Int32], normalizer: Float, gradient: Tensor) -> Double
    /// Summed plain cross-entropy over the rows, without a gradient: the evaluation loss
    /// (val_loss, test_loss), neither smoothed nor weighted, so runs trained with different
    /// recipes compare on one scale (Keras likewise leaves class_weight out of val_loss).
    func loss(logits: Tensor, labels: [Int32]) -> Double
    /// The weight of each class's rows in the training loss, or nil (all 1). A minibatch's
    /// mean is its summed loss over Σ w[label] of its rows, as torch.nn.CrossEntropyLoss's
    /// weighted mean; the trainer sums that over the whole minibatch (in row order, in Double)
    /// and hands it to every slice as the normalizer.
    var classWeights: [Float]? { get }
    /// The predicted class of each row.
    func predictions(_ logits: Tensor) -> [Int32]
    /// How many rows' predicted class is their label (the training accuracy's running count;
    /// called every step, so it should not allocate).
    func correctCount(_ logits: Tensor, labels: [Int32]) -> Int
    /// Each row's class probabilities, [N, K] (for `predict`).
    func probabilities(_ logits: Tensor) -> Tensor
}

extension Objective {
    public var classWeights: [Float]? { nil }

    /// What a minibatch's summed loss is divided by for its mean: its row count, or with class
    /// weights Σ w[label] summed in row order in Double (the same for any thread count).
    public func normalizer<S: Sequence>(labels: S, count: Int) -> Float where S.Element == Int32 {
        guard let weights = classWeights else { return Float(count) }
        var total = 0.0
        for label in labels { total += Double(weights[Int(label)]) }
        return Float(total)
    }
}

/// Softmax cross-entropy on logits, the loss of every classifier here, and the trainer's
/// objective; optionally with label smoothing and class weights, exactly as
/// torch.nn.CrossEntropyLoss(weight=w, label_smoothing=ε) with mean reduction:
///
///     loss_i = (1−ε)·w[y]·(−log p_y) + (ε/K)·Σ_j w[j]·(−log p_j),   mean = Σ_i loss_i / Σ_i w[y_i]
///     dloss_i/dz_k = ((1−ε)·w[y] + (ε/K)·Σ_j w[j])·p_k − (1−ε)·w[y]·[k = y] − (ε/K)·w[k]
///
/// (w = 1 without weights: p_k − (1−ε)·[k = y] − ε/K). `SoftmaxCrossEntropy.loss(…)` and the
/// other static forms are the plain loss without an instance.
///
/// Shapes: logits [N, K], labels N values in 0..<K. Numerically stable: each row's max is
/// subtracted before exponentiating.
public struct SoftmaxCrossEntropy: Objective {
    /// ε in [0, 1): the share of each target spread evenly over all K classes.
    public let smoothing: Float
    /// One weight per class, or nil.
    public let classWeights: [Float]?

    public init(smoothing: Float = 0, classWeights: [Float]? = nil) {
        self.smoothing = smoothing
        self.classWeights = classWeights
    }

    public func lossAndGradient(logits: Tensor, labels: [Int32], normalizer: Float, gradient: Tensor) -> Double {
        // The plain loss keeps its own loop: the same bits as before smoothing and weights existed.
        guard smoothing != 0 || classWeights != nil else {
            return Self.lossAndGradient(logits: logits, labels: labels, normalizer: normalizer, gradient: gradient)
        }
        let (n, k) = (logits.shape[0], logits.shape[1])
        gradient.resize([n, k])
        let scale = 1 / normalizer
        let spread = smoothing / Float(k), kept = 1 - smoothing
        let weights = classWeights ?? [Float](repeating: 1, count: k)
        let weightSum = weights.reduce(0, +)
        var total = 0.0
        logits.data.withUnsafeBufferPointer { zp in
            gradient.data.withUnsafeMutableBufferPointer { gp in
                weights.withUnsafeBufferPointer { w in
                    for row in 0..<n {
                        let z = zp.baseAddress! + row * k, g = gp.baseAddress! + row * k
                        let (top, sum) = Self.exponentiate(z, into: g, k)
                        let label = Int(labels[row])
                        let logSum = logf(sum)
                        // Σ_j w[j]·(−log p_j) = W·log Σ − Σ_j w[j]·(z_j − top)
                        var weightedShifted: Float = 0
                        for j in 0..<k { weightedShifted += w[j] * (z[j] - top) }
                        let own = logSum - (z[label] - top)
                        total += Double(kept * w[label] * own + spread * (weightSum * logSum - weightedShifted))
                        let c = (kept * w[label] + spread * weightSum) * scale / sum
                        for j in 0..<k { g[j] = g[j] * c - spread * w[j] * scale }
                        g[label] -= kept * w[label] * scale
                    }
                }
            }
        }
        return total
    }

    public func loss(logits: Tensor, labels: [Int32]) -> Double { Self.loss(logits: logits, labels: labels) }

    public func predictions(_ logits: Tensor) -> [Int32] { Self.predictions(logits) }

    /// Rows whose largest logit (the first, on ties) is the label.
    public func correctCount(_ logits: Tensor, labels: [Int32]) -> Int {
        let (n, k) = (logits.shape[0], logits.shape[1])
        return logits.data.withUnsafeBufferPointer { zp in
            var correct = 0
            for row in 0..<n {
                let z = zp.baseAddress! + row * k
                var best = 0
                for j in 1..<k where z[j] > z[best] { best = j }
                if Int32(best) == labels[row] { correct += 1 }
            }
            return correct
        }
    }

    public func probabilities(_ logits: Tensor) -> Tensor { Self.probabilities(logits) }

    /// Summed loss over the rows; writes dL/dlogits = (softmax − onehot) / normalizer into
    /// `gradient`. The normalizer is the whole minibatch's size, so that slices of one batch
    /// trained on different threads add up to the batch mean.
    public static func lossAndGradient(logits: Tensor, labels: [Int32], normalizer: Float,
                                       gradient: Tensor) -> Double {
        let (n, k) = (logits.shape[0], logits.shape[1])
        gradient.resize([n, k])
        let scale = 1 / normalizer
        var total = 0.0
        logits.data.withUnsafeBufferPointer { zp in
            gradient.data.withUnsafeMutableBufferPointer { gp in
                for row in 0..<n {
                    let z = zp.baseAddress! + row * k, g = gp.baseAddress! + row * k
                    let (top, sum) = exponentiate(z, into: g, k)
                    let label = Int(labels[row])
                    total += Double(logf(sum) - (z[label] - top))
                    let inverse = scale / sum
                    for j in 0..<k { g[j] *= inverse }
                    g[label] -= scale
                }
            }
        }
        return total
    }

    /// Summed loss over the rows, without a gradient.
    public static func loss(logits: Tensor, labels: [Int32]) -> Double {
        let (n, k) = (logits.shape[0], logits.shape[1])
        var total = 0.0
        var scratch = [Float](repeating: 0, count: k)
        logits.data.withUnsafeBufferPointer { zp in
            scratch.withUnsafeMutableBufferPointer { e in
                for row in 0..<n {
                    let z = zp.baseAddress! + row * k
                    let (top, sum) = exponentiate(z, into: e.baseAddress!, k)
                    total += Double(logf(sum) - (z[Int(labels[row])] - top))
                }
            }
        }
        return total
    }

    /// One stable softmax row, unnormalized: e[j] = exp(z[j] − max z); returns (max z, Σ e).
    @inline(__always)
    private static func exponentiate(_ z: UnsafePointer<Float>, into e: UnsafeMutablePointer<Float>, _ k: Int) -> (top: Float, sum: Float) {
        var top = z[0]
        for j in 1..<k { top = max(top, z[j]) }
        var sum: Float = 0
        for j in 0..<k { e[j] = expf(z[j] - top); sum += e[j] }
        return (top, sum)
    }

    /// The arg-max class of each row (the first on ties).
    public static func predictions(_ logits: Tensor) -> [Int32] {
        let (n, k) = (logits.shape[0], logits.shape[1])
        return logits.data.withUnsafeBufferPointer { zp in
            (0..<n).map { row in
                let z = zp.baseAddress! + row * k
                var best = 0
                for j in 1..<k where z[j] > z[best] { best = j }
                return Int32(best)
            }
        }
    }

    /// Rows whose label is among their `k` largest logits (top-k accuracy's count): fewer than k
    /// other classes score strictly higher than the label, so ties count in the label's favour,
    /// as sklearn's top_k_accuracy_score.
    public static func topKHits(_ logits: Tensor, labels: [Int32], k: Int) -> Int {
        let (n, classes) = (logits.shape[0], logits.shape[1])
        return logits.data.withUnsafeBufferPointer { zp in
            var hits = 0
            for row in 0..<n {
                let z = zp.baseAddress! + row * classes
                let own = z[Int(labels[row])]
                var above = 0
                for j in 0..<classes where z[j] > own { above += 1 }
                if above < k { hits += 1 }
            }
            return hits
        }
    }

    /// Fraction of rows whose arg-max is the label.
    public static func accuracy(logits: Tensor, labels: [Int32]) -> Double {
        let predicted = predictions(logits)
        guard !predicted.isEmpty else { return 0 }
        return Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(predicted.count)
    }

    /// Row-wise softmax of logits [N, K] → probabilities [N, K] (each row sums to 1).
    public static func probabilities(_ logits: Tensor) -> Tensor {
        let (n, k) = (logits.shape[0], logits.shape[1])
        let out = Tensor([n, k])
        logits.data.withUnsafeBufferPointer { zp in
            out.data.withUnsafeMutableBufferPointer { pp in
                for row in 0..<n {
                    let p = pp.baseAddress! + row * k
                    let (_, sum) = exponentiate(zp.baseAddress! + row * k, into: p, k)
                    for j in 0..<k { p[j] /= sum }
                }
            }
        }
        return out
    }
}
