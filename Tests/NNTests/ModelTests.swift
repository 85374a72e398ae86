import XCTest
@testable import NN
import Tensor

/// Model and layer construction: names, shapes, descriptions, impossible models, initialization.
final class ModelTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    func testReferenceConvNetHasPyTorchNamesShapesAnd16938Parameters() throws {
        let model = try Model.referenceConvNet(seed: 1)
        XCTAssertEqual(model.parameters.map(\.name), ["0.weight", "0.bias", "3.weight", "3.bias",
                                                       "6.weight", "6.bias", "10.weight", "10.bias"])
        XCTAssertEqual(model.parameters.map(\.value.shape),
                       [[16, 1, 3, 3], [16], [32, 16, 3, 3], [32], [32, 32, 3, 3], [32], [10, 288], [10]])
        XCTAssertEqual(model.parameterCount, 16_938)
        // 16·1·9+16, 32·16·9+32, 32·32·9+32, 10·288+10
        XCTAssertEqual(model.parameters.map { $0.value.count }, [144, 16, 4608, 32, 9216, 32, 2880, 10])
        XCTAssertEqual(model.summary().map(\.parameters), [160, 0, 0, 4640, 0, 0, 9248, 0, 0, 0, 2890])
    }

    func testReferenceConvNetSummaryOutputShapes() throws {
        let model = try Model.referenceConvNet(seed: 1)
        XCTAssertEqual(model.summary().map(\.outputShape),
                       [[16, 28, 28], [16, 28, 28], [16, 14, 14], [32, 14, 14], [32, 14, 14], [32, 7, 7],
                        [32, 7, 7], [32, 7, 7], [32, 3, 3], [288], [10]])
        XCTAssertEqual(try model.validate(), [10])
        XCTAssertEqual(model.summary().map(\.layer), ["0: conv 3x3 16", "1: relu", "2: pool 2", "3: conv 3x3 32", "4: relu",
                                                     "5: pool 2", "6: conv 3x3 32", "7: relu", "8: pool 2",
                                                     "9: flatten (implied)", "10: dense 10"])
    }

    func testReferenceConvNetPrintsAsItsSpecAndRunsTheFastPaths() throws {
        let model = try Model.referenceConvNet(seed: 1)
        XCTAssertEqual(model.description, "conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 10")
        // The rewrites: each conv with its relu is one Convolution, run with the 2×2 max pool after it
        // as one chunked step.
        XCTAssertEqual(model.layers.map { "\(type(of: $0.layer))" },
                       ["ConvolutionThenPool", "ConvolutionThenPool", "ConvolutionThenPool", "Flatten", "Dense"])
        XCTAssertEqual(model.layers.map(\.name), ["0", "3", "6", "9", "10"])
        XCTAssertTrue(model.layers.compactMap { ($0.layer as? ConvolutionThenPool)?.convolution }.allSatisfy(\.relu))
    }

    func testReferenceConvNetForwardGivesLogitsPerImage() throws {
        let model = try Model.referenceConvNet(seed: 1)
        let logits = model.forward(NNTestSupport.uniform([1, 3, 28, 28], seed: 2), training: false)
        XCTAssertEqual(logits.shape, [3, 10])
        XCTAssertTrue(logits.data.allSatisfy(\.isFinite))
    }

    func testSameSeedGivesSameWeightsDifferentSeedDifferentWeights() throws {
        let a = try Model.referenceConvNet(seed: 5), b = try Model.referenceConvNet(seed: 5), c = try Model.referenceConvNet(seed: 6)
        XCTAssertEqual(a.parameters.map { $0.value.data }, b.parameters.map { $0.value.data })
        XCTAssertNotEqual(a.parameters[0].value.data, c.parameters[0].value.data)
        // Biases start at zero.
        for p in a.parameters where p.name.hasSuffix(".bias") { XCTAssertTrue(p.value.data.allSatisfy { $0 == 0 }, p.name) }
    }

    func testMLPWithHidden128Has101770Parameters() throws {
        let model = try Model.mlp(hidden: [128], seed: 1)
        XCTAssertEqual(model.parameterCount, 101_770)
        XCTAssertEqual(model.parameters.map(\.name), ["1.weight", "1.bias", "3.weight", "3.bias"])
        XCTAssertEqual(model.summary().map(\.outputShape), [[784], [128], [128], [10]])
        XCTAssertEqual(model.description, "dense 128 relu | dense 10")
        XCTAssertEqual(model.forward(NNTestSupport.uniform([1, 2, 28, 28], seed: 3), training: false).shape, [2, 10])
    }

    func testLayersPrintLikeFluxAndComputeTheirOutputShapes() throws {
        var random = Random(seed: 15)
        let conv = Convolution(1, 16, kernel: 3, padding: 1, activation: .relu, random: &random)
        XCTAssertEqual(conv.description, "Conv((3, 3), 1 => 16, pad=1, relu)")
        XCTAssertEqual(conv.weight.value.shape, [16, 1, 3, 3])
        XCTAssertEqual(try conv.outputShape(for: [1, 28, 28]), [16, 28, 28])
        XCTAssertThrowsError(try conv.outputShape(for: [2, 28, 28]))
        XCTAssertThrowsError(try Convolution(1, 1, kernel: 5, random: &random).outputShape(for: [1, 3, 3]))
        let pool = Pooling(kernel: [2, 2])
        XCTAssertEqual(pool.description, "MaxPool((2, 2))")
        XCTAssertEqual(try pool.outputShape(for: [32, 7, 7]), [32, 3, 3])
        let dense = Dense(7, 5, random: &random)
        XCTAssertEqual(dense.description, "Dense(7 => 5)")
        XCTAssertEqual(dense.weight.value.shape, [5, 7])
    }

    func testImpossibleReferenceConvNetOn4x4InputsThrowsModelError() {
        let message = NNTestSupport.assertModelError("4×4 input") {
            _ = try Model.referenceConvNet(inputShape: [1, 4, 4], seed: 1)
        }
        // It names the layer that cannot take its input, and the shape it got.
        XCTAssertTrue(message?.contains("layer 6 \"pool 2\": the window 2 is larger than the input 32×1×1") == true, message ?? "")
        NNTestSupport.assertModelError("no classes") { _ = try Model.referenceConvNet(classes: 0, seed: 1) }
        NNTestSupport.assertModelError("2-D input") { _ = try Model.referenceConvNet(inputShape: [28, 28], seed: 1) }
        NNTestSupport.assertModelError("zero-size hidden layer") { _ = try Model.mlp(hidden: [0], seed: 1) }
        NNTestSupport.assertModelError("MLP with no classes") { _ = try Model.mlp(classes: 0, seed: 1) }
    }

    func testHandBuiltModelWithMismatchedLayersThrowsModelErrorNamingTheLayer() {
        var random = Random(seed: 1)
        let message = NNTestSupport.assertModelError("dense without flatten size") {
            _ = try Model(inputShape: [1, 8, 8], layers: [
                ("conv", Convolution(1, 2, kernel: 3, padding: 1, random: &random)),
                ("flatten", Flatten()),
                ("fc", Dense(100, 3, random: &random)),
            ])
        }
        XCTAssertTrue(message?.contains("layer fc") == true, message ?? "")
        let unflattened = NNTestSupport.assertModelError("dense on images, no flatten") {
            _ = try Model(inputShape: [1, 28, 28], layers: [("fc", Dense(10, 5, random: &random))])
        }
        XCTAssertTrue(unflattened?.contains("layer fc") == true, unflattened ?? "")
        NNTestSupport.assertModelError("channel mismatch") {
            _ = try Model(inputShape: [3, 8, 8], layers: [("conv", Convolution(1, 2, kernel: 3, random: &random))])
        }
        NNTestSupport.assertModelError("kernel larger than the image") {
            _ = try Model(inputShape: [1, 2, 2], layers: [("conv", Convolution(1, 2, kernel: 5, random: &random))])
        }
        NNTestSupport.assertModelError("pool larger than the image") {
            _ = try Model(inputShape: [1, 1, 5], layers: [("pool", Pooling(kernel: [2, 2]))])
        }
    }

    /// Class = whether the left half of a 4×4 image is brighter than the right half.
    func testMLPLearnsWhichHalfOfTheImageIsBrighter() throws {
        let model = try Model.mlp(inputShape: [1, 4, 4], hidden: [8], classes: 2, seed: 1)
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

    func testGlorotUniformValuesLieWithinTheLimitWithRoughlyZeroMean() {
        let (fanIn, fanOut) = (300, 200)
        let limit = (6.0 / Double(fanIn + fanOut)).squareRoot()
        var random = Random(seed: 7)
        let t = glorotUniform([fanOut, fanIn], fanIn: fanIn, fanOut: fanOut, random: &random)
        XCTAssertEqual(t.shape, [fanOut, fanIn])
        let values = t.data.map(Double.init)
        XCTAssertTrue(values.allSatisfy { abs($0) <= limit * (1 + 1e-6) }, "max |w| = \(values.map(abs).max()!) > \(limit)")
        let mean = values.reduce(0, +) / Double(values.count)
        // U(−a, a): σ = a/√3, so the mean of 60 000 draws is within ~0.0024·a at 1σ.
        XCTAssertLessThan(abs(mean), 0.02 * limit)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
        XCTAssertEqual(variance, limit * limit / 3, accuracy: 0.03 * limit * limit / 3)
        // The range is filled, not just a corner of it.
        XCTAssertGreaterThan(values.max()!, 0.99 * limit)
        XCTAssertLessThan(values.min()!, -0.99 * limit)
    }

    func testLayerInitializersUseGlorotLimits() {
        var random = Random(seed: 8)
        // Conv fans count the kernel area: √(6 / (16·9 + 32·9)), the range filled, zero mean,
        // zero biases, and the same seed giving the same weights.
        let conv = Convolution(16, 32, kernel: 3, random: &random)
        let convLimit = (6.0 / Double(16 * 9 + 32 * 9)).squareRoot()
        let w = conv.weight.value.data.map(Double.init)
        XCTAssertLessThanOrEqual(w.map(abs).max()!, convLimit)
        XCTAssertGreaterThan(w.map(abs).max()!, 0.98 * convLimit)
        XCTAssertEqual(w.reduce(0, +) / Double(w.count), 0, accuracy: 0.05 * convLimit)
        XCTAssertEqual(conv.bias.value.data, [Float](repeating: 0, count: 32))
        var again = Random(seed: 8)
        XCTAssertEqual(Convolution(16, 32, kernel: 3, random: &again).weight.value.data, conv.weight.value.data, "seeded")
        let dense = Dense(288, 10, random: &random)
        let denseLimit = Float(6.0 / Double(288 + 10)).squareRoot()
        XCTAssertTrue(dense.weight.value.data.allSatisfy { abs($0) <= denseLimit * (1 + 1e-6) })
        XCTAssertGreaterThan(dense.weight.value.data.map(abs).max()!, 0.9 * denseLimit)
    }
}
