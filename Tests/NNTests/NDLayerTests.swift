import Foundation
import XCTest
@testable import NN
import Tensor

/// The N-dimensional layers (Convolution, Pooling, GlobalAveragePool, ElementwiseActivation,
/// Dropout, BatchNorm, Flatten) in 1-, 2- and 3-D: forward against naive references written
/// from the definitions (multi-index loops, in Double), backward against finite differences.
final class NDLayerTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    // MARK: references and helpers

    /// ⌊(d + 2p − k)/s⌋ + 1 per dimension.
    private func outputSizes(_ spatial: [Int], kernel: [Int], stride: [Int], padding: [Int]) -> [Int] {
        (0..<kernel.count).map { (spatial[$0] + 2 * padding[$0] - kernel[$0]) / stride[$0] + 1 }
    }

    /// Direct convolution from the definition, in Double: y[o, b, p] = bias[o] +
    /// Σ_c Σ_q w[o, c, q]·x[c, b, p·s + q − pad] (zero outside x), then relu if asked.
    private func naiveConvolution(_ x: Tensor, weight: Tensor, bias: Tensor, stride: [Int], padding: [Int], relu: Bool) -> Tensor {
        let (c, n, spatial) = (x.shape[0], x.shape[1], Array(x.shape[2...]))
        let (oc, kernel) = (weight.shape[0], Array(weight.shape[2...]))
        let outSpatial = outputSizes(spatial, kernel: kernel, stride: stride, padding: padding)
        let y = Tensor([oc, n] + outSpatial)
        let outPositions = allIndices(outSpatial), kernelPositions = allIndices(kernel)
        for o in 0..<oc {
            for b in 0..<n {
                for p in outPositions {
                    var total = Double(bias.data[o])
                    for ch in 0..<c {
                        for q in kernelPositions {
                            let i = (0..<kernel.count).map { p[$0] * stride[$0] + q[$0] - padding[$0] }
                            guard zip(i, spatial).allSatisfy({ $0 >= 0 && $0 < $1 }) else { continue }
                            total += Double(weight.data[offset([o, ch] + q, in: weight.shape)])
                                * Double(x.data[offset([ch, b] + i, in: x.shape)])
                        }
                    }
                    y.data[offset([o, b] + p, in: y.shape)] = Float(relu ? max(total, 0) : total)
                }
            }
        }
        return y
    }

    /// Max or mean over each window p·s + q, q < kernel, of x [C, N, D…]; for max, also the
    /// flat index into x of the first maximum of each window, in output order.
    private func naivePool(_ x: Tensor, kernel: [Int], stride: [Int], max: Bool) -> (output: Tensor, winners: [Int]) {
        let (c, n, spatial) = (x.shape[0], x.shape[1], Array(x.shape[2...]))
        let outSpatial = outputSizes(spatial, kernel: kernel, stride: stride, padding: kernel.map { _ in 0 })
        let y = Tensor([c, n] + outSpatial)
        var winners: [Int] = []
        for ch in 0..<c {
            for b in 0..<n {
                for p in allIndices(outSpatial) {
                    var top = -Double.infinity, best = -1, total = 0.0
                    for q in allIndices(kernel) {
                        let i = offset([ch, b] + (0..<kernel.count).map { p[$0] * stride[$0] + q[$0] }, in: x.shape)
                        let v = Double(x.data[i])
                        total += v
                        if v > top { top = v; best = i }
                    }
                    y.data[offset([ch, b] + p, in: y.shape)] = Float(max ? top : total / Double(kernel.reduce(1, *)))
                    winners.append(best)
                }
            }
        }
        return (y, winners)
    }

    private func assertClose(_ actual: Tensor, _ expected: Tensor, tolerance: Float, _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, expected.shape, "\(what): shape", file: file, line: line)
        guard actual.shape == expected.shape else { return }
        var worst: Float = 0, worstIndex = 0
        for i in 0..<actual.count where abs(actual.data[i] - expected.data[i]) > worst {
            worst = abs(actual.data[i] - expected.data[i]); worstIndex = i
        }
        XCTAssertLessThanOrEqual(worst, tolerance, "\(what): worst at \(worstIndex): \(actual.data[worstIndex]) vs \(expected.data[worstIndex])",
                                 file: file, line: line)
    }

    /// `assertClose` with the tolerance relative to the expected tensor's largest magnitude.
    private func assertRelativelyClose(_ actual: Tensor, _ expected: Tensor, _ rtol: Float, _ what: String,
                                       file: StaticString = #filePath, line: UInt = #line) {
        let scale = max(1e-6, expected.data.map(abs).max() ?? 0)
        assertClose(actual, expected, tolerance: rtol * scale, what, file: file, line: line)
    }

    /// Like NNTestSupport.checkGradients, for what it does not cover: a forward that is not
    /// training (BatchNorm's eval mode) or a Convolution with fused ReLU, whose output signs
    /// are kinks a finite difference must not step across.
    private func checkGradients(_ layer: Layer, input: Tensor, training: Bool, reluKinks: Bool,
                                file: StaticString = #filePath, line: UInt = #line) {
        var random = Random(seed: 13)
        let out = layer.forward(input, training: training)
        let r = (0..<out.count).map { _ in random.uniform(-1, 1) }
        for p in layer.parameters { p.grad.zero() }
        let dx = layer.backward(Tensor(out.shape, r)).copy()
        let parameterGradients = layer.parameters.map { $0.grad.copy() }
        XCTAssertEqual(dx.shape, input.shape, "\(layer): input gradient shape", file: file, line: line)
        func evaluate() -> (Double, [Int]) {
            let y = layer.forward(input, training: training)
            return (NNTestSupport.project(y, r), reluKinks ? y.data.map { $0 > 0 ? 1 : 0 } : [])
        }
        NNTestSupport.checkFiniteDifferences(input, dx, "\(layer) dx", random: &random, file: file, line: line, loss: evaluate)
        for (p, g) in zip(layer.parameters, parameterGradients) {
            NNTestSupport.checkFiniteDifferences(p.value, g, "\(layer) d\(p.name)", random: &random, file: file, line: line, loss: evaluate)
        }
    }

    private func convolution(_ c: Int, _ oc: Int, kernel: [Int], stride: [Int], padding: [Int], relu: Bool = false,
                             seed: UInt64) -> Convolution {
        var random = Random(seed: seed)
        let layer = Convolution(inChannels: c, outChannels: oc, kernel: kernel, stride: stride, padding: padding,
                                activation: relu ? .relu : .identity, algorithm: .portable, random: &random)
        // Non-zero biases, so the bias path is exercised with something other than the init.
        for i in 0..<oc { layer.bias.value.data[i] = random.uniform(-0.3, 0.3) }
        return layer
    }

    /// One convolution case: channels, kernel, stride, padding and the input's spatial sizes.
    private struct ConvolutionCase {
        let c, oc: Int
        let kernel, stride, padding, spatial: [Int]
        var n = 2
        var relu = false
    }

    private let convolutionCases: [ConvolutionCase] = [
        // 1-D: stride 2 with padding (9 + 2 − 3 = 8, /2 → 5), and an even kernel where floor drops one.
        ConvolutionCase(c: 2, oc: 3, kernel: [3], stride: [2], padding: [1], spatial: [9]),
        ConvolutionCase(c: 1, oc: 2, kernel: [4], stride: [3], padding: [0], spatial: [12], relu: true),
        // 2-D: a non-square kernel, mixed strides and paddings; odd sizes where floor drops a row.
        ConvolutionCase(c: 2, oc: 3, kernel: [3, 2], stride: [2, 1], padding: [1, 0], spatial: [7, 6]),
        ConvolutionCase(c: 3, oc: 2, kernel: [3, 3], stride: [2, 2], padding: [0, 1], spatial: [8, 5], relu: true),
        // 3-D: 1×3×3 and 3×1×1 kernels, stride 2 in some dimensions.
        ConvolutionCase(c: 2, oc: 3, kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1], spatial: [3, 5, 6]),
        ConvolutionCase(c: 2, oc: 2, kernel: [3, 1, 1], stride: [2, 1, 1], padding: [1, 0, 0], spatial: [6, 3, 4], relu: true),
        ConvolutionCase(c: 1, oc: 2, kernel: [2, 2, 2], stride: [1, 1, 1], padding: [1, 1, 1], spatial: [3, 3, 2]),
    ]

    /// Stride-1 cases, which the padded C kernels also take.
    private let strideOneCases: [ConvolutionCase] = [
        ConvolutionCase(c: 2, oc: 3, kernel: [3], stride: [1], padding: [1], spatial: [9]),
        ConvolutionCase(c: 2, oc: 3, kernel: [3, 2], stride: [1, 1], padding: [1, 0], spatial: [7, 6], relu: true),
        ConvolutionCase(c: 2, oc: 4, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], spatial: [4, 6, 5], relu: true),
        ConvolutionCase(c: 3, oc: 2, kernel: [1, 3, 3], stride: [1, 1, 1], padding: [0, 1, 1], spatial: [3, 5, 18]),
        ConvolutionCase(c: 2, oc: 2, kernel: [3, 1, 1], stride: [1, 1, 1], padding: [1, 0, 0], spatial: [5, 3, 4], relu: true),
        ConvolutionCase(c: 1, oc: 2, kernel: [2, 2, 2], stride: [1, 1, 1], padding: [1, 1, 1], spatial: [3, 3, 2]),
        ConvolutionCase(c: 1, oc: 3, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [0, 0, 0], spatial: [4, 5, 6]),
        // Rows of whole 16-float segments: the GEMMs read x′ and dy′ in place (implicit im2col) under
        // the avx2 and avx512 sets; 9 and 12 output channels leave partial row panels.
        ConvolutionCase(c: 3, oc: 9, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], spatial: [3, 4, 16], relu: true),
        ConvolutionCase(c: 2, oc: 12, kernel: [1, 3, 3], stride: [1, 1, 1], padding: [0, 1, 1], spatial: [2, 3, 32]),
        ConvolutionCase(c: 5, oc: 4, kernel: [3], stride: [1], padding: [1], spatial: [48]),
        // The output 16 wide (implicit) but the input 18 (dx through im2col), and the reverse.
        ConvolutionCase(c: 2, oc: 3, kernel: [3, 3], stride: [1, 1], padding: [1, 0], spatial: [5, 18]),
        ConvolutionCase(c: 2, oc: 3, kernel: [3, 2], stride: [1, 1], padding: [1, 1], spatial: [4, 16], relu: true),
        // Rows of 8 floats in planes of whole 16s (8×8 frames, the trick net's last convolution):
        // 8-float segments; and 8-wide rows in planes that are not whole 16s (8-float segments
        // under avx2, whose GEMMs take columns in 8s; im2col under avx512, in 16s).
        ConvolutionCase(c: 3, oc: 10, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], spatial: [3, 8, 8], relu: true),
        ConvolutionCase(c: 2, oc: 3, kernel: [3, 3], stride: [1, 1], padding: [1, 1], spatial: [3, 8]),
        // Rows of 24 floats: three 8-float segments each under avx2 (im2col under avx512).
        ConvolutionCase(c: 3, oc: 5, kernel: [1, 3], stride: [1, 1], padding: [0, 1], spatial: [1, 24]),
        // 3×3×3 with padding 1, even frames, rows of 16s and 8 channels or more in: Winograd's
        // F(2×2×2, 3×3×3) where the set has it (avx512): y and dx (9 outputs); y only (4
        // outputs); dx only (3 inputs); both in tile rows of two blocks (32 wide, 10 high);
        // rows of 8 (two tile rows a vector: 4 high, and 12 high in 6 pairs).
        ConvolutionCase(c: 8, oc: 9, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], spatial: [4, 2, 16], relu: true),
        ConvolutionCase(c: 9, oc: 4, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], spatial: [2, 4, 16]),
        ConvolutionCase(c: 3, oc: 8, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], spatial: [2, 2, 32], relu: true),
        ConvolutionCase(c: 8, oc: 8, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], spatial: [2, 10, 32], n: 1),
        ConvolutionCase(c: 8, oc: 10, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], spatial: [2, 4, 8], relu: true),
        ConvolutionCase(c: 10, oc: 8, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], spatial: [4, 12, 8], n: 1),
    ]

    // MARK: Convolution, stride-one and portable

    private func strideOne(_ t: ConvolutionCase, seed: UInt64) -> Convolution {
        var random = Random(seed: seed)
        let layer = Convolution(inChannels: t.c, outChannels: t.oc, kernel: t.kernel, stride: t.kernel.map { _ in 1 },
                                padding: t.padding, activation: t.relu ? .relu : .identity, algorithm: .strideOne, random: &random)
        for i in 0..<t.oc { layer.bias.value.data[i] = random.uniform(-0.3, 0.3) }
        return layer
    }

    /// The stride-one convolution (the C kernels of the set in force: OLLIE_KERNELS, or the CPU's best)
    /// computes what the portable one computes: the same weights from the same seed, the
    /// same output, the same gradients to rounding (dx is another convolution, summed in another
    /// order), in blocks of one frame, of some frames and of whole batches, twice over (the second
    /// pass reuses the zero borders and must not see the first pass's values).
    func testStrideOneConvolutionMatchesThePortableConvolution() {
        for (index, t) in strideOneCases.enumerated() {
            for chunkBytes in [1, 3 * t.c * t.kernel.reduce(1, *) * t.spatial.dropFirst().reduce(1, *) * 4, 1 << 20] {
                let portable = convolution(t.c, t.oc, kernel: t.kernel, stride: t.stride, padding: t.padding, relu: t.relu,
                                           seed: UInt64(50 + index))
                let fast = strideOne(t, seed: UInt64(50 + index))
                XCTAssertEqual(fast.weight.value.data, portable.weight.value.data, "same draws from the same seed")
                XCTAssertEqual(fast.description, portable.description)
                fast.chunkBytes = chunkBytes
                for pass in 0..<2 {
                    for p in portable.parameters + fast.parameters { p.grad.zero() }
                    let x = NNTestSupport.uniform([t.c, 3] + t.spatial, seed: UInt64(150 + index + pass))
                    let expected = portable.forward(x, training: true).copy()
                    let y = fast.forward(x, training: true).copy()
                    XCTAssertEqual(y.shape, expected.shape)
                    assertClose(y, expected, tolerance: 1e-5, "\(fast) on \(x.shape), chunkBytes \(chunkBytes), pass \(pass)")
                    let dy = NNTestSupport.uniform(y.shape, seed: UInt64(250 + index + pass))
                    let expectedDx = portable.backward(dy.copy()).copy()
                    assertClose(fast.backward(dy.copy()), expectedDx, tolerance: 1e-5, "\(fast) dx, chunkBytes \(chunkBytes), pass \(pass)")
                    assertClose(fast.weight.grad, portable.weight.grad, tolerance: 1e-4, "\(fast) dW, pass \(pass)")
                    assertClose(fast.bias.grad, portable.bias.grad, tolerance: 1e-4, "\(fast) db, pass \(pass)")
                }
            }
        }
    }

    func testStrideOneConvolutionGradients() {
        for (index, t) in strideOneCases.enumerated() {
            for chunkBytes in [1, 1 << 20] {
                let layer = strideOne(t, seed: UInt64(60 + index))
                layer.chunkBytes = chunkBytes
                let x = NNTestSupport.uniform([t.c, t.n] + t.spatial, seed: UInt64(260 + index))
                if t.relu {
                    checkGradients(layer, input: x, training: true, reluKinks: true)
                } else {
                    NNTestSupport.checkGradients(layer, input: x)
                }
            }
        }
    }

    /// A first layer skips dx and still accumulates dW and db as with it.
    func testStrideOneConvolutionWithoutInputGradient() {
        let t = strideOneCases[2]
        let full = strideOne(t, seed: 70), first = strideOne(t, seed: 70)
        first.needsInputGradient = false
        let x = NNTestSupport.uniform([t.c, 2] + t.spatial, seed: 71)
        for layer in [full, first] {
            let y = layer.forward(x, training: true)
            _ = layer.backward(NNTestSupport.uniform(y.shape, seed: 72))
        }
        XCTAssertEqual(first.weight.grad.data, full.weight.grad.data)
        XCTAssertEqual(first.bias.grad.data, full.bias.grad.data)
    }

    func testPortableConvolutionForwardMatchesTheNaiveReferenceInOneTwoAndThreeDimensions() throws {
        for (index, t) in convolutionCases.enumerated() {
            // In chunks of one sample and of the whole batch.
            for chunkBytes in [1, 1 << 20] {
                let layer = convolution(t.c, t.oc, kernel: t.kernel, stride: t.stride, padding: t.padding, relu: t.relu,
                                        seed: UInt64(index + 1))
                layer.chunkBytes = chunkBytes
                let x = NNTestSupport.uniform([t.c, 3] + t.spatial, seed: UInt64(100 + index))
                let expected = naiveConvolution(x, weight: layer.weight.value, bias: layer.bias.value,
                                                stride: t.stride, padding: t.padding, relu: t.relu)
                for pass in 0..<2 {   // the second pass reuses the layer's buffers
                    assertClose(layer.forward(x, training: pass == 0), expected, tolerance: 1e-5,
                                "\(layer) on \(x.shape), chunkBytes \(chunkBytes), pass \(pass)")
                }
                XCTAssertEqual(try layer.outputShape(for: [t.c] + t.spatial), [t.oc] + Array(expected.shape[2...]))
            }
        }
    }

    func testPortableConvolutionGradientsInOneTwoAndThreeDimensions() {
        for (index, t) in convolutionCases.enumerated() {
            let layer = convolution(t.c, t.oc, kernel: t.kernel, stride: t.stride, padding: t.padding, relu: t.relu,
                                    seed: UInt64(20 + index))
            let x = NNTestSupport.uniform([t.c, t.n] + t.spatial, seed: UInt64(200 + index))
            if t.relu {
                checkGradients(layer, input: x, training: true, reluKinks: true)
            } else {
                NNTestSupport.checkGradients(layer, input: x)
            }
        }
    }

    /// Backward goes chunk by chunk (last first), rebuilding the cols forward did not leave behind.
    func testPortableConvolutionGradientsInChunksOfOneSample() {
        let layer = convolution(2, 3, kernel: [3, 3], stride: [2, 1], padding: [1, 1], relu: true, seed: 31)
        layer.chunkBytes = 1
        checkGradients(layer, input: NNTestSupport.uniform([2, 3, 6, 5], seed: 32), training: true, reluKinks: true)
        let volume = convolution(2, 2, kernel: [3, 1, 1], stride: [1, 1, 1], padding: [1, 0, 0], seed: 33)
        volume.chunkBytes = 2 * (2 * 3 * 4 * 3 * 3 * 4)   // 2 samples a chunk of 3: chunks of 2 and 1
        NNTestSupport.checkGradients(volume, input: NNTestSupport.uniform([2, 3, 4, 3, 3], seed: 34))
    }

    func testPortableConvolutionWithoutInputGradientStillAccumulatesWeightGradients() {
        let x = NNTestSupport.uniform([2, 3, 5, 4], seed: 41), dy = NNTestSupport.uniform([3, 3, 3, 4], seed: 42)
        let full = convolution(2, 3, kernel: [3, 3], stride: [2, 1], padding: [1, 1], seed: 43)
        let firstLayer = convolution(2, 3, kernel: [3, 3], stride: [2, 1], padding: [1, 1], seed: 43)
        firstLayer.needsInputGradient = false
        for layer in [full, firstLayer] {
            _ = layer.forward(x, training: true)
            _ = layer.backward(dy.copy())
            _ = layer.forward(x, training: true)
            _ = layer.backward(dy.copy())   // twice: gradients add up
        }
        assertClose(firstLayer.weight.grad, full.weight.grad, tolerance: 1e-5, "dW without dx")
        assertClose(firstLayer.bias.grad, full.bias.grad, tolerance: 1e-5, "db without dx")
        // The accumulated gradient is twice one backward's.
        let once = convolution(2, 3, kernel: [3, 3], stride: [2, 1], padding: [1, 1], seed: 43)
        _ = once.forward(x, training: true)
        _ = once.backward(dy.copy())
        let doubled = Tensor(once.weight.grad.shape, once.weight.grad.data.map { 2 * $0 })
        assertClose(full.weight.grad, doubled, tolerance: 1e-5, "dW accumulates")
    }

    /// Stride 1 in 2-D is what the chunked-plane convolution computes: the same seed gives the
    /// same weights, and the outputs and gradients agree to float rounding.
    func testPortableConvolution2DStride1MatchesTheChunkedPlaneConvolution() {
        for (kernel, padding, relu) in [((3, 3), 1, true), ((3, 2), 0, false), ((5, 5), 2, true)] {
            var r1 = Random(seed: 77), r2 = Random(seed: 77)
            let reference = Convolution(3, 4, kernel: (kernel.0, kernel.1), padding: padding, activation: relu ? .relu : .identity, random: &r1)
            let layer = Convolution(inChannels: 3, outChannels: 4, kernel: [kernel.0, kernel.1], stride: [1, 1],
                                    padding: [padding, padding], activation: relu ? .relu : .identity, algorithm: .portable, random: &r2)
            XCTAssertEqual(layer.weight.value.shape, reference.weight.value.shape)
            XCTAssertEqual(layer.weight.value.data, reference.weight.value.data, "same draws from the same seed")
            for i in 0..<4 { reference.bias.value.data[i] = Float(i) * 0.1 - 0.15; layer.bias.value.data[i] = Float(i) * 0.1 - 0.15 }

            let x = NNTestSupport.uniform([3, 5, 9, 8], seed: 78)
            let expected = reference.forward(x, training: true).copy()
            let y = layer.forward(x, training: true).copy()
            assertRelativelyClose(y, expected, 1e-4, "output, kernel \(kernel)")
            let dy = NNTestSupport.uniform(y.shape, seed: 79)
            let referenceDx = reference.backward(dy.copy()).copy()
            let dx = layer.backward(dy.copy())
            assertRelativelyClose(dx, referenceDx, 1e-4, "dx, kernel \(kernel)")
            assertRelativelyClose(layer.weight.grad, reference.weight.grad, 1e-4, "dW, kernel \(kernel)")
            assertRelativelyClose(layer.bias.grad, reference.bias.grad, 1e-4, "db, kernel \(kernel)")
        }
    }

    func testPortableConvolutionShapesDescriptionAndReplica() throws {
        var random = Random(seed: 1)
        let layer = Convolution(inChannels: 2, outChannels: 4, kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1],
                                activation: .relu, algorithm: .portable, random: &random)
        XCTAssertEqual(layer.weight.value.shape, [4, 2, 1, 3, 3])
        XCTAssertEqual(layer.bias.value.data, [0, 0, 0, 0])
        XCTAssertEqual(layer.description, "Conv((1, 3, 3), 2 => 4, stride=(1, 2, 2), pad=(0, 1, 1), relu)")
        XCTAssertEqual(try layer.outputShape(for: [2, 4, 7, 8]), [4, 4, 4, 4])
        var r = Random(seed: 2)
        XCTAssertEqual(Convolution(inChannels: 1, outChannels: 2, kernel: [3], stride: [2], padding: [1], algorithm: .portable, random: &r).description,
                                   "Conv((3,), 1 => 2, stride=2, pad=1)")
        let wrongChannels = NNTestSupport.assertModelError("3 channels") { _ = try layer.outputShape(for: [3, 4, 7, 8]) }
        XCTAssertTrue(wrongChannels?.contains("2 channels") ?? false, wrongChannels ?? "")
        NNTestSupport.assertModelError("2-D input to a 3-D conv") { _ = try layer.outputShape(for: [2, 7, 8]) }
        let tooSmall = NNTestSupport.assertModelError("too small") {
            var r = Random(seed: 3)
            _ = try Convolution(inChannels: 1, outChannels: 1, kernel: [5], stride: [1], padding: [1], algorithm: .portable, random: &r).outputShape(for: [1, 2])
        }
        XCTAssertTrue(tooSmall?.contains("larger than the padded input") ?? false, tooSmall ?? "")

        let replica = layer.replica() as! Convolution
        XCTAssertTrue(replica.weight.value === layer.weight.value)
        XCTAssertFalse(replica.weight.grad === layer.weight.grad)
        XCTAssertEqual(replica.description, layer.description)
    }

    // MARK: Pooling

    private struct PoolingCase {
        let kernel, stride, spatial: [Int]
    }

    private let poolingCases: [PoolingCase] = [
        PoolingCase(kernel: [2], stride: [2], spatial: [9]),                   // floor drops the last
        PoolingCase(kernel: [3], stride: [2], spatial: [8]),                   // overlapping windows
        PoolingCase(kernel: [2, 2], stride: [2, 2], spatial: [7, 6]),
        PoolingCase(kernel: [3, 2], stride: [2, 1], spatial: [7, 5]),
        PoolingCase(kernel: [1, 3, 3], stride: [1, 2, 2], spatial: [2, 7, 6]),
        PoolingCase(kernel: [3, 1, 1], stride: [2, 1, 1], spatial: [7, 2, 3]),
        PoolingCase(kernel: [2, 2, 2], stride: [2, 2, 2], spatial: [5, 4, 5]),
        // k×2×2 windows at stride k go to the kernel set's ollie_maxpool_frames.
        PoolingCase(kernel: [1, 2, 2], stride: [1, 2, 2], spatial: [3, 7, 34]),
        PoolingCase(kernel: [2, 2, 2], stride: [2, 2, 2], spatial: [4, 6, 8]),
        // Windows that tile the input exactly: backward writes each window once.
        PoolingCase(kernel: [2, 2], stride: [2, 2], spatial: [6, 8]),
        PoolingCase(kernel: [3], stride: [3], spatial: [12]),
        PoolingCase(kernel: [3, 2, 2], stride: [3, 2, 2], spatial: [7, 5, 4]),
    ]

    func testPoolingForwardMatchesTheNaiveReferenceInOneTwoAndThreeDimensions() throws {
        for (index, t) in poolingCases.enumerated() {
            let x = NNTestSupport.uniform([2, 3] + t.spatial, seed: UInt64(300 + index))
            for kind in [Pooling.Kind.max, .avg] {
                for algorithm in [PoolingAlgorithm.portable, .squareMax] where algorithm.takes(kernel: t.kernel, stride: t.stride, kind: kind) {
                    let layer = Pooling(kernel: t.kernel, stride: t.stride, kind: kind, algorithm: algorithm)
                    let (expected, _) = naivePool(x, kernel: t.kernel, stride: t.stride, max: kind == .max)
                    for pass in 0..<2 {
                        assertClose(layer.forward(x, training: pass == 0), expected, tolerance: 1e-6,
                                    "\(layer) (\(algorithm)) on \(x.shape), pass \(pass)")
                    }
                    XCTAssertEqual(try layer.outputShape(for: [2] + t.spatial), [2] + Array(expected.shape[2...]))
                }
            }
        }
    }

    /// Backward routes each output's gradient to its window's arg-max (added up where windows
    /// overlap), or spreads it evenly: checked against the naive winners and by finite differences.
    func testPoolingGradientsInOneTwoAndThreeDimensions() {
        for (index, t) in poolingCases.enumerated() {
            let distinct = NNTestSupport.distinct([2, 2] + t.spatial, seed: UInt64(400 + index))
            let maxPool = Pooling(kernel: t.kernel, stride: t.stride, kind: .max, algorithm: .portable)
            NNTestSupport.checkGradients(maxPool, input: distinct)
            let (y, winners) = naivePool(distinct, kernel: t.kernel, stride: t.stride, max: true)
            _ = maxPool.forward(distinct, training: true)
            let dy = NNTestSupport.uniform(y.shape, seed: 9)
            let expected = Tensor(distinct.shape)
            for (i, w) in winners.enumerated() { expected.data[w] += dy.data[i] }
            assertClose(maxPool.backward(dy), expected, tolerance: 1e-6, "\(maxPool) routes to the winners")

            NNTestSupport.checkGradients(Pooling(kernel: t.kernel, stride: t.stride, kind: .avg, algorithm: .portable),
                                         input: NNTestSupport.uniform([2, 2] + t.spatial, seed: UInt64(500 + index)))
        }
    }

    /// Equal values in a window: the first one (in index order) wins, as in PyTorch.
    func testMaxPoolingTiesGoToTheFirstIndex() {
        let layer = Pooling(kernel: [2], stride: [1], kind: .max, algorithm: .portable)
        let x = Tensor([1, 1, 5], [1, 1, 0, 2, 2])
        XCTAssertEqual(layer.forward(x, training: true).data, [1, 1, 2, 2])
        XCTAssertEqual(layer.backward(Tensor([1, 1, 4], [1, 10, 100, 1000])).data, [1, 10, 0, 1100, 0])
        let plane = Pooling(kernel: [2, 2], stride: [2, 2], kind: .max, algorithm: .portable)
        _ = plane.forward(Tensor([1, 1, 2, 2], [3, 3, 3, 3]), training: true)
        XCTAssertEqual(plane.backward(Tensor([1, 1, 1, 1], [1])).data, [1, 0, 0, 0])
        // Across frames too: the earlier frame keeps a tie, a later strictly greater value wins.
        let volume = Pooling(kernel: [2, 2, 2], stride: [2, 2, 2], kind: .max, algorithm: .portable)
        _ = volume.forward(Tensor([1, 1, 2, 2, 2], [0, 3, 1, 3, 3, 2, 3, 3]), training: true)
        XCTAssertEqual(volume.backward(Tensor([1, 1, 1, 1, 1], [1])).data, [0, 1, 0, 0, 0, 0, 0, 0])
        _ = volume.forward(Tensor([1, 1, 2, 2, 2], [0, 3, 1, 3, 3, 2, 4, 3]), training: true)
        XCTAssertEqual(volume.backward(Tensor([1, 1, 1, 1, 1], [1])).data, [0, 0, 0, 0, 0, 0, 1, 0])
    }

    func testPoolingShapesAndDescription() {
        let layer = Pooling(kernel: [2, 2], stride: [2, 2], kind: .max, algorithm: .portable)
        XCTAssertEqual(layer.description, "MaxPool((2, 2))")
        XCTAssertEqual(Pooling(kernel: [3], stride: [2], kind: .avg, algorithm: .portable).description, "MeanPool((3,), stride=2)")
        XCTAssertEqual(try layer.outputShape(for: [4, 7, 7]), [4, 3, 3])
        NNTestSupport.assertModelError("1-D input to a 2-D pool") { _ = try layer.outputShape(for: [4, 7]) }
        let small = NNTestSupport.assertModelError("too small") { _ = try layer.outputShape(for: [4, 1, 7]) }
        XCTAssertTrue(small?.contains("at least 2×2") ?? false, small ?? "")
    }

    // MARK: GlobalAveragePool

    func testGlobalAveragePoolInOneTwoAndThreeDimensions() throws {
        for (index, spatial) in [[7], [5, 3], [2, 3, 4]].enumerated() {
            let layer = GlobalAveragePool()
            let x = NNTestSupport.uniform([3, 2] + spatial, seed: UInt64(600 + index))
            let ones = spatial.map { _ in 1 }
            let expected = Tensor([3, 2] + ones)
            for ch in 0..<3 {
                for b in 0..<2 {
                    let values = allIndices(spatial).map { Double(x.data[offset([ch, b] + $0, in: x.shape)]) }
                    expected.data[ch * 2 + b] = Float(values.reduce(0, +) / Double(values.count))
                }
            }
            assertClose(layer.forward(x, training: true), expected, tolerance: 1e-6, "global mean of \(x.shape)")
            XCTAssertEqual(try layer.outputShape(for: [3] + spatial), [3] + ones)
            NNTestSupport.checkGradients(layer, input: x)
        }
        NNTestSupport.assertModelError("flat features") { _ = try GlobalAveragePool().outputShape(for: [10]) }
    }

    // MARK: ElementwiseActivation

    private func reference(_ kind: ElementwiseActivation.Kind, _ x: Double) -> Double {
        switch kind {
        case .relu: return max(x, 0)
        case .relu6: return min(max(x, 0), 6)
        case .leakyRelu: return x >= 0 ? x : 0.01 * x
        case .tanh: return Foundation.tanh(x)
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .gelu: return 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot()))
        }
    }

    func testElementwiseActivationsMatchTheirDefinitionsAndGradients() throws {
        let shapes = [[2, 3, 7], [2, 2, 3, 4], [1, 2, 2, 3, 3]]
        for kind in ElementwiseActivation.Kind.allCases {
            for (index, shape) in shapes.enumerated() {
                let layer = ElementwiseActivation(kind)
                // Away from 0 so relu's and leaky relu's kink is never stepped across.
                let x = NNTestSupport.awayFromZero(shape, seed: UInt64(700 + index))
                for i in 0..<x.count { x.data[i] *= 3 }   // into tanh's and sigmoid's flat tails
                let expected = Tensor(shape, x.data.map { Float(reference(kind, Double($0))) })
                assertClose(layer.forward(x, training: true), expected, tolerance: 2e-6, "\(kind) on \(shape)")
                XCTAssertEqual(try layer.outputShape(for: Array(shape.dropFirst())), Array(shape.dropFirst()))
                NNTestSupport.checkGradients(layer, input: x)
            }
        }
        // PyTorch's values: F.gelu(±1) and F.leaky_relu(-2).
        let gelu = ElementwiseActivation(.gelu).forward(Tensor([3], [1, -1, 0]), training: false)
        XCTAssertEqual(gelu.data[0], 0.841_344_7, accuracy: 1e-6)
        XCTAssertEqual(gelu.data[1], -0.158_655_3, accuracy: 1e-6)
        XCTAssertEqual(gelu.data[2], 0)
        XCTAssertEqual(ElementwiseActivation(.leakyRelu).forward(Tensor([1], [-2]), training: false).data, [-0.02])
        XCTAssertEqual(ElementwiseActivation(.leakyRelu).description, "leakyrelu")
    }

    // MARK: Dropout

    func testDropoutIsTheIdentityWhenNotTraining() {
        let layer = Dropout(probability: 0.5)
        layer.prepareStep(seed: 1, step: 3, worker: 0)
        let x = NNTestSupport.uniform([2, 3, 4, 5], seed: 801)
        let y = layer.forward(x, training: false)
        XCTAssertFalse(y === x, "a copy in the layer's own output")
        XCTAssertEqual(y.shape, x.shape)
        XCTAssertEqual(y.data, x.data)
        XCTAssertEqual(layer.backward(Tensor(x.shape, repeating: 2)).data, [Float](repeating: 2, count: x.count))
        XCTAssertEqual(layer.description, "Dropout(0.5)")
    }

    func testDropoutZeroesAboutPAndScalesTheRest() {
        let p: Float = 0.3
        let layer = Dropout(probability: p)
        layer.prepareStep(seed: 42, step: 7, worker: 1)
        let x = NNTestSupport.awayFromZero([4, 50, 10, 10], seed: 802)
        let y = layer.forward(x, training: true)
        var zeroed = 0
        for i in 0..<x.count {
            if y.data[i] == 0 { zeroed += 1; continue }
            XCTAssertEqual(y.data[i], x.data[i] / (1 - p), accuracy: 1e-6 * abs(x.data[i]) * 2, "kept element \(i) scaled")
        }
        let fraction = Double(zeroed) / Double(x.count)   // 20 000 draws: σ ≈ 0.003
        XCTAssertEqual(fraction, Double(p), accuracy: 0.02)
        // Backward multiplies by the same mask and scale.
        let dx = layer.backward(Tensor(x.shape, repeating: 1))
        for i in 0..<x.count { XCTAssertEqual(dx.data[i], y.data[i] == 0 ? 0 : 1 / (1 - p), accuracy: 1e-6) }
    }

    func testDropoutMaskIsAFunctionOfSeedStepAndWorker() {
        let x = Tensor([2, 20, 50], repeating: 1)
        func mask(seed: UInt64, step: Int, worker: Int, layer: Dropout = Dropout(probability: 0.5)) -> [Bool] {
            layer.prepareStep(seed: seed, step: step, worker: worker)
            return layer.forward(x, training: true).data.map { $0 != 0 }
        }
        let layer = Dropout(probability: 0.5)
        let first = mask(seed: 5, step: 10, worker: 0, layer: layer)
        XCTAssertEqual(mask(seed: 5, step: 10, worker: 0, layer: layer), first, "a second forward at the same step")
        XCTAssertEqual(mask(seed: 5, step: 10, worker: 0, layer: layer.replica() as! Dropout), first, "another instance")
        func differing(_ other: [Bool]) -> Double { Double(zip(first, other).filter { $0 != $1 }.count) / Double(first.count) }
        // Independent masks at p = 0.5 differ in about half the elements.
        XCTAssertGreaterThan(differing(mask(seed: 5, step: 11, worker: 0)), 0.4, "another step")
        XCTAssertGreaterThan(differing(mask(seed: 5, step: 10, worker: 1)), 0.4, "another worker")
        XCTAssertGreaterThan(differing(mask(seed: 6, step: 10, worker: 0)), 0.4, "another seed")
    }

    func testDropoutGradientsInOneTwoAndThreeDimensions() {
        for (index, shape) in [[2, 3, 9], [2, 2, 4, 5], [1, 2, 3, 3, 4]].enumerated() {
            let layer = Dropout(probability: 0.4)
            layer.prepareStep(seed: 9, step: index, worker: 0)
            NNTestSupport.checkGradients(layer, input: NNTestSupport.uniform(shape, seed: UInt64(810 + index)))
        }
    }

    // MARK: BatchNorm

    /// y = γ·(x − μ)/√(σ² + eps) + β per channel, μ and σ² (biased) over every value of the channel:
    /// axis 0 of [C, N, D…], axis 1 of [N, F].
    private func naiveBatchNorm(_ x: Tensor, weight: [Float], bias: [Float], mean: [Float]? = nil, variance: [Float]? = nil) -> Tensor {
        let axis = x.shape.count == 2 ? 1 : 0
        let y = Tensor(x.shape)
        let indices = allIndices(x.shape)
        for c in 0..<x.shape[axis] {
            let members = indices.filter { $0[axis] == c }.map { offset($0, in: x.shape) }
            let values = members.map { Double(x.data[$0]) }
            let mu = mean.map { Double($0[c]) } ?? values.reduce(0, +) / Double(values.count)
            let sigma2 = variance.map { Double($0[c]) } ?? values.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(values.count)
            for i in members {
                y.data[i] = Float(Double(weight[c]) * (Double(x.data[i]) - mu) / (sigma2 + 1e-5).squareRoot() + Double(bias[c]))
            }
        }
        return y
    }

    private func batchNorm(_ channels: Int, seed: UInt64) -> BatchNorm {
        let layer = BatchNorm(channels: channels)
        var random = Random(seed: seed)
        for c in 0..<channels {
            layer.weight.value.data[c] = random.uniform(0.5, 1.5)
            layer.bias.value.data[c] = random.uniform(-0.5, 0.5)
        }
        return layer
    }

    private let batchNormShapes = [[3, 4], [3, 2, 5], [3, 2, 3, 4], [3, 2, 2, 3, 2]]   // [N, F], then 1-, 2-, 3-D

    func testBatchNormForwardMatchesTheDefinitionInTrainingAndEvalMode() throws {
        for (index, shape) in batchNormShapes.enumerated() {
            let channels = shape.count == 2 ? shape[1] : shape[0]
            let layer = batchNorm(channels, seed: UInt64(900 + index))
            let x = NNTestSupport.uniform(shape, seed: UInt64(910 + index), range: 2)
            for i in 0..<x.count { x.data[i] += 0.7 }   // a mean far from the running mean's 0
            let weight = layer.weight.value.data, bias = layer.bias.value.data
            assertClose(layer.forward(x, training: true), naiveBatchNorm(x, weight: weight, bias: bias), tolerance: 1e-5, "training on \(shape)")
            let mean = layer.runningMean.value.data, variance = layer.runningVariance.value.data
            XCTAssertNotEqual(mean, [Float](repeating: 0, count: channels), "training updated the running mean")
            assertClose(layer.forward(x, training: false), naiveBatchNorm(x, weight: weight, bias: bias, mean: mean, variance: variance),
                        tolerance: 1e-5, "eval on \(shape)")
            XCTAssertEqual(layer.runningMean.value.data, mean, "eval leaves the running statistics")
            XCTAssertEqual(layer.batchesTracked.value.data, [1])
            let sample = shape.count == 2 ? [shape[1]] : [shape[0]] + Array(shape.dropFirst(2))
            XCTAssertEqual(try layer.outputShape(for: sample), sample)
        }
        NNTestSupport.assertModelError("wrong channel count") { _ = try BatchNorm(channels: 3).outputShape(for: [4, 5, 5]) }
        NNTestSupport.assertModelError("wrong feature count") { _ = try BatchNorm(channels: 3).outputShape(for: [4]) }
    }

    /// Channel 0 holds 1, 2, 3, 4 (mean 2.5, biased variance 1.25, unbiased 5/3); channel 1 holds
    /// −2, 0, 2, 4 (mean 1, variance 5, unbiased 20/3).
    func testBatchNormRunningStatisticsFollowPyTorchsUpdate() {
        let layer = BatchNorm(channels: 2)
        XCTAssertEqual(layer.buffers.map(\.name), ["running_mean", "running_var", "num_batches_tracked"])
        XCTAssertEqual(layer.parameters.map(\.name), ["weight", "bias"])
        XCTAssertEqual(layer.weight.value.data, [1, 1])
        XCTAssertEqual(layer.runningVariance.value.data, [1, 1])
        let x = Tensor([2, 2, 2], [1, 2, 3, 4, -2, 0, 2, 4])
        let y = layer.forward(x, training: true)
        XCTAssertEqual(y.data[0], -1.5 / (1.25 + 1e-5).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(y.data[7], 3 / (5 + 1e-5).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(layer.runningMean.value.data[0], 0.25, accuracy: 1e-6)
        XCTAssertEqual(layer.runningMean.value.data[1], 0.1, accuracy: 1e-6)
        XCTAssertEqual(layer.runningVariance.value.data[0], 0.9 + 0.1 * 5 / 3, accuracy: 1e-6)
        XCTAssertEqual(layer.runningVariance.value.data[1], 0.9 + 0.1 * 20 / 3, accuracy: 1e-6)
        XCTAssertEqual(layer.batchesTracked.value.data, [1])
        _ = layer.forward(x, training: true)
        XCTAssertEqual(layer.runningMean.value.data[0], 0.9 * 0.25 + 0.25, accuracy: 1e-6)
        XCTAssertEqual(layer.runningVariance.value.data[1], 0.9 * (0.9 + 0.1 * 20 / 3) + 0.1 * 20 / 3, accuracy: 1e-5)
        XCTAssertEqual(layer.batchesTracked.value.data, [2])
        _ = layer.forward(x, training: false)
        XCTAssertEqual(layer.batchesTracked.value.data, [2], "eval does not count")
        // Eval normalizes with the running statistics: (1 − 0.475)/√(rv₀ + eps).
        let rv0 = layer.runningVariance.value.data[0]
        XCTAssertEqual(layer.forward(x, training: false).data[0], (1 - 0.475) / (rv0 + 1e-5).squareRoot(), accuracy: 1e-5)
    }

    func testBatchNormReplicaSharesStateButDoesNotUpdateRunningStatistics() {
        let layer = batchNorm(2, seed: 950)
        let replica = layer.replica() as! BatchNorm
        XCTAssertTrue(layer.updatesRunningStatistics)
        XCTAssertFalse(replica.updatesRunningStatistics)
        XCTAssertTrue(replica.weight.value === layer.weight.value && replica.bias.value === layer.bias.value)
        XCTAssertFalse(replica.weight.grad === layer.weight.grad)
        for (r, m) in zip(replica.buffers, layer.buffers) { XCTAssertTrue(r.value === m.value, "\(m.name) is the same tensor") }
        XCTAssertFalse((replica.replica() as! BatchNorm).updatesRunningStatistics)

        let x = NNTestSupport.uniform([2, 3, 4], seed: 951)
        for i in 0..<x.count { x.data[i] += 1 }
        let trainingOutput = layer.forward(x, training: true).copy()   // the original: updates
        let mean = layer.runningMean.value.data, variance = layer.runningVariance.value.data
        assertClose(replica.forward(x, training: true), trainingOutput, tolerance: 1e-6, "the replica normalizes the same way")
        XCTAssertEqual(layer.runningMean.value.data, mean, "a replica's training step leaves the running mean")
        XCTAssertEqual(layer.runningVariance.value.data, variance)
        XCTAssertEqual(layer.batchesTracked.value.data, [1])
        // The replica evaluates with the statistics the original gathered.
        assertClose(replica.forward(x, training: false), layer.forward(x, training: false).copy(), tolerance: 0, "shared running stats")
    }

    /// Training mode: the finite differences move the batch statistics too, so a backward that
    /// ignored them (the plain affine map) fails here. Eval mode: the affine map.
    func testBatchNormGradientsInTrainingAndEvalMode() {
        for (index, shape) in batchNormShapes.enumerated() {
            let channels = shape.count == 2 ? shape[1] : shape[0]
            let x = NNTestSupport.uniform(shape, seed: UInt64(960 + index), range: 2)
            NNTestSupport.checkGradients(batchNorm(channels, seed: UInt64(970 + index)), input: x)
            let eval = batchNorm(channels, seed: UInt64(980 + index))
            for c in 0..<channels { eval.runningMean.value.data[c] = 0.1 * Float(c); eval.runningVariance.value.data[c] = 0.5 + Float(c) }
            checkGradients(eval, input: x, training: false, reluKinks: false)
        }
    }

    // MARK: Flatten

    func testFlattenInOneTwoAndThreeDimensionsUsesPyTorchsOrder() throws {
        for (index, spatial) in [[5], [3, 4], [2, 3, 2]].enumerated() {
            let layer = Flatten()
            let x = NNTestSupport.uniform([3, 2] + spatial, seed: UInt64(1000 + index))
            let features = 3 * spatial.reduce(1, *)
            let expected = Tensor([2, features])
            for position in allIndices(x.shape) {
                let (c, b, d) = (position[0], position[1], Array(position[2...]))
                expected.data[b * features + offset([c] + d, in: [3] + spatial)] = x.data[offset(position, in: x.shape)]
            }
            XCTAssertEqual(layer.forward(x, training: true).shape, [2, features])
            XCTAssertEqual(layer.forward(x, training: true).data, expected.data)
            XCTAssertEqual(try layer.outputShape(for: [3] + spatial), [features])
            NNTestSupport.checkGradients(layer, input: x)
        }
        let flat = Tensor([2, 6], (0..<12).map(Float.init))
        XCTAssertTrue(Flatten().forward(flat, training: true) === flat, "[N, F] passes through")
        // GlobalAveragePool then Flatten: [C, N, 1, 1, 1] → [N, C].
        let pooled = GlobalAveragePool().forward(NNTestSupport.uniform([4, 3, 2, 2, 2], seed: 1010), training: true)
        XCTAssertEqual(pooled.shape, [4, 3, 1, 1, 1])
        XCTAssertEqual(Flatten().forward(pooled, training: true).shape, [3, 4])
    }
}
