import XCTest
@testable import NN
import Tensor

/// Residual blocks and per-frame networks: the spec, the names, the shapes, the gradients.
final class ContainerTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    private func spec(_ text: String) throws -> ModelSpec { try ModelSpec(parsing: text) }

    /// The container `text` makes for one sample of `input`, with its input gradient on.
    private func container(_ text: String, input: [Int], fastPaths: Bool, seed: UInt64 = 3) throws -> Layer {
        var random = Random(seed: seed)
        let layer = try spec(text).modules[0].layer.makeLayer(for: SampleShape(input), fastPaths: fastPaths, random: &random)
        for p in layer.parameters where p.localName == "bias" {
            for i in 0..<p.value.count { p.value.data[i] = random.uniform(-0.3, 0.3) }
        }
        return layer
    }

    static let resnet = "conv 3 16 relu | res(conv 3 16 relu | conv 3 16) | relu | res(conv 3 32 stride 2 relu | conv 3 32) | relu | gap | dense 10"

    func testTheIssuesResNetParsesPrintsAndNamesItsTensorsAsPyTorch() throws {
        let s = try spec(ContainerTests.resnet)
        XCTAssertEqual(s.text, "conv 3 16 relu | res(conv 3 16 relu | conv 3 16) | relu | res(conv 3 32 stride 2 relu | conv 3 32) | relu | gap | dense 10")
        XCTAssertEqual(try spec(s.text), s)
        let model = try s.compile(inputShape: [3, 16, 16], classes: 10, seed: 1)
        XCTAssertEqual(model.parameters.map(\.name), [
            "0.weight", "0.bias",
            "2.body.0.weight", "2.body.0.bias", "2.body.2.weight", "2.body.2.bias",
            "4.body.0.weight", "4.body.0.bias", "4.body.2.weight", "4.body.2.bias",
            "4.shortcut.0.weight", "4.shortcut.0.bias",
            "8.weight", "8.bias",
        ])
        XCTAssertEqual(model.parameters.first { $0.name == "4.shortcut.0.weight" }!.value.shape, [32, 16, 1, 1])
        XCTAssertEqual(model.summary().map(\.layer), [
            "0: conv 3 16", "1: relu", "2: res", "  2.body.0: conv 3 16", "  2.body.1: relu", "  2.body.2: conv 3 16",
            "3: relu", "4: res", "  4.body.0: conv 3 32 stride 2", "  4.body.1: relu", "  4.body.2: conv 3 32",
            "  4.shortcut.0: conv 1 32 stride 2 valid (implied)", "5: relu", "6: gap", "7: flatten (implied)", "8: dense 10",
        ])
        XCTAssertEqual(model.summary()[7].outputShape, [32, 8, 8])
        let logits = model.forward(NNTestSupport.uniform([3, 2, 16, 16], seed: 2), training: true)
        XCTAssertEqual(logits.shape, [2, 10])
    }

    /// The fast paths (ReLU fused into convolutions, conv→pool fused) inside containers give
    /// the portable layers' numbers, forward and backward.
    func testContainersGiveTheSameNumbersOnTheFastAndThePortablePaths() throws {
        for (text, input) in [(ContainerTests.resnet, [3, 12, 12]),
                              ("frames(conv 3 4 relu | pool 2 | res(conv 3 4 relu | conv 3 4 relu) | dense 6 relu) | lstm 5 | dense 10", [2, 3, 8, 8])] {
            let fast = try spec(text).compile(inputShape: input, classes: 10, seed: 3)
            let portable = try spec(text).compile(inputShape: input, classes: 10, seed: 3, fastPaths: false)
            XCTAssertEqual(fast.parameters.map(\.value.data), portable.parameters.map(\.value.data), text)
            let x = NNTestSupport.uniform([input[0], 4] + input.dropFirst(), seed: 4)
            let a = fast.forward(x, training: true), b = portable.forward(x, training: true)
            for (u, v) in zip(a.data, b.data) { XCTAssertEqual(u, v, accuracy: 1e-4 * max(1, abs(u)), text) }
            let dlogits = NNTestSupport.uniform(a.shape, seed: 5)
            fast.zeroGrads(); portable.zeroGrads()
            fast.backward(dlogits); portable.backward(dlogits.copy())
            for (p, q) in zip(fast.parameters, portable.parameters) {
                XCTAssertGreaterThan(q.grad.data.map(abs).max() ?? 0, 0, p.name)
                for (u, v) in zip(p.grad.data, q.grad.data) { XCTAssertEqual(u, v, accuracy: 1e-3 * max(1, abs(v)), "\(text): \(p.name)") }
            }
        }
    }

    func testABodyWithBatchNormGetsABatchNormInItsProjection() throws {
        let model = try spec("res(conv 3 8 stride 2 | batchnorm | relu | conv 3 8 | batchnorm) | relu | gap | dense 3")
            .compile(inputShape: [4, 8, 8], classes: 3, seed: 1)
        XCTAssertEqual(model.parameters.map(\.name).filter { $0.contains("shortcut") },
                       ["0.shortcut.0.weight", "0.shortcut.0.bias", "0.shortcut.1.weight", "0.shortcut.1.bias"])
        XCTAssertEqual(model.buffers.map(\.name).filter { $0.contains("shortcut") },
                       ["0.shortcut.1.running_mean", "0.shortcut.1.running_var", "0.shortcut.1.num_batches_tracked"])
    }

    func testFramesRunsTheNetworkOnEveryFrameWithSharedWeights() throws {
        let text = "frames(conv 3 4 relu | pool 2 | dense 6 tanh) | gap | dense 3"
        let model = try spec(text).compile(inputShape: [2, 5, 8, 8], classes: 3, seed: 4)
        XCTAssertEqual(model.parameters.map(\.name), ["0.net.0.weight", "0.net.0.bias", "0.net.4.weight", "0.net.4.bias", "2.weight", "2.bias"])
        XCTAssertEqual(model.summary().map(\.layer), [
            "0: frames", "  0.net.0: conv 3 4", "  0.net.1: relu", "  0.net.2: pool 2", "  0.net.3: flatten (implied)",
            "  0.net.4: dense 6", "  0.net.5: tanh", "1: gap", "2: dense 3",
        ])
        XCTAssertEqual(model.summary()[0].outputShape, [5, 6])
        // The same network compiled alone (same seed: the same weights), frame by frame.
        let frameNet = try spec("conv 3 4 relu | pool 2 | dense 6 tanh | dense 3").compile(inputShape: [2, 8, 8], classes: 3, seed: 4)
        XCTAssertEqual(frameNet.parameters.prefix(4).map(\.value.data), model.parameters.prefix(4).map(\.value.data))
        let (n, t) = (3, 5)
        let clips = NNTestSupport.uniform([2, n, t, 8, 8], seed: 5)
        let perFrame = model.layers[0].layer.forward(clips, training: false).copy()
        XCTAssertEqual(perFrame.shape, [n, t, 6])
        let body = Chain(Array(frameNet.layers.prefix(frameNet.layers.count - 1)))
        for clip in 0..<n {
            for frame in 0..<t {
                var image = [Float]()
                for c in 0..<2 {
                    let start = ((c * n + clip) * t + frame) * 64
                    image += clips.data[start..<start + 64]
                }
                let features = body.forward(Tensor([2, 1, 8, 8], image), training: false)
                for f in 0..<6 {
                    XCTAssertEqual(perFrame.data[(clip * t + frame) * 6 + f], features.data[f], accuracy: 1e-5)
                }
            }
        }
    }

    func testResidualGradientsWithIdentityAndProjectionShortcuts() throws {
        for fast in [false, true] {
            NNTestSupport.checkGradients(try container("res(conv 3 4 tanh | conv 3 4)", input: [4, 6, 6], fastPaths: fast),
                                         input: NNTestSupport.uniform([4, 3, 6, 6], seed: 6))
            NNTestSupport.checkGradients(try container("res(conv 3 6 stride 2 tanh | conv 3 6)", input: [3, 7, 7], fastPaths: fast),
                                         input: NNTestSupport.uniform([3, 2, 7, 7], seed: 7))
            NNTestSupport.checkGradients(try container("res(conv 3 5 | batchnorm | tanh | pool 2 avg)", input: [2, 6, 6], fastPaths: fast),
                                         input: NNTestSupport.uniform([2, 4, 6, 6], seed: 8))
            NNTestSupport.checkGradients(try container("res(dense 5 tanh | dense 5)", input: [5], fastPaths: fast),
                                         input: NNTestSupport.uniform([3, 5], seed: 9))
            NNTestSupport.checkGradients(try container("res(res(conv 3 3 tanh) | conv 3 3 sigmoid)", input: [3, 5, 5], fastPaths: fast),
                                         input: NNTestSupport.uniform([3, 2, 5, 5], seed: 10))
        }
    }

    func testPerFrameGradients() throws {
        for fast in [false, true] {
            NNTestSupport.checkGradients(try container("frames(conv 3 3 tanh | pool 2 avg | dense 4 sigmoid)", input: [2, 3, 6, 6], fastPaths: fast),
                                         input: NNTestSupport.uniform([2, 2, 3, 6, 6], seed: 11))
            NNTestSupport.checkGradients(try container("frames(res(conv 3 2 tanh) | gap)", input: [2, 4, 5, 5], fastPaths: fast),
                                         input: NNTestSupport.uniform([2, 3, 4, 5, 5], seed: 12))
        }
    }

    /// Backward adds into the gradients: two passes without zeroing give twice one pass's.
    func testGradientsAccumulateThroughContainers() throws {
        let model = try spec("frames(conv 3 4 relu | res(conv 3 4 relu | conv 3 4) | pool 2 | dense 6) | gap | dense 3")
            .compile(inputShape: [1, 4, 8, 8], classes: 3, seed: 2)
        let x = NNTestSupport.uniform([1, 2, 4, 8, 8], seed: 3)
        let r = NNTestSupport.uniform([2, 3], seed: 4)
        model.zeroGrads()
        _ = model.forward(x, training: true)
        model.backward(r.copy())
        let once = model.parameters.map { $0.grad.copy() }
        _ = model.forward(x, training: true)
        model.backward(r.copy())
        for (p, g) in zip(model.parameters, once) {
            XCTAssertGreaterThan(g.data.map(abs).max() ?? 0, 0, p.name)
            for (twice, single) in zip(p.grad.data, g.data) { XCTAssertEqual(twice, 2 * single, accuracy: 1e-5 * max(1, abs(twice)), p.name) }
        }
    }

    func testMalformedContainerSpecsGetOneLineNamingTheLayer() throws {
        let cases: [(String, [Int], String)] = [
            ("conv 3 8 | res(conv 3 8 | dense 3", [1, 8, 8], "unbalanced parentheses: a '(' is not closed"),
            ("conv 3 8) | dense 3", [1, 8, 8], "unbalanced parentheses: a ')' has no '('"),
            ("res() | dense 3", [1, 8, 8], "layer 1 \"res()\": res() is empty"),
            ("res conv 3 8 | dense 3", [1, 8, 8], "layer 1 \"res conv 3 8\": needs its layers in parentheses"),
            ("conv(3 8) | dense 3", [1, 8, 8], "conv takes no parentheses"),
            ("res(conv 3 8) relu | dense 3", [1, 8, 8], "nothing may follow res(…)"),
            ("frames(conv 3 8) | dense 3", [1, 8, 8], "frames(…) needs clips (C×T×H×W, from load videos), got 1×8×8 (2-D)"),
            ("res(conv 3 8 | dense 4) | dense 3", [1, 8, 8], "which a 1×1 convolution cannot project its input onto"),
            ("res(conv 3 8 | pool 2) | dense 3", [1, 7, 7], "a 1×1 convolution with the body's stride 2 gives 8×4×4"),
            ("frames(conv 3 4 | pool 2) | dense 3", [1, 4, 8, 8], "cannot take a sequence (4×64 (a sequence of 4 steps))"),
            ("res(conv 3 8 | bogus 2) | dense 3", [1, 8, 8], "layer 1 \"res(…)\": layer 2 \"bogus 2\": unknown layer 'bogus'"),
        ]
        for (text, input, expected) in cases {
            XCTAssertThrowsError(try spec(text).compile(inputShape: input, classes: 3, seed: 1), text) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(expected), "\(text): \(message)")
                XCTAssertFalse(message.contains("\n"), text)
            }
        }
    }

    func testContainersNestedTooDeepAreRefusedBeforePlanning() throws {
        // Each level plans its body more than once: 20 levels took minutes before this limit.
        func nested(_ depth: Int) -> String {
            String(repeating: "res(conv 3 4 relu | ", count: depth) + "conv 3 4" + String(repeating: ")", count: depth) + " | dense 3"
        }
        XCTAssertNoThrow(try spec("conv 3 4 | " + nested(ModelSpec.maximumNesting)).compile(inputShape: [1, 8, 8], classes: 3, seed: 1))
        for depth in [ModelSpec.maximumNesting + 1, 20, 10_000] {
            XCTAssertThrowsError(try spec("conv 3 4 | " + nested(depth)), "\(depth)") { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("containers nest more than 8 deep"), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
    }

    // MARK: sequences

    static let cnnLSTM = "frames(conv 3 16 relu | pool 2 | conv 3 32 relu | pool 2 | dense 64 relu) | lstm 64 | dense 5"

    func testTheIssuesCNNLSTMCompilesWithPyTorchNames() throws {
        let s = try spec(ContainerTests.cnnLSTM)
        XCTAssertEqual(try spec(s.text), s)
        let model = try s.compile(inputShape: [1, 16, 32, 32], classes: 5, seed: 1)
        XCTAssertEqual(model.parameters.map(\.name), [
            "0.net.0.weight", "0.net.0.bias", "0.net.3.weight", "0.net.3.bias", "0.net.7.weight", "0.net.7.bias",
            "1.weight_ih_l0", "1.weight_hh_l0", "1.bias_ih_l0", "1.bias_hh_l0", "2.weight", "2.bias",
        ])
        XCTAssertEqual(model.summary().map(\.layer), [
            "0: frames", "  0.net.0: conv 3 16", "  0.net.1: relu", "  0.net.2: pool 2", "  0.net.3: conv 3 32",
            "  0.net.4: relu", "  0.net.5: pool 2", "  0.net.6: flatten (implied)", "  0.net.7: dense 64", "  0.net.8: relu",
            "1: lstm 64", "2: dense 5",
        ])
        XCTAssertEqual(model.summary()[0].outputShape, [16, 64])
        XCTAssertEqual(model.parameterCount, model.summary().filter { $0.layer.first != " " }.reduce(0) { $0 + $1.parameters })
        let logits = model.forward(NNTestSupport.uniform([1, 2, 16, 32, 32], seed: 2), training: true)
        XCTAssertEqual(logits.shape, [2, 5])
    }

    func testRecurrentOptionsStackingAndAttention() throws {
        let cases: [(String, [String], [Int])] = [
            ("frames(dense 8) | lstm 6 bi | dense 3", ["1.weight_ih_l0_reverse"], [12]),
            ("frames(dense 8) | gru 6 seq | gru 5 | dense 3", ["1.weight_ih_l0", "2.weight_hh_l0"], [4, 6]),
            ("frames(dense 8) | lstm 6 bi seq | attention | dense 3", ["2.proj.weight", "2.score.weight"], [4, 12]),
            ("frames(dense 8) | lstm 6 seq | dropout 0.5 | gap | dense 3", ["1.bias_hh_l0"], [4, 6]),
            ("frames(dense 8) | attention 5 | dense 3", ["1.proj.bias"], [8]),
        ]
        for (text, names, shape) in cases {
            let model = try spec(text).compile(inputShape: [1, 4, 6, 6], classes: 3, seed: 1)
            XCTAssertEqual(try spec(text).text, text)
            for name in names { XCTAssertTrue(model.parameters.contains { $0.name == name }, "\(text): \(name)") }
            XCTAssertEqual(model.summary()[model.summary().firstIndex { $0.layer.hasPrefix("1: ") }!].outputShape, shape, text)
            XCTAssertEqual(model.forward(NNTestSupport.uniform([1, 3, 4, 6, 6], seed: 3), training: true).shape, [3, 3], text)
        }
    }

    func testMalformedSequenceSpecsGetOneLineNamingTheLayer() throws {
        let cases: [(String, [Int], String)] = [
            ("lstm 8 | dense 3", [1, 8, 8], "layer 1 \"lstm 8\": needs a sequence T×F (frames(…) over clips, or a recurrent layer with seq), got 1×8×8 (2-D)"),
            ("dense 8 | gru 4 | dense 3", [1, 8, 8], "layer 2 \"gru 4\": needs a sequence"),
            ("frames(dense 8) | lstm 6 seq | dense 3", [1, 4, 6, 6], "layer 3 \"dense 3\": cannot take a sequence (4×6 (a sequence of 4 steps))"),
            ("frames(dense 8) | lstm 6 seq", [1, 4, 6, 6], "the model ends with a sequence"),
            ("frames(dense 8) | conv 3 4 | dense 3", [1, 4, 6, 6], "layer 2 \"conv 3 4\": cannot take a sequence"),
            ("frames(dense 8) | batchnorm | lstm 4 | dense 3", [1, 4, 6, 6], "layer 2 \"batchnorm\": cannot take a sequence"),
            ("frames(dense 8) | lstm | dense 3", [1, 4, 6, 6], "layer 2 \"lstm\": needs a hidden size, e.g. lstm 64"),
            ("frames(dense 8) | lstm 6 backwards | dense 3", [1, 4, 6, 6], "unexpected 'backwards' (after the size: bi, seq)"),
            ("frames(dense 8) | gru 0 | dense 3", [1, 4, 6, 6], "the hidden size '0' must be a whole number from 1 to 65536"),
            ("frames(dense 8) | attention 2 3 | dense 3", [1, 4, 6, 6], "takes at most one size"),
            ("frames(frames(dense 8)) | lstm 4 | dense 3", [1, 4, 6, 6], "frames(…) needs clips (C×T×H×W, from load videos), got 1×6×6 (2-D)"),
            ("attention | dense 3", [8], "needs a sequence"),
        ]
        for (text, input, expected) in cases {
            XCTAssertThrowsError(try spec(text).compile(inputShape: input, classes: 3, seed: 1), text) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(expected), "\(text): \(message)")
                XCTAssertFalse(message.contains("\n"), text)
            }
        }
    }
}
