import Foundation
import XCTest
@testable import NN
import Tensor

/// The sequence layers (LSTM, GRU, AttentionPool, SequenceMean): backward against finite
/// differences, forward and backward against PyTorch (Fixtures/, written by
/// scripts/make_fixtures.py), gradient accumulation, replicas, shapes, and an LSTM that learns.
final class RecurrentTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    private func lstm(_ f: Int, _ h: Int, bidirectional: Bool, sequence: Bool, seed: UInt64 = 1) -> LSTM {
        var random = Random(seed: seed)
        return LSTM(inputs: f, hidden: h, bidirectional: bidirectional, returnsSequence: sequence, random: &random)
    }

    private func gru(_ f: Int, _ h: Int, bidirectional: Bool, sequence: Bool, seed: UInt64 = 1) -> GRU {
        var random = Random(seed: seed)
        return GRU(inputs: f, hidden: h, bidirectional: bidirectional, returnsSequence: sequence, random: &random)
    }

    private func check(_ layer: Layer, _ input: Tensor, file: StaticString = #filePath, line: UInt = #line) {
        NNTestSupport.checkGradients(layer, input: input, samples: 40, file: file, line: line)
    }

    // MARK: Finite differences

    func testLSTMGradientsUnidirectionalLastState() {
        check(lstm(3, 4, bidirectional: false, sequence: false), NNTestSupport.uniform([2, 4, 3], seed: 2))
    }

    func testLSTMGradientsUnidirectionalSequence() {
        check(lstm(3, 4, bidirectional: false, sequence: true), NNTestSupport.uniform([2, 4, 3], seed: 3))
    }

    func testLSTMGradientsBidirectionalLastState() {
        check(lstm(3, 4, bidirectional: true, sequence: false, seed: 4), NNTestSupport.uniform([2, 3, 3], seed: 5))
    }

    func testLSTMGradientsBidirectionalSequence() {
        check(lstm(3, 4, bidirectional: true, sequence: true, seed: 6), NNTestSupport.uniform([2, 4, 3], seed: 7))
    }

    func testGRUGradientsUnidirectionalLastState() {
        check(gru(3, 4, bidirectional: false, sequence: false), NNTestSupport.uniform([2, 4, 3], seed: 8))
    }

    func testGRUGradientsUnidirectionalSequence() {
        check(gru(3, 4, bidirectional: false, sequence: true), NNTestSupport.uniform([2, 4, 3], seed: 9))
    }

    func testGRUGradientsBidirectionalLastState() {
        check(gru(3, 4, bidirectional: true, sequence: false, seed: 10), NNTestSupport.uniform([2, 3, 3], seed: 11))
    }

    func testGRUGradientsBidirectionalSequence() {
        check(gru(3, 4, bidirectional: true, sequence: true, seed: 12), NNTestSupport.uniform([2, 4, 3], seed: 13))
    }

    /// One step: the state every direction starts from is zero, and nothing flows through W_hh.
    func testLSTMAndGRUGradientsOnASingleStep() {
        check(lstm(3, 4, bidirectional: true, sequence: true, seed: 14), NNTestSupport.uniform([2, 1, 3], seed: 15))
        check(gru(3, 4, bidirectional: true, sequence: false, seed: 16), NNTestSupport.uniform([2, 1, 3], seed: 17))
    }

    /// Nine hidden units: one full 8-lane vector of the gate kernels and a 1-lane tail.
    func testLSTMGRUAndAttentionGradientsAcrossAFullVectorAndATail() {
        check(lstm(3, 9, bidirectional: true, sequence: true, seed: 46), NNTestSupport.uniform([2, 3, 3], seed: 47))
        check(gru(3, 9, bidirectional: true, sequence: false, seed: 48), NNTestSupport.uniform([2, 3, 3], seed: 49))
        var random = Random(seed: 50)
        check(AttentionPool(features: 3, attentionSize: 9, random: &random), NNTestSupport.uniform([2, 3, 3], seed: 51))
    }

    /// A sequence-returning bidirectional LSTM feeding an LSTM: the first one's dx and
    /// parameters get their gradients through the second one's dx.
    func testStackedLSTMGradients() {
        let stack = Stack(lstm(3, 4, bidirectional: true, sequence: true, seed: 18),
                          lstm(8, 3, bidirectional: false, sequence: false, seed: 19))
        XCTAssertEqual(try stack.outputShape(for: [4, 3]), [3])
        check(stack, NNTestSupport.uniform([2, 4, 3], seed: 20))
    }

    /// Clips through a per-frame convnet (PerFrame) into a bidirectional LSTM: the sequence batch
    /// the frames make ([N, T, F]) is the one the LSTM reads, and gradients flow back through both.
    func testPerFrameConvnetIntoAnLSTMGradients() throws {
        var random = Random(seed: 52)
        let frames = try ModelSpec(parsing: "frames(conv 3 3 tanh | pool 2 avg | dense 4 sigmoid)").modules[0].layer
            .makeLayer(for: SampleShape([2, 3, 6, 6]), fastPaths: true, random: &random)
        let stack = Stack(frames, LSTM(inputs: 4, hidden: 3, bidirectional: true, returnsSequence: false, random: &random))
        XCTAssertEqual(try stack.outputShape(for: [2, 3, 6, 6]), [6])
        check(stack, NNTestSupport.uniform([2, 2, 3, 6, 6], seed: 53))
    }

    func testAttentionPoolGradients() {
        var random = Random(seed: 21)
        let pool = AttentionPool(features: 3, attentionSize: 5, random: &random)
        check(pool, NNTestSupport.uniform([2, 4, 3], seed: 22))
    }

    func testSequenceMeanGradients() {
        check(SequenceMean(), NNTestSupport.uniform([2, 4, 3], seed: 23))
    }

    /// A model's first layer skips dx; its parameter gradients must not depend on that.
    func testParameterGradientsDoNotDependOnSkippingTheInputGradient() {
        let x = NNTestSupport.uniform([3, 5, 3], seed: 24)
        let makers: [(String, () -> Layer)] = [
            ("LSTM", { self.lstm(3, 4, bidirectional: true, sequence: true, seed: 25) }),
            ("GRU", { self.gru(3, 4, bidirectional: true, sequence: false, seed: 26) }),
        ]
        for (name, make) in makers {
            let full = make(), skipping = make()
            (skipping as? SkipsInputGradient)?.needsInputGradient = false
            let r = NNTestSupport.uniform(full.forward(x, training: true).shape, seed: 27)
            _ = skipping.forward(x, training: true)
            _ = full.backward(r)
            _ = skipping.backward(r)
            for (a, b) in zip(full.parameters, skipping.parameters) {
                XCTAssertEqual(a.grad.data, b.grad.data, "\(name) d\(a.name)")
            }
        }
    }

    // MARK: Accumulation, ownership, replicas, shapes

    /// Two backward passes without zeroing give twice the parameter gradients and the same dx;
    /// neither writes into dout or the input.
    func testGradientsAccumulateAndBackwardWritesOnlyItsOwnTensors() {
        var random = Random(seed: 28)
        let layers: [Layer] = [
            lstm(3, 4, bidirectional: true, sequence: true, seed: 29),
            lstm(3, 4, bidirectional: false, sequence: false, seed: 30),
            gru(3, 4, bidirectional: true, sequence: true, seed: 31),
            gru(3, 4, bidirectional: true, sequence: false, seed: 32),
            AttentionPool(features: 3, attentionSize: 4, random: &random),
            SequenceMean(),
        ]
        for layer in layers {
            let x = NNTestSupport.uniform([2, 4, 3], seed: 33)
            let xBefore = x.data
            let y = layer.forward(x, training: true)
            let dout = NNTestSupport.uniform(y.shape, seed: 34)
            let doutBefore = dout.data
            for p in layer.parameters { p.grad.zero() }
            let dx1 = layer.backward(dout).copy()
            let once = layer.parameters.map { $0.grad.copy() }
            let dx2 = layer.backward(dout)
            XCTAssertEqual(dx1.shape, x.shape, "\(layer) dx shape")
            XCTAssertEqual(dx1.data, dx2.data, "\(layer): dx of the second backward")
            for (p, g) in zip(layer.parameters, once) {
                XCTAssertTrue(g.data.contains { $0 != 0 }, "\(layer) d\(p.name) is all zero")
                for i in 0..<g.count {
                    XCTAssertEqual(p.grad.data[i], 2 * g.data[i], accuracy: 1e-6 * max(1, abs(g.data[i])), "\(layer) d\(p.name)[\(i)]")
                }
            }
            XCTAssertEqual(x.data, xBefore, "\(layer) wrote into its input")
            XCTAssertEqual(dout.data, doutBefore, "\(layer) wrote into dout")
        }
    }

    func testReplicasShareValuesAndOwnGradients() {
        var random = Random(seed: 35)
        let layers: [Layer] = [
            lstm(3, 4, bidirectional: true, sequence: false, seed: 36),
            gru(3, 4, bidirectional: true, sequence: true, seed: 37),
            AttentionPool(features: 3, attentionSize: 4, random: &random),
        ]
        let x = NNTestSupport.uniform([2, 4, 3], seed: 38)
        for layer in layers {
            let copy = layer.replica()
            XCTAssertEqual(copy.description, layer.description)
            XCTAssertEqual(copy.parameters.map(\.name), layer.parameters.map(\.name))
            for (a, b) in zip(layer.parameters, copy.parameters) {
                XCTAssertTrue(a.value === b.value, "\(layer) \(a.name): value not shared")
                XCTAssertFalse(a.grad === b.grad, "\(layer) \(a.name): gradient shared")
            }
            let y = layer.forward(x, training: true).copy()
            XCTAssertEqual(copy.forward(x, training: true).data, y.data, "\(layer): replica's output")
            for p in layer.parameters { p.grad.zero() }
            _ = copy.backward(NNTestSupport.uniform(y.shape, seed: 39))
            XCTAssertTrue(layer.parameters.allSatisfy { $0.grad.data.allSatisfy { $0 == 0 } }, "\(layer): replica's backward reached the original's gradients")
        }
    }

    func testNamesInitAndDescriptionsFollowPyTorch() {
        let l = lstm(32, 64, bidirectional: true, sequence: true)
        XCTAssertEqual(l.description, "LSTM(32 => 64, bidirectional)")
        XCTAssertEqual(l.parameters.map(\.name), ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                                  "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse"])
        XCTAssertEqual(l.parameters.map(\.value.shape), [[256, 32], [256, 64], [256], [256], [256, 32], [256, 64], [256], [256]])
        let g = gru(5, 7, bidirectional: false, sequence: false)
        XCTAssertEqual(g.description, "GRU(5 => 7)")
        XCTAssertEqual(g.parameters.map(\.name), ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"])
        XCTAssertEqual(g.parameters.map(\.value.shape), [[21, 5], [21, 7], [21], [21]])
        var random = Random(seed: 1)
        let pool = AttentionPool(features: 6, attentionSize: 9, random: &random)
        XCTAssertEqual(pool.parameters.map(\.name), ["proj.weight", "proj.bias", "score.weight"])
        XCTAssertEqual(pool.parameters.map(\.value.shape), [[9, 6], [9], [1, 9]])

        // Uniform ±1/√H (recurrent), ±1/√fan_in (linear), filling the range, drawn in parameter order.
        let bounds: [(Layer, [Float])] = [(l, Array(repeating: 1 / 8, count: 8)), (pool, [1 / Float(6).squareRoot(), 1 / Float(6).squareRoot(), 1 / 3])]
        for (layer, limits) in bounds {
            for (p, limit) in zip(layer.parameters, limits) {
                let values = p.value.data
                XCTAssertTrue(values.allSatisfy { abs($0) <= limit }, "\(p.name) outside ±\(limit)")
                if values.count >= 200 { XCTAssertGreaterThan(values.map(abs).max()!, 0.95 * limit, p.name) }
            }
        }
        var first = Random(seed: 1)
        let expected = (0..<3).map { _ in first.uniform(-1 / 8, 1 / 8) }
        XCTAssertEqual(Array(l.parameters[0].value.data.prefix(3)), expected)
    }

    /// In a model, every tensor is named as PyTorch's nn.Sequential names it, dotted names too,
    /// and a replica keeps the names rather than prefixing them again.
    func testAModelNamesTheSequenceLayersTensorsAsPyTorchDoes() throws {
        var random = Random(seed: 44)
        let model = try Model(inputShape: [5, 3], layers: [
            (name: "0", layer: GRU(inputs: 3, hidden: 4, bidirectional: true, returnsSequence: true, random: &random)),
            (name: "1", layer: AttentionPool(features: 8, attentionSize: 6, random: &random)),
            (name: "2", layer: Dense(8, 2, random: &random)),
        ])
        let names = ["0.weight_ih_l0", "0.weight_hh_l0", "0.bias_ih_l0", "0.bias_hh_l0",
                     "0.weight_ih_l0_reverse", "0.weight_hh_l0_reverse", "0.bias_ih_l0_reverse", "0.bias_hh_l0_reverse",
                     "1.proj.weight", "1.proj.bias", "1.score.weight", "2.weight", "2.bias"]
        XCTAssertEqual(model.parameters.map(\.name), names)
        XCTAssertEqual(model.replica().parameters.map(\.name), names)
        XCTAssertEqual(try model.validate(), [2])
        XCTAssertEqual(model.forward(NNTestSupport.uniform([3, 5, 3], seed: 45), training: false).shape, [3, 2])
    }

    func testOutputShapesAndTheInputsTheyRefuse() throws {
        XCTAssertEqual(try lstm(3, 4, bidirectional: false, sequence: false).outputShape(for: [7, 3]), [4])
        XCTAssertEqual(try lstm(3, 4, bidirectional: true, sequence: false).outputShape(for: [7, 3]), [8])
        XCTAssertEqual(try lstm(3, 4, bidirectional: true, sequence: true).outputShape(for: [7, 3]), [7, 8])
        XCTAssertEqual(try gru(3, 4, bidirectional: false, sequence: true).outputShape(for: [7, 3]), [7, 4])
        var random = Random(seed: 1)
        XCTAssertEqual(try AttentionPool(features: 3, attentionSize: 2, random: &random).outputShape(for: [7, 3]), [3])
        XCTAssertEqual(try SequenceMean().outputShape(for: [7, 5]), [5])

        let message = NNTestSupport.assertModelError("LSTM on flat features") {
            _ = try self.lstm(3, 4, bidirectional: true, sequence: false).outputShape(for: [3])
        }
        XCTAssertEqual(message, "LSTM(3 => 4, bidirectional) needs a sequence T×3 (steps × features), got 3")
        NNTestSupport.assertModelError("GRU with the wrong feature count") {
            _ = try self.gru(3, 4, bidirectional: false, sequence: true).outputShape(for: [5, 4])
        }
        NNTestSupport.assertModelError("LSTM on an image") {
            _ = try self.lstm(3, 4, bidirectional: false, sequence: true).outputShape(for: [1, 5, 3])
        }
        NNTestSupport.assertModelError("attention on flat features") {
            _ = try AttentionPool(features: 3, attentionSize: 2, random: &random).outputShape(for: [3])
        }
        NNTestSupport.assertModelError("mean over time of flat features") { _ = try SequenceMean().outputShape(for: [3]) }
    }

    /// The gate activations are rational approximations: within 5e-7 of libm's everywhere,
    /// saturating to ±1 (tanh) and 0 or 1 (σ) without NaN, in full and in partial vectors.
    func testGateActivationsMatchLibmToHalfAMillionth() {
        var inputs: [Float] = [0, -0, 1e-30, -1e-6, 4e-4, 7.9, -7.95, 20, -20, 88, -100, 1e30, -.greatestFiniteMagnitude]
        for i in 0..<4000 { inputs.append(Float(i - 2000) / 100) }
        inputs.withUnsafeBufferPointer { p in
            for start in stride(from: 0, to: p.count, by: 8) {
                let lanes = min(8, p.count - start)
                let x = load8(p.baseAddress! + start, lanes), t = tanh8(x), s = sigmoid8(x)
                for k in 0..<lanes {
                    let v = Double(x[k])
                    XCTAssertEqual(Double(t[k]), Foundation.tanh(v), accuracy: 5e-7, "tanh(\(v))")
                    XCTAssertEqual(Double(s[k]), 1 / (1 + Foundation.exp(-v)), accuracy: 5e-7, "σ(\(v))")
                }
            }
        }
        var row: [Float] = Array(repeating: 9, count: 5)
        row.withUnsafeMutableBufferPointer { store8(Float8(repeating: 1), $0.baseAddress!, 3) }
        XCTAssertEqual(row, [1, 1, 1, 9, 9])
    }

    func testSequenceMeanAveragesOverTime() {
        let x = Tensor([1, 3, 2], [1, 2, 3, 4, 8, 0])
        XCTAssertEqual(SequenceMean().forward(x, training: false).data, [4, 2])
    }

    /// A larger batch first, then a smaller one: nothing stale from the first is read.
    func testTheBatchSizeAndLengthMayChangeBetweenCalls() {
        let layer = lstm(3, 4, bidirectional: true, sequence: false, seed: 40)
        let small = NNTestSupport.uniform([2, 3, 3], seed: 41)
        let before = layer.forward(small, training: true).copy()
        _ = layer.forward(NNTestSupport.uniform([5, 6, 3], seed: 42), training: true)
        XCTAssertEqual(layer.forward(small, training: true).data, before.data)
        check(layer, small)
    }

    // MARK: Against PyTorch

    func testLSTMMatchesPyTorch() throws {
        try compareRecurrent("lstm.json")
        try compareRecurrent("lstm-bidirectional.json")
    }

    func testGRUMatchesPyTorch() throws {
        try compareRecurrent("gru.json")
        try compareRecurrent("gru-bidirectional.json")
    }

    func testAttentionPoolMatchesPyTorch() throws {
        let fixture = try Fixture.load("attention-pool.json")
        var random = Random(seed: 1)
        let pool = AttentionPool(features: fixture.F, attentionSize: try XCTUnwrap(fixture.A), random: &random)
        try compare(pool, fixture, try XCTUnwrap(fixture.pooled), "attention-pool.json")
    }

    private func compareRecurrent(_ file: String) throws {
        let fixture = try Fixture.load(file)
        let (h, bidirectional) = (try XCTUnwrap(fixture.H), try XCTUnwrap(fixture.bidirectional))
        for sequence in [true, false] {
            var random = Random(seed: 1)
            let layer: Layer = fixture.kind == "lstm"
                ? LSTM(inputs: fixture.F, hidden: h, bidirectional: bidirectional, returnsSequence: sequence, random: &random)
                : GRU(inputs: fixture.F, hidden: h, bidirectional: bidirectional, returnsSequence: sequence, random: &random)
            let reference = try XCTUnwrap(sequence ? fixture.sequence : fixture.last)
            try compare(layer, fixture, reference, "\(file) \(sequence ? "sequence" : "last")")
        }
    }

    /// Loads the fixture's weights into `layer` (its parameter names and order must be
    /// PyTorch's), then compares y, dx and every parameter gradient for L = Σ y ⊙ R.
    private func compare(_ layer: Layer, _ fixture: Fixture, _ reference: Fixture.Reference, _ what: String) throws {
        XCTAssertEqual(layer.parameters.map(\.name), fixture.order, "\(what): parameter names and order")
        for p in layer.parameters {
            let values = try XCTUnwrap(fixture.parameters[p.name], "\(what): no \(p.name)")
            XCTAssertEqual(values.count, p.value.count, "\(what): \(p.name) size")
            p.value.data = values.map(Float.init)
            p.grad.zero()
        }
        let x = Tensor([fixture.N, fixture.T, fixture.F], fixture.x.map(Float.init))
        let y = layer.forward(x, training: true)
        assertClose(y, reference.y, "\(what) y")
        let dx = layer.backward(Tensor(y.shape, reference.r.map(Float.init)))
        assertClose(dx, reference.dx, "\(what) dx")
        for p in layer.parameters {
            assertClose(p.grad, try XCTUnwrap(reference.gradients[p.name]), "\(what) d\(p.name)")
        }
    }

    /// |ours − PyTorch's| ≤ 1e-5·max(1, |PyTorch's|) everywhere.
    private func assertClose(_ ours: Tensor, _ expected: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ours.count, expected.count, "\(what): count", file: file, line: line)
        guard ours.count == expected.count else { return }
        var worst = 0.0, at = 0
        for i in 0..<ours.count {
            let error = abs(Double(ours.data[i]) - expected[i]) / max(1, abs(expected[i]))
            if error > worst { worst = error; at = i }
        }
        XCTAssertLessThanOrEqual(worst, 1e-5, "\(what)[\(at)]: \(ours.data[at]) vs PyTorch \(expected[at])", file: file, line: line)
    }

    // MARK: It learns

    /// An LSTM followed by a dense layer learns to tell whether a sequence's first value is
    /// positive: it must carry that bit across the later steps, which are noise.
    func testAnLSTMLearnsToRememberTheFirstStep() throws {
        let (steps, batch) = (6, 64)
        var random = Random(seed: 43)
        func sample(_ n: Int) -> (Tensor, [Int32]) {
            let x = Tensor([n, steps, 1])
            for i in 0..<x.count { x.data[i] = random.uniform(-1, 1) }
            return (x, (0..<n).map { x.data[$0 * steps] > 0 ? 1 : 0 })
        }
        let model = try Model(inputShape: [steps, 1], layers: [
            (name: "0", layer: LSTM(inputs: 1, hidden: 12, bidirectional: false, returnsSequence: false, random: &random)),
            (name: "1", layer: Dense(12, 2, random: &random)),
        ])
        XCTAssertEqual(model.parameters.map(\.name), ["0.weight_ih_l0", "0.weight_hh_l0", "0.bias_ih_l0", "0.bias_hh_l0", "1.weight", "1.bias"])
        let adam = Adam(learningRate: 0.01)
        let gradient = Tensor([0])
        for _ in 0..<300 {
            let (x, labels) = sample(batch)
            model.zeroGrads()
            _ = SoftmaxCrossEntropy.lossAndGradient(logits: model.forward(x, training: true), labels: labels,
                                                    normalizer: Float(batch), gradient: gradient)
            model.backward(gradient)
            adam.step(model.parameters)
        }
        let (x, labels) = sample(500)
        let accuracy = SoftmaxCrossEntropy.accuracy(logits: model.forward(x, training: false), labels: labels)
        XCTAssertGreaterThan(accuracy, 0.95)
    }
}

/// Two layers in a row, as one layer (for checking gradients through a stack).
private final class Stack: Layer {
    let first: Layer, second: Layer
    init(_ first: Layer, _ second: Layer) { self.first = first; self.second = second }
    var parameters: [Parameter] { first.parameters + second.parameters }
    var description: String { "\(first) → \(second)" }
    func outputShape(for input: [Int]) throws -> [Int] { try second.outputShape(for: first.outputShape(for: input)) }
    func forward(_ x: Tensor, training: Bool) -> Tensor { second.forward(first.forward(x, training: training), training: training) }
    func backward(_ dout: Tensor) -> Tensor { first.backward(second.backward(dout)) }
    func replica() -> Layer { Stack(first.replica(), second.replica()) }
}

/// One file of Tests/NNTests/Fixtures (see scripts/make_fixtures.py).
private struct Fixture: Decodable {
    struct Reference: Decodable {
        let r: [Double], y: [Double], dx: [Double]
        let gradients: [String: [Double]]
    }

    let kind: String
    let N: Int, T: Int, F: Int
    let H: Int?, A: Int?, bidirectional: Bool?
    let order: [String]
    let parameters: [String: [Double]]
    let x: [Double]
    let sequence: Reference?, last: Reference?, pooled: Reference?

    static func load(_ name: String) throws -> Fixture {
        let folder = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil), "no Fixtures in the test bundle")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: folder.appendingPathComponent(name)))
    }
}
