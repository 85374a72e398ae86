import XCTest
import NN
import Tensor
@testable import Training

/// `set clip NORM`: torch.nn.utils.clip_grad_norm_ over the whole minibatch's gradient.
final class GradientClippingTests: XCTestCase {
    /// Two parameters whose gradients are (3, 0) and (0, 4): one vector of norm 5.
    func parameters() -> [Parameter] {
        let a = Parameter(name: "a", value: Tensor([2])), b = Parameter(name: "b", value: Tensor([2]))
        a.grad.data = [3, 0]
        b.grad.data = [0, 4]
        return [a, b]
    }

    func testALongerGradientIsScaledDownToTheNormAsAWhole() {
        let p = parameters()
        XCTAssertEqual(GradientClipping.clip(p, maxNorm: 1), 5)
        let scale: Float = 1 / (5 + 1e-6)   // torch's coefficient, the same for every parameter
        XCTAssertEqual(p[0].grad.data, [3 * scale, 0])
        XCTAssertEqual(p[1].grad.data, [0, 4 * scale])
        XCTAssertEqual(GradientClipping.norm(p), 1, accuracy: 1e-6)
    }

    func testAShorterGradientIsLeftAsItIs() {
        let p = parameters()
        XCTAssertEqual(GradientClipping.clip(p, maxNorm: 10), 5)
        XCTAssertEqual(p[0].grad.data.map(\.bitPattern), [Float(3).bitPattern, 0])
        XCTAssertEqual(p[1].grad.data.map(\.bitPattern), [0, Float(4).bitPattern])
    }

    func testTrainingWithClipIsRepeatableAndClips() throws {
        func weights(clip: Float?, threads: Int = 2) throws -> [UInt32] {
            var settings = Hyperparameters()
            settings.batchSize = 32
            settings.target = 2
            settings.threads = threads
            settings.clipNorm = clip
            let model = try Model.referenceConvNet(inputShape: [1, 8, 8], classes: 4, seed: 1)
            let trainer = try Trainer(model: model, dataset: quadrantDataset(), settings: settings)
            trainer.train(epochs: 1) { _ in }
            return trainer.model.parameters.flatMap(\.value.data).map(\.bitPattern)
        }
        let clipped = try weights(clip: 0.05)
        XCTAssertEqual(clipped, try weights(clip: 0.05), "same seed and threads, same bits")
        XCTAssertNotEqual(clipped, try weights(clip: nil), "a norm this small must clip")
        // A limit no gradient reaches changes nothing.
        XCTAssertEqual(try weights(clip: 1e6), try weights(clip: nil))
    }
}
