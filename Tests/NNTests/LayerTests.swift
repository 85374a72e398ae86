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

    func testConvForwardMatchesDirectConvolution() {
        var random = Random(seed: 13)
        let (c, n, h, w, oc, k, pad) = (3, 2, 6, 8, 4, 3, 1)
        let conv = Conv2D(c, oc, kernel: k, padding: pad, random: &random)
        for i in 0..<oc { conv.bias.value.data[i] = Float(i) * 0.1 - 0.15 }
        let x = NNTestSupport.uniform([c, n, h, w], seed: 14)
        let y = conv.forward(x, training: false)
        let (oh, ow) = (h + 2 * pad - k + 1, w + 2 * pad - k + 1)
        XCTAssertEqual(y.shape, [oc, n, oh, ow])
        for o in 0..<oc { for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow {
            var s = Double(conv.bias.value.data[o])
            for ch in 0..<c { for ky in 0..<k { for kx in 0..<k {
                let iy = oy + ky - pad, ix = ox + kx - pad
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                s += Double(conv.weight.value.data[((o * c + ch) * k + ky) * k + kx]) * Double(x.data[((ch * n + b) * h + iy) * w + ix])
            } } }
            XCTAssertEqual(Double(y.data[((o * n + b) * oh + oy) * ow + ox]), s, accuracy: 1e-5)
        } } } }
    }

    func testConvOutputShapeAndDescription() throws {
        var random = Random(seed: 15)
        let conv = Conv2D(1, 16, kernel: 3, padding: 1, activation: .relu, random: &random)
        XCTAssertEqual(conv.description, "Conv((3, 3), 1 => 16, pad=1, relu)")
        XCTAssertEqual(conv.weight.value.shape, [16, 1, 3, 3])
        XCTAssertEqual(try conv.outputShape(for: [1, 28, 28]), [16, 28, 28])
        XCTAssertThrowsError(try conv.outputShape(for: [2, 28, 28]))
        XCTAssertThrowsError(try Conv2D(1, 1, kernel: 5, random: &random).outputShape(for: [1, 3, 3]))
    }

    func testConvReusesBuffersAcrossBatchSizes() {
        var random = Random(seed: 16)
        let conv = Conv2D(2, 3, kernel: 3, padding: 1, random: &random)
        let big = conv.forward(NNTestSupport.uniform([2, 4, 5, 5], seed: 17), training: true).copy()
        _ = conv.forward(NNTestSupport.uniform([2, 1, 5, 5], seed: 18), training: true)
        let again = conv.forward(NNTestSupport.uniform([2, 4, 5, 5], seed: 17), training: true)
        XCTAssertEqual(big.data, again.data, "a smaller batch in between must not leave stale padding behind")
        checkGradients(conv, input: NNTestSupport.uniform([2, 3, 5, 5], seed: 19))
    }

    // MARK: pooling, activations, reshaping, dense

    func testMaxPoolGradientsEvenAndOddSizes() throws {
        let pool = MaxPool2D(2)
        checkGradients(pool, input: NNTestSupport.uniform([2, 3, 8, 6], seed: 20), epsilon: 1e-3)
        checkGradients(pool, input: NNTestSupport.uniform([3, 2, 7, 7], seed: 21), epsilon: 1e-3)
        checkGradients(pool, input: NNTestSupport.uniform([2, 2, 7, 13], seed: 27), epsilon: 1e-3)
        XCTAssertEqual(try pool.outputShape(for: [32, 7, 7]), [32, 3, 3])
        XCTAssertEqual(pool.description, "MaxPool((2, 2))")
        checkGradients(MaxPool2D(3), input: NNTestSupport.uniform([1, 2, 7, 8], seed: 22), epsilon: 1e-3)
    }

    func testMaxPoolPicksTheMaximumAndRoundsDown() {
        let x = Tensor([1, 1, 3, 5], (0..<15).map { Float(($0 * 7) % 15) })
        let y = MaxPool2D(2).forward(x, training: false)
        XCTAssertEqual(y.shape, [1, 1, 1, 2])
        // windows {0,7,5,12} and {14,6,4,11}
        XCTAssertEqual(y.data, [12, 14])
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
        XCTAssertEqual(dense.description, "Dense(7 => 5)")
        XCTAssertEqual(dense.weight.value.shape, [5, 7])
    }

    // MARK: init

    func testGlorotUniformStaysWithinItsLimitAndFillsIt() {
        var random = Random(seed: 28)
        let conv = Conv2D(16, 32, kernel: 3, random: &random)
        let limit = (6.0 / Double(16 * 9 + 32 * 9)).squareRoot()
        let w = conv.weight.value.data.map(Double.init)
        XCTAssertLessThanOrEqual(w.map(abs).max()!, limit)
        XCTAssertGreaterThan(w.map(abs).max()!, 0.98 * limit)
        XCTAssertEqual(w.reduce(0, +) / Double(w.count), 0, accuracy: 0.05 * limit)
        XCTAssertEqual(conv.bias.value.data, [Float](repeating: 0, count: 32))
        var again = Random(seed: 28)
        XCTAssertEqual(Conv2D(16, 32, kernel: 3, random: &again).weight.value.data, conv.weight.value.data, "seeded")
    }
}
