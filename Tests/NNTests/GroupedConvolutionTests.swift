import XCTest
@testable import NN
import Tensor

/// Grouped and depthwise convolutions (`conv K OUT … groups G`, mobilenet_v2's): forward against
/// a naive loop from the definition and against PyTorch, backward against finite differences,
/// only the portable algorithm taking them, their spec words, errors and parameter counts, and
/// a mobilenet-style block that builds and learns.
final class GroupedConvolutionTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    // MARK: the naive reference

    /// The definition, in Double: output channel o is in group g = o / (OC/G) and sees input
    /// channels g·C/G + c′ for c′ < C/G: y[o, b, p] = bias[o] + Σ_c′ Σ_q w[o, c′, q]·x[g·C/G + c′,
    /// b, p·s + q − pad] (zero outside x), then relu if asked.
    private func naiveGroupedConvolution(_ x: Tensor, weight: Tensor, bias: Tensor, stride: [Int], padding: [Int],
                                         groups: Int, relu: Bool) -> Tensor {
        let (n, spatial) = (x.shape[1], Array(x.shape[2...]))
        let (oc, groupChannels, kernel) = (weight.shape[0], weight.shape[1], Array(weight.shape[2...]))
        let outSpatial = (0..<kernel.count).map { (axis: Int) -> Int in (spatial[axis] + 2 * padding[axis] - kernel[axis]) / stride[axis] + 1 }
        let y = Tensor([oc, n] + outSpatial)
        let outPositions = allIndices(outSpatial), kernelPositions = allIndices(kernel)
        for o in 0..<oc {
            let group = o / (oc / groups)
            for b in 0..<n {
                for p in outPositions {
                    var total = Double(bias.data[o])
                    for c in 0..<groupChannels {
                        for q in kernelPositions {
                            let i = (0..<kernel.count).map { (axis: Int) -> Int in p[axis] * stride[axis] + q[axis] - padding[axis] }
                            guard zip(i, spatial).allSatisfy({ $0 >= 0 && $0 < $1 }) else { continue }
                            total += Double(weight.data[offset([o, c] + q, in: weight.shape)])
                                * Double(x.data[offset([group * groupChannels + c, b] + i, in: x.shape)])
                        }
                    }
                    y.data[offset([o, b] + p, in: y.shape)] = Float(relu ? max(total, 0) : total)
                }
            }
        }
        return y
    }

    private func assertClose(_ actual: Tensor, _ expected: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, expected.shape, "\(what): shape", file: file, line: line)
        guard actual.shape == expected.shape else { return }
        let scale = max(1, expected.data.map(abs).max() ?? 0)
        var worst: Float = 0, at = 0
        for i in 0..<actual.count where abs(actual.data[i] - expected.data[i]) > worst {
            worst = abs(actual.data[i] - expected.data[i]); at = i
        }
        XCTAssertLessThanOrEqual(worst, 1e-5 * scale, "\(what): worst at \(at): \(actual.data[at]) vs \(expected.data[at])",
                                 file: file, line: line)
    }

    struct Case {
        let c, oc, groups: Int
        let kernel, stride, padding, spatial: [Int]
    }

    /// 1-, 2- and 3-D; G = 1, 2 and depthwise (G = C, also with two outputs a channel); stride 1
    /// and 2; with and without padding, odd sizes.
    let cases = [
        Case(c: 4, oc: 6, groups: 2, kernel: [3], stride: [1], padding: [1], spatial: [9]),
        Case(c: 4, oc: 4, groups: 4, kernel: [5], stride: [2], padding: [2], spatial: [11]),
        Case(c: 3, oc: 4, groups: 1, kernel: [3, 3], stride: [2, 2], padding: [1, 1], spatial: [7, 8]),
        Case(c: 4, oc: 6, groups: 2, kernel: [3, 3], stride: [1, 1], padding: [1, 1], spatial: [6, 7]),
        Case(c: 4, oc: 8, groups: 2, kernel: [3, 3], stride: [2, 2], padding: [0, 0], spatial: [7, 7]),
        Case(c: 5, oc: 5, groups: 5, kernel: [3, 3], stride: [1, 1], padding: [1, 1], spatial: [6, 6]),
        Case(c: 6, oc: 6, groups: 6, kernel: [3, 3], stride: [2, 2], padding: [1, 1], spatial: [7, 9]),
        Case(c: 3, oc: 6, groups: 3, kernel: [3, 2], stride: [1, 2], padding: [1, 0], spatial: [5, 6]),
        Case(c: 4, oc: 2, groups: 2, kernel: [3, 3, 3], stride: [1, 2, 2], padding: [1, 1, 1], spatial: [4, 5, 5]),
        Case(c: 3, oc: 3, groups: 3, kernel: [1, 3, 3], stride: [1, 2, 1], padding: [0, 1, 1], spatial: [3, 5, 4]),
    ]

    /// A convolution of the case with the algorithm `choose` picks (fast paths on), and
    /// non-zero biases so the bias path shows.
    private func layer(_ t: Case, relu: Bool = false, seed: UInt64) -> Convolution {
        var random = Random(seed: seed)
        let conv = Convolution(inChannels: t.c, outChannels: t.oc, kernel: t.kernel, stride: t.stride, padding: t.padding,
                               groups: t.groups, activation: relu ? .relu : .identity, random: &random)
        for i in 0..<t.oc { conv.bias.value.data[i] = random.uniform(-0.3, 0.3) }
        return conv
    }

    // MARK: forward and backward

    func testGroupedConvolutionForwardMatchesTheNaiveReferenceInOneTwoAndThreeDimensions() {
        for (index, t) in cases.enumerated() {
            for relu in [false, true] {
                let conv = layer(t, relu: relu, seed: UInt64(10 + index))
                if t.groups > 1 { XCTAssertEqual(conv.algorithm, .portable, "a grouped convolution runs on the portable loops") }
                XCTAssertEqual(conv.weight.value.shape, [t.oc, t.c / t.groups] + t.kernel, "PyTorch's weight layout")
                let x = NNTestSupport.uniform([t.c, 3] + t.spatial, seed: UInt64(100 + index))
                let expected = naiveGroupedConvolution(x, weight: conv.weight.value, bias: conv.bias.value, stride: t.stride,
                                                       padding: t.padding, groups: t.groups, relu: relu)
                for pass in 0..<2 { assertClose(conv.forward(x, training: true), expected, "\(conv) on \(x.shape), pass \(pass)") }
                XCTAssertEqual(try conv.outputShape(for: [t.c] + t.spatial), [t.oc] + Array(expected.shape[2...]))
            }
        }
    }

    func testGroupedConvolutionGradientsInOneTwoAndThreeDimensions() {
        for (index, t) in cases.enumerated() {
            for relu in [false, true] {
                let conv = layer(t, relu: relu, seed: UInt64(20 + index))
                NNTestSupport.checkGradients(conv, input: NNTestSupport.uniform([t.c, 2] + t.spatial, seed: UInt64(200 + index)))
            }
        }
    }

    /// One sample a chunk: every group's cols are rebuilt chunk by chunk, in forward and in
    /// backward (which keeps the last chunk's last group from forward).
    func testGroupedConvolutionInChunksOfOneSample() {
        for (index, t) in cases.enumerated() where t.groups > 1 {
            let conv = layer(t, relu: index % 2 == 0, seed: UInt64(30 + index))
            conv.chunkBytes = 1
            let x = NNTestSupport.uniform([t.c, 3] + t.spatial, seed: UInt64(300 + index))
            let expected = naiveGroupedConvolution(x, weight: conv.weight.value, bias: conv.bias.value, stride: t.stride,
                                                   padding: t.padding, groups: t.groups, relu: index % 2 == 0)
            assertClose(conv.forward(x, training: true), expected, "\(conv) in chunks of one sample")
            NNTestSupport.checkGradients(conv, input: x)
        }
    }

    /// A model's first layer skips dx; its weight and bias gradients are the same either way.
    func testWithoutTheInputGradientTheParameterGradientsAreTheSame() {
        let t = cases[6]
        let with = layer(t, seed: 40), without = layer(t, seed: 40)
        without.needsInputGradient = false
        let x = NNTestSupport.uniform([t.c, 2] + t.spatial, seed: 41)
        let y = with.forward(x, training: true)
        _ = without.forward(x, training: true)
        let dy = NNTestSupport.uniform(y.shape, seed: 42)
        for p in with.parameters + without.parameters { p.grad.zero() }
        _ = with.backward(dy)
        _ = without.backward(dy)
        XCTAssertEqual(with.weight.grad.data, without.weight.grad.data)
        XCTAssertEqual(with.bias.grad.data, without.bias.grad.data)
    }

    func testGroupedConvolutionMatchesPyTorch() throws {
        for fastPaths in [false, true] {
            try SpatialFixture.check("conv-grouped.json", fastPaths: fastPaths)
            try SpatialFixture.check("conv-depthwise-stride2.json", fastPaths: fastPaths)
        }
    }

    // MARK: algorithms, description, init

    func testOnlyThePortableAlgorithmTakesGroupsAndAGroupedConvolutionNeverFuses() throws {
        for groups in [2, 4] {
            XCTAssertEqual(ConvolutionAlgorithm.choose(kernel: [3, 3], stride: [1, 1], padding: [1, 1], groups: groups, fastPaths: true), .portable)
            XCTAssertEqual(ConvolutionAlgorithm.choose(kernel: [3], stride: [1], padding: [1], groups: groups, fastPaths: true), .portable)
            XCTAssertFalse(ConvolutionAlgorithm.chunkedPlane.takes(kernel: [3, 3], stride: [1, 1], padding: [1, 1], groups: groups))
            XCTAssertFalse(ConvolutionAlgorithm.strideOne.takes(kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], groups: groups))
            XCTAssertTrue(ConvolutionAlgorithm.portable.takes(kernel: [3, 3], stride: [1, 1], padding: [1, 1], groups: groups))
        }
        XCTAssertEqual(ConvolutionAlgorithm.choose(kernel: [3, 3], stride: [1, 1], padding: [1, 1], groups: 1, fastPaths: true), .chunkedPlane)
        var random = Random(seed: 5)
        let depthwise = Convolution(inChannels: 4, outChannels: 4, kernel: [3, 3], padding: [1, 1], groups: 4, activation: .relu,
                                    random: &random)
        XCTAssertEqual(depthwise.groups, 4)
        XCTAssertFalse(depthwise.canFuse(with: Pooling(kernel: [2, 2])))
        // Built from a spec: the relu is fused into the grouped convolution, the pool stays a layer of its own.
        let model = try ModelSpec(parsing: "conv 3 8 groups 2 relu | pool 2 | dense 10").compile(inputShape: [4, 8, 8], classes: 10, seed: 1)
        XCTAssertEqual(model.layers.map { "\(type(of: $0.layer))" }, ["Convolution", "Pooling", "Flatten", "Dense"])
        XCTAssertEqual((model.layers[0].layer as? Convolution)?.relu, true)
        XCTAssertEqual((model.layers[0].layer as? Convolution)?.algorithm, .portable)
    }

    func testDescriptionReplicaAndPyTorchsFanIn() throws {
        var random = Random(seed: 6)
        let conv = Convolution(inChannels: 96, outChannels: 96, kernel: [3, 3], stride: [2, 2], padding: [1, 1], groups: 96,
                               random: &random)
        XCTAssertEqual(conv.description, "Conv((3, 3), 96 => 96, stride=2, pad=1, groups=96)")
        XCTAssertEqual(conv.parameters.map(\.value.shape), [[96, 1, 3, 3], [96]])
        let replica = try XCTUnwrap(conv.replica() as? Convolution)
        XCTAssertEqual(replica.groups, 96)
        XCTAssertEqual(replica.description, conv.description)
        // Glorot over fan-in (C/G)·∏k = 9 and fan-out OC·∏k = 864: a limit of √(6/873) ≈ 0.083.
        // Over the ungrouped fan-in C·∏k = 864 it would be √(6/1728) ≈ 0.059.
        let limit = (6 / Float(9 + 864)).squareRoot()
        let largest = conv.weight.value.data.map(abs).max() ?? 0
        XCTAssertLessThanOrEqual(largest, limit)
        XCTAssertGreaterThan(largest, 0.9 * limit)
        // G = 1 draws exactly what an ungrouped convolution always drew (same seed, same bits).
        var r1 = Random(seed: 7), r2 = Random(seed: 7)
        let one = Convolution(inChannels: 3, outChannels: 4, kernel: [3, 3], groups: 1, random: &r1)
        let plain = Convolution(inChannels: 3, outChannels: 4, kernel: [3, 3], random: &r2)
        XCTAssertEqual(one.weight.value.data, plain.weight.value.data)
    }

    // MARK: in a spec

    func testSpecPrintsGroupsOnlyAboveOneAndParsesBackTheSame() throws {
        let cases: [(typed: String, canonical: String)] = [
            ("conv 3 32 groups 32", "conv 3 32 groups 32"),
            ("conv 3 96 stride 2 groups 96 relu6", "conv 3 96 stride 2 groups 96 relu6"),
            ("conv 3x3 8 groups 1", "conv 3x3 8"),
            ("conv 3 8 groups 2 pad 0", "conv 3 8 valid groups 2"),
            ("conv 1 24 GROUPS 4 same stride 2", "conv 1 24 stride 2 groups 4"),
            ("conv 3 6 groups 3 pad 2 | relu", "conv 3 6 pad 2 groups 3 | relu"),
        ]
        for (typed, canonical) in cases {
            let parsed = try ModelSpec(parsing: typed)
            XCTAssertEqual(parsed.text, canonical, typed)
            XCTAssertEqual(try ModelSpec(parsing: parsed.text), parsed, typed)
        }
    }

    private func error(_ text: String, input: [Int], classes: Int = 10) -> String {
        do {
            _ = try ModelSpec(parsing: text).compile(inputShape: input, classes: classes, seed: 1)
            return "(no error)"
        } catch {
            return "\(error)"
        }
    }

    func testGroupsThatDoNotDivideBothChannelCountsAreOneLineErrors() {
        XCTAssertEqual(error("conv 3 10 groups 4 | dense 10", input: [8, 6, 6]),
                       "layer 1 \"conv 3 10 groups 4\": groups 4 must divide the input channels (8) and the output channels (10); use a divisor of both")
        XCTAssertEqual(error("conv 3 8 | conv 3 12 groups 3 | dense 10", input: [1, 6, 6]),
                       "layer 2 \"conv 3 12 groups 3\": groups 3 must divide the input channels (8) and the output channels (12); use a divisor of both")
        for (text, message) in [("conv 3 8 groups 0", "groups '0' must be a whole number from 1 to 65536"),
                                ("conv 3 8 groups two", "groups 'two' must be a whole number from 1 to 65536"),
                                ("conv 3 8 groups", "groups needs a count, e.g. groups 2")] {
            let got = error(text, input: [4, 6, 6])
            XCTAssertTrue(got.hasPrefix("layer 1 \"\(text)\": \(message); conv K OUT"), got)
            XCTAssertFalse(got.contains("\n"), got)
        }
    }

    func testParameterCountsAreOutTimesInOverGTimesTheKernelPlusOut() throws {
        let cases: [(String, [Int], Int)] = [
            ("conv 3 96 stride 2 groups 96", [96, 32, 32], 96 * 1 * 9 + 96),
            ("conv 3 6 groups 2", [4, 7, 7], 6 * 2 * 9 + 6),
            ("conv 3x3x3 8 groups 4", [4, 3, 5, 5], 8 * 1 * 27 + 8),
            ("conv 1 24", [96, 8, 8], 24 * 96 + 24),
        ]
        for (text, input, count) in cases {
            let spec = try ModelSpec(parsing: text + " | dense 10")
            XCTAssertEqual(spec.modules[0].layer.parameterCount(for: input), count, text)
            let model = try spec.compile(inputShape: input, classes: 10, seed: 1)
            XCTAssertEqual(model.parameters.prefix(2).reduce(0) { $0 + $1.value.count }, count, text)
            XCTAssertEqual(model.modules[0].parameters, count, "\(text): summary")
        }
    }

    /// Through a whole model (expand, depthwise stride 2 with relu6, project, padded average
    /// pool, dense) and the loss: every parameter's gradient against finite differences of the
    /// mean cross-entropy, layer by layer, with the relu6 kinks (outputs at 0 or 6) as the pattern.
    func testAMobileNetStyleModelsParameterGradientsThroughTheLoss() throws {
        let spec = try ModelSpec(parsing: "conv 1 12 relu6 | conv 3 12 stride 2 groups 12 relu6 | conv 1 4 | pool 3 stride 2 pad 1 avg | dense 3")
        let model = try spec.compile(inputShape: [4, 7, 7], classes: 3, seed: 8)
        var random = Random(seed: 9)
        for p in model.parameters where p.name.hasSuffix(".bias") {
            for i in 0..<p.value.count { p.value.data[i] = random.uniform(-0.1, 0.1) }
        }
        let labels: [Int32] = [2, 0]
        let x = NNTestSupport.uniform([4, 2, 7, 7], seed: 10, range: 12)   // large enough that some relu6 outputs clamp at 6
        let dlogits = Tensor([0])
        model.zeroGrads()
        _ = SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: labels, normalizer: 2,
                                                gradient: dlogits)
        model.backward(dlogits)
        let analytic = model.parameters.map { $0.grad.copy() }
        var clamped = false
        let unfused = Model.unfusedReplica(of: model)
        func evaluate() -> (Double, [Int]) {
            var h = x
            var pattern: [Int] = []
            for (_, layer) in unfused.layers {
                h = layer.forward(h, training: true)
                if (layer as? ElementwiseActivation)?.kind == .relu6 {
                    pattern += h.data.map { $0 <= 0 ? 0 : $0 >= 6 ? 2 : 1 }
                    clamped = clamped || h.data.contains(6)
                }
            }
            var loss = 0.0
            for row in 0..<labels.count {
                let z = (0..<3).map { Double(h.data[row * 3 + $0]) }, top = z.max()!
                loss += log(z.map { exp($0 - top) }.reduce(0, +)) + top - z[Int(labels[row])]
            }
            return (loss / Double(labels.count), pattern)
        }
        _ = evaluate()
        XCTAssertTrue(clamped, "some relu6 outputs clamp at 6, so that side is checked too")
        for (p, g) in zip(model.parameters, analytic) {
            NNTestSupport.checkFiniteDifferences(p.value, g, p.name, atol: 1e-4, steps: NNTestSupport.finiteDifferenceSteps + [3e-4, 1e-4],
                                                 random: &random, loss: evaluate)
        }
    }

    /// A res(…) body with a depthwise convolution keeps the shape, so its shortcut is the identity.
    func testAnInvertedResidualWithADepthwiseConvolutionBuilds() throws {
        let spec = try ModelSpec(parsing: "conv 3 8 relu6 | res(conv 1 24 relu6 | conv 3 24 groups 24 relu6 | conv 1 8) | gap | dense 5")
        let model = try spec.compile(inputShape: [3, 10, 10], classes: 5, seed: 2)
        XCTAssertEqual(model.parameterCount, (8 * 27 + 8) + (24 * 8 + 24) + (24 * 9 + 24) + (8 * 24 + 8) + (5 * 8 + 5))
        XCTAssertFalse(model.parameters.contains { $0.name.contains("shortcut") })
        let y = model.forward(NNTestSupport.uniform([3, 4, 10, 10], seed: 3), training: true)
        XCTAssertEqual(y.shape, [4, 5])
        XCTAssertTrue(y.data.allSatisfy(\.isFinite))
    }

    /// mobilenet_v2's inverted residual, without its shortcut: expand, depthwise stride 2, project.
    func testAMobileNetStyleBlockBuildsAndLearns() throws {
        let spec = try ModelSpec(parsing: "conv 1 96 relu6 | conv 3 96 stride 2 groups 96 relu6 | conv 1 24 | gap | dense 4")
        XCTAssertEqual(spec.text, "conv 1 96 relu6 | conv 3 96 stride 2 groups 96 relu6 | conv 1 24 | gap | dense 4")
        let model = try spec.compile(inputShape: [16, 12, 12], classes: 4, seed: 3)
        XCTAssertEqual(model.modules.map(\.outputShape), [[96, 12, 12], [96, 12, 12], [96, 6, 6], [96, 6, 6], [24, 6, 6],
                                                           [24, 1, 1], [24], [4]])
        XCTAssertEqual(model.parameterCount, (96 * 16 + 96) + (96 * 9 + 96) + (24 * 96 + 24) + (4 * 24 + 4))
        let depthwise = try XCTUnwrap(model.layers.compactMap { $0.layer as? Convolution }.first { $0.groups == 96 })
        XCTAssertEqual(depthwise.algorithm, .portable)

        // A fixed batch whose class is which quarter of the channels is brightest.
        let batch = 8
        let x = NNTestSupport.uniform([16, batch, 12, 12], seed: 4, range: 0.1)
        let labels = (0..<batch).map { Int32($0 % 4) }
        for b in 0..<batch {
            for c in (Int(labels[b]) * 4)..<(Int(labels[b]) * 4 + 4) {
                for i in 0..<144 { x.data[(c * batch + b) * 144 + i] += 1 }
            }
        }
        let adam = Adam(learningRate: 3e-3)
        let gradient = Tensor([0])
        var losses: [Double] = []
        for _ in 0..<30 {
            model.zeroGrads()
            losses.append(SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: labels,
                                                              normalizer: Float(batch), gradient: gradient) / Double(batch))
            model.backward(gradient)
            XCTAssertTrue(depthwise.weight.grad.data.allSatisfy(\.isFinite))
            XCTAssertTrue(depthwise.weight.grad.data.contains { $0 != 0 }, "the depthwise weights get a gradient")
            adam.step(model.parameters)
        }
        XCTAssertLessThan(losses.last!, 0.5 * losses.first!, "the loss falls: \(losses.first!) → \(losses.last!)")
    }
}
