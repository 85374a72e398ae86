import XCTest
@testable import NN
import Tensor

final class LossAndModelTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    func testPredictionsAccuracyAndProbabilities() {
        let logits = Tensor([3, 2], [0, 1, 5, -5, 2, 2])
        XCTAssertEqual(SoftmaxCrossEntropy.predictions(logits), [1, 0, 0])
        XCTAssertEqual(SoftmaxCrossEntropy.accuracy(logits: logits, labels: [1, 1, 0]), 2.0 / 3, accuracy: 1e-12)
        let p = SoftmaxCrossEntropy.probabilities(logits)
        XCTAssertEqual(p.shape, [3, 2])
        XCTAssertEqual(p.data[0], Float(1 / (1 + exp(1.0))), accuracy: 1e-6)
        XCTAssertEqual(p.data[4], 0.5, accuracy: 1e-7)
    }

    func testHalfBatchReplicasSumToTheFullBatchGradient() throws {
        let model = try Model.referenceConvNet(seed: 9)
        let x = NNTestSupport.uniform([1, 6, 28, 28], seed: 10, range: 0.5)
        let labels: [Int32] = [1, 2, 3, 4, 5, 6]
        let g = Tensor([0])
        _ = SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: labels, normalizer: 6, gradient: g)
        model.backward(g)
        let full = model.parameters.map { $0.grad.copy() }

        let replicas = [model.replica(), model.replica()]
        for (r, replica) in replicas.enumerated() {
            XCTAssertTrue(zip(replica.parameters, model.parameters).allSatisfy { $0.value === $1.value && $0.grad !== $1.grad && $0.name == $1.name })
            let half = Tensor([1, 3, 28, 28], Array(x.data[(r * 3 * 784)..<((r + 1) * 3 * 784)]))
            let grad = Tensor([0])
            _ = SoftmaxCrossEntropy.lossAndGradient(logits: replica.forward(half, training: true), labels: Array(labels[(r * 3)..<(r * 3 + 3)]),
                                                    normalizer: 6, gradient: grad)
            replica.backward(grad)
        }
        for (k, p) in full.enumerated() {
            for i in 0..<p.count {
                let summed = replicas[0].parameters[k].grad.data[i] + replicas[1].parameters[k].grad.data[i]
                XCTAssertEqual(summed, p.data[i], accuracy: 1e-5 + 1e-4 * abs(p.data[i]), "\(model.parameters[k].name)[\(i)]")
            }
        }
    }

    func testReferenceModelNamesShapesSummaryAndDescription() throws {
        let model = try Model.referenceConvNet(seed: 1)
        XCTAssertEqual(model.parameters.map(\.name), ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                                       "conv3.weight", "conv3.bias", "fc.weight", "fc.bias"])
        XCTAssertEqual(model.parameters.map(\.value.shape), [[16, 1, 3, 3], [16], [32, 16, 3, 3], [32], [32, 32, 3, 3], [32], [10, 288], [10]])
        XCTAssertEqual(model.parameterCount, 160 + 4640 + 9248 + 2890)
        XCTAssertEqual(model.summary().map(\.outputShape), [[16, 28, 28], [16, 14, 14], [32, 14, 14], [32, 7, 7], [32, 7, 7], [32, 3, 3], [288], [10]])
        XCTAssertEqual(model.summary().map(\.parameters), [160, 0, 4640, 0, 9248, 0, 0, 2890])
        XCTAssertTrue(model.description.hasPrefix("Chain(\n  Conv((3, 3), 1 => 16, pad=1, relu),\n  MaxPool((2, 2)),"))
        XCTAssertTrue(model.description.hasSuffix("  Dense(288 => 10),\n)"))
        XCTAssertEqual(try model.validate(), [10])
        XCTAssertEqual(model.forward(NNTestSupport.uniform([1, 5, 28, 28], seed: 2), training: false).shape, [5, 10])
    }

    func testMLPNamesAndItLearns() throws {
        let model = try Model.mlp(inputShape: [1, 4, 4], hidden: [8], classes: 2, seed: 1)
        XCTAssertEqual(model.parameters.map(\.name), ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
        // Class = whether the left half is brighter than the right half.
        var random = Random(seed: 2)
        let x = Tensor([1, 32, 4, 4])
        var labels: [Int32] = []
        for b in 0..<32 {
            let label = Int32(b % 2)
            for i in 0..<16 { x.data[b * 16 + i] = random.uniform(0, 0.5) + ((i % 4 < 2) == (label == 1) ? 0.5 : 0) }
            labels.append(label)
        }
        let adam = Adam(learningRate: 0.01)
        let g = Tensor([0])
        var first = 0.0, last = 0.0
        for step in 0..<60 {
            model.zeroGrads()
            let loss = SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: labels, normalizer: 32, gradient: g)
            model.backward(g)
            adam.step(model.parameters)
            if step == 0 { first = loss } else { last = loss }
        }
        XCTAssertLessThan(last, first / 4)
        XCTAssertEqual(SoftmaxCrossEntropy.accuracy(logits: model.forward(x, training: false), labels: labels), 1)
    }

    func testImpossibleModelsAreRejectedWithAReason() {
        XCTAssertThrowsError(try Model.referenceConvNet(inputShape: [1, 4, 4], seed: 1)) { error in
            XCTAssertTrue("\(error)".contains("8×8"), "\(error)")
        }
        XCTAssertThrowsError(try Model(inputShape: [1, 28, 28], layers: [("fc", Dense(10, 5, random: &Self.random))])) { error in
            XCTAssertTrue("\(error)".contains("layer fc"), "\(error)")
        }
        XCTAssertThrowsError(try Model(inputShape: [3, 28, 28], layers: [("conv1", Conv2D(1, 2, kernel: 3, random: &Self.random))]))
        XCTAssertThrowsError(try Model.mlp(inputShape: [1, 28, 28], hidden: [0], classes: 10, seed: 1))
        XCTAssertThrowsError(try Model.mlp(inputShape: [1, 28, 28], classes: 0, seed: 1))
    }
    nonisolated(unsafe) static var random = Random(seed: 1)
}
