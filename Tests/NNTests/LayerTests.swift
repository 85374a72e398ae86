import XCTest
@testable import NN
import Tensor

final class LayerTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    // MARK: Conv2D

    func testConvGradientsKernel3Pad1WithReLU() {
        var random = Random(seed: 1)
        let conv = Conv2D(3, 4, kernel: 3, padding: 1, activation: .relu, random: &random)
        checkGradients(conv, input: NNTestSupport.uniform([3, 2, 7, 9], seed: 2))
    }

    func testConvGradientsKernel3Pad0WithoutReLU() {
        var random = Random(seed: 3)
        let conv = Conv2D(2, 3, kernel: 3, padding: 0, random: &random)
        checkGradients(conv, input: NNTestSupport.uniform([2, 3, 9, 7], seed: 4))
    }

    func testConvGradientsKernel5Pad1And5Pad0() {
        var random = Random(seed: 5)
        checkGradients(Conv2D(2, 3, kernel: 5, padding: 1, activation: .relu, random: &random), input: NNTestSupport.uniform([2, 2, 11, 9], seed: 6))
        checkGradients(Conv2D(1, 2, kernel: 5, padding: 0, random: &random), input: NNTestSupport.uniform([1, 3, 7, 5], seed: 7))
    }

    func testConvGradientsOnWideRowsAndRectangularKernel() {
        var random = Random(seed: 8)
        // 28- and 37-wide rows take the multi-vector paths of im2col/col2im.
        checkGradients(Conv2D(1, 2, kernel: 3, padding: 1, activation: .relu, random: &random), input: NNTestSupport.uniform([1, 1, 3, 28], seed: 9), epsilon: 1e-4, tolerance: 3e-2)
        checkGradients(Conv2D(2, 2, kernel: (2, 4), padding: 2, random: &random), input: NNTestSupport.uniform([2, 2, 4, 37], seed: 10))
    }

    func testFirstLayerConvSkipsInputGradientButKeepsParameterGradients() {
        var random = Random(seed: 11)
        let conv = Conv2D(1, 3, kernel: 3, padding: 1, activation: .relu, random: &random)
        conv.needsInputGradient = false
        checkGradients(conv, input: NNTestSupport.uniform([1, 2, 6, 6], seed: 12))
    }

    func testConvReusesBuffersAcrossBatchSizes() {
        var random = Random(seed: 16)
        let conv = Conv2D(2, 3, kernel: 3, padding: 1, random: &random)
        _ = conv.forward(NNTestSupport.uniform([2, 4, 5, 5], seed: 17), training: true)
        _ = conv.forward(NNTestSupport.uniform([2, 1, 5, 5], seed: 18), training: true)
        checkGradients(conv, input: NNTestSupport.uniform([2, 3, 5, 5], seed: 19))
    }

    // MARK: pooling, activations, reshaping, dense

    func testMaxPoolGradientsEvenAndOddSizes() throws {
        let pool = MaxPool2D(2)
        checkGradients(pool, input: NNTestSupport.uniform([2, 3, 8, 6], seed: 20), epsilon: 1e-3)
        checkGradients(pool, input: NNTestSupport.uniform([3, 2, 7, 7], seed: 21), epsilon: 1e-3)
        checkGradients(pool, input: NNTestSupport.uniform([2, 2, 7, 13], seed: 27), epsilon: 1e-3)
        checkGradients(MaxPool2D(3), input: NNTestSupport.uniform([1, 2, 7, 8], seed: 22), epsilon: 1e-3)
    }

    func testReLUGradientAndValues() {
        let relu = ReLU()
        checkGradients(relu, input: NNTestSupport.uniform([4, 10], seed: 23), epsilon: 1e-3)
        XCTAssertEqual(relu.forward(Tensor([1, 3], [-1, 0, 2]), training: false).data, [0, 0, 2])
    }

    func testFlattenUsesPyTorchOrderAndInvertsInBackward() {
        // CNHW [2, 3, 2, 2] → [3, 8] with each row = sample's (c, h, w).
        let x = Tensor([2, 3, 2, 2], (0..<24).map(Float.init))
        let y = Flatten().forward(x, training: false)
        XCTAssertEqual(y.shape, [3, 8])
        for b in 0..<3 { for c in 0..<2 { for p in 0..<4 {
            XCTAssertEqual(y.data[b * 8 + c * 4 + p], x.data[(c * 3 + b) * 4 + p])
        } } }
        checkGradients(Flatten(), input: NNTestSupport.uniform([2, 3, 3, 2], seed: 24))
        checkGradients(Flatten(), input: NNTestSupport.uniform([3, 5], seed: 25))
    }

    func testDenseGradients() {
        var random = Random(seed: 26)
        let dense = Dense(7, 5, random: &random)
        for i in 0..<5 { dense.bias.value.data[i] = Float(i) * 0.2 }
        checkGradients(dense, input: NNTestSupport.uniform([4, 7], seed: 27))
    }

}
