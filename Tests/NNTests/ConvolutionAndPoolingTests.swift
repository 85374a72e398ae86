import XCTest
@testable import NN
import Tensor

/// One Convolution and one Pooling layer for every rank: each picks its algorithm from its
/// geometry and `fastPaths`, prints and names its tensors the same whatever it picked, and only
/// a chunked-plane convolution followed by a square max pool runs fused.
final class ConvolutionAndPoolingTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    func testTheOutputSizeFormulaRoundsDownAndRejectsAWindowLargerThanThePaddedInput() {
        XCTAssertEqual(slidingWindowOutputSizes(input: [28, 7], window: [3, 2], stride: [1, 2], padding: [1, 0]), [28, 3])
        XCTAssertEqual(slidingWindowOutputSizes(input: [5], window: [3], stride: [2], padding: [1]), [3])
        XCTAssertEqual(slidingWindowOutputSizes(input: [3], window: [5], stride: [1], padding: [1]), [1])
        XCTAssertNil(slidingWindowOutputSizes(input: [2], window: [5], stride: [1], padding: [1]))
        XCTAssertNil(slidingWindowOutputSizes(input: [9, 1], window: [2, 2], stride: [2, 2], padding: [0, 0]))
    }

    func testConvolutionPicksItsAlgorithmFromTheGeometry() {
        var random = Random(seed: 1)
        func algorithm(_ kernel: [Int], stride: [Int]? = nil, padding: [Int]? = nil, fastPaths: Bool = true) -> ConvolutionAlgorithm {
            Convolution(inChannels: 2, outChannels: 3, kernel: kernel, stride: stride, padding: padding, fastPaths: fastPaths,
                        random: &random).algorithm
        }
        XCTAssertEqual(algorithm([3, 3], padding: [1, 1]), .chunkedPlane)
        XCTAssertEqual(algorithm([3, 5], padding: [2, 2]), .chunkedPlane)
        XCTAssertEqual(algorithm([3, 3], padding: [1, 0]), .strideOne)
        XCTAssertEqual(algorithm([3, 3, 3], padding: [1, 1, 1]), .strideOne)
        XCTAssertEqual(algorithm([5]), .strideOne)
        XCTAssertEqual(algorithm([3, 3], stride: [2, 2], padding: [1, 1]), .portable)
        XCTAssertEqual(algorithm([3], padding: [3]), .portable)   // padding ≥ kernel: the portable loops only
        XCTAssertEqual(algorithm([3, 3], padding: [1, 1], fastPaths: false), .portable)
        XCTAssertEqual(algorithm([3, 3, 3], padding: [1, 1, 1], fastPaths: false), .portable)
    }

    func testPoolingPicksItsAlgorithmFromTheWindow() {
        XCTAssertEqual(Pooling(kernel: [2, 2]).algorithm, .squareMax)
        XCTAssertEqual(Pooling(kernel: [3, 3]).algorithm, .squareMax)
        XCTAssertEqual(Pooling(kernel: [2, 2], kind: .avg).algorithm, .portable)
        XCTAssertEqual(Pooling(kernel: [3, 3], stride: [2, 2]).algorithm, .portable)
        XCTAssertEqual(Pooling(kernel: [2, 3]).algorithm, .portable)
        XCTAssertEqual(Pooling(kernel: [1, 2, 2]).algorithm, .portable)
        XCTAssertEqual(Pooling(kernel: [2, 2], fastPaths: false).algorithm, .portable)
    }

    /// The description (what a model without a spec prints) and the parameters (what a
    /// checkpoint holds) do not depend on the algorithm.
    func testEveryAlgorithmPrintsAndNamesTheSame() {
        for algorithm in [ConvolutionAlgorithm.chunkedPlane, .strideOne, .portable] {
            var random = Random(seed: 2)
            let conv = Convolution(inChannels: 1, outChannels: 16, kernel: [3, 3], stride: [1, 1], padding: [1, 1],
                                   activation: .relu, algorithm: algorithm, random: &random)
            XCTAssertEqual(conv.description, "Conv((3, 3), 1 => 16, pad=1, relu)", "\(algorithm)")
            XCTAssertEqual(conv.parameters.map(\.name), ["weight", "bias"], "\(algorithm)")
            XCTAssertEqual(conv.parameters.map(\.value.shape), [[16, 1, 3, 3], [16]], "\(algorithm)")
            XCTAssertEqual(try conv.outputShape(for: [1, 28, 28]), [16, 28, 28], "\(algorithm)")
        }
        for algorithm in [PoolingAlgorithm.squareMax, .portable] {
            let pool = Pooling(kernel: [2, 2], stride: [2, 2], kind: .max, algorithm: algorithm)
            XCTAssertEqual(pool.description, "MaxPool((2, 2))", "\(algorithm)")
            XCTAssertEqual(try pool.outputShape(for: [16, 7, 7]), [16, 3, 3], "\(algorithm)")
        }
    }

    func testOnlyTheMaxPoolsTheConvolutionAlgorithmsCanTakeFuse() {
        var random = Random(seed: 3)
        let plane = Convolution(2, 3, kernel: 3, padding: 1, activation: .relu, random: &random)
        let volume = Convolution(inChannels: 2, outChannels: 3, kernel: [3, 3, 3], padding: [1, 1, 1], random: &random)
        let portable = Convolution(inChannels: 2, outChannels: 3, kernel: [3, 3], padding: [1, 1], fastPaths: false, random: &random)
        XCTAssertTrue(plane.canFuse(with: Pooling(kernel: [2, 2])))
        XCTAssertTrue(plane.canFuse(with: Pooling(kernel: [3, 3])))
        XCTAssertFalse(plane.canFuse(with: Pooling(kernel: [2, 2], kind: .avg)))
        XCTAssertFalse(plane.canFuse(with: Pooling(kernel: [2, 2], fastPaths: false)))
        XCTAssertFalse(plane.canFuse(with: Pooling(kernel: [3, 3], stride: [2, 2])))
        XCTAssertTrue(volume.canFuse(with: Pooling(kernel: [1, 2, 2])))
        XCTAssertTrue(volume.canFuse(with: Pooling(kernel: [2, 2, 2])))
        XCTAssertTrue(volume.canFuse(with: Pooling(kernel: [2, 2, 2], fastPaths: false)), "the same k×2×2 loop")
        XCTAssertFalse(volume.canFuse(with: Pooling(kernel: [2, 3, 3])))
        XCTAssertFalse(volume.canFuse(with: Pooling(kernel: [2, 2, 2], kind: .avg)))
        XCTAssertFalse(volume.canFuse(with: Pooling(kernel: [2, 2, 2], stride: [1, 2, 2])))
        XCTAssertFalse(volume.canFuse(with: Pooling(kernel: [2, 2, 2], padding: [1, 1, 1])))
        XCTAssertFalse(volume.canFuse(with: Pooling(kernel: [2, 2])), "a pool of another rank")
        XCTAssertFalse(portable.canFuse(with: Pooling(kernel: [2, 2])))
    }

    /// The fused pair gives what the two layers give one after the other, and reads the pooled
    /// gradient without writing into it.
    func testTheFusedPairMatchesTheTwoLayersAndOnlyReadsItsGradient() {
        var r1 = Random(seed: 4), r2 = Random(seed: 4)
        let fused = Convolution(2, 3, kernel: 3, padding: 1, activation: .relu, random: &r1), pool = Pooling(kernel: [2, 2])
        let conv = Convolution(2, 3, kernel: 3, padding: 1, activation: .relu, random: &r2), alone = Pooling(kernel: [2, 2])
        let x = NNTestSupport.uniform([2, 3, 8, 10], seed: 5)
        let expected = alone.forward(conv.forward(x, training: true), training: true).copy()
        let y = fused.forward(x, pooledBy: pool)
        XCTAssertEqual(y.shape, expected.shape)
        for (a, b) in zip(y.data, expected.data) { XCTAssertEqual(a, b, accuracy: 1e-5) }

        let dy = NNTestSupport.uniform(expected.shape, seed: 6), given = dy.data
        let dx = fused.backward(pooledGradient: dy, pooledBy: pool).copy()
        XCTAssertEqual(dy.data, given, "the fused backward wrote into the pooled gradient")
        let reference = conv.backward(alone.backward(dy))
        XCTAssertEqual(dx.shape, reference.shape)
        for (a, b) in zip(dx.data, reference.data) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        for (a, b) in zip(fused.weight.grad.data, conv.weight.grad.data) { XCTAssertEqual(a, b, accuracy: 1e-4) }
    }

    func testAReplicaKeepsTheAlgorithmAndItsSettingsAndSharesOnlyTheWeights() {
        for algorithm in [ConvolutionAlgorithm.chunkedPlane, .strideOne, .portable] {
            var random = Random(seed: 7)
            let conv = Convolution(inChannels: 2, outChannels: 3, kernel: [3, 3], stride: [1, 1], padding: [1, 1],
                                   algorithm: algorithm, random: &random)
            conv.needsInputGradient = false
            conv.chunkBytes = 1234
            let replica = conv.replica() as! Convolution
            XCTAssertEqual(replica.algorithm, algorithm)
            XCTAssertFalse(replica.needsInputGradient, "\(algorithm)")
            XCTAssertEqual(replica.chunkBytes, 1234, "\(algorithm)")
            XCTAssertTrue(replica.weight.value === conv.weight.value, "\(algorithm)")
            XCTAssertFalse(replica.weight.grad === conv.weight.grad, "\(algorithm)")
        }
        let pool = Pooling(kernel: [3, 3], stride: [2, 2], kind: .avg)
        let copy = pool.replica() as! Pooling
        XCTAssertEqual([copy.kernel, copy.stride], [[3, 3], [2, 2]])
        XCTAssertEqual(copy.kind, .avg)
        XCTAssertEqual(copy.algorithm, pool.algorithm)
    }
}
