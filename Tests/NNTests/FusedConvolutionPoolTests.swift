import XCTest
@testable import NN
import Tensor

/// The compiler rewrites a convolution and the max-pool after it into one chunked step
/// (ConvolutionThenPool); it must give the numbers the two layers give one after the other.
final class FusedConvolutionPoolTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    /// Logits, loss gradient and every parameter gradient of `fused` and of the same layers run
    /// one at a time, on one batch.
    private func compare(_ fused: Model, batch: Int, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(fused.layers.contains { $0.layer is ConvolutionThenPool }, "nothing fused", file: file, line: line)
        let plain = Model.unfusedReplica(of: fused)
        XCTAssertFalse(plain.layers.contains { $0.layer is ConvolutionThenPool }, file: file, line: line)
        XCTAssertEqual(plain.parameters.map(\.name), fused.parameters.map(\.name), file: file, line: line)
        let x = NNTestSupport.uniform([fused.inputShape[0], batch] + Array(fused.inputShape[1...]), seed: seed)
        let labels = (0..<batch).map { Int32($0 % 3) }

        func run(_ model: Model) -> (logits: [Float], grads: [[Float]]) {
            model.zeroGrads()
            let logits = model.forward(x, training: true).copy()
            let dlogits = Tensor([0])
            _ = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels, normalizer: Float(batch), gradient: dlogits)
            model.backward(dlogits)
            return (logits.data, model.parameters.map { $0.grad.data })
        }
        let (a, b) = (run(fused), run(plain))
        for (u, v) in zip(a.logits, b.logits) { XCTAssertEqual(u, v, accuracy: 1e-5, "logits", file: file, line: line) }
        for (p, (ga, gb)) in zip(fused.parameters, zip(a.grads, b.grads)) {
            let scale = max(1e-3, gb.map(abs).max() ?? 0)
            let worst = zip(ga, gb).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst / scale, 1e-4, "\(p.name): fused and layer-by-layer gradients differ", file: file, line: line)
            XCTAssertGreaterThan(gb.map(abs).max() ?? 0, 0, "\(p.name) got no gradient", file: file, line: line)
        }
    }

    func testTheReferenceModelGivesTheSameNumbersFusedInChunks() throws {
        let model = try Model.referenceConvNet(inputShape: [1, 28, 28], classes: 10, seed: 3)
        // Chunks of one image: every chunk boundary and the backward's cols rebuild are crossed.
        for case let fused as ConvolutionThenPool in model.layers.map(\.layer) { fused.convolution.chunkBytes = 1 }
        try compare(model, batch: 3, seed: 4)
    }

    func testTheReferenceModelGivesTheSameNumbersFusedInOneChunk() throws {
        try compare(try Model.referenceConvNet(inputShape: [1, 28, 28], classes: 10, seed: 5), batch: 4, seed: 6)
    }

    /// Without a ReLU nothing is masked; a 3×3 pool takes the general pooling loop and leaves
    /// a row and a column (10 → 3) out of every window.
    func testAConvolutionWithoutReLUAndAThreeByThreePool() throws {
        var random = Random(seed: 7)
        let conv = Convolution(2, 3, kernel: 3, padding: 1, random: &random)
        let model = try Model(inputShape: [2, 10, 10], layers: [
            ("0", ConvolutionThenPool(conv, Pooling(kernel: [3, 3]), poolName: "1")),
            ("2", Flatten()),
            ("3", Dense(27, 3, random: &random)),
        ])
        do {
            for i in 0..<conv.bias.value.count { conv.bias.value.data[i] = random.uniform(-0.5, 0.5) }
            conv.chunkBytes = 2 * (18 * 100 + 3 * 100) * 4   // chunks of 2 images (+1)
        }
        try compare(model, batch: 5, seed: 8)
    }

    /// The 3-D trick net's shape: stride-one convolutions and k×2×2 pools, fused. Depth 7 and
    /// size 10 leave a frame, a row and a column out of the 2×2×2 windows.
    func testVolumeConvolutionsAndFramePoolsGiveTheSameNumbersFused() throws {
        let text = "conv 3x3x3 4 relu | pool 1x2x2 | conv 3x3x3 5 relu | pool 2 | conv 3x3x3 3 | pool 2 | gap | dense 3"
        let model = try ModelSpec(parsing: text).compile(inputShape: [2, 7, 20, 20], classes: 3, seed: 9)
        XCTAssertEqual(model.layers.filter { $0.layer is ConvolutionThenPool }.count, 3, "every convolution fused with its pool")
        try compare(model, batch: 3, seed: 10)
    }

    /// 8 channels into 16-wide frames: where the kernel set has Winograd's convolution (avx512),
    /// the second layer computes y, dx and dW by it, a sample a call, each pooled as it is done.
    func testVolumeConvolutionsByWinogradGiveTheSameNumbersFused() throws {
        let model = try ModelSpec(parsing: "conv 3x3x3 8 relu | pool 1x2x2 | conv 3x3x3 8 relu | pool 2 | gap | dense 3")
            .compile(inputShape: [1, 4, 32, 32], classes: 3, seed: 13)
        XCTAssertEqual(model.layers.filter { $0.layer is ConvolutionThenPool }.count, 2)
        try compare(model, batch: 3, seed: 14)
    }

    /// Blocks of a few frames: a sample's pooling waits for its last block, and the backward
    /// crosses every block boundary.
    func testVolumeConvolutionsFusedInBlocksOfFrames() throws {
        let model = try ModelSpec(parsing: "conv 3x3x3 4 relu | pool 2 | conv 3x3x3 4 relu | pool 1x2x2 | gap | dense 3")
            .compile(inputShape: [1, 9, 16, 16], classes: 3, seed: 11)
        let fused = model.layers.compactMap { $0.layer as? ConvolutionThenPool }
        XCTAssertEqual(fused.count, 2)
        for layer in fused { layer.convolution.chunkBytes = 1 }
        try compare(model, batch: 2, seed: 12)
    }
}
