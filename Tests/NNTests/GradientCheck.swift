import XCTest
@testable import NN
import Tensor

/// The finite-difference gradient check every backward pass in this target is tested with.
///
/// Central differences of a scalar computed in Double (for a layer, L = Σ out·r with r a fixed
/// random projection; for the loss or a model, the loss itself), with steps of 1e-2 on Float32
/// values, against the analytic gradient: |analytic − numeric| ≤ 1e-2·max(|analytic|, |numeric|)
/// + atol, at up to `samples` coordinates per tensor (every coordinate of a smaller tensor).
/// The Float32 rounding in the scalar reaches the quotient divided by 2·step, so for steps below
/// 1e-3 (which only a deep model needs, to step between its many kinks) atol grows as 1e-3/step.
extension NNTestSupport {
    /// Tried in turn when the function's kink pattern changes between x − ε and x + ε.
    static let finiteDifferenceSteps: [Float] = [1e-2, 3e-3, 1e-3]
    static let gradientRtol = 1e-2

    /// Compares `analytic` = dL/d`tensor` with central differences of `loss`, which returns L and
    /// the pattern of its kinks (ReLU signs, pooling arg-maxes; empty for a smooth function).
    /// Where a step changes the pattern, a kink lies in between and the difference quotient is
    /// not the derivative: smaller steps are tried, then the coordinate is skipped. At most half
    /// the wanted coordinates may be skipped.
    static func checkFiniteDifferences(_ tensor: Tensor, _ analytic: Tensor, _ what: String,
                                       samples: Int = 20, atol: Double = 1e-3, steps: [Float] = finiteDifferenceSteps,
                                       random: inout Random,
                                       file: StaticString = #filePath, line: UInt = #line,
                                       loss: () -> (Double, [Int])) {
        XCTAssertEqual(tensor.count, analytic.count, "\(what): gradient count", file: file, line: line)
        guard tensor.count == analytic.count else { return }
        let wanted = min(samples, tensor.count)
        let exhaustive = tensor.count <= samples
        var checked = 0, attempts = 0
        while checked < wanted, attempts < samples * 20 {
            let i = exhaustive ? attempts : Int(random.next() % UInt64(tensor.count))
            attempts += 1
            if exhaustive && attempts > tensor.count { break }
            let saved = tensor.data[i]
            var numericValue: Double?, usedStep: Float = 0
            for step in steps {
                tensor.data[i] = saved + step; let (plus, plusPattern) = loss()
                tensor.data[i] = saved - step; let (minus, minusPattern) = loss()
                tensor.data[i] = saved
                if plusPattern == minusPattern { numericValue = (plus - minus) / (2 * Double(step)); usedStep = step; break }
            }
            guard let numeric = numericValue else { continue }
            checked += 1
            let exact = Double(analytic.data[i])
            let tolerance = atol * max(1, 1e-3 / Double(usedStep))
            XCTAssertTrue(close(exact, numeric, rtol: gradientRtol, atol: tolerance),
                          "\(what)[\(i)]: backward \(exact), finite difference \(numeric) (step \(usedStep))", file: file, line: line)
        }
        XCTAssertGreaterThanOrEqual(checked, wanted / 2, "\(what): too few usable samples (\(checked))", file: file, line: line)
    }

    /// Checks a layer's dL/d(input) (unless it skips computing it: a model's first layer) and
    /// dL/d(every parameter) at `input`, L = Σ out·r. A conv with ReLU and a ReLU report their
    /// output signs as kinks; max pooling's arg-max kinks are avoided with `distinct` inputs.
    static func checkGradients(_ layer: Layer, input: Tensor, samples: Int = 20, seed: UInt64 = 11,
                               file: StaticString = #filePath, line: UInt = #line) {
        var random = Random(seed: seed)
        let out = layer.forward(input, training: true)
        let outShape = out.shape
        let r = (0..<out.count).map { _ in random.uniform(-1, 1) }
        let kinks = layer is ReLU || (layer as? Convolution)?.relu == true
        let checkInput = (layer as? Convolution)?.needsInputGradient ?? (layer as? Dense)?.needsInputGradient ?? true

        // Analytic: zeroed gradients. Backward only reads dout (it may feed other consumers).
        for p in layer.parameters { p.grad.zero() }
        let dout = Tensor(outShape, r)
        let dx = layer.backward(dout).copy()
        XCTAssertEqual(dout.data, r, "\(layer): backward wrote into the output gradient it was given", file: file, line: line)
        let parameterGradients = layer.parameters.map { $0.grad.copy() }
        if checkInput { XCTAssertEqual(dx.shape, input.shape, "\(layer): input gradient shape", file: file, line: line) }

        func evaluate() -> (Double, [Int]) {
            let y = layer.forward(input, training: true)
            return (project(y, r), kinks ? y.data.map { $0 > 0 ? 1 : 0 } : [])
        }
        if checkInput {
            checkFiniteDifferences(input, dx, "\(layer) dx", samples: samples, random: &random, file: file, line: line, loss: evaluate)
        }
        for (p, g) in zip(layer.parameters, parameterGradients) {
            checkFiniteDifferences(p.value, g, "\(layer) d\(p.name)", samples: samples, random: &random,
                                   file: file, line: line, loss: evaluate)
        }
        // Leave the layer's caches consistent with the unperturbed input.
        _ = layer.forward(input, training: true)
    }
}
