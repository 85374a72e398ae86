import XCTest
@testable import NN
import Tensor

/// The layer spec: parsing, its one printed form, shape inference with errors that name the
/// layer, PyTorch's nn.Sequential names, the fast-path rewrites, and the presets' bits.
final class SpecTests: XCTestCase {
    override func setUpWithError() throws { try BLAS.load() }

    func spec(_ text: String) throws -> ModelSpec { try ModelSpec(parsing: text) }

    func error(_ text: String, input: [Int] = [1, 28, 28], classes: Int = 10) -> String {
        do {
            _ = try ModelSpec(parsing: text).compile(inputShape: input, classes: classes, seed: 1)
            return "(no error)"
        } catch {
            return "\(error)"
        }
    }

    func testPrintingIsCanonicalAndParsingItGivesTheSameSpec() throws {
        let cases: [(typed: String, canonical: String)] = [
            ("conv 3x3 16 relu | pool 2 | dense 10", "conv 3x3 16 relu | pool 2 | dense 10"),
            ("CONV 3 8  pad 1 | Pool 2 stride 2 max|dense 4", "conv 3 8 | pool 2 | dense 4"),
            ("conv 5 8 same stride 2 | relu", "conv 5 8 stride 2 | relu"),
            ("conv 3x3 8 pad valid gelu | pool 3 stride 2 avg | gap | flatten | dense 10 tanh", "conv 3x3 8 valid gelu | pool 3 stride 2 avg | gap | flatten | dense 10 tanh"),
            ("conv 1x3x3 16 leakyrelu | conv 3x1x1 16 | pool 1x2x2 | bn | dropout 0.25 | linear 5 sigmoid",
             "conv 1x3x3 16 leakyrelu | conv 3x1x1 16 | pool 1x2x2 | batchnorm | dropout 0.25 | dense 5 sigmoid"),
            ("conv 3 4 pad 2 | pool 2 stride 1", "conv 3 4 pad 2 | pool 2 stride 1"),
        ]
        for (typed, canonical) in cases {
            let parsed = try spec(typed)
            XCTAssertEqual(parsed.text, canonical, typed)
            XCTAssertEqual(try spec(parsed.text), parsed, typed)
            XCTAssertEqual(try spec(parsed.text).text, canonical, typed)
        }
    }

    func testParseErrorsNameTheLayerAndTheGrammar() {
        let cases: [(String, String)] = [
            ("conv 3x3 16 relu | pol 2", "layer 2 \"pol 2\": unknown layer 'pol' — did you mean 'pool'?"),
            ("conv 3x3", "layer 1 \"conv 3x3\": needs a kernel size and an output channel count; conv K OUT"),
            ("conv 3x3 0", "the output channel count '0' must be a whole number from 1 to 65536"),
            ("conv 3x3x3x3 8", "must be one size or one per dimension"),
            ("conv 4 8 same", "pad same needs odd kernel sizes"),
            ("conv 3 8 stride", "stride needs a size"),
            ("conv 3 8 banana", "unexpected 'banana'"),
            ("dense", "needs one size, e.g. dense 10"),
            ("dense -3", "must be a whole number from 1"),
            ("dropout 1", "needs a probability from 0 up to (not including) 1"),
            ("dropout nan", "needs a probability"),
            ("gap 2", "takes no arguments"),
            ("conv 3 8 | | dense 4", "layer 2 is empty"),
            ("", "an empty model"),
            ("pool 0", "the window '0' must be whole numbers from 1 to 1024"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try spec(text), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text) → \(error)")
            }
        }
    }

    func testShapeErrorsNameTheLayerTheShapeItGotAndWhatItNeeded() {
        XCTAssertEqual(error("conv 3x3 16 relu | pool 2 | conv 3x3x3 16 | dense 10"),
                       "layer 3 \"conv 3x3x3 16\": needs a 3-D input, got 16×14×14 (2-D)")
        XCTAssertTrue(error("conv 3 8 valid | conv 30 8 valid | dense 10").contains("layer 2 \"conv 30 8 valid\": the kernel 30 is larger than the padded input 8×26×26 (2-D)"))
        XCTAssertTrue(error("pool 2 | pool 2 | pool 2 | pool 2 | pool 2 | dense 10").contains("layer 5 \"pool 2\": the window 2 is larger than the input 1×1×1 (2-D)"))
        XCTAssertTrue(error("dense 32 | conv 3 8 | dense 10").contains("layer 2 \"conv 3 8\": needs channels and spatial dimensions, got 32 (flat features)"))
        XCTAssertEqual(error("conv 3 8 | dense 7"), "the model ends with dense 7 but the data has 10 classes; end with dense 10")
        XCTAssertEqual(error("conv 3 8 | gap"), "the model ends with 8×1×1 (2-D) outputs; end with dense 10 (the data has 10 classes)")
        XCTAssertTrue(error("conv 3 65536 | conv 3 65536 | dense 10").contains("too large to train here"), error("conv 3 65536 | conv 3 65536 | dense 10"))
        XCTAssertTrue(error("dense 1048576 | dense 1048576 | dense 10").contains("too large"))
        XCTAssertTrue(error("conv 3 65536 | dense 10", input: [1, 1000, 1000]).contains("too large"), "activations")
    }

    func testTheReferenceConvNetIsItsSpecWithPyTorchSequentialNames() throws {
        let model = try Model.referenceConvNet(seed: 1)
        XCTAssertEqual(model.spec, try spec("conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 10"))
        // nn.Sequential(Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, MaxPool2d, Flatten, Linear)
        XCTAssertEqual(model.parameters.map(\.name), ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias", "10.weight", "10.bias"])
        let bn = try spec("conv 3 4 | batchnorm | relu | dense 10").compile(inputShape: [1, 8, 8], classes: 10, seed: 1)
        XCTAssertEqual(bn.parameters.map(\.name), ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"])
        XCTAssertEqual(bn.buffers.map(\.name), ["1.running_mean", "1.running_var", "1.num_batches_tracked"])
    }

    /// `build conv` before the spec existed, put together by hand: the preset must be the same
    /// weights and the same numbers.
    func testTheConvPresetHasTheFirstVersionsBits() throws {
        var random = Random(seed: 7)
        let byHand = try Model(inputShape: [1, 28, 28], layers: [
            ("conv1", ConvolutionThenPool(Convolution(1, 16, kernel: 3, padding: 1, activation: .relu, random: &random), Pooling(kernel: [2, 2]), poolName: "pool1")),
            ("conv2", ConvolutionThenPool(Convolution(16, 32, kernel: 3, padding: 1, activation: .relu, random: &random), Pooling(kernel: [2, 2]), poolName: "pool2")),
            ("conv3", ConvolutionThenPool(Convolution(32, 32, kernel: 3, padding: 1, activation: .relu, random: &random), Pooling(kernel: [2, 2]), poolName: "pool3")),
            ("flatten", Flatten()), ("fc", Dense(288, 10, random: &random)),
        ])
        let preset = try Model.referenceConvNet(seed: 7)
        XCTAssertEqual(preset.parameters.map(\.value.data), byHand.parameters.map(\.value.data))
        let x = NNTestSupport.uniform([1, 5, 28, 28], seed: 3)
        XCTAssertEqual(preset.forward(x, training: true).data, byHand.forward(x, training: true).data)
    }

    func testTheFastPathsAreRewritesTheSameNumbersAsThePortableLayers() throws {
        let text = "conv 3x3 8 relu | pool 2 | conv 3x3 8 relu | pool 2 | dense 4"
        let fast = try spec(text).compile(inputShape: [1, 12, 12], classes: 4, seed: 3)
        let portable = try spec(text).compile(inputShape: [1, 12, 12], classes: 4, seed: 3, fastPaths: false)
        XCTAssertEqual(fast.layers.map { "\(type(of: $0.layer))" }, ["ConvolutionThenPool", "ConvolutionThenPool", "Flatten", "Dense"])
        XCTAssertEqual(portable.layers.map { "\(type(of: $0.layer))" },
                       ["Convolution", "ReLU", "Pooling", "Convolution", "ReLU", "Pooling", "Flatten", "Dense"])
        let fused = fast.layers.compactMap { $0.layer as? ConvolutionThenPool }
        XCTAssertEqual(fused.map(\.convolution.algorithm), [.chunkedPlane, .chunkedPlane])
        XCTAssertEqual(fused.map(\.pool.algorithm), [.squareMax, .squareMax])
        XCTAssertEqual(portable.layers.compactMap { ($0.layer as? Convolution)?.algorithm }, [.portable, .portable])
        XCTAssertEqual(portable.layers.compactMap { ($0.layer as? Pooling)?.algorithm }, [.portable, .portable])
        XCTAssertEqual(fast.parameters.map(\.name), portable.parameters.map(\.name))
        XCTAssertEqual(fast.parameters.map(\.value.data), portable.parameters.map(\.value.data), "the same initial weights")
        let x = NNTestSupport.uniform([1, 6, 12, 12], seed: 4)
        let a = fast.forward(x, training: true), b = portable.forward(x, training: true)
        for (u, v) in zip(a.data, b.data) { XCTAssertEqual(u, v, accuracy: 1e-4 * max(1, abs(u))) }
        let dlogits = NNTestSupport.uniform(a.shape, seed: 5)
        fast.zeroGrads(); portable.zeroGrads()
        fast.backward(dlogits); portable.backward(dlogits.copy())
        for (p, q) in zip(fast.parameters, portable.parameters) {
            for (u, v) in zip(p.grad.data, q.grad.data) { XCTAssertEqual(u, v, accuracy: 1e-3 * max(1, abs(u)), p.name) }
        }
    }

    func testEveryRankCompilesAndRuns() throws {
        let cases: [(String, [Int])] = [
            ("conv 5 8 stride 2 relu | pool 2 avg | conv 3 8 | gap | dense 3", [2, 64]),
            ("conv 3x3 8 stride 2 | batchnorm | leakyrelu | pool 3 stride 2 | dropout 0.5 | dense 16 gelu | dense 3", [3, 17, 17]),
            ("conv 3x3x3 4 relu | pool 1x2x2 | conv 1x3x3 4 | conv 3x1x1 4 tanh | pool 2 | gap | dense 3", [1, 8, 16, 16]),
        ]
        for (text, input) in cases {
            let model = try spec(text).compile(inputShape: input, classes: 3, seed: 1)
            let x = NNTestSupport.uniform([input[0], 2] + input.dropFirst(), seed: 2)
            model.prepareStep(seed: 1, step: 0, worker: 0)
            let logits = model.forward(x, training: true)
            XCTAssertEqual(logits.shape, [2, 3], text)
            XCTAssertTrue(logits.data.allSatisfy(\.isFinite), text)
            model.backward(NNTestSupport.uniform([2, 3], seed: 3))
            XCTAssertTrue(model.parameters.allSatisfy { $0.grad.data.allSatisfy(\.isFinite) }, text)
            XCTAssertEqual(model.forward(x, training: false).shape, [2, 3], text)
        }
    }

    func testFirstVersionCheckpointNamesStillRestore() throws {
        let model = try Model.referenceConvNet(seed: 2)
        var old: [String: Tensor] = [:]
        let legacy = ["0": "conv1", "3": "conv2", "6": "conv3", "10": "fc"]
        for p in model.parameters {
            let parts = p.name.split(separator: ".")
            old["\(legacy[String(parts[0])]!).\(parts[1])"] = p.value.copy()
            old["optimizer.\(legacy[String(parts[0])]!).\(parts[1]).m"] = p.value.copy()
        }
        let fresh = try Model.referenceConvNet(seed: 9)
        let renamed = Checkpoint.renamingLegacyNames(old, for: fresh)
        XCTAssertEqual(Set(renamed.keys.filter { !$0.hasPrefix("optimizer.") }), Set(fresh.parameters.map(\.name)))
        XCTAssertTrue(renamed.keys.contains("optimizer.10.weight.m"))
        try Checkpoint.loadWeights(renamed, into: fresh)
        XCTAssertEqual(fresh.parameters.map(\.value.data), model.parameters.map(\.value.data))
        let mlp = try Model.mlp(hidden: [16], seed: 1)
        let oldMLP = ["fc1.weight": mlp.parameters[0].value, "fc1.bias": mlp.parameters[1].value,
                      "fc2.weight": mlp.parameters[2].value, "fc2.bias": mlp.parameters[3].value]
        XCTAssertEqual(Set(Checkpoint.renamingLegacyNames(oldMLP, for: mlp).keys), ["1.weight", "1.bias", "3.weight", "3.bias"])
    }

    /// Random and mutated specs: every one either builds or is refused with a SpecError; none
    /// crashes, and none that builds has a shape the engine would not accept.
    func testTenThousandRandomAndMutatedSpecsNeverCrash() throws {
        var random = Random(seed: 2024)
        func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
        let words = ["conv", "pool", "gap", "flatten", "dense", "relu", "gelu", "tanh", "sigmoid", "leakyrelu", "dropout",
                     "batchnorm", "3", "3x3", "1x3x3", "3x3x3", "5", "0", "-1", "2", "16", "2000000", "99999999999999999999",
                     "stride", "pad", "same", "valid", "avg", "max", "groups", "relu6", "0.5", "1.0", "nan", "|", "||", "x", "3x", "x3", "💥", ""]
        let seeds = ["conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 10", "dense 128 relu | dense 10",
                     "conv 3 8 stride 2 | batchnorm | gap | dense 10",
                     "conv 1 8 relu6 | conv 3 8 stride 2 groups 8 | pool 3 stride 2 pad 1 avg | dense 10"]
        var built = 0
        for i in 0..<10_000 {
            var text: String
            if i % 2 == 0 {
                text = (0..<Int(random.next() % 12)).map { _ in pick(words) }.joined(separator: " ")
            } else {
                var tokens = pick(seeds).split(separator: " ").map(String.init)
                for _ in 0..<(1 + Int(random.next() % 3)) {
                    let at = Int(random.next() % UInt64(tokens.count))
                    switch random.next() % 3 {
                    case 0: tokens[at] = pick(words)
                    case 1: tokens.insert(pick(words), at: at)
                    default: tokens.remove(at: at)
                    }
                    if tokens.isEmpty { tokens = ["dense"] }
                }
                text = tokens.joined(separator: " ")
            }
            let input = pick([[1, 28, 28], [3, 9, 9], [2, 30], [1, 4, 12, 12], [5]])
            do {
                let model = try ModelSpec(parsing: text).compile(inputShape: input, classes: 10, seed: 1)
                XCTAssertEqual(try model.validate(), [10], text)
                built += 1
            } catch is SpecError {
            } catch is ModelError {
            } catch {
                XCTFail("\(text): unexpected \(error)")
            }
        }
        XCTAssertGreaterThan(built, 50, "some of the mutated specs build")
    }
}
