import Datasets
import Foundation
import NN
import Tensor

/// One thread's share of a minibatch: a model replica and the buffers it fills each step.
final class Worker: @unchecked Sendable {
    let model: Model
    /// The trainer's loss: what the step minimizes and how logits become answers.
    let objective: any Objective
    /// [C, n, H, W]: this worker's slice of the batch.
    let input = Tensor([0])
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

    /// Copies images (stored H×W×C each) into `input` as [C, n, H, W] and their labels.
    func loadBatch<S: Collection>(_ split: Split, indices: S, channels: Int, features: Int) where S.Element == Int {
        let n = indices.count
        let plane = features / channels
        input.resize([channels, n] + model.inputShape.dropFirst())
        labels.removeAll(keepingCapacity: true)
        split.images.withUnsafeBufferPointer { images in
            input.data.withUnsafeMutableBufferPointer { x in
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

    /// Forward, loss and backward on the loaded slice; gradients are scaled by 1/normalizer
    /// (the whole minibatch's size) so the summed slices give the minibatch mean.
    func forwardBackward(normalizer: Int) -> Double {
        let logits = model.forward(input, training: true)
        correct = objective.correctCount(logits, labels: labels)
        let lossSum = objective.lossAndGradient(
            logits: logits, labels: labels, normalizer: Float(normalizer), gradient: logitGradient)
        model.backward(logitGradient)
        return lossSum
    }

    /// Predicted classes and summed loss of the loaded slice, without training.
    func predict() -> (predictions: [Int32], lossSum: Double) {
        let logits = model.forward(input, training: false)
        let lossSum = objective.loss(logits: logits, labels: labels)
        return (objective.predictions(logits), lossSum)
    }

    /// Class probabilities [n, classes] of the loaded slice.
    func probabilities() -> Tensor {
        objective.probabilities(model.forward(input, training: false))
    }
}
