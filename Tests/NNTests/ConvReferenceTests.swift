import XCTest
import CBLAS
@testable import NN
import Tensor

/// The chunked-plane convolution and square max pooling forward passes against naive nested-loop
/// references on random data.
final class ConvReferenceTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    /// Direct convolution, stride 1, zero padding, in Double. x [C, N, H, W], weight
    /// [OC, C, kh, kw], bias [OC] → [OC, N, OH, OW].
    private func naiveConv(_ x: Tensor, weight: Tensor, bias: Tensor, padding: Int, relu: Bool) -> Tensor {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oc, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        let (oh, ow) = (h + 2 * padding - kh + 1, w + 2 * padding - kw + 1)
        let y = Tensor([oc, n, oh, ow])
        for o in 0..<oc {
            for b in 0..<n {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var total = Double(bias.data[o])
                        for ch in 0..<c {
                            for ky in 0..<kh {
                                for kx in 0..<kw {
                                    let iy = oy + ky - padding, ix = ox + kx - padding
                                    guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                    total += Double(weight.data[((o * c + ch) * kh + ky) * kw + kx])
                                        * Double(x.data[((ch * n + b) * h + iy) * w + ix])
                                }
                            }
                        }
                        y.data[((o * n + b) * oh + oy) * ow + ox] = Float(relu ? max(total, 0) : total)
                    }
                }
            }
        }
        return y
    }

    private func checkConv(c: Int, oc: Int, kernel: (height: Int, width: Int), padding: Int, relu: Bool,
                           n: Int, h: Int, w: Int, seed: UInt64, chunkBytes: Int? = nil,
                           file: StaticString = #filePath, line: UInt = #line) {
        var random = Random(seed: seed)
        let layer = Convolution(c, oc, kernel: kernel, padding: padding, activation: relu ? .relu : .identity, random: &random)
        XCTAssertEqual(layer.algorithm, .chunkedPlane, file: file, line: line)
        if let chunkBytes { layer.chunkBytes = chunkBytes }
        for i in 0..<oc { layer.bias.value.data[i] = random.uniform(-0.5, 0.5) }
        let x = NNTestSupport.uniform([c, n, h, w], seed: seed &+ 1)
        let expected = naiveConv(x, weight: layer.weight.value, bias: layer.bias.value, padding: padding, relu: relu)
        // Twice: the second call reuses the layer's buffers. Float32 accumulation stays within
        // 5e-7 of the Double reference on these shapes; 1e-5 leaves room and catches any slip.
        for pass in 0..<2 {
            let y = layer.forward(x, training: pass == 0)
            XCTAssertEqual(y.shape, expected.shape, file: file, line: line)
            guard y.shape == expected.shape else { return }
            var worst: Float = 0
            for i in 0..<y.count { worst = max(worst, abs(y.data[i] - expected.data[i])) }
            XCTAssertLessThanOrEqual(worst, 1e-5, "conv \(c)→\(oc) k\(kernel) p\(padding) relu \(relu) on \(n)×\(h)×\(w), pass \(pass)",
                                     file: file, line: line)
        }
        XCTAssertEqual(try layer.outputShape(for: [c, h, w]), Array(expected.shape[0..<1]) + Array(expected.shape[2...]),
                       file: file, line: line)
    }

    func testChunkedPlaneConvolutionForwardEqualsDirectConvolutionKernel3Pad1WithAndWithoutReLU() {
        checkConv(c: 1, oc: 4, kernel: (3, 3), padding: 1, relu: true, n: 2, h: 28, w: 28, seed: 1)
        checkConv(c: 3, oc: 4, kernel: (3, 3), padding: 1, relu: false, n: 2, h: 6, w: 8, seed: 13)
    }

    func testChunkedPlaneConvolutionForwardEqualsDirectConvolutionKernel3Pad0OddSizes() {
        checkConv(c: 2, oc: 3, kernel: (3, 3), padding: 0, relu: false, n: 3, h: 7, w: 5, seed: 2)
    }

    func testChunkedPlaneConvolutionForwardEqualsDirectConvolutionKernel5Pad2() {
        checkConv(c: 3, oc: 5, kernel: (5, 5), padding: 2, relu: false, n: 2, h: 9, w: 13, seed: 3)
    }

    func testChunkedPlaneConvolutionForwardEqualsDirectConvolutionRectangularKernelWideRows() {
        checkConv(c: 2, oc: 3, kernel: (3, 5), padding: 1, relu: true, n: 2, h: 6, w: 21, seed: 4)
    }

    func testChunkedPlaneConvolutionForwardEqualsDirectConvolutionOneByOneOutputs() {
        // The kernel covers the whole image: OH = OW = 1 (im2col's 8-float copies spill most).
        checkConv(c: 2, oc: 2, kernel: (3, 3), padding: 0, relu: false, n: 5, h: 3, w: 3, seed: 5)
    }

    /// Chunks of images (cols kept cache-sized): one image per chunk, and 2 + 2 + 1.
    func testChunkedPlaneConvolutionForwardInChunksEqualsDirectConvolution() {
        checkConv(c: 2, oc: 3, kernel: (3, 3), padding: 1, relu: true, n: 3, h: 9, w: 11, seed: 7, chunkBytes: 1)
        let bytesPerImage = 2 * 9 * 9 * 11 * 4
        checkConv(c: 2, oc: 3, kernel: (3, 3), padding: 1, relu: true, n: 5, h: 9, w: 11, seed: 8, chunkBytes: 2 * bytesPerImage + 100)
    }

    /// Every kernel set this CPU runs (portable, avx2, avx512) gives the same outputs.
    func testChunkedPlaneConvolutionForwardWithEveryKernelSet() {
        for set in Kernels.available {
            Kernels.withSet(set) {
                checkConv(c: 1, oc: 4, kernel: (3, 3), padding: 1, relu: true, n: 2, h: 28, w: 28, seed: 9)
                checkConv(c: 3, oc: 5, kernel: (5, 5), padding: 2, relu: false, n: 3, h: 9, w: 13, seed: 10, chunkBytes: 1)
            }
        }
    }

    /// Smaller batches and images in between must not leave stale padding or cols behind: every
    /// output matches the reference, and the first input gives bit-identical output again.
    func testChunkedPlaneConvolutionForwardAfterABatchSizeChangeStillMatches() {
        var random = Random(seed: 6)
        let layer = Convolution(2, 3, kernel: 3, padding: 1, activation: .relu, random: &random)
        for i in 0..<3 { layer.bias.value.data[i] = random.uniform(-0.5, 0.5) }
        var first: [Float] = []
        for (shape, seed) in [([2, 4, 9, 11], 100), ([2, 1, 9, 11], 101), ([2, 3, 5, 6], 102), ([2, 4, 9, 11], 103),
                              ([2, 4, 9, 11], 100)] as [([Int], UInt64)] {
            let x = NNTestSupport.uniform(shape, seed: seed)
            let expected = naiveConv(x, weight: layer.weight.value, bias: layer.bias.value, padding: 1, relu: true)
            let y = layer.forward(x, training: true)
            XCTAssertEqual(y.shape, expected.shape)
            for i in 0..<min(y.count, expected.count) {
                XCTAssertEqual(y.data[i], expected.data[i], accuracy: 1e-5, "input \(shape), index \(i)")
            }
            if first.isEmpty { first = y.data } else if seed == 100 { XCTAssertEqual(y.data, first, "the first input again") }
        }
    }

    // MARK: Pooling, square max (2-D)

    private func checkPool(size: Int, shape: [Int], seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        let pool = Pooling(kernel: [size, size])
        XCTAssertEqual(pool.algorithm, .squareMax, file: file, line: line)
        let x = NNTestSupport.uniform(shape, seed: seed)
        let (expected, winners) = NNTestSupport.naiveMaxPool(x, size: size)
        let y = pool.forward(x, training: true)
        XCTAssertEqual(y.shape, expected.shape, file: file, line: line)
        XCTAssertEqual(y.data, expected.data, "max pool \(size) on \(shape)", file: file, line: line)
        // Backward routes each output's gradient to exactly its window's maximum.
        let dout = Tensor(y.shape, (0..<y.count).map { Float($0 + 1) })
        let dx = pool.backward(dout)
        var expectedDx = [Float](repeating: 0, count: x.count)
        for (k, i) in winners.enumerated() { expectedDx[i] = Float(k + 1) }
        XCTAssertEqual(dx.shape, x.shape, file: file, line: line)
        XCTAssertEqual(dx.data, expectedDx, "max pool \(size) on \(shape): gradient routing", file: file, line: line)
    }

    func testSquareMaxPoolForwardEqualsNaiveReference2x2Even() {
        checkPool(size: 2, shape: [3, 2, 8, 8], seed: 10)
    }

    func testSquareMaxPoolForwardEqualsNaiveReference2x2OddRoundsDown7To3() {
        checkPool(size: 2, shape: [2, 3, 7, 7], seed: 11)
    }

    func testSquareMaxPoolForwardEqualsNaiveReference2x2WideRowsVectorPath() {
        // OW = 10: one masked 16-output avx512 step, or an 8-output avx2 step and a scalar
        // tail; odd H and W.
        checkPool(size: 2, shape: [2, 2, 9, 21], seed: 12)
        // OW = 18: a whole 16-output step and a 2-output one (avx2: two 8s and a tail of 2).
        checkPool(size: 2, shape: [2, 2, 5, 37], seed: 14)
    }

    /// Every kernel set's 2×2 pooling gives the naive results, ties included.
    func testSquareMaxPoolOfEveryKernelSetEqualsTheNaiveReference() {
        for set in Kernels.available {
            Kernels.withSet(set) {
                checkPool(size: 2, shape: [3, 2, 8, 8], seed: 15)
                checkPool(size: 2, shape: [2, 2, 9, 21], seed: 16)
                checkPool(size: 2, shape: [2, 2, 5, 37], seed: 17)
                testSquareMaxPoolTiesGoToTheFirstElementOfTheWindow()
            }
        }
    }

    func testSquareMaxPoolForwardEqualsNaiveReferenceWindow3() {
        checkPool(size: 3, shape: [2, 2, 10, 11], seed: 13)
    }

    func testSquareMaxPoolTiesGoToTheFirstElementOfTheWindow() {
        let pool = Pooling(kernel: [2, 2])
        // One plane 2×8: four windows, each with a tie on its max.
        let x = Tensor([1, 1, 2, 8], [1, 1, 0, 2, 3, 0, 5, 1,
                                      0, 0, 2, 1, 3, 3, 5, 5])
        let y = pool.forward(x, training: true)
        XCTAssertEqual(y.data, [1, 2, 3, 5])
        let dx = pool.backward(Tensor([1, 1, 1, 4], [10, 20, 30, 40]))
        XCTAssertEqual(dx.data, [10, 0, 0, 20, 30, 0, 40, 0,
                                 0, 0, 0, 0, 0, 0, 0, 0])
    }
}
