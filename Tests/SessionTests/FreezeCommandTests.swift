import XCTest
import Foundation
@testable import NN
import Tensor
import Tracking
@testable import Session
@testable import Training

/// `freeze`, `unfreeze`, `fine-tune`: what they say, what they refuse, what runs record.
final class FreezeCommandTests: SessionTestCase {
    /// Modules: 0 conv, 1 relu, 2 batchnorm, 3 pool, 4 flatten (implied), 5 dense.
    static let spec = "conv 3 8 relu | batchnorm | pool 2 | dense 4"

    func rows(_ sql: String) throws -> [[String]] { try session.store!.query(sql).rows }

    func buildModel() {
        loadQuadrants()
        session.settings.noise = 0   // a frozen prefix is cached only without input noise
        run("build \(Self.spec)")
    }

    func tensor(_ name: String) -> [Float] { session.model!.parameters.first { $0.name == name }!.value.data }

    func testBadLayersAreRefusedInOneLineAndNothingChanges() {
        XCTAssertEqual(run("freeze 0", ok: false), "error: no model yet; run: load mnist, then build conv")
        buildModel()
        let refusals = [
            "freeze 99": "error: the model has modules 0-5 (see summary), not 99; e.g. freeze 0-4",
            "freeze 0-9": "error: the model has modules 0-5 (see summary), not 9; e.g. freeze 0-4",
            "freeze x": "error: LAYERS are top-level module numbers as summary shows them: 3, 0-5, 0,2,4-6, or backbone (got 'x'); e.g. freeze 0-4",
            "freeze 3-1": "error: LAYERS are top-level module numbers as summary shows them: 3, 0-5, 0,2,4-6, or backbone (got '3-1'); e.g. freeze 0-4",
            "freeze backbone": "error: the model has no backbone module; name modules by number as summary shows them, e.g. freeze 0-4",
            "freeze 0-5": "error: nothing left to train: that freezes every module with parameters; leave the head out, e.g. freeze 0-4",
            "unfreeze -2": "error: LAYERS are top-level module numbers as summary shows them: 3, 0-5, 0,2,4-6, or backbone (got '-2'); e.g. unfreeze 0-4",
            "set frozen 0": "error: frozen changes with freeze LAYERS and unfreeze [LAYERS], e.g. freeze 0-3",
            "set lr-mult 9:0.1": "error: the model has modules 0-5 (see summary), not 9; e.g. set lr-mult 0:0.1",
            "set lr-mult 0:fast": "error: lr-mult must be off or MODULE:FACTOR pairs (factor > 0) separated by commas, e.g. 0:0.01,2:0.1 (got '0:fast')",
            "fine-tune 0": "error: the epoch count N must be a whole number from 1 to 100000 (got '0')",
        ]
        for (line, error) in refusals { XCTAssertEqual(run(line, ok: false), error, line) }
        // `set` offers only what it changes; `show` still lists frozen.
        XCTAssertFalse(run("help set").contains("frozen"), run("help set"))
        XCTAssertTrue(run("show").contains("frozen"))
        XCTAssertFalse(run("set nonsense 1", ok: false).contains("frozen"))
        XCTAssertEqual(session.settings.frozenModules, [])
        XCTAssertEqual(session.settings.learningRateMultipliers, [:])
        // Freezing all but the head, then the head too, is refused at the second step.
        run("freeze 0,2")
        XCTAssertTrue(run("freeze 5", ok: false).hasPrefix("error: nothing left to train"))
        XCTAssertEqual(session.settings.frozenModules, [0, 2])
    }

    func testFreezeAndUnfreezeChangeTheSettingAndSummaryMarksFrozenModules() {
        buildModel()
        XCTAssertEqual(run("freeze 0, 2"), "frozen = 0,2 (was none)\n516 of 612 parameters train")   // conv 80, batchnorm 16, dense 4·128+4
        XCTAssertEqual(run("freeze 1-3"), "frozen = 0-3 (was 0,2)\n516 of 612 parameters train")
        let summary = run("summary")
        XCTAssertTrue(summary.contains("0: conv 3 8  (frozen)"), summary)
        XCTAssertTrue(summary.contains("2: batchnorm  (frozen)"), summary)
        XCTAssertFalse(summary.contains("5: dense 4  (frozen)"), summary)
        XCTAssertTrue(summary.contains("total: 612 parameters, 516 trainable (frozen: modules 0-3)"), summary)
        XCTAssertTrue(run("show").contains("frozen         0-3 *"), run("show"))
        XCTAssertEqual(run("unfreeze 2"), "frozen = 0-1,3 (was 0-3)\n532 of 612 parameters train")
        XCTAssertEqual(run("unfreeze"), "frozen = none (was 0-1,3)\n612 of 612 parameters train")
        XCTAssertTrue(run("summary").contains("total: 612 trainable parameters"))
        // A new model's modules are not the old one's.
        run("freeze 0; build conv")
        XCTAssertEqual(session.settings.frozenModules, [])
    }

    func testFrozenModulesKeepTheirWeightsAndStatisticsWhileTheCacheServesTraining() {
        buildModel()
        run("freeze 0-3")
        let before = ["0.weight", "0.bias", "2.weight", "2.running_mean", "2.running_var"].map { name in
            (session.model!.parameters + session.model!.buffers).first { $0.name == name }!.value.data
        }
        let head = tensor("5.weight")
        let text = run("train 1")
        XCTAssertTrue(text.contains("cached the outputs of the frozen modules 0-4 for 320 samples (160 KB,"), text)   // 128 floats each, after the flatten
        let after = ["0.weight", "0.bias", "2.weight", "2.running_mean", "2.running_var"].map { name in
            (session.model!.parameters + session.model!.buffers).first { $0.name == name }!.value.data
        }
        XCTAssertEqual(before, after)
        XCTAssertNotEqual(head, tensor("5.weight"))
        XCTAssertFalse(run("train 1").contains("cached"), "the cache still holds: not built again")
        // `stats`, `accuracy` and `predict` still see every layer.
        XCTAssertTrue(run("stats").contains("0"))
        XCTAssertTrue(run("accuracy").hasPrefix("test accuracy"))
        XCTAssertTrue(run("predict 0").contains("model:"))
        // Unfreezing drops it; dropout-free prefixes come back when frozen again.
        run("unfreeze; train 1")
        XCTAssertNil(session.trainer!.featureCacheModules)
        XCTAssertNotEqual(after[0], tensor("0.weight"))
    }

    func testWhatIsFrozenIsRecordedPerEpochAndKeptByRestoreAndResume() throws {
        try writeQuadrantIDX(to: folder + "/a", train: 256, test: 64, seed: 1)
        run("load idx \(folder)/a; set batch 32; set target off; set noise 0; build \(Self.spec)")
        run("train 1; freeze 0-3; train 1; unfreeze 2; set lr-mult 0:0.1; train 1")
        XCTAssertEqual(try rows("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'frozen' ORDER BY from_epoch"),
                       [["none", "1"], ["0-3", "2"], ["0-1,3", "3"]])
        XCTAssertEqual(try rows("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'lr-mult' ORDER BY from_epoch"),
                       [["off", "1"], ["0:0.1", "3"]])
        XCTAssertTrue(run("compare 1").contains("frozen"), run("compare 1"))
        // A checkpoint keeps them; restore takes them with the weights.
        run("save \(folder)/frozen.safetensors; unfreeze; set lr-mult off")
        XCTAssertTrue(run("restore \(folder)/frozen.safetensors").contains("restored"))
        XCTAssertEqual(session.settings.frozenModules, [0, 1, 3])
        XCTAssertEqual(session.settings.learningRateMultipliers, [0: 0.1])
        // Another process resumes the run with them.
        session.close(BufferConsole())
        let other = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        let console = BufferConsole()
        XCTAssertTrue(other.execute("resume 1", console: console), console.text)
        XCTAssertEqual(other.settings.frozenModules, [0, 1, 3])
        XCTAssertEqual(other.settings.learningRateMultipliers, [0: 0.1])
    }

    func testFineTuneFreezesTheBodyThenTrainsAllWithDiscriminativeRates() throws {
        buildModel()
        let text = run("fine-tune 1")
        XCTAssertTrue(text.contains("fine-tune: 1 epoch of the head, the body (modules 0-4) frozen"), text)
        XCTAssertTrue(text.contains("cached the outputs of the frozen modules 0-4"), text)
        XCTAssertTrue(text.contains("lr-mult = 0:0.01,2:0.1 (was off; applies from epoch 2 of run 1)"), text)
        XCTAssertEqual(try rows("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'frozen' ORDER BY from_epoch"),
                       [["0-4", "1"], ["none", "2"]])
        XCTAssertEqual(try rows("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'lr-mult' ORDER BY from_epoch"),
                       [["off", "1"], ["0:0.01,2:0.1", "2"]])
        XCTAssertEqual(session.trainer!.epochsDone, 2)
        XCTAssertEqual(session.settings.frozenModules, [])
        // No frozen epochs: nothing is frozen, the rates apply at once.
        run("build \(Self.spec); fine-tune 1 0")
        XCTAssertEqual(try rows("SELECT name, value, from_epoch FROM params WHERE run = 2 AND name IN ('frozen', 'lr-mult') ORDER BY name"),
                       [["frozen", "none", "1"], ["lr-mult", "0:0.01,2:0.1", "1"]])
    }

    /// A head that alone reaches the target ends fine-tune as it ends `train`: the body is not
    /// thawed for a second phase.
    func testFineTuneStopsWhenTheHeadReachesTheTarget() throws {
        buildModel()
        run("set target 0.01")
        let text = run("fine-tune 2")
        XCTAssertTrue(text.contains("the head reached the target, so the body stays frozen"), text)
        XCTAssertFalse(text.contains("of every module"), text)
        XCTAssertEqual(session.trainer!.epochsDone, 1)
        XCTAssertEqual(session.settings.frozenModules, [0, 1, 2, 3, 4])
    }

    /// The first step after the body thaws: Adam moves each weight by about lr × its module's
    /// multiplier, so the body's first module (× 0.01) moves a hundredth of what the head does.
    func testTheFirstUnfrozenStepMovesTheBodyLessThanTheHead() throws {
        buildModel()
        let initialBody = tensor("0.weight")
        let session = self.session!
        session.isInterrupted = { session.trainer!.epochsDone >= 1 }   // one batch into the second phase
        let text = run("fine-tune 3", ok: false)
        XCTAssertEqual(session.replayOfInterruptedCommand,
                       ["unfreeze", "set lr-mult off", "freeze 0-4", "train 1", "unfreeze", "set lr-mult 0:0.01,2:0.1", "train 3 stop 1"], text)
        let (thawed, _) = try Checkpoint.load(from: session.epochStatePath(run: 1, epoch: 1))
        XCTAssertEqual(thawed["0.weight"]!.data, initialBody, "the body did not move while frozen")
        func meanStep(_ name: String) -> Float {
            let before = thawed[name]!.data, after = tensor(name)
            return zip(before, after).map { abs($1 - $0) }.reduce(0, +) / Float(before.count)
        }
        let (body, head) = (meanStep("0.weight"), meanStep("5.weight"))
        XCTAssertGreaterThan(body, 0)
        XCTAssertLessThan(body, 0.05 * head, "body \(body), head \(head)")
    }

    func testFineTuneStoppedByCtrlCReplaysWhatItDid() {
        buildModel()
        session.isInterrupted = { true }   // after the first batch
        let text = run("fine-tune 2", ok: false)
        XCTAssertTrue(text.contains("interrupted"), text)
        XCTAssertEqual(session.replayOfInterruptedCommand, ["unfreeze", "set lr-mult off", "freeze 0-4", "train 1 stop 1"])
        XCTAssertEqual(session.settings.frozenModules, [0, 1, 2, 3, 4], "the second phase never began")
    }

    func testTheBackboneIsFoundByItsKeyword() throws {
        var spec = try ModelSpec(parsing: "flatten | dense 8 | dense 4")
        spec.modules.insert(ModelSpec.Module(layer: FakeBackbone(), inline: false), at: 1)
        let model = try spec.compile(inputShape: [1, 8, 8], classes: 4, seed: 1)
        // 0 flatten, 1 backbone, 2 dense 8, 3 dense 4.
        XCTAssertEqual(Session.backboneModules(of: model), [1])
        XCTAssertEqual(Session.fineTuneBody(of: model), [1])
        XCTAssertEqual(Session.discriminativeMultipliers(body: [1], of: model), [1: 0.01])
        XCTAssertEqual(try session.modules(["backbone,3"], of: model, command: "freeze"), [1, 3])
    }
}

/// Stands in for the `backbone SOURCE` layer: a dense layer under that keyword.
private struct FakeBackbone: LayerSpec {
    static let keyword = "backbone"
    static let grammar = "backbone   a stand-in"
    init() {}
    init(keyword: String, arguments: [String]) throws {}
    var text: String { "backbone" }
    func outputShape(for input: [Int]) throws -> [Int] { [16] }
    func parameterCount(for input: [Int]) -> Int { 16 * input.reduce(1, *) + 16 }
    func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        Dense(input.reduce(1, *), 16, random: &random)
    }
}
