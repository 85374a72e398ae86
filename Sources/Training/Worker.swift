import Datasets
import Foundation
import NN
import Tensor

/// One thread's share of a minibatch: a model replica and the buffers it fills each step.
final class Worker: @unchecked Sendable {
    let model: Model
    /// The trainer's loss: what the step minimizes and how logits become answers.
    var objective: any Objective
    /// [C, n, H, W]: this worker's slice of the batch (or, from a feature cache, the slice of
    /// the cached prefix's outputs).
    let input = Tensor([0])
    /// The slice's images when `input` holds cached features and a measured step needs them.
    let images = Tensor([0])
    var labels: [Int32] = []
    /// [n, classes]: gradient of the loss with respect to the logits.
    let logitGradient = Tensor([0])
    /// Summed (not mean) loss of the last slice.
    var loss = 0.0
    /// Images of the last slice whose largest logit was their label: the training accuracy as
    /// the weights were before the step (the running count, not a second pass).
    var correct = 0

    init(model: Model, objective: any Objective) {
        self.model = model
        self.objective = objective
    }

    /// Copies images (stored H×W×C each) into `input` (or `target`) as [C, n, H, W] and their labels.
    func loadBatch<S: Collection>(_ split: Split, indices: S, channels: Int, features: Int,
                                  into target: Tensor? = nil) where S.Element == Int {
        let input = target ?? self.input
        let n = indices.count
        let plane = features / channels
        input.resize([channels, n] + model.inputShape.dropFirst())
        labels.removeAll(keepingCapacity: true)
        split.images.withUnsafeBufferPointer { images in
            input.data.withUnsafeMutableBufferPointer { x in
                guard n > 0 else { return }
                for (i, index) in indices.enumerated() {
                    let source = images.baseAddress! + index * features
                    if channels == 1 {
                        (x.baseAddress! + i * plane).update(from: source, count: plane)
                    } else {
                        for p in 0..<plane {
                            for c in 0..<channels { x[(c * n + i) * plane + p] = source[p * channels + c] }
                        }
                    }
                    labels.append(split.labels[index])
                }
            }
        }
    }

    /// Loads samples `indices` of a cached prefix's outputs (`features`, of `split`) into
    /// `input`, and their labels.
    func loadFeatures<S: Collection>(_ cache: FeatureCache, _ features: [Float], of split: Split,
                                     indices: S) where S.Element == Int {
        cache.load(features, indices: indices, into: input)
        labels.removeAll(keepingCapacity: true)
        for index in indices { labels.append(split.labels[index]) }
    }

    /// Forward, loss and backward on the loaded slice; gradients are scaled by 1/normalizer
    /// (the whole minibatch's size) so the summed slices give the minibatch mean.
    /// `fromLayer`: the top-level layer `input` feeds (after a cached prefix; 0: the images).
    func forwardBackward(normalizer: Float, fromLayer: Int = 0) -> Double {
        let logits = model.forward(input, training: true, layers: fromLayer..<model.layers.count)
        correct = objective.correctCount(logits, labels: labels)
        let lossSum = objective.lossAndGradient(
            logits: logits, labels: labels, normalizer: normalizer, gradient: logitGradient)
        model.backward(logitGradient)
        return lossSum
    }

    /// Predicted classes, summed loss and (with `topK`) top-K hits of the loaded slice, without training.
    func predict(fromLayer: Int = 0, topK: Int? = nil) -> (predictions: [Int32], lossSum: Double, topKHits: Int) {
        let logits = model.forward(input, training: false, layers: fromLayer..<model.layers.count)
        let lossSum = objective.loss(logits: logits, labels: labels)
        let hits = topK.map { SoftmaxCrossEntropy.topKHits(logits, labels: labels, k: $0) } ?? 0
        return (objective.predictions(logits), lossSum, hits)
    }

    /// Class probabilities [n, classes] of the loaded slice.
    func probabilities() -> Tensor {
        objective.probabilities(model.forward(input, training: false))
    }
}
