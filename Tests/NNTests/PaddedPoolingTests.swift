import XCTest
@testable import NN
import Tensor

/// Padded pooling (`pool K [stride S] [pad P] [max|avg]`, resnet18's stem `pool 3 stride 2 pad 1`):
/// forward against a naive loop from the definition and against PyTorch (max over the cells
/// inside the input, average over their count: count_include_pad=False), backward against
/// finite differences, the square max pool and the conv fusion refusing padding, and the spec's
/// words and errors.
final class PaddedPoolingTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    /// The definition, in Double: window p covers p·s + q − pad, q < kernel; of its cells only
    /// those inside x count. Max: their largest (the first in index order on ties), with its
    /// flat index into x; average: their sum over their count.
    private func naivePaddedPool(_ x: Tensor, kernel: [Int], stride: [Int], padding: [Int],
                                 max: Bool) -> (output: Tensor, winners: [Int]) {
        let (c, n, spatial) = (x.shape[0], x.shape[1], Array(x.shape[2...]))
        let outSpatial = (0..<kernel.count).map { (axis: Int) -> Int in (spatial[axis] + 2 * padding[axis] - kernel[axis]) / stride[axis] + 1 }
        let y = Tensor([c, n] + outSpatial)
        var winners: [Int] = []
        for ch in 0..<c {
            for b in 0..<n {
                for p in allIndices(outSpatial) {
                    var top = -Double.infinity, best = -1, total = 0.0, count = 0
                    for q in allIndices(kernel) {
                        let i = (0..<kernel.count).map { (axis: Int) -> Int in p[axis] * stride[axis] + q[axis] - padding[axis] }
                        guard zip(i, spatial).allSatisfy({ $0 >= 0 && $0 < $1 }) else { continue }
                        let at = offset([ch, b] + i, in: x.shape), v = Double(x.data[at])
                        total += v
                        count += 1
                        if v > top { top = v; best = at }
                    }
                    y.data[offset([ch, b] + p, in: y.shape)] = Float(max ? top : total / Double(count))
                    winners.append(best)
                }
            }
        }
        return (y, winners)
    }

    private func assertClose(_ actual: Tensor, _ expected: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, expected.shape, "\(what): shape", file: file, line: line)
        guard actual.shape == expected.shape else { return }
        for i in 0..<actual.count where abs(actual.data[i] - expected.data[i]) > 1e-6 {
            XCTFail("\(what)[\(i)]: \(actual.data[i]) vs \(expected.data[i])", file: file, line: line)
            return
        }
    }

    struct Case {
        let kernel, stride, padding, spatial: [Int]
    }

    let cases = [
        Case(kernel: [3], stride: [2], padding: [1], spatial: [10]),
        Case(kernel: [3, 3], stride: [2, 2], padding: [1, 1], spatial: [9, 8]),        // resnet's stem
        Case(kernel: [2, 2], stride: [1, 1], padding: [1, 1], spatial: [4, 5]),
        Case(kernel: [2, 2], stride: [2, 2], padding: [1, 0], spatial: [5, 6]),
        Case(kernel: [5, 4], stride: [2, 3], padding: [2, 2], spatial: [7, 9]),
        Case(kernel: [3, 3, 3], stride: [2, 2, 2], padding: [1, 1, 1], spatial: [5, 6, 7]),
        Case(kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1], spatial: [3, 6, 5]),
    ]

    func testPaddedPoolingForwardMatchesTheNaiveReferenceInOneTwoAndThreeDimensions() throws {
        for (index, t) in cases.enumerated() {
            let x = NNTestSupport.uniform([2, 3] + t.spatial, seed: UInt64(10 + index))
            for kind in [Pooling.Kind.max, .avg] {
                let layer = Pooling(kernel: t.kernel, stride: t.stride, padding: t.padding, kind: kind)
                XCTAssertEqual(layer.algorithm, .portable, "padded pooling runs on the portable loops")
                XCTAssertEqual(layer.padding, t.padding)
                let (expected, _) = naivePaddedPool(x, kernel: t.kernel, stride: t.stride, padding: t.padding, max: kind == .max)
                for pass in 0..<2 { assertClose(layer.forward(x, training: pass == 0), expected, "\(layer) on \(x.shape), pass \(pass)") }
                XCTAssertEqual(try layer.outputShape(for: [2] + t.spatial), [2] + Array(expected.shape[2...]))
            }
        }
    }

    /// Max is taken over the input only (the padding is −∞, not 0), and the average divides by
    /// the cells inside the input: a constant input pools to itself everywhere, corners too.
    func testThePaddingNeverWinsAMaxAndIsNotCountedInAnAverage() {
        let negative = Tensor([1, 1, 3, 3], (0..<9).map { -1 - Float($0) })
        let maxPool = Pooling(kernel: [3, 3], stride: [2, 2], padding: [1, 1], kind: .max)
        XCTAssertEqual(maxPool.forward(negative, training: true).data, [-1, -2, -4, -5])
        let constant = Tensor([2, 1, 5, 4], [Float](repeating: 2.5, count: 40))
        let avgPool = Pooling(kernel: [3, 3], stride: [2, 2], padding: [1, 1], kind: .avg)
        XCTAssertEqual(avgPool.forward(constant, training: true).data, [Float](repeating: 2.5, count: 2 * 3 * 2))
        // The gradient of a corner average spreads over its 4 cells, not 9.
        let dx = avgPool.backward(Tensor([2, 1, 3, 2], [1] + [Float](repeating: 0, count: 11)))
        XCTAssertEqual(Array(dx.data[0..<6]), [0.25, 0.25, 0, 0, 0.25, 0.25])
    }

    func testPaddedPoolingGradientsInOneTwoAndThreeDimensions() {
        for (index, t) in cases.enumerated() {
            let distinct = NNTestSupport.distinct([2, 2] + t.spatial, seed: UInt64(20 + index))
            let maxPool = Pooling(kernel: t.kernel, stride: t.stride, padding: t.padding, kind: .max)
            NNTestSupport.checkGradients(maxPool, input: distinct)
            let (y, winners) = naivePaddedPool(distinct, kernel: t.kernel, stride: t.stride, padding: t.padding, max: true)
            _ = maxPool.forward(distinct, training: true)
            let dy = NNTestSupport.uniform(y.shape, seed: 9)
            let expected = Tensor(distinct.shape)
            for (i, w) in winners.enumerated() { expected.data[w] += dy.data[i] }
            assertClose(maxPool.backward(dy), expected, "\(maxPool) routes to the winners")

            NNTestSupport.checkGradients(Pooling(kernel: t.kernel, stride: t.stride, padding: t.padding, kind: .avg),
                                         input: NNTestSupport.uniform([2, 2] + t.spatial, seed: UInt64(30 + index)))
        }
    }

    func testPaddedPoolingMatchesPyTorch() throws {
        for fastPaths in [false, true] {
            try SpatialFixture.check("maxpool-padded.json", fastPaths: fastPaths)
            try SpatialFixture.check("avgpool-padded.json", fastPaths: fastPaths)
            try SpatialFixture.check("avgpool-padded-3d.json", fastPaths: fastPaths)
        }
    }

    // MARK: algorithms

    func testOnlyUnpaddedPoolsRunSquareOrFused() throws {
        XCTAssertEqual(PoolingAlgorithm.choose(kernel: [2, 2], stride: [2, 2], padding: [1, 1], kind: .max, fastPaths: true), .portable)
        XCTAssertEqual(PoolingAlgorithm.choose(kernel: [2, 2], stride: [2, 2], padding: [0, 0], kind: .max, fastPaths: true), .squareMax)
        XCTAssertFalse(PoolingAlgorithm.squareMax.takes(kernel: [3, 3], stride: [3, 3], padding: [1, 1], kind: .max))
        XCTAssertEqual(Pooling(kernel: [2, 2], padding: [1, 1]).algorithm, .portable)
        var random = Random(seed: 1)
        let plane = Convolution(2, 3, kernel: 3, padding: 1, activation: .relu, random: &random)
        XCTAssertTrue(plane.canFuse(with: Pooling(kernel: [2, 2])))
        XCTAssertFalse(plane.canFuse(with: Pooling(kernel: [2, 2], padding: [1, 1])))
        let fused = try ModelSpec(parsing: "conv 3 8 relu | pool 2 | dense 10").compile(inputShape: [1, 8, 8], classes: 10, seed: 1)
        XCTAssertEqual(fused.layers.map { "\(type(of: $0.layer))" }, ["ConvolutionThenPool", "Flatten", "Dense"])
        let padded = try ModelSpec(parsing: "conv 3 8 relu | pool 2 pad 1 | dense 10").compile(inputShape: [1, 8, 8], classes: 10, seed: 1)
        XCTAssertEqual(padded.layers.map { "\(type(of: $0.layer))" }, ["Convolution", "Pooling", "Flatten", "Dense"])
        XCTAssertEqual(padded.modules.map(\.outputShape), [[8, 8, 8], [8, 8, 8], [8, 5, 5], [200], [10]])
    }

    func testDescriptionAndReplicaKeepThePadding() throws {
        let pool = Pooling(kernel: [3, 3], stride: [2, 2], padding: [1, 1], kind: .max)
        XCTAssertEqual(pool.description, "MaxPool((3, 3), stride=2, pad=1)")
        XCTAssertEqual(Pooling(kernel: [3], stride: [3], padding: [1], kind: .avg).description, "MeanPool((3,), pad=1)")
        let replica = try XCTUnwrap(pool.replica() as? Pooling)
        XCTAssertEqual(replica.padding, [1, 1])
        XCTAssertEqual(try replica.outputShape(for: [64, 112, 112]), [64, 56, 56])
        let wide = Pooling(kernel: [5, 5], stride: [1, 1], padding: [1, 1], kind: .max)
        let small = NNTestSupport.assertModelError("smaller than the padded window") { _ = try wide.outputShape(for: [4, 2, 7]) }
        XCTAssertEqual(small, "MaxPool((5, 5), stride=1, pad=1) needs inputs of at least 3×3, got 2×7")
    }

    // MARK: in a spec

    /// The README's example: torchvision's resnet18 stem takes 3×224×224 to 64×56×56.
    func testResNetsStemPlansTo64By56By56() throws {
        let spec = try ModelSpec(parsing: "conv 7 64 stride 2 pad 3 | batchnorm | relu | pool 3 stride 2 pad 1")
        XCTAssertEqual(try spec.plan(inputShape: [3, 224, 224]).map(\.output.dims), [[64, 112, 112], [64, 112, 112], [64, 112, 112],
                                                                                    [64, 56, 56]])
        XCTAssertEqual(spec.modules[0].layer.parameterCount(for: [3, 224, 224]), 64 * 3 * 49 + 64)
    }

    func testSpecPrintsThePaddingOnlyWhenNonzeroAndParsesBackTheSame() throws {
        let cases: [(typed: String, canonical: String)] = [
            ("pool 3 stride 2 pad 1", "pool 3 stride 2 pad 1"),
            ("pool 3 pad 1 stride 2 max", "pool 3 stride 2 pad 1"),
            ("pool 3 stride 2 pad 0", "pool 3 stride 2"),
            ("POOL 2 PAD 1 AVG", "pool 2 pad 1 avg"),
            ("pool 1x3x3 stride 1x2x2 pad 0x1x1 avg", "pool 1x3x3 stride 1x2x2 pad 0x1x1 avg"),
        ]
        for (typed, canonical) in cases {
            let parsed = try ModelSpec(parsing: typed + " | dense 10")
            XCTAssertEqual(parsed.text, canonical + " | dense 10", typed)
            XCTAssertEqual(try ModelSpec(parsing: parsed.text), parsed, typed)
        }
    }

    private func error(_ text: String, input: [Int] = [1, 28, 28]) -> String {
        do {
            _ = try ModelSpec(parsing: text).compile(inputShape: input, classes: 10, seed: 1)
            return "(no error)"
        } catch {
            return "\(error)"
        }
    }

    func testPaddingAboveHalfTheWindowIsAOneLineError() {
        for (text, message) in [("pool 3 pad 2", "pad 2 is more than half the window 3; use pad 1 or less (PyTorch's rule)"),
                                ("pool 2 stride 2 pad 2 avg", "pad 2 is more than half the window 2; use pad 1 or less (PyTorch's rule)"),
                                ("pool 1x3x3 pad 1", "pad 1 is more than half the window 1; use pad 0 or less (PyTorch's rule)"),
                                ("pool 3x1 pad 1", "pad 1 is more than half the window 1; use pad 0 or less (PyTorch's rule)"),
                                ("pool 3 pad", "pad needs a size, e.g. pad 1"),
                                ("pool 3 pad -1", "the padding '-1' must be whole numbers from 0 to 1024")] {
            let got = error(text + " | dense 10")
            XCTAssertTrue(got.hasPrefix("layer 1 \"\(text)\": \(message); pool K"), got)
            XCTAssertFalse(got.contains("\n"), got)
        }
        XCTAssertEqual(error("pool 3 pad 1x1x1 | dense 10"),
                       "layer 1 \"pool 3 pad 1x1x1\": the padding 1x1x1 has the wrong number of sizes for a 2-D input, got 1×28×28 (2-D)")
        XCTAssertEqual(error("pool 5 pad 1 | dense 10", input: [1, 2, 2]),
                       "layer 1 \"pool 5 pad 1\": the window 5 is larger than the padded input 1×2×2 (2-D)")
    }

    /// Every line `help build` prints fits 80 columns.
    func testTheGrammarFitsEightyColumns() {
        for line in ModelSpec.grammar.split(separator: "\n") { XCTAssertLessThanOrEqual(line.count, 80, String(line)) }
        XCTAssertTrue(ModelSpec.grammar.contains("pool K [stride S] [pad P] [max|avg]"))
        XCTAssertTrue(ModelSpec.grammar.contains("conv K OUT [stride S] [pad P|same|valid] [groups G] [ACT]"))
        XCTAssertTrue(ModelSpec.grammar.contains("relu6"))
    }
}
