import XCTest
import CBLAS
@testable import Tensor

/// ollie's GEMM kernels of every set this CPU runs (portable, avx2, avx512) against OpenBLAS, on
/// the shapes convolutions use and on ragged edges (rows not a multiple of the tile's, columns
/// not a multiple of its width). scripts/kernel-test.c checks the other kernels, and these
/// against each other bit for bit.
final class GEMMTests: XCTestCase {
    override func setUpWithError() throws {
        try BLAS.load()
    }

    func random(_ count: Int, _ generator: inout Random) -> [Float] {
        (0..<count).map { _ in generator.uniform(-1, 1) }
    }

    /// Runs `body` once per kernel set, with that set in force.
    func forEachSet(_ body: (String) -> Void) {
        let sets = Kernels.available
        XCTAssertEqual(sets.first, "portable", "portable runs everywhere")
        for set in sets { Kernels.withSet(set) { body(set) } }
    }

    func check(_ set: String, transA: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float,
               file: StaticString = #filePath, line: UInt = #line) {
        var generator = Random(seed: UInt64(m * 1_000_003 + n * 31 + k))
        let a = random(m * k, &generator), b = random(k * n, &generator), c0 = random(m * n, &generator)
        var expected = c0, got = c0
        let lda = transA ? m : k
        ollie_sgemm(transA ? 1 : 0, 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(n), beta, &expected, Int32(n))
        XCTAssertEqual(ollie_skinny_sgemm(transA ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(n), beta, &got, Int32(n), 0, nil, 0), 0)
        let worst = zip(expected, got).map { abs($0 - $1) / max(1, abs($0)) }.max() ?? 0
        XCTAssertLessThan(worst, 1e-4, "\(set): transA \(transA) m \(m) n \(n) k \(k)", file: file, line: line)
    }

    func testConvolutionShapesMatchOpenBLAS() {
        forEachSet { set in
            check(set, transA: false, m: 16, n: 50_176, k: 9, alpha: 1, beta: 0)     // conv1 forward, 64 images
            check(set, transA: false, m: 32, n: 12_544, k: 144, alpha: 1, beta: 0)   // conv2 forward
            check(set, transA: true, m: 288, n: 3_136, k: 32, alpha: 1, beta: 0)     // conv3 input gradient
        }
    }

    /// C += A·Bᵀ by the dot-product kernel against OpenBLAS: the weight-gradient shapes of the
    /// reference model's chunks, and ragged tiles and K tails.
    func testWeightGradientKernelMatchesOpenBLAS() {
        forEachSet { set in
            for (m, n, k) in [(32, 144, 784), (32, 288, 441), (16, 9, 14_112), (1, 1, 1), (5, 7, 15), (4, 6, 16), (9, 13, 300)] {
                var generator = Random(seed: UInt64(m * 7 + n * 131 + k))
                let a = random(m * k, &generator), b = random(n * k, &generator), c0 = random(m * n, &generator)
                var expected = c0, got = c0
                ollie_sgemm(0, 1, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(k), 1, &expected, Int32(n))
                XCTAssertEqual(ollie_sgemm_nt_add(Int32(m), Int32(n), Int32(k), a, Int32(k), b, Int32(k), &got, Int32(n)), 0)
                let worst = zip(expected, got).map { abs($0 - $1) / max(1, abs($0)) }.max() ?? 0
                XCTAssertLessThan(worst, 1e-4, "\(set): m \(m) n \(n) k \(k)")
            }
        }
    }

    /// sameA reuses the packed A only when the previous call packed that same A: another A
    /// (or shape) is packed afresh, so a stale copy is never used.
    func testSameAReusesOnlyTheSamePackedMatrix() {
        forEachSet { set in
            var generator = Random(seed: 5)
            let (m, n, k) = (32, 300, 144)
            let a1 = random(m * k, &generator), a2 = random(m * k, &generator), b = random(k * n, &generator)
            for a in [a1, a2, a1] {
                var expected = [Float](repeating: 0, count: m * n), got = expected, again = expected
                ollie_sgemm(0, 0, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &expected, Int32(n))
                a.withUnsafeBufferPointer { ap in
                    XCTAssertEqual(ollie_skinny_sgemm(0, Int32(m), Int32(n), Int32(k), 1, ap.baseAddress, Int32(k), b, Int32(n), 0, &got, Int32(n), 1, nil, 0), 0)
                    XCTAssertEqual(ollie_skinny_sgemm(0, Int32(m), Int32(n), Int32(k), 1, ap.baseAddress, Int32(k), b, Int32(n), 0, &again, Int32(n), 1, nil, 0), 0)
                }
                let worst = zip(expected, got).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThan(worst, 1e-3, set)
                XCTAssertEqual(got, again, set)
            }
        }
    }

    func testRaggedEdgesAlphaAndBeta() {
        forEachSet { set in
            for (m, n, k) in [(1, 1, 1), (7, 33, 5), (9, 17, 3), (13, 100, 29), (8, 32, 1), (3, 257, 70)] {
                check(set, transA: false, m: m, n: n, k: k, alpha: 1, beta: 0)
                check(set, transA: true, m: m, n: n, k: k, alpha: 0.5, beta: 1)
                check(set, transA: false, m: m, n: n, k: k, alpha: -2, beta: 0.25)
            }
        }
    }

    /// The skinny GEMM is one FMA chain along K per element in every set, so the vector sets
    /// give the portable set's bits exactly.
    func testSkinnyGEMMOfEverySetHasThePortableBits() {
        var generator = Random(seed: 11)
        let (m, n, k) = (13, 301, 37)
        let a = random(m * k, &generator), b = random(k * n, &generator)
        var reference = [Float](repeating: 0, count: m * n)
        Kernels.withSet("portable") {
            XCTAssertEqual(ollie_skinny_sgemm(0, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &reference, Int32(n), 0, nil, 0), 0)
        }
        forEachSet { set in
            var got = [Float](repeating: 0, count: m * n)
            XCTAssertEqual(ollie_skinny_sgemm(0, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &got, Int32(n), 0, nil, 0), 0)
            XCTAssertEqual(got, reference, set)
        }
    }

    /// BLAS.sgemm(bias:relu:) gives relu(A·B + b) whichever way it runs: in the skinny kernel's
    /// tiles (a fast set, a long B) or as a pass after OpenBLAS (portable, or a short B).
    func testSGEMMAddsTheBiasAndReLUOnEveryPath() throws {
        try BLAS.load()
        var generator = Random(seed: 5)
        for (m, n, k) in [(7, 300, 20), (7, 40, 20)] {
            let a = random(m * k, &generator), b = random(k * n, &generator), bias = random(m, &generator)
            var expected = [Float](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var s: Float = bias[i]
                    for p in 0..<k { s += a[i * k + p] * b[p * n + j] }
                    expected[i * n + j] = max(s, 0)
                }
            }
            forEachSet { set in
                var got = [Float](repeating: .nan, count: m * n)
                got.withUnsafeMutableBufferPointer { c in
                    BLAS.sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: c.baseAddress!, ldc: n,
                               bias: bias, relu: true)
                }
                let worst = zip(expected, got).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThan(worst, 1e-4, "\(set): m \(m) n \(n) k \(k)")
                XCTAssertTrue(got.allSatisfy { $0 >= 0 }, set)
            }
        }
    }

    /// The chosen set is one of the available ones, and OLLIE_KERNELS (when set) chose it.
    func testTheChosenSetIsAvailableAndNamedByTheEnvironment() {
        XCTAssertTrue(Kernels.available.contains(Kernels.setName))
        if let wanted = ProcessInfo.processInfo.environment["OLLIE_KERNELS"], !wanted.isEmpty {
            XCTAssertEqual(Kernels.setName, wanted)
        } else {
            XCTAssertEqual(Kernels.setName, Kernels.available.last, "the best set by default")
        }
    }
}
