import XCTest
import CBLAS
@testable import NN
import Tensor

// MARK: - finite-difference gradient checks

/// Central differences (ε = 1e-2 on Float32 values) of the Double-accumulated scalar
/// L = Σ out·r, r a fixed random projection, against each layer's backward, at ~20 sampled
/// coordinates per tensor (input, weight, bias).
final class GradientCheckTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    let epsilon: Float = 1e-2
    /// Steps tried in turn when the output's kink pattern changes between x − ε and x + ε.
    let steps: [Float] = [1e-2, 3e-3, 1e-3]
    let rtol = 1e-2
    let atol = 1e-3

    /// Checks dL/d(input) and dL/d(every parameter) of `layer` at `input`.
    /// With `kinks`, a sample whose ±ε step changes the output's sign pattern (a ReLU kink lies
    /// in between, where the difference quotient is not the derivative) is skipped.
    private func checkLayer(_ layer: Layer, input: Tensor, kinks: Bool, checkInput: Bool = true,
                            samples: Int = 20, seed: UInt64 = 11,
                            file: StaticString = #filePath, line: UInt = #line) {
        var random = Random(seed: seed)
        let out = layer.forward(input, training: true)
        let outShape = out.shape
        let r = (0..<out.count).map { _ in random.uniform(-1, 1) }

        // Analytic: zeroed gradients, a fresh copy of dout (Conv2D masks it in place).
        for p in layer.parameters { p.grad.zero() }
        let dx = layer.backward(Tensor(outShape, r)).copy()
        let parameterGradients = layer.parameters.map { $0.grad.copy() }
        if checkInput { XCTAssertEqual(dx.shape, input.shape, "\(layer): input gradient shape", file: file, line: line) }

        func evaluate() -> (Double, [Bool]) {
            let y = layer.forward(input, training: true)
            return (NNTestSupport.project(y, r), kinks ? y.data.map { $0 > 0 } : [])
        }
        func compare(_ tensor: Tensor, _ analytic: Tensor, _ what: String) {
            XCTAssertEqual(tensor.count, analytic.count, "\(what): gradient count", file: file, line: line)
            guard tensor.count == analytic.count else { return }
            var checked = 0, attempts = 0
            // Every coordinate when the tensor is small, else a random sample.
            let exhaustive = tensor.count <= samples
            while checked < min(samples, tensor.count), attempts < samples * 10 {
                let i = exhaustive ? attempts : Int(random.next() % UInt64(tensor.count))
                attempts += 1
                if exhaustive && attempts > tensor.count { break }
                let saved = tensor.data[i]
                // ε = 1e-2; where a kink lies within ±ε, a smaller step (down to 1e-3), else skip.
                var numericValue: Double?
                for step in steps {
                    tensor.data[i] = saved + step; let (plus, plusSigns) = evaluate()
                    tensor.data[i] = saved - step; let (minus, minusSigns) = evaluate()
                    tensor.data[i] = saved
                    if plusSigns == minusSigns { numericValue = (plus - minus) / (2 * Double(step)); break }
                }
                guard let numeric = numericValue else { continue }
                checked += 1
                let exact = Double(analytic.data[i])
                XCTAssertTrue(NNTestSupport.close(exact, numeric, rtol: rtol, atol: atol),
                              "\(what)[\(i)]: backward \(exact), finite difference \(numeric)", file: file, line: line)
            }
            XCTAssertGreaterThanOrEqual(checked, min(samples, tensor.count) / 2,
                                        "\(what): too few usable samples (\(checked))", file: file, line: line)
        }
        if checkInput { compare(input, dx, "\(layer) dx") }
        for (p, g) in zip(layer.parameters, parameterGradients) { compare(p.value, g, "\(layer) d\(p.name)") }
        // Leave the layer's caches consistent with the unperturbed input.
        _ = layer.forward(input, training: true)
    }

    private func conv(_ c: Int, _ oc: Int, kernel: Int, padding: Int, relu: Bool, seed: UInt64) -> Conv2D {
        var random = Random(seed: seed)
        let layer = Conv2D(c, oc, kernel: kernel, padding: padding, activation: relu ? .relu : .identity, random: &random)
        // Non-zero biases, so the bias path is exercised with something other than the init.
        for i in 0..<layer.bias.value.count { layer.bias.value.data[i] = random.uniform(-0.2, 0.2) }
        return layer
    }

    // MARK: Conv2D

    func testConv2DGradientsKernel3Pad1WithReLU() {
        let layer = conv(2, 4, kernel: 3, padding: 1, relu: true, seed: 1)
        XCTAssertTrue(layer.needsInputGradient)
        checkLayer(layer, input: NNTestSupport.uniform([2, 3, 7, 5], seed: 2), kinks: true)
    }

    func testConv2DGradientsKernel3Pad0WithoutReLU() {
        let layer = conv(2, 3, kernel: 3, padding: 0, relu: false, seed: 3)
        checkLayer(layer, input: NNTestSupport.uniform([2, 3, 7, 5], seed: 4), kinks: false)
    }

    func testConv2DGradientsKernel5Pad2() {
        let layer = conv(2, 3, kernel: 5, padding: 2, relu: false, seed: 5)
        checkLayer(layer, input: NNTestSupport.uniform([2, 3, 7, 5], seed: 6), kinks: false)
    }

    func testConv2DGradientsKernel5Pad2WithReLU() {
        let layer = conv(2, 3, kernel: 5, padding: 2, relu: true, seed: 7)
        checkLayer(layer, input: NNTestSupport.uniform([2, 3, 7, 5], seed: 8), kinks: true)
    }

    /// Rows wider than 8 floats take im2col's multi-step copies and col2im's vector path.
    func testConv2DGradientsOnWideOddRows() {
        let layer = conv(3, 2, kernel: 3, padding: 1, relu: true, seed: 9)
        checkLayer(layer, input: NNTestSupport.uniform([3, 2, 5, 13], seed: 10), kinks: true)
    }

    /// Backward goes chunk by chunk, rebuilding cols for all but the chunk forward left behind.
    func testConv2DGradientsInChunksOfOneAndOfTwoImages() {
        let single = conv(2, 3, kernel: 3, padding: 1, relu: true, seed: 14)
        single.chunkBytes = 1
        checkLayer(single, input: NNTestSupport.uniform([2, 3, 6, 5], seed: 15), kinks: true)
        let pairs = conv(2, 3, kernel: 3, padding: 1, relu: true, seed: 16)
        pairs.chunkBytes = 2 * (2 * 9 * 6 * 5 * 4)   // 5 images: chunks of 2, 2, 1
        checkLayer(pairs, input: NNTestSupport.uniform([2, 5, 6, 5], seed: 17), kinks: true)
    }

    /// Rows of more than 16 floats take col2im's second 16-lane segment.
    func testConv2DGradientsOnRowsWiderThanSixteen() {
        let layer = conv(2, 3, kernel: 3, padding: 1, relu: true, seed: 18)
        checkLayer(layer, input: NNTestSupport.uniform([2, 2, 4, 21], seed: 19), kinks: true)
    }

    /// The portable im2col/col2im (CPUs without AVX-512) give the same gradients.
    func testConv2DGradientsWithThePortableKernels() {
        ollie_conv_kernels_use_avx512(0)
        defer { ollie_conv_kernels_use_avx512(1) }
        let layer = conv(2, 3, kernel: 3, padding: 1, relu: true, seed: 20)
        layer.chunkBytes = 2 * (2 * 9 * 5 * 21 * 4)
        checkLayer(layer, input: NNTestSupport.uniform([2, 3, 5, 21], seed: 21), kinks: true)
        let wide = conv(2, 3, kernel: 5, padding: 2, relu: false, seed: 22)
        checkLayer(wide, input: NNTestSupport.uniform([2, 2, 7, 5], seed: 23), kinks: false)
    }

    func testConv2DGradientsRectangularKernel() {
        var random = Random(seed: 12)
        let layer = Conv2D(2, 3, kernel: (height: 3, width: 5), padding: 1, random: &random)
        checkLayer(layer, input: NNTestSupport.uniform([2, 3, 7, 9], seed: 13), kinks: false)
    }

    // MARK: MaxPool2D, ReLU, Flatten, Dense

    func testMaxPool2DInputGradient2x2EvenSize() {
        checkLayer(MaxPool2D(2), input: NNTestSupport.distinct([2, 3, 8, 10], seed: 14), kinks: false)
    }

    func testMaxPool2DInputGradient2x2OddSize7To3() {
        let pool = MaxPool2D(2)
        let x = NNTestSupport.distinct([2, 3, 7, 7], seed: 15)
        XCTAssertEqual(pool.forward(x, training: true).shape, [2, 3, 3, 3])
        checkLayer(pool, input: x, kinks: false)
    }

    func testMaxPool2DInputGradientWindow3() {
        checkLayer(MaxPool2D(3), input: NNTestSupport.distinct([2, 3, 7, 9], seed: 16), kinks: false)
    }

    func testReLUInputGradientAwayFromZero() {
        checkLayer(ReLU(), input: NNTestSupport.awayFromZero([2, 3, 7, 5], seed: 17), kinks: false)
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
        // Flatten is linear and a pure copy: its finite differences are exact too.
        checkLayer(Flatten(), input: x, kinks: false)
    }

    func testDenseGradients() {
        var random = Random(seed: 20)
        let layer = Dense(13, 6, random: &random)
        for i in 0..<layer.bias.value.count { layer.bias.value.data[i] = random.uniform(-0.2, 0.2) }
        checkLayer(layer, input: NNTestSupport.uniform([4, 13], seed: 21), kinks: false)
    }

    // MARK: SoftmaxCrossEntropy

    func testSoftmaxCrossEntropyGradientIsTheDerivativeOfTheLossOverTheNormalizer() {
        let (n, k) = (5, 7)
        let logits = NNTestSupport.uniform([n, k], seed: 22, range: 3)
        let labels: [Int32] = [0, 6, 3, 3, 1]
        let gradient = Tensor([0])
        let normalizer = Float(n)
        let total = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels, normalizer: normalizer, gradient: gradient)
        let analytic = gradient.copy()
        XCTAssertEqual(analytic.shape, [n, k])
        XCTAssertEqual(total, SoftmaxCrossEntropy.loss(logits: logits, labels: labels), accuracy: 1e-9)

        // The summed loss by hand, in Double.
        var expected = 0.0
        for row in 0..<n {
            let z = (0..<k).map { Double(logits.data[row * k + $0]) }
            let top = z.max()!
            expected += log(z.map { exp($0 - top) }.reduce(0, +)) + top - z[Int(labels[row])]
        }
        XCTAssertEqual(total, expected, accuracy: 1e-5 * expected)

        // Each row of the gradient sums to 0.
        for row in 0..<n {
            XCTAssertEqual((0..<k).map { Double(analytic.data[row * k + $0]) }.reduce(0, +), 0, accuracy: 1e-6)
        }
        for i in 0..<logits.count {
            let saved = logits.data[i]
            logits.data[i] = saved + epsilon
            let plus = SoftmaxCrossEntropy.loss(logits: logits, labels: labels) / Double(normalizer)
            logits.data[i] = saved - epsilon
            let minus = SoftmaxCrossEntropy.loss(logits: logits, labels: labels) / Double(normalizer)
            logits.data[i] = saved
            let numeric = (plus - minus) / (2 * Double(epsilon))
            XCTAssertTrue(NNTestSupport.close(Double(analytic.data[i]), numeric, rtol: rtol, atol: 1e-4),
                          "dlogits[\(i)]: backward \(analytic.data[i]), finite difference \(numeric)")
        }
    }

    // MARK: whole model

    /// Parameter gradients of referenceConvNet([1, 8, 8], 4 classes) through the mean loss of a
    /// batch of 3. Samples whose ±ε step changes any ReLU sign or any pooling window's arg-max
    /// are skipped (the loss is not differentiable in between).
    func testReferenceConvNetParameterGradientsThroughTheLoss() throws {
        let model = try Model.referenceConvNet(inputShape: [1, 8, 8], classes: 4, seed: 23)
        var random = Random(seed: 24)
        for p in model.parameters where p.name.hasSuffix(".bias") {
            for i in 0..<p.value.count { p.value.data[i] = random.uniform(-0.1, 0.1) }
        }
        let batch = 3
        let x = NNTestSupport.uniform([1, batch, 8, 8], seed: 25)
        let labels: [Int32] = [2, 0, 3]
        let dlogits = Tensor([0])
        model.zeroGrads()
        _ = SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: labels,
                                                normalizer: Float(batch), gradient: dlogits)
        model.backward(dlogits)
        let analytic = model.parameters.map { $0.grad.copy() }

        func evaluate() -> (Double, [Int]) {
            var h = x
            var pattern: [Int] = []
            for (_, layer) in model.layers {
                if layer is MaxPool2D { pattern += argmaxPattern(h, size: 2) }
                h = layer.forward(h, training: true)
                if (layer as? Conv2D)?.relu == true { pattern += h.data.map { $0 > 0 ? 1 : 0 } }
            }
            return (meanCrossEntropyInDouble(h, labels), pattern)
        }

        for (p, g) in zip(model.parameters, analytic) {
            var checked = 0, attempts = 0
            let wanted = min(20, p.value.count)
            while checked < wanted, attempts < 400 {
                attempts += 1
                let i = Int(random.next() % UInt64(p.value.count))
                let saved = p.value.data[i]
                var numericValue: Double?
                for step in steps {
                    p.value.data[i] = saved + step; let (plus, plusPattern) = evaluate()
                    p.value.data[i] = saved - step; let (minus, minusPattern) = evaluate()
                    p.value.data[i] = saved
                    if plusPattern == minusPattern { numericValue = (plus - minus) / (2 * Double(step)); break }
                }
                guard let numeric = numericValue else { continue }
                checked += 1
                XCTAssertTrue(NNTestSupport.close(Double(g.data[i]), numeric, rtol: rtol, atol: 1e-4),
                              "\(p.name)[\(i)]: backward \(g.data[i]), finite difference \(numeric)")
            }
            XCTAssertGreaterThanOrEqual(checked, wanted / 2, "\(p.name): too few usable samples (\(checked))")
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

    /// Index of the max in each size×size window of a [C, N, H, W] tensor.
    private func argmaxPattern(_ x: Tensor, size: Int) -> [Int] {
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        var out: [Int] = []
        for plane in 0..<planes {
            for oy in 0..<(h / size) {
                for ox in 0..<(w / size) {
                    var best = -1
                    var top = -Float.infinity
                    for dy in 0..<size {
                        for dx in 0..<size {
                            let i = plane * h * w + (oy * size + dy) * w + ox * size + dx
                            if x.data[i] > top { top = x.data[i]; best = i }
                        }
                    }
                    out.append(best)
                }
            }
        }
        return out
    }
}
