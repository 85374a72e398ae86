import XCTest
@testable import NN
import Tensor

/// Central finite differences of loss = Σ out·r (r a fixed random projection), in Double,
/// against a layer's backward: the input gradient and every parameter gradient, at a seeded
/// sample of coordinates. A sample whose ± step flips the sign of any output (a ReLU kink:
/// there the difference quotient is not the derivative) is skipped and another one drawn.
func checkGradients(_ layer: Layer, input: Tensor, seed: UInt64 = 7, samples: Int = 24, epsilon: Float = 1e-3,
                    tolerance: Double = 2e-2, file: StaticString = #filePath, line: UInt = #line) {
    var random = Random(seed: seed)
    let out = layer.forward(input, training: true)
    let projection = (0..<out.count).map { _ in random.uniform(-1, 1) }
    let outShape = out.shape
    let hasKinks = layer is ReLU || (layer as? Conv2D)?.relu == true
    for p in layer.parameters { p.grad.zero() }
    let dx = layer.backward(Tensor(outShape, projection)).copy()
    let parameterGradients = layer.parameters.map { $0.grad.copy() }

    func loss() -> (Double, [Bool]) {
        let y = layer.forward(input, training: true)
        var total = 0.0
        for i in 0..<y.count { total += Double(y.data[i]) * Double(projection[i]) }
        return (total, hasKinks ? y.data.map { $0 > 0 } : [])
    }
    func compare(_ tensor: Tensor, _ analytic: Tensor, _ what: String) {
        XCTAssertEqual(tensor.count, analytic.count, "\(what): gradient size", file: file, line: line)
        var checked = 0
        for _ in 0..<(samples * 4) where checked < samples {
            let i = Int(random.next() % UInt64(tensor.count))
            let saved = tensor.data[i]
            tensor.data[i] = saved + epsilon; let (plus, plusSigns) = loss()
            tensor.data[i] = saved - epsilon; let (minus, minusSigns) = loss()
            tensor.data[i] = saved
            guard plusSigns == minusSigns else { continue }
            checked += 1
            let numeric = (plus - minus) / (2 * Double(epsilon))
            let exact = Double(analytic.data[i])
            XCTAssertLessThanOrEqual(abs(numeric - exact), tolerance * max(1, abs(numeric)),
                                     "\(what)[\(i)]: numeric \(numeric), backward \(exact)", file: file, line: line)
        }
        XCTAssertGreaterThanOrEqual(checked, samples / 2, "\(what): too many samples sat on a kink", file: file, line: line)
    }
    let checksInput = (layer as? Conv2D)?.needsInputGradient ?? (layer as? Dense)?.needsInputGradient ?? true
    if checksInput { compare(input, dx, "\(layer) dx") }
    for (p, g) in zip(layer.parameters, parameterGradients) { compare(p.value, g, "\(layer) d\(p.name)") }
}
