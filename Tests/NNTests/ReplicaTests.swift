import XCTest
@testable import NN
import Tensor

/// Data-parallel replicas: shared weights, private gradients, and gradients that add up.
final class ReplicaTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    func testReplicaSharesWeightStorageButOwnsGradients() throws {
        let model = try Model.referenceConvNet(inputShape: [1, 8, 8], classes: 4, seed: 1)
        let replica = model.replica()
        XCTAssertEqual(replica.parameters.map(\.name), model.parameters.map(\.name))
        XCTAssertEqual(replica.parameters.map(\.name),
                       ["0.weight", "0.bias", "3.weight", "3.bias",
                        "6.weight", "6.bias", "10.weight", "10.bias"])
        for (r, m) in zip(replica.parameters, model.parameters) {
            XCTAssertTrue(r.value === m.value, "\(m.name): value storage is shared")
            XCTAssertFalse(r.grad === m.grad, "\(m.name): gradient is owned")
        }

        // A change to the model's weights is seen by the replica, both as a value and in its output.
        let x = NNTestSupport.uniform([1, 2, 8, 8], seed: 2)
        let before = replica.forward(x, training: false).copy()
        let fcBias = model.parameters.first { $0.name == "10.bias" }!
        fcBias.value.data[1] += 0.75
        XCTAssertEqual(replica.parameters.first { $0.name == "10.bias" }!.value.data[1], fcBias.value.data[1])
        let after = replica.forward(x, training: false)
        for row in 0..<2 {
            XCTAssertEqual(after.data[row * 4 + 1], before.data[row * 4 + 1] + 0.75, accuracy: 1e-5)
            XCTAssertEqual(after.data[row * 4 + 0], before.data[row * 4 + 0])
        }

        // The replica's backward fills its own gradients and leaves the model's at zero.
        model.zeroGrads(); replica.zeroGrads()
        let g = Tensor([0])
        _ = SoftmaxCrossEntropy.lossAndGradient(logits: replica.forward(x, training: true), labels: [0, 3],
                                                normalizer: 2, gradient: g)
        replica.backward(g)
        XCTAssertTrue(replica.parameters.contains { p in p.grad.data.contains { $0 != 0 } })
        for p in model.parameters { XCTAssertTrue(p.grad.data.allSatisfy { $0 == 0 }, "\(p.name) gradient untouched") }
        // The first conv of a replica still skips its input gradient, like the model's.
        XCTAssertFalse((replica.layers[0].layer as! Convolution).needsInputGradient)
    }

    /// Runs the whole batch through `model`, then each half through `halves[k]` (nets sharing its
    /// weights), with the whole batch's normalizer: the halves' gradients must add up to the
    /// whole batch's, within 1e-4 relative plus a floor for entries that cancel to nearly nothing.
    private func checkHalfBatchesSumToTheFullBatch(_ model: Model, _ x: Tensor, _ labels: [Int32], halves: [Model],
                                                   file: StaticString = #filePath, line: UInt = #line) {
        let batch = labels.count, half = batch / 2, image = x.count / batch
        let halfShape = [x.shape[0], half] + Array(x.shape[2...])
        model.zeroGrads()
        let g = Tensor([0])
        _ = SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: labels,
                                                normalizer: Float(batch), gradient: g)
        model.backward(g)
        let full = model.parameters.map { $0.grad.copy() }
        for net in halves { net.zeroGrads() }
        for (k, net) in halves.enumerated() {
            let part = Tensor(halfShape, Array(x.data[(k * half * image)..<((k + 1) * half * image)]))
            let grad = Tensor([0])
            _ = SoftmaxCrossEntropy.lossAndGradient(logits: net.forward(part, training: true),
                                                    labels: Array(labels[(k * half)..<((k + 1) * half)]),
                                                    normalizer: Float(batch), gradient: grad)
            net.backward(grad)
        }
        for (k, expected) in full.enumerated() {
            let name = model.parameters[k].name
            let scale = expected.data.map { abs($0) }.max() ?? 0
            XCTAssertGreaterThan(scale, 0, "\(name) has a gradient", file: file, line: line)
            for i in 0..<expected.count {
                let summed = halves[0].parameters[k].grad.data[i] + halves[1].parameters[k].grad.data[i]
                XCTAssertEqual(summed, expected.data[i], accuracy: 1e-4 * abs(expected.data[i]) + min(1e-5, 1e-6 * scale),
                               "\(name)[\(i)]", file: file, line: line)
            }
        }
    }

    /// The first half through the model itself (its gradients zeroed after the full batch), the
    /// second through a replica.
    func testTwoHalfBatchGradientsSumToTheFullBatchGradient() throws {
        let model = try Model.referenceConvNet(inputShape: [1, 12, 12], classes: 5, seed: 3)
        checkHalfBatchesSumToTheFullBatch(model, NNTestSupport.uniform([1, 8, 12, 12], seed: 4), [0, 1, 2, 3, 4, 0, 2, 4],
                                          halves: [model, model.replica()])
    }

    /// The full-size convnet on 28×28 images, two replicas: conv2 splits the batch of 6 into
    /// chunks of 4 + 2 images, each half of 3 into one chunk.
    func testTwoReplicasHalfBatchGradientsSumToTheFullBatchGradientOfTheFullSizeConvNet() throws {
        let model = try Model.referenceConvNet(seed: 9)
        checkHalfBatchesSumToTheFullBatch(model, NNTestSupport.uniform([1, 6, 28, 28], seed: 10, range: 0.5), [1, 2, 3, 4, 5, 6],
                                          halves: [model.replica(), model.replica()])
    }

    func testHalfBatchGradientsSumToTheFullBatchGradientForAnMLP() throws {
        let model = try Model.mlp(inputShape: [1, 6, 6], hidden: [16, 8], classes: 3, seed: 5)
        checkHalfBatchesSumToTheFullBatch(model, NNTestSupport.uniform([1, 6, 6, 6], seed: 6), [0, 1, 2, 2, 1, 0],
                                          halves: [model.replica(), model.replica()])
    }
}
