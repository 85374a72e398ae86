import XCTest
@testable import NN
import Tensor

/// What a classifier reads off its logits: predictions, accuracy, softmax probabilities. (The
/// loss's value and gradient are checked in GradientCheckTests.)
final class LossTests: XCTestCase {
    func testPredictionsAccuracyAndProbabilities() {
        let logits = Tensor([3, 2], [0, 1, 5, -5, 2, 2])
        XCTAssertEqual(SoftmaxCrossEntropy.predictions(logits), [1, 0, 0])   // a tie goes to the first class
        XCTAssertEqual(SoftmaxCrossEntropy.accuracy(logits: logits, labels: [1, 1, 0]), 2.0 / 3, accuracy: 1e-12)
        let p = SoftmaxCrossEntropy.probabilities(logits)
        XCTAssertEqual(p.shape, [3, 2])
        XCTAssertEqual(p.data[0], Float(1 / (1 + exp(1.0))), accuracy: 1e-6)
        XCTAssertEqual(p.data[4], 0.5, accuracy: 1e-7)
    }
}
