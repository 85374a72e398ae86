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
                       ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                        "conv3.weight", "conv3.bias", "fc.weight", "fc.bias"])
        for (r, m) in zip(replica.parameters, model.parameters) {
            XCTAssertTrue(r.value === m.value, "\(m.name): value storage is shared")
            XCTAssertFalse(r.grad === m.grad, "\(m.name): gradient is owned")
        }

        // A change to the model's weights is seen by the replica, both as a value and in its output.
        let x = NNTestSupport.uniform([1, 2, 8, 8], seed: 2)
        let before = replica.forward(x, training: false).copy()
        let fcBias = model.parameters.first { $0.name == "fc.bias" }!
        fcBias.value.data[1] += 0.75
        XCTAssertEqual(replica.parameters.first { $0.name == "fc.bias" }!.value.data[1], fcBias.value.data[1])
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
        XCTAssertFalse((replica.layers[0].layer as! Conv2D).needsInputGradient)
    }

    func testTwoHalfBatchGradientsSumToTheFullBatchGradient() throws {
        let model = try Model.referenceConvNet(inputShape: [1, 12, 12], classes: 5, seed: 3)
        let batch = 8, half = batch / 2, image = 12 * 12
        let x = NNTestSupport.uniform([1, batch, 12, 12], seed: 4)
        let labels: [Int32] = [0, 1, 2, 3, 4, 0, 2, 4]

        model.zeroGrads()
        let g = Tensor([0])
        _ = SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: labels,
                                                normalizer: Float(batch), gradient: g)
        model.backward(g)
        let full = model.parameters.map { $0.grad.copy() }
        model.zeroGrads()

        // First half through the model itself, second half through a replica.
        let replica = model.replica()
        replica.zeroGrads()
        for (k, net) in [model, replica].enumerated() {
            let part = Tensor([1, half, 12, 12], Array(x.data[(k * half * image)..<((k + 1) * half * image)]))
            let grad = Tensor([0])
            _ = SoftmaxCrossEntropy.lossAndGradient(logits: net.forward(part, training: true),
                                                    labels: Array(labels[(k * half)..<((k + 1) * half)]),
                                                    normalizer: Float(batch), gradient: grad)
            net.backward(grad)
        }
        for (k, expected) in full.enumerated() {
            let a = model.parameters[k].grad, b = replica.parameters[k].grad
            let scale = expected.data.map { abs($0) }.max() ?? 0
            XCTAssertGreaterThan(scale, 0, "\(model.parameters[k].name) has a gradient")
            for i in 0..<expected.count {
                let summed = a.data[i] + b.data[i]
                // 1e-4 relative, with a floor for entries that cancel to nearly nothing.
                XCTAssertEqual(summed, expected.data[i], accuracy: 1e-4 * abs(expected.data[i]) + 1e-6 * scale,
                               "\(model.parameters[k].name)[\(i)]")
            }
        }
    }

    func testHalfBatchGradientsSumToTheFullBatchGradientForAnMLP() throws {
        let model = try Model.mlp(inputShape: [1, 6, 6], hidden: [16, 8], classes: 3, seed: 5)
        let x = NNTestSupport.uniform([1, 6, 6, 6], seed: 6)
        let labels: [Int32] = [0, 1, 2, 2, 1, 0]
        let g = Tensor([0])
        model.zeroGrads()
        _ = SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: labels, normalizer: 6, gradient: g)
        model.backward(g)
        let full = model.parameters.map { $0.grad.copy() }
        let replicas = [model.replica(), model.replica()]
        for (k, net) in replicas.enumerated() {
            let part = Tensor([1, 3, 6, 6], Array(x.data[(k * 108)..<((k + 1) * 108)]))
            let grad = Tensor([0])
            _ = SoftmaxCrossEntropy.lossAndGradient(logits: net.forward(part, training: true),
                                                    labels: Array(labels[(k * 3)..<(k * 3 + 3)]), normalizer: 6, gradient: grad)
            net.backward(grad)
        }
        for (k, expected) in full.enumerated() {
            let scale = expected.data.map { abs($0) }.max() ?? 0
            for i in 0..<expected.count {
                let summed = replicas[0].parameters[k].grad.data[i] + replicas[1].parameters[k].grad.data[i]
                XCTAssertEqual(summed, expected.data[i], accuracy: 1e-4 * abs(expected.data[i]) + 1e-6 * scale,
                               "\(model.parameters[k].name)[\(i)]")
            }
        }
    }
}
