import XCTest
@testable import NN
import Tensor

/// Adam and SGD against hand-computed steps; learning-rate changes; state export and restore.
final class OptimizerTests: XCTestCase {
    private let start: [Float] = [1, -2, 0.5]
    private let gradients: [[Float]] = [[0.1, -0.2, 0.3], [0.4, 0, -0.5]]

    private func parameter(_ values: [Float], name: String = "w") -> Parameter {
        Parameter(name: name, value: Tensor([values.count], values))
    }

    private func run(_ optimizer: Optimizer, _ p: Parameter, _ grads: [[Float]]) {
        for g in grads {
            p.grad.data = g
            optimizer.step([p])
        }
    }

    /// PyTorch's torch.optim.Adam (amsgrad off, no weight decay), in Double:
    /// m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − (lr/(1−β₁ᵗ))·m/(√v/√(1−β₂ᵗ) + ε).
    private func pytorchAdam(_ p0: [Float], _ grads: [[Float]], learningRates: [Double],
                             beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) -> [Double] {
        var p = p0.map(Double.init)
        var m = [Double](repeating: 0, count: p.count), v = m
        for (t, g) in grads.enumerated() {
            let step = Double(t + 1)
            let bc1 = 1 - pow(beta1, step), bc2 = 1 - pow(beta2, step)
            for i in 0..<p.count {
                let gi = Double(g[i])
                m[i] = beta1 * m[i] + (1 - beta1) * gi
                v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
                p[i] -= (learningRates[t] / bc1) * m[i] / (v[i].squareRoot() / bc2.squareRoot() + epsilon)
            }
        }
        return p
    }

    func testAdamTwoStepsMatchPyTorchsFormulaWithBiasCorrection() {
        let p = parameter(start)
        let adam = Adam(learningRate: 0.01)
        run(adam, p, gradients)
        XCTAssertEqual(adam.stepCount, 2)
        // Computed independently (Python, float64) from PyTorch's update rule.
        let literal: [Double] = [0.9811562363975117, -1.9832994184325559, 0.4929356123098128]
        let formula = pytorchAdam(start, gradients, learningRates: [0.01, 0.01])
        for i in 0..<3 {
            XCTAssertEqual(formula[i], literal[i], accuracy: 1e-8)   // the gradients are Float32
            XCTAssertEqual(Double(p.value.data[i]), literal[i], accuracy: 1e-6, "p[\(i)]")
        }
    }

    /// The step runs in the kernel table (ollie_adam_step); it must round exactly as the Swift
    /// loop it replaced: each operation once, in this order, no fused multiply-adds. Adam, AdamW
    /// and Adam with L2 decay, over enough weights for the vector sets' whole lanes and ends.
    func testAdamsKernelStepRoundsAsTheSwiftLoopDid() {
        var random = SystemRandomNumberGenerator()
        let count = 37
        for (wd, decoupled) in [(Float(0), false), (0.01, true), (0.01, false)] {
            let start = (0..<count).map { _ in Float.random(in: -1...1, using: &random) }
            let grads = (0..<5).map { _ in (0..<count).map { _ in Float.random(in: -0.5...0.5, using: &random) } }
            let p = parameter(start)
            run(Adam(learningRate: 3e-3, weightDecay: wd, decoupled: decoupled), p, grads)
            var w = start, m = [Float](repeating: 0, count: count), v = m
            let (b1, b2, eps, lr): (Float, Float, Float, Float) = (0.9, 0.999, 1e-8, 3e-3)
            for (t, g) in grads.enumerated() {
                let correction1 = Float(1 - pow(Double(b1), Double(t + 1))), correction2 = Float(1 - pow(Double(b2), Double(t + 1)))
                if wd != 0 && decoupled {
                    let keep = 1 - lr * wd
                    for i in 0..<count { w[i] *= keep }
                }
                for i in 0..<count {
                    let gi = wd != 0 && !decoupled ? g[i] + wd * w[i] : g[i]
                    m[i] = b1 * m[i] + (1 - b1) * gi
                    v[i] = b2 * v[i] + (1 - b2) * gi * gi
                    w[i] -= lr * (m[i] / correction1) / ((v[i] / correction2).squareRoot() + eps)
                }
            }
            XCTAssertEqual(p.value.data.map(\.bitPattern), w.map(\.bitPattern), "wd \(wd), decoupled \(decoupled)")
        }
    }

    func testAdamFirstStepMovesEachCoordinateByTheLearningRate() {
        // After one step m̂ = g and v̂ = g², so every coordinate moves by lr·sign(g).
        let p = parameter(start)
        run(Adam(learningRate: 0.01), p, [gradients[0]])
        XCTAssertEqual(p.value.data[0], 0.99, accuracy: 1e-6)
        XCTAssertEqual(p.value.data[1], -1.99, accuracy: 1e-6)
        XCTAssertEqual(p.value.data[2], 0.49, accuracy: 1e-6)
    }

    func testSGDPlainMatchesHandComputedSteps() {
        let p = parameter(start)
        let sgd = SGD(learningRate: 0.1)
        XCTAssertEqual(sgd.kind, "sgd")
        run(sgd, p, gradients)
        // p − 0.1·(g₁ + g₂)
        XCTAssertEqual(p.value.data[0], 1 - 0.01 - 0.04, accuracy: 1e-6)
        XCTAssertEqual(p.value.data[1], -2 + 0.02 - 0, accuracy: 1e-6)
        XCTAssertEqual(p.value.data[2], 0.5 - 0.03 + 0.05, accuracy: 1e-6)
        XCTAssertTrue(sgd.state(for: [p]).isEmpty, "plain SGD has no state")
        // Two Float steps p − lr·g land exactly on the hand value rounded to Float.
        let q = parameter([1, -2])
        run(SGD(learningRate: 0.1), q, [[0.5, -1], [0.1, 0.2]])
        XCTAssertEqual(q.value.data, [Float(1 - 0.05 - 0.01), Float(-2 + 0.1 - 0.02)])
    }

    func testSGDWithMomentumMatchesHandComputedSteps() {
        let p = parameter(start)
        let sgd = SGD(learningRate: 0.1, momentum: 0.9)
        XCTAssertEqual(sgd.kind, "momentum")
        run(sgd, p, gradients)
        // PyTorch: b₁ = g₁, p₁ = p₀ − lr·b₁; b₂ = 0.9·b₁ + g₂, p₂ = p₁ − lr·b₂.
        for i in 0..<3 {
            let g1 = Double(gradients[0][i]), g2 = Double(gradients[1][i])
            let b1 = g1, b2 = 0.9 * b1 + g2
            let expected = Double(start[i]) - 0.1 * b1 - 0.1 * b2
            XCTAssertEqual(Double(p.value.data[i]), expected, accuracy: 1e-6, "p[\(i)]")
        }
        // By hand: b₂ = [0.49, −0.18, −0.23]
        XCTAssertEqual(p.value.data[0], 1 - 0.01 - 0.049, accuracy: 1e-6)
        XCTAssertEqual(p.value.data[1], -2 + 0.02 + 0.018, accuracy: 1e-6)
        XCTAssertEqual(p.value.data[2], 0.5 - 0.03 + 0.023, accuracy: 1e-6)
        assertClose(sgd.state(for: [p])["w.momentum"]!.data.map(Double.init), [0.49, -0.18, -0.23], accuracy: 1e-6)
    }

    func testLearningRateChangesTakeEffectOnTheNextStep() {
        let p = parameter(start)
        let sgd = SGD(learningRate: 0.1)
        p.grad.data = gradients[0]; sgd.step([p])
        sgd.learningRate = 0.01
        p.grad.data = gradients[1]; sgd.step([p])
        XCTAssertEqual(p.value.data[0], 1 - 0.01 - 0.004, accuracy: 1e-6)
        XCTAssertEqual(p.value.data[2], 0.5 - 0.03 + 0.005, accuracy: 1e-6)

        let q = parameter(start)
        let momentum = SGD(learningRate: 0.1, momentum: 0.9)
        q.grad.data = gradients[0]; momentum.step([q])
        momentum.learningRate = 0.5
        q.grad.data = gradients[1]; momentum.step([q])
        XCTAssertEqual(q.value.data[0], 1 - 0.01 - 0.5 * 0.49, accuracy: 1e-6)

        let r = parameter(start)
        let adam = Adam(learningRate: 0.01)
        r.grad.data = gradients[0]; adam.step([r])
        adam.learningRate = 0.05
        r.grad.data = gradients[1]; adam.step([r])
        let expected = pytorchAdam(start, gradients, learningRates: [0.01, 0.05])
        for i in 0..<3 { XCTAssertEqual(Double(r.value.data[i]), expected[i], accuracy: 1e-6, "adam p[\(i)]") }
        XCTAssertNotEqual(Double(r.value.data[0]), 0.9811562363975117, accuracy: 1e-4, "the new rate was used")
    }

    /// Runs `make()` for `steps` steps, exports its state into a fresh `make()`, then continues
    /// both with the same gradients: the parameters must stay bit-identical.
    private func checkStateRoundTrip(_ make: () -> Optimizer, stateKeys: Set<String>,
                                     file: StaticString = #filePath, line: UInt = #line) throws {
        var random = Random(seed: 42)
        func grads(_ count: Int) -> [[Float]] { (0..<count).map { _ in (0..<4).map { _ in random.uniform(-1, 1) } } }
        let a = [parameter([0.1, 0.2, 0.3, 0.4], name: "layer.weight"), parameter([-1, 1], name: "layer.bias")]
        let first = make()
        for _ in 0..<3 {
            let g = grads(1)[0]
            a[0].grad.data = g; a[1].grad.data = Array(g[0..<2])
            first.step(a)
        }
        let state = first.state(for: a)
        XCTAssertEqual(Set(state.keys), stateKeys, file: file, line: line)
        // A deep copy, as a checkpoint file would hold it.
        let saved = state.mapValues { $0.copy() }

        let b = a.map { parameter($0.value.data, name: $0.name) }
        let second = make()
        try second.restore(saved, stepCount: first.stepCount, for: b)
        XCTAssertEqual(second.stepCount, first.stepCount, file: file, line: line)
        for (key, t) in second.state(for: b) { XCTAssertEqual(t.data, state[key]!.data, key, file: file, line: line) }

        for g in grads(4) {
            a[0].grad.data = g; a[1].grad.data = Array(g[0..<2])
            b[0].grad.data = g; b[1].grad.data = Array(g[0..<2])
            first.step(a); second.step(b)
        }
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.value.data.map(\.bitPattern), y.value.data.map(\.bitPattern), "\(x.name)", file: file, line: line)
        }
    }

    func testAdamStateRestoreRoundTripsAndContinuesIdentically() throws {
        try checkStateRoundTrip({ Adam(learningRate: 0.01) },
                                stateKeys: ["layer.weight.m", "layer.weight.v", "layer.bias.m", "layer.bias.v"])
    }

    func testMomentumStateRestoreRoundTripsAndContinuesIdentically() throws {
        try checkStateRoundTrip({ SGD(learningRate: 0.05, momentum: 0.9) },
                                stateKeys: ["layer.weight.momentum", "layer.bias.momentum"])
    }

    func testRestoreRejectsMissingOrMisShapedStateWithAModelError() {
        let p = parameter(start, name: "fc.weight")
        let adam = Adam()
        let missing = NNTestSupport.assertModelError("missing v") {
            try adam.restore(["fc.weight.m": Tensor([3])], stepCount: 1, for: [p])
        }
        XCTAssertTrue(missing?.contains("fc.weight.v") == true, missing ?? "")
        let misShaped = NNTestSupport.assertModelError("wrong shape") {
            try adam.restore(["fc.weight.m": Tensor([3]), "fc.weight.v": Tensor([4])], stepCount: 1, for: [p])
        }
        XCTAssertTrue(misShaped?.contains("fc.weight.v") == true, misShaped ?? "")
        XCTAssertEqual(adam.stepCount, 0, "a failed restore changes nothing")
        NNTestSupport.assertModelError("missing momentum") {
            try SGD(learningRate: 0.1, momentum: 0.9).restore([:], stepCount: 1, for: [p])
        }
    }
}

private func assertClose(_ a: [Double], _ b: [Double], accuracy: Double,
                            file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
