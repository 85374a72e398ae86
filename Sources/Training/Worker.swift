import Datasets
import Foundation
import NN
import Tensor

/// One thread's share of a minibatch: a model replica and the buffers it fills each step.
final class Worker: @unchecked Sendable {
    let model: Model
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

    init(model: Model) { self.model = model }

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
        correct = Worker.countCorrect(logits, labels)
        let lossSum = SoftmaxCrossEntropy.lossAndGradient(
            logits: logits, labels: labels, normalizer: Float(normalizer), gradient: logitGradient)
        model.backward(logitGradient)
        return lossSum
    }

    /// Rows of logits [n, classes] whose largest entry (the first, on ties) is the label.
    static func countCorrect(_ logits: Tensor, _ labels: [Int32]) -> Int {
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

    /// Predicted classes and summed loss of the loaded slice, without training.
    func predict() -> (predictions: [Int32], lossSum: Double) {
        let logits = model.forward(input, training: false)
        let lossSum = SoftmaxCrossEntropy.loss(logits: logits, labels: labels)
        return (SoftmaxCrossEntropy.predictions(logits), lossSum)
    }
}
