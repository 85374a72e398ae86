import XCTest
import Tensor
@testable import NN

/// Where `backbone` cuts a network's head, and how its weights reach the compiled layers.
final class BackboneSpecTests: XCTestCase {
    func backbone(_ text: String, input: [Int] = [1, 8, 8], tensors: [String: Tensor] = [:]) throws -> Backbone {
        try Backbone(source: "src", network: try ModelSpec(parsing: text), inputShape: input, tensors: tensors)
    }

    func testTheHeadIsCutAfterTheLastGapOrBeforeTheTrailingDenseLayers() throws {
        XCTAssertEqual(try backbone("conv 3 8 relu | gap | dropout 0.5 | dense 10").spec.text, "conv 3 8 relu | gap")
        XCTAssertEqual(try backbone("conv 3 8 relu | pool 2 | dense 64 relu | dropout 0.5 | dense 10").spec.text,
                       "conv 3 8 relu | pool 2")
        XCTAssertEqual(try backbone("conv 3 8 | res(conv 3 8 relu | conv 3 8) | gap | dense 4").spec.text,
                       "conv 3 8 | res(conv 3 8 relu | conv 3 8) | gap")
        XCTAssertThrowsError(try backbone("conv 3 8 relu | pool 2")) { XCTAssertTrue("\($0)".contains("no classifier head"), "\($0)") }
        XCTAssertThrowsError(try backbone("dense 64 relu | dense 10")) { XCTAssertTrue("\($0)".contains("nothing is left"), "\($0)") }
    }

    func testOnlyTheKeptModulesTensorsStayAndCompileIntoTheLayers() throws {
        let source = try ModelSpec(parsing: "conv 3 2 relu | pool 2 | dense 3").compile(inputShape: [1, 4, 4], classes: 3, seed: 7)
        let tensors = Dictionary(uniqueKeysWithValues: (source.parameters + source.buffers).map { ($0.name, $0.value) })
        let cut = try backbone("conv 3 2 relu | pool 2 | dense 3", input: [1, 4, 4], tensors: tensors)
        XCTAssertEqual(Set(cut.tensors.keys), ["0.weight", "0.bias"])
        let spec = try ModelSpec(parsing: "backbone src | dense 2").resolvingBackbones { _ in cut }
        let model = try spec.compile(inputShape: [1, 4, 4], classes: 2, seed: 3)
        XCTAssertEqual(model.parameters[0].name, "0.0.weight")
        XCTAssertEqual(model.parameters[0].value.data, source.parameters[0].value.data)
        // Inside a container too (frames of clips): resolved at any depth.
        let clips = try ModelSpec(parsing: "frames(backbone src) | lstm 4 | dense 2").resolvingBackbones { _ in cut }
        let clipModel = try clips.compile(inputShape: [1, 3, 4, 4], classes: 2, seed: 3)
        XCTAssertEqual(clipModel.parameters[0].name, "0.net.0.0.weight")
        XCTAssertEqual(clipModel.parameters[0].value.data, source.parameters[0].value.data)
        // Unread, or on inputs of other channels: one line.
        XCTAssertThrowsError(try ModelSpec(parsing: "backbone src | dense 2").compile(inputShape: [1, 4, 4], classes: 2, seed: 3))
        XCTAssertThrowsError(try spec.compile(inputShape: [3, 4, 4], classes: 2, seed: 3)) {
            XCTAssertTrue("\($0)".contains("takes 1×4×4"), "\($0)")
        }
    }

    /// A backbone first in the model computes no input gradient in its first convolution (no
    /// one reads it); after another trained layer it does.
    func testABackboneFirstSkipsItsFirstInputGradient() throws {
        let source = try ModelSpec(parsing: "conv 3 2 relu | pool 2 | dense 3").compile(inputShape: [1, 4, 4], classes: 3, seed: 7)
        let tensors = Dictionary(uniqueKeysWithValues: (source.parameters + source.buffers).map { ($0.name, $0.value) })
        let cut = try backbone("conv 3 2 relu | pool 2 | dense 3", input: [1, 4, 4], tensors: tensors)
        func firstConvolution(_ text: String) throws -> Bool? {
            let model = try ModelSpec(parsing: text).resolvingBackbones { _ in cut }.compile(inputShape: [1, 4, 4], classes: 2, seed: 3)
            let chain = try XCTUnwrap(model.layers.first { $0.layer is Chain }?.layer as? Chain)
            return (chain.children.first?.layer as? SkipsInputGradient)?.needsInputGradient
        }
        XCTAssertEqual(try firstConvolution("backbone src | dense 2"), false)
        XCTAssertEqual(try firstConvolution("conv 1 1 | backbone src | dense 2"), true)
        // Replicas (worker threads) keep the flags.
        let model = try ModelSpec(parsing: "backbone src | dense 2").resolvingBackbones { _ in cut }.compile(inputShape: [1, 4, 4], classes: 2, seed: 3)
        let replica = model.replica()
        let chain = try XCTUnwrap(replica.layers[0].layer as? Chain)
        XCTAssertFalse(chain.needsInputGradient)
        XCTAssertEqual((chain.children[0].layer as? SkipsInputGradient)?.needsInputGradient, false)
    }
}
