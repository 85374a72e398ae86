import XCTest
import CBLAS
@testable import NN
import Tensor

/// Every layer's backward pass, the loss's gradient and the whole model's parameter gradients
/// against finite differences (NNTestSupport.checkGradients / checkFiniteDifferences).
final class GradientCheckTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    private func check(_ layer: Layer, _ input: Tensor, file: StaticString = #filePath, line: UInt = #line) {
        NNTestSupport.checkGradients(layer, input: input, file: file, line: line)
    }

    private func conv(_ c: Int, _ oc: Int, kernel: Int, padding: Int, relu: Bool, seed: UInt64) -> Convolution {
        var random = Random(seed: seed)
        let layer = Convolution(c, oc, kernel: kernel, padding: padding, activation: relu ? .relu : .identity, random: &random)
        // Non-zero biases, so the bias path is exercised with something other than the init.
        for i in 0..<layer.bias.value.count { layer.bias.value.data[i] = random.uniform(-0.2, 0.2) }
        return layer
    }

    // MARK: Convolution, chunked plane (2-D, stride 1)

    func testChunkedPlaneConvolutionGradientsKernel3Pad1WithReLU() {
        let layer = conv(2, 4, kernel: 3, padding: 1, relu: true, seed: 1)
        XCTAssertTrue(layer.needsInputGradient)
        check(layer, NNTestSupport.uniform([2, 3, 7, 5], seed: 2))
    }

    func testChunkedPlaneConvolutionGradientsKernel3Pad0WithoutReLU() {
        let layer = conv(2, 3, kernel: 3, padding: 0, relu: false, seed: 3)
        check(layer, NNTestSupport.uniform([2, 3, 7, 5], seed: 4))
    }

    func testChunkedPlaneConvolutionGradientsKernel5Pad2() {
        let layer = conv(2, 3, kernel: 5, padding: 2, relu: false, seed: 5)
        check(layer, NNTestSupport.uniform([2, 3, 7, 5], seed: 6))
    }

    func testChunkedPlaneConvolutionGradientsKernel5Pad2WithReLU() {
        let layer = conv(2, 3, kernel: 5, padding: 2, relu: true, seed: 7)
        check(layer, NNTestSupport.uniform([2, 3, 7, 5], seed: 8))
    }

    /// Less padding than "same": the output is smaller than the input.
    func testChunkedPlaneConvolutionGradientsKernel5Pad1WithReLUAndPad0WithoutReLU() {
        check(conv(2, 3, kernel: 5, padding: 1, relu: true, seed: 5), NNTestSupport.uniform([2, 2, 11, 9], seed: 6))
        check(conv(1, 2, kernel: 5, padding: 0, relu: false, seed: 7), NNTestSupport.uniform([1, 3, 7, 5], seed: 7))
    }

    /// Rows wider than 8 floats take im2col's multi-step copies and col2im's vector path.
    func testChunkedPlaneConvolutionGradientsOnWideOddRows() {
        let layer = conv(3, 2, kernel: 3, padding: 1, relu: true, seed: 9)
        check(layer, NNTestSupport.uniform([3, 2, 5, 13], seed: 10))
    }

    /// Backward goes chunk by chunk, rebuilding cols for all but the chunk forward left behind.
    func testChunkedPlaneConvolutionGradientsInChunksOfOneAndOfTwoImages() {
        let single = conv(2, 3, kernel: 3, padding: 1, relu: true, seed: 14)
        single.chunkBytes = 1
        check(single, NNTestSupport.uniform([2, 3, 6, 5], seed: 15))
        let pairs = conv(2, 3, kernel: 3, padding: 1, relu: true, seed: 16)
        pairs.chunkBytes = 2 * (2 * 9 * 6 * 5 * 4)   // 5 images: chunks of 2, 2, 1
        check(pairs, NNTestSupport.uniform([2, 5, 6, 5], seed: 17))
    }

    /// Rows of more than 16 floats take col2im's second 16-lane segment (21 and 28 wide).
    func testChunkedPlaneConvolutionGradientsOnRowsWiderThanSixteen() {
        let layer = conv(2, 3, kernel: 3, padding: 1, relu: true, seed: 18)
        check(layer, NNTestSupport.uniform([2, 2, 4, 21], seed: 19))
        check(conv(1, 2, kernel: 3, padding: 1, relu: true, seed: 8), NNTestSupport.uniform([1, 1, 3, 28], seed: 9))
    }

    /// Every kernel set's im2col/col2im (portable, avx2, avx512 as the CPU runs) give the right gradients.
    func testChunkedPlaneConvolutionGradientsWithEveryKernelSet() {
        for set in Kernels.available {
            Kernels.withSet(set) {
                let layer = conv(2, 3, kernel: 3, padding: 1, relu: true, seed: 20)
                layer.chunkBytes = 2 * (2 * 9 * 5 * 21 * 4)
                check(layer, NNTestSupport.uniform([2, 3, 5, 21], seed: 21))
                let wide = conv(2, 3, kernel: 5, padding: 2, relu: false, seed: 22)
                check(wide, NNTestSupport.uniform([2, 2, 7, 5], seed: 23))
            }
        }
    }

    /// 3×5 with padding 1, and 2×4 with padding 2 (as large as the kernel's height: the output is
    /// taller than the input) on 37-wide rows (three 16-lane segments).
    func testChunkedPlaneConvolutionGradientsRectangularKernels() {
        var random = Random(seed: 12)
        let layer = Convolution(2, 3, kernel: (height: 3, width: 5), padding: 1, random: &random)
        check(layer, NNTestSupport.uniform([2, 3, 7, 9], seed: 13))
        let wide = Convolution(2, 2, kernel: (height: 2, width: 4), padding: 2, random: &random)
        for i in 0..<wide.bias.value.count { wide.bias.value.data[i] = random.uniform(-0.2, 0.2) }
        check(wide, NNTestSupport.uniform([2, 2, 4, 37], seed: 10))
    }

    /// A model's first conv skips dx (nobody reads it); its weight and bias gradients must not
    /// depend on that.
    func testChunkedPlaneConvolutionParameterGradientsWhenTheInputGradientIsSkipped() {
        let layer = conv(1, 3, kernel: 3, padding: 1, relu: true, seed: 11)
        layer.needsInputGradient = false
        check(layer, NNTestSupport.uniform([1, 2, 6, 6], seed: 12))
    }

    /// Forward on a larger and then a smaller batch first: backward must not use stale buffers.
    func testChunkedPlaneConvolutionGradientsAfterTheBatchSizeChanges() {
        let layer = conv(2, 3, kernel: 3, padding: 1, relu: false, seed: 16)
        _ = layer.forward(NNTestSupport.uniform([2, 4, 5, 5], seed: 17), training: true)
        _ = layer.forward(NNTestSupport.uniform([2, 1, 5, 5], seed: 18), training: true)
        check(layer, NNTestSupport.uniform([2, 3, 5, 5], seed: 19))
    }

    // MARK: Pooling (square max), ReLU, Flatten, Dense

    func testSquareMaxPoolInputGradient2x2EvenSize() {
        check(Pooling(kernel: [2, 2]), NNTestSupport.distinct([2, 3, 8, 10], seed: 14))
    }

    func testSquareMaxPoolInputGradient2x2OddSize7To3() {
        let pool = Pooling(kernel: [2, 2])
        let x = NNTestSupport.distinct([2, 3, 7, 7], seed: 15)
        XCTAssertEqual(pool.forward(x, training: true).shape, [2, 3, 3, 3])
        check(pool, x)
    }

    func testSquareMaxPoolInputGradientWindow3() {
        check(Pooling(kernel: [3, 3]), NNTestSupport.distinct([2, 3, 7, 9], seed: 16))
    }

    func testReLUValuesAndInputGradientAwayFromZero() {
        XCTAssertEqual(ReLU().forward(Tensor([1, 3], [-1, 0, 2]), training: false).data, [0, 0, 2])
        check(ReLU(), NNTestSupport.awayFromZero([2, 3, 7, 5], seed: 17))
    }

    func testFlattenBackwardIsTheExactInverseReordering() {
        let flatten = Flatten()
        let (c, n, h, w) = (2, 3, 7, 5)
        let x = NNTestSupport.uniform([c, n, h, w], seed: 18)
        let y = flatten.forward(x, training: true)
        XCTAssertEqual(y.shape, [n, c * h * w])
        let dout = NNTestSupport.uniform([n, c * h * w], seed: 19)
        let dx = flatten.backward(dout)
        XCTAssertEqual(dx.shape, [c, n, h, w])
        for ch in 0..<c {
            for b in 0..<n {
                for iy in 0..<h {
                    for ix in 0..<w {
                        let xi = ((ch * n + b) * h + iy) * w + ix
                        let yi = b * (c * h * w) + (ch * h + iy) * w + ix
                        XCTAssertEqual(y.data[yi], x.data[xi])   // PyTorch's (c, h, w) flatten order
                        XCTAssertEqual(dx.data[xi], dout.data[yi])
                    }
                }
            }
        }
        // Flatten is linear and a pure copy: its finite differences are exact too; an input that
        // is already [N, F] passes through both ways.
        check(Flatten(), x)
        check(Flatten(), NNTestSupport.uniform([3, 5], seed: 25))
    }

    func testDenseGradients() {
        var random = Random(seed: 20)
        let layer = Dense(13, 6, random: &random)
        for i in 0..<layer.bias.value.count { layer.bias.value.data[i] = random.uniform(-0.2, 0.2) }
        check(layer, NNTestSupport.uniform([4, 13], seed: 21))
    }

    // MARK: SoftmaxCrossEntropy

    /// The summed loss against a Double computation, each gradient row summing to 0, and the
    /// gradient against finite differences of loss/normalizer at every logit. Returns the loss.
    @discardableResult
    private func checkSoftmaxCrossEntropy(_ logits: Tensor, _ labels: [Int32], normalizer: Float,
                                          file: StaticString = #filePath, line: UInt = #line) -> Double {
        let (n, k) = (logits.shape[0], logits.shape[1])
        let gradient = Tensor([0])
        let total = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels, normalizer: normalizer, gradient: gradient)
        let analytic = gradient.copy()
        XCTAssertEqual(analytic.shape, [n, k], file: file, line: line)
        XCTAssertTrue(analytic.data.allSatisfy(\.isFinite), file: file, line: line)
        XCTAssertEqual(total, SoftmaxCrossEntropy.loss(logits: logits, labels: labels), accuracy: 1e-9, file: file, line: line)
        let expected = meanCrossEntropyInDouble(logits, labels) * Double(n)
        XCTAssertEqual(total, expected, accuracy: 1e-5 * expected, file: file, line: line)
        for row in 0..<n {
            XCTAssertEqual((0..<k).map { Double(analytic.data[row * k + $0]) }.reduce(0, +), 0, accuracy: 1e-6,
                           "row \(row) of the gradient sums to 0", file: file, line: line)
        }
        var random = Random(seed: 1)
        NNTestSupport.checkFiniteDifferences(logits, analytic, "dlogits", samples: logits.count, atol: 1e-4,
                                             random: &random, file: file, line: line) {
            (SoftmaxCrossEntropy.loss(logits: logits, labels: labels) / Double(normalizer), [])
        }
        return total
    }

    func testSoftmaxCrossEntropyGradientIsTheDerivativeOfTheLossOverTheNormalizer() {
        checkSoftmaxCrossEntropy(NNTestSupport.uniform([5, 7], seed: 22, range: 3), [0, 6, 3, 3, 1], normalizer: 5)
    }

    /// Logits near 1000 overflow a naive exp; the row max is subtracted first. The normalizer is
    /// not the row count here (a slice of a larger batch).
    func testSoftmaxCrossEntropyOfLogitsNear1000IsExactAndFinite() {
        let loss = checkSoftmaxCrossEntropy(Tensor([2, 3], [1, 2, 3, 1000, 1000, 990]), [2, 0], normalizer: 4)
        let row0 = -log(exp(3.0) / (exp(1.0) + exp(2.0) + exp(3.0)))
        let row1 = -log(1 / (2 + exp(-10.0)))
        XCTAssertEqual(loss, row0 + row1, accuracy: 1e-5)
    }

    // MARK: whole model

    /// Parameter gradients of referenceConvNet through the mean loss of a batch of 3, on 8×8
    /// images (pools 8 → 4 → 2 → 1) and 12×12 ones (12 → 6 → 3 → 1: the last pool rounds down).
    /// A step that changes any ReLU sign or any pooling window's arg-max crosses a kink (the loss
    /// is not differentiable in between): thousands of activations sit within 1e-3 of one, so
    /// steps go down to 1e-4 (and atol up to 1e-3 with them) before a coordinate is skipped.
    func testReferenceConvNetParameterGradientsThroughTheLoss() throws {
        try checkReferenceConvNetGradients(side: 8, labels: [2, 0, 3], seed: 23)
        try checkReferenceConvNetGradients(side: 12, labels: [0, 3, 1], seed: 3)
    }

    private func checkReferenceConvNetGradients(side: Int, labels: [Int32], seed: UInt64,
                                                file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try Model.referenceConvNet(inputShape: [1, side, side], classes: 4, seed: seed)
        var random = Random(seed: seed + 1)
        for p in model.parameters where p.name.hasSuffix(".bias") {
            for i in 0..<p.value.count { p.value.data[i] = random.uniform(-0.1, 0.1) }
        }
        let batch = labels.count
        let x = NNTestSupport.uniform([1, batch, side, side], seed: seed + 2)
        let dlogits = Tensor([0])
        model.zeroGrads()
        _ = SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: labels,
                                                normalizer: Float(batch), gradient: dlogits)
        model.backward(dlogits)
        let analytic = model.parameters.map { $0.grad.copy() }

        // Layer by layer (sharing the weights), so every ReLU sign and pooling window is seen.
        let unfused = Model.unfusedReplica(of: model)
        XCTAssertTrue(unfused.layers.contains { $0.layer is Pooling }, file: file, line: line)
        func evaluate() -> (Double, [Int]) {
            var h = x
            var pattern: [Int] = []
            for (_, layer) in unfused.layers {
                if layer is Pooling { pattern += NNTestSupport.naiveMaxPool(h, size: 2).winners }
                h = layer.forward(h, training: true)
                if (layer as? Convolution)?.relu == true { pattern += h.data.map { $0 > 0 ? 1 : 0 } }
            }
            return (meanCrossEntropyInDouble(h, labels), pattern)
        }
        for (p, g) in zip(model.parameters, analytic) {
            NNTestSupport.checkFiniteDifferences(p.value, g, "\(side)×\(side) \(p.name)", atol: 1e-4,
                                                 steps: NNTestSupport.finiteDifferenceSteps + [3e-4, 1e-4], random: &random,
                                                 file: file, line: line, loss: evaluate)
        }
    }

    /// Mean softmax cross-entropy of logits [N, K], computed in Double (less rounding noise in
    /// the difference quotient than the Float loss).
    private func meanCrossEntropyInDouble(_ logits: Tensor, _ labels: [Int32]) -> Double {
        let (n, k) = (logits.shape[0], logits.shape[1])
        var total = 0.0
        for row in 0..<n {
            let z = (0..<k).map { Double(logits.data[row * k + $0]) }
            let top = z.max()!
            total += log(z.map { exp($0 - top) }.reduce(0, +)) + top - z[Int(labels[row])]
        }
        return total / Double(n)
    }
}
