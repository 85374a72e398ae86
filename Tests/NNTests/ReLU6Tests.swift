import XCTest
@testable import NN
import Tensor

/// `relu6` (PyTorch's nn.ReLU6, mobilenet_v2's activation): min(max(x, 0), 6) with slope 1
/// strictly inside (0, 6); inline after conv and dense, or a layer of its own.
final class ReLU6Tests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    func testReLU6ClampsToZeroAndSixAndItsSlopeIsOneOnlyInside() {
        let layer = ElementwiseActivation(.relu6)
        XCTAssertEqual(layer.description, "relu6")
        let x = Tensor([1, 1, 8], [-2, 0, 0.5, 3, 5.9, 6, 7.5, 100])
        XCTAssertEqual(layer.forward(x, training: true).data, [0, 0, 0.5, 3, 5.9, 6, 6, 6])
        let dy = Tensor([1, 1, 8], [1, 2, 3, 4, 5, 6, 7, 8])
        // PyTorch's hardtanh backward: 0 at the kinks themselves (0 and 6).
        XCTAssertEqual(layer.backward(dy).data, [0, 0, 3, 4, 5, 0, 0, 0])
        XCTAssertEqual(dy.data, [1, 2, 3, 4, 5, 6, 7, 8], "backward only reads its gradient")
    }

    /// Values over [−3, 9], at least 0.1 from either kink, in 1-, 2- and 3-D shapes.
    func testReLU6GradientsByFiniteDifferences() {
        for (index, shape) in [[2, 3, 7], [2, 2, 3, 4], [1, 2, 2, 3, 3]].enumerated() {
            let x = NNTestSupport.uniform(shape, seed: UInt64(50 + index), range: 6)
            for i in 0..<x.count {
                var v = x.data[i] + 3
                for kink: Float in [0, 6] where abs(v - kink) < 0.1 { v = kink + (v < kink ? -0.1 : 0.1) }
                x.data[i] = v
            }
            XCTAssertTrue(x.data.contains { $0 < 0 } && x.data.contains { $0 > 6 } && x.data.contains { $0 > 0 && $0 < 6 })
            NNTestSupport.checkGradients(ElementwiseActivation(.relu6), input: x)
        }
    }

    func testReLU6InlineAndOnItsOwnInASpec() throws {
        let text = "conv 3 8 relu6 | conv 3 8 stride 2 groups 8 | relu6 | dense 16 relu6 | dense 10"
        let spec = try ModelSpec(parsing: "CONV 3 8 RELU6 | conv 3 8 stride 2 groups 8 | relu6 | linear 16 relu6 | dense 10")
        XCTAssertEqual(spec.text, text)
        XCTAssertEqual(try ModelSpec(parsing: spec.text), spec)
        let model = try spec.compile(inputShape: [3, 8, 8], classes: 10, seed: 1)
        // Only relu fuses into a convolution; relu6 stays a module (and layer) of its own, as in PyTorch.
        XCTAssertEqual(model.layers.map { "\(type(of: $0.layer))" },
                       ["Convolution", "ElementwiseActivation", "Convolution", "ElementwiseActivation", "Flatten", "Dense",
                        "ElementwiseActivation", "Dense"])
        XCTAssertEqual(model.layers.compactMap { ($0.layer as? ElementwiseActivation)?.kind }, [.relu6, .relu6, .relu6])
        XCTAssertEqual(model.modules.map(\.text), ["conv 3 8", "relu6", "conv 3 8 stride 2 groups 8", "relu6", "flatten", "dense 16",
                                                   "relu6", "dense 10"])
        let x = NNTestSupport.uniform([3, 2, 8, 8], seed: 3, range: 20)
        _ = model.forward(x, training: true)
        var seen: [Float] = []
        _ = model.forward(x, training: false) { index, output in if index == 1 { seen = output.data } }
        XCTAssertTrue(seen.allSatisfy { $0 >= 0 && $0 <= 6 } && seen.contains(6), "the first relu6 clamps to [0, 6]")
    }

    func testAnUnknownWordAfterAConvolutionListsRelu6AmongTheActivations() throws {
        do {
            _ = try ModelSpec(parsing: "conv 3 8 relu7")
            XCTFail("relu7 parsed")
        } catch let error as SpecError {
            XCTAssertTrue(error.message.contains("(an activation goes last: relu, relu6, leakyrelu, tanh, sigmoid, gelu)"), error.message)
        }
    }
}
