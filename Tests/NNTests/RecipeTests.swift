import XCTest
@testable import NN
import Tensor

/// The optimizers and the training loss of the recipes (adamw, nesterov, rmsprop, weight decay;
/// label smoothing, class weights) against PyTorch (Fixtures/optimizers.json and
/// loss-recipes.json, written by scripts/optimizer_fixtures.py), checkpointed state, and the
/// loss's gradient against finite differences.
final class RecipeTests: XCTestCase {
    private struct Pair: Decodable { let weight: [Double], bias: [Double] }
    private struct OptimizerFixture: Decodable {
        struct Case: Decodable { let kind: String, learningRate: Float, weightDecay: Float, after: [Pair] }
        let weight: [Double], bias: [Double]
        let gradients: [Pair]
        let cases: [Case]
    }
    private struct LossFixture: Decodable {
        struct Case: Decodable { let smoothing: Float, weights: [Float]?, loss: Double, gradient: [Double] }
        let N: Int, K: Int
        let logits: [Double], labels: [Int32]
        let cases: [Case]
    }

    private func fixture<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        let folder = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil), "no Fixtures in the test bundle")
        return try JSONDecoder().decode(T.self, from: Data(contentsOf: folder.appendingPathComponent(name)))
    }

    private func parameters(_ f: OptimizerFixture) -> [Parameter] {
        [Parameter(name: "fc.weight", value: Tensor([3, 4], f.weight.map(Float.init))),
         Parameter(name: "fc.bias", value: Tensor([3], f.bias.map(Float.init)))]
    }

    private func load(_ pair: Pair, into ps: [Parameter]) {
        ps[0].grad.data = pair.weight.map(Float.init)
        ps[1].grad.data = pair.bias.map(Float.init)
    }

    func testEveryOptimizerMatchesTorchOptimOverFourStepsWithAndWithoutWeightDecay() throws {
        let f = try fixture("optimizers.json", as: OptimizerFixture.self)
        XCTAssertEqual(Set(f.cases.map(\.kind)), Set(OptimizerKind.allCases.map(\.rawValue)), "a fixture for every optimizer")
        for c in f.cases {
            let kind = try XCTUnwrap(OptimizerKind(rawValue: c.kind))
            let optimizer = kind.make(learningRate: c.learningRate, weightDecay: c.weightDecay)
            XCTAssertEqual(optimizer.kind, c.kind)
            let ps = parameters(f)
            for (step, expected) in c.after.enumerated() {
                load(f.gradients[step], into: ps)
                optimizer.step(ps)
                for (p, values) in zip(ps, [expected.weight, expected.bias]) {
                    for (i, v) in values.enumerated() {
                        XCTAssertEqual(Double(p.value.data[i]), v, accuracy: 1e-6 * max(1, abs(v)),
                                       "\(c.kind) wd \(c.weightDecay) step \(step + 1) \(p.name)[\(i)]")
                    }
                }
            }
        }
    }

    /// Decoupled decay differs from L2 decay: the same wd gives different weights (so neither
    /// is silently the other).
    func testAdamWDecaysTheWeightsNotTheGradient() {
        func run(_ kind: OptimizerKind) -> [Float] {
            let p = Parameter(name: "w", value: Tensor([2], [1, -3]))
            let optimizer = kind.make(learningRate: 0.1, weightDecay: 0.5)
            for _ in 0..<3 { p.grad.data = [0.2, 0.1]; optimizer.step([p]) }
            return p.value.data
        }
        XCTAssertNotEqual(run(.adam), run(.adamw))
        // With a zero gradient AdamW only shrinks: p·(1 − lr·wd) per step.
        let p = Parameter(name: "w", value: Tensor([1], [2]))
        let adamw = OptimizerKind.adamw.make(learningRate: 0.1, weightDecay: 0.5)
        adamw.step([p])
        XCTAssertEqual(p.value.data[0], 2 * (1 - 0.05), accuracy: 1e-6)
    }

    /// Saved after two steps and restored into a fresh optimizer made from the saved kind and
    /// constants, every optimizer takes the next two steps to the same bits as one that never
    /// stopped; a frozen parameter (left out of a step) and rate scales stay as they were.
    func testStateRestoredIntoAFreshOptimizerRetracesBitForBit() throws {
        let f = try fixture("optimizers.json", as: OptimizerFixture.self)
        let expectedKeys: [OptimizerKind: [String]] = [
            .adam: ["m", "v"], .adamw: ["m", "v"], .sgd: [], .momentum: ["momentum"], .nesterov: ["momentum"], .rmsprop: ["square_avg"],
        ]
        for kind in OptimizerKind.allCases {
            let ps = parameters(f), copies = parameters(f)
            let original = kind.make(learningRate: 0.01, weightDecay: 0.03)
            for step in 0..<2 {
                load(f.gradients[step], into: ps)
                // The bias sits the first step out (frozen), and the weight trains at 0.5 × lr.
                if step == 0 { original.step([ps[0]], rateScales: [0.5]) } else { original.step(ps, rateScales: [0.5, 1]) }
            }
            let state = original.state(for: ps)
            XCTAssertEqual(Set(state.keys.filter { !$0.hasSuffix(".step") }),
                           Set(["fc.weight", "fc.bias"].flatMap { p in expectedKeys[kind]!.map { "\(p).\($0)" } }), "\(kind)")
            let restored = kind.make(learningRate: original.learningRate, weightDecay: original.weightDecay, constants: original.constants)
            for (p, q) in zip(ps, copies) { q.value.data = p.value.data }
            try restored.restore(state, stepCount: original.stepCount, for: copies)
            for step in 2..<4 {
                load(f.gradients[step], into: ps); load(f.gradients[step], into: copies)
                original.step(ps, rateScales: [0.5, 1]); restored.step(copies, rateScales: [0.5, 1])
            }
            for (p, q) in zip(ps, copies) {
                XCTAssertEqual(p.value.data.map(\.bitPattern), q.value.data.map(\.bitPattern), "\(kind) \(p.name)")
            }
        }
    }

    // MARK: Loss

    private func logits(_ f: LossFixture) -> Tensor { Tensor([f.N, f.K], f.logits.map(Float.init)) }

    func testSmoothedAndWeightedCrossEntropyMatchesTorch() throws {
        let f = try fixture("loss-recipes.json", as: LossFixture.self)
        for c in f.cases {
            let objective = SoftmaxCrossEntropy(smoothing: c.smoothing, classWeights: c.weights)
            let normalizer = objective.normalizer(labels: f.labels, count: f.N)
            let gradient = Tensor([0])
            let total = objective.lossAndGradient(logits: logits(f), labels: f.labels, normalizer: normalizer, gradient: gradient)
            let what = "smoothing \(c.smoothing) weights \(c.weights.map { "\($0)" } ?? "none")"
            XCTAssertEqual(total / Double(normalizer), c.loss, accuracy: 1e-6 * max(1, c.loss), what)
            for (i, g) in c.gradient.enumerated() {
                XCTAssertEqual(Double(gradient.data[i]), g, accuracy: 1e-6, "\(what) dlogits[\(i)]")
            }
        }
    }

    /// The gradient is the derivative of the summed smoothed, weighted loss over the normalizer,
    /// at every logit; the normalizer is a slice's share of a larger batch's weight.
    func testSmoothedWeightedGradientMatchesFiniteDifferences() {
        let logits = NNTestSupport.uniform([5, 4], seed: 23, range: 3)
        let labels: [Int32] = [0, 3, 3, 1, 2]
        let objective = SoftmaxCrossEntropy(smoothing: 0.15, classWeights: [0.5, 2, 1, 3])
        let normalizer: Float = 9.5
        let gradient = Tensor([0])
        _ = objective.lossAndGradient(logits: logits, labels: labels, normalizer: normalizer, gradient: gradient)
        let analytic = gradient.copy()
        let scratch = Tensor([0])
        var random = Random(seed: 3)
        NNTestSupport.checkFiniteDifferences(logits, analytic, "dlogits", samples: logits.count, atol: 1e-4, random: &random) {
            (objective.lossAndGradient(logits: logits, labels: labels, normalizer: 1, gradient: scratch) / Double(normalizer), [])
        }
    }

    /// Without smoothing or weights the objective takes the plain loop: the same bits as the
    /// static form, and the evaluation loss stays plain cross-entropy with a recipe set.
    func testPlainObjectiveKeepsItsBitsAndEvaluationLossIsPlain() {
        let logits = NNTestSupport.uniform([4, 3], seed: 5, range: 2)
        let labels: [Int32] = [2, 0, 1, 1]
        let (a, b) = (Tensor([0]), Tensor([0]))
        let plain = SoftmaxCrossEntropy().lossAndGradient(logits: logits, labels: labels, normalizer: 4, gradient: a)
        XCTAssertEqual(plain, SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels, normalizer: 4, gradient: b))
        XCTAssertEqual(a.data.map(\.bitPattern), b.data.map(\.bitPattern))
        let recipe = SoftmaxCrossEntropy(smoothing: 0.1, classWeights: [1, 2, 3])
        XCTAssertEqual(recipe.loss(logits: logits, labels: labels), SoftmaxCrossEntropy.loss(logits: logits, labels: labels))
        XCTAssertNotEqual(recipe.lossAndGradient(logits: logits, labels: labels, normalizer: 4, gradient: a), plain)
        XCTAssertEqual(recipe.normalizer(labels: labels, count: 4), 3 + 1 + 2 + 2)
        XCTAssertEqual(SoftmaxCrossEntropy().normalizer(labels: labels, count: 4), 4)
    }

    func testTopKHitsCountTiesInTheLabelsFavour() {
        // Row 0: label 2 is 3rd; row 1: label 0 is 1st; row 2: label 1 ties for 1st with class 0.
        let logits = Tensor([3, 4], [5, 4, 3, 2,   9, 1, 1, 1,   2, 2, 0, 0])
        let labels: [Int32] = [2, 0, 1]
        XCTAssertEqual(SoftmaxCrossEntropy.topKHits(logits, labels: labels, k: 1), 2)
        XCTAssertEqual(SoftmaxCrossEntropy.topKHits(logits, labels: labels, k: 2), 2)
        XCTAssertEqual(SoftmaxCrossEntropy.topKHits(logits, labels: labels, k: 3), 3)
    }
}
