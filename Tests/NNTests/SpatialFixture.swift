import Foundation
import XCTest
@testable import NN
import Tensor

/// One convolution or pooling fixture of Tests/NNTests/Fixtures (scripts/make_fixtures.py):
/// a layer as spec words, its PyTorch weights, an input x and, for L = Σ y ⊙ R, PyTorch's y,
/// dL/dx and dL/d(every parameter), computed in float64. x, y, R and dx are in ollie's layout
/// [C, N, D…].
struct SpatialFixture: Decodable {
    let spec: String
    /// One sample's shape [C, D…], what the spec is built for.
    let input: [Int]
    let x_shape: [Int], y_shape: [Int]
    let x: [Double], r: [Double], y: [Double], dx: [Double]
    let order: [String]
    let parameters: [String: [Double]]
    let gradients: [String: [Double]]

    static func load(_ name: String) throws -> SpatialFixture {
        let folder = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil), "no Fixtures in the test bundle")
        return try JSONDecoder().decode(SpatialFixture.self, from: Data(contentsOf: folder.appendingPathComponent(name)))
    }

    /// Builds the fixture's spec (one layer) for its input with the portable layers or the fast
    /// paths, loads PyTorch's weights, and compares y, dx and every parameter gradient:
    /// |ours − PyTorch's| ≤ 1e-5·max(1, |PyTorch's|).
    static func check(_ name: String, fastPaths: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let fixture = try load(name)
        let spec = try ModelSpec(parsing: fixture.spec)
        XCTAssertEqual(spec.text, fixture.spec, "\(name): the spec prints as written", file: file, line: line)
        XCTAssertEqual(spec.modules.count, 1, name, file: file, line: line)
        var random = Random(seed: 1)
        let layer = try spec.modules[0].layer.makeLayer(for: fixture.input, fastPaths: fastPaths, random: &random)
        XCTAssertEqual(layer.parameters.map(\.name), fixture.order, "\(name): parameter names and order", file: file, line: line)
        for p in layer.parameters {
            let values = try XCTUnwrap(fixture.parameters[p.name], "\(name): no \(p.name)")
            XCTAssertEqual(values.count, p.value.count, "\(name): \(p.name) size", file: file, line: line)
            p.value.data = values.map(Float.init)
            p.grad.zero()
        }
        let x = Tensor(fixture.x_shape, fixture.x.map(Float.init))
        let y = layer.forward(x, training: true)
        XCTAssertEqual(y.shape, fixture.y_shape, "\(name): output shape", file: file, line: line)
        assertClose(y, fixture.y, "\(name) y", file: file, line: line)
        let dx = layer.backward(Tensor(y.shape, fixture.r.map(Float.init)))
        assertClose(dx, fixture.dx, "\(name) dx", file: file, line: line)
        for p in layer.parameters {
            assertClose(p.grad, try XCTUnwrap(fixture.gradients[p.name]), "\(name) d\(p.name)", file: file, line: line)
        }
    }

    static func assertClose(_ ours: Tensor, _ expected: [Double], _ what: String, file: StaticString, line: UInt) {
        XCTAssertEqual(ours.count, expected.count, "\(what): count", file: file, line: line)
        guard ours.count == expected.count else { return }
        var worst = 0.0, at = 0
        for i in 0..<ours.count {
            let error = abs(Double(ours.data[i]) - expected[i]) / max(1, abs(expected[i]))
            if error > worst { worst = error; at = i }
        }
        XCTAssertLessThanOrEqual(worst, 1e-5, "\(what)[\(at)]: \(ours.data[at]) vs PyTorch \(expected[at])", file: file, line: line)
    }
}
