import XCTest
import Foundation
import NN
import Tensor
import Training
@testable import Session

/// `stats` and `set stats on`, checked against a naive computation on a tiny model.
final class LayerStatisticsTests: SessionTestCase {
    /// flatten (implied) | dense 8 | relu | dense 4, on one thread, plain SGD, no noise: one step
    /// on the first 32 images moves w by −lr·g exactly, so ‖g‖ = ‖Δw‖/lr.
    func buildTinyModel() {
        loadQuadrants()
        run("set threads 1; set noise 0; set optimizer sgd; set lr 0.1; build mlp 8")
    }

    func testStatsMatchANaiveComputationOnATinyModel() throws {
        buildTinyModel()
        let model = try XCTUnwrap(session.model)
        let before = model.layers.map { $0.layer.parameters.map(\.value.data) }
        run("step")
        let stats = try XCTUnwrap(session.trainer!.lastStatistics)
        XCTAssertEqual(stats.step, 1)
        XCTAssertEqual(stats.layers.map(\.layer), model.layers.map(\.name))
        // The naive forward pass of the batch, with the weights before the step.
        let split = session.dataset!.train
        var h = (0..<32).map { i in (0..<64).map { Double(split.images[i * 64 + $0]) } }
        for (i, named) in model.layers.enumerated() {
            switch named.layer {
            case is Flatten: break
            case let dense as Dense:
                let w = before[i][0], b = before[i][1], inputs = dense.weight.value.shape[1]
                h = h.map { x in (0..<b.count).map { o in (0..<inputs).reduce(Double(b[o])) { $0 + Double(w[o * inputs + $1]) * x[$1] } } }
            case is ReLU: h = h.map { $0.map { max(0, $0) } }
            default: XCTFail("unexpected layer \(named.layer)")
            }
            let values = h.flatMap { $0 }
            let mean = values.reduce(0, +) / Double(values.count)
            let std = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
            let measured = stats.layers[i]
            XCTAssertEqual(measured.activationMean, mean, accuracy: 1e-4 * max(1, abs(mean)), "layer \(named.name)")
            XCTAssertEqual(measured.activationStd, std, accuracy: 1e-4 * max(1, std), "layer \(named.name)")
            XCTAssertEqual(measured.zeroShare, Double(values.filter { $0 == 0 }.count) / Double(values.count), accuracy: 1e-9)
            let now = named.layer.parameters.map(\.value.data)
            guard !now.isEmpty else {
                XCTAssertNil(measured.weightNorm)
                continue
            }
            let norm = { (arrays: [[Float]]) in arrays.joined().reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
            let moved = zip(now.joined(), before[i].joined()).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
            XCTAssertEqual(try XCTUnwrap(measured.weightNorm), norm(now), accuracy: 1e-9 * norm(now))
            XCTAssertEqual(try XCTUnwrap(measured.updateRatio), moved / norm(before[i]), accuracy: 1e-9)
            XCTAssertEqual(try XCTUnwrap(measured.gradientNorm), moved / 0.1, accuracy: 1e-3 * moved / 0.1)
            XCTAssertGreaterThan(moved, 0)
        }
        XCTAssertGreaterThan(stats.layers[2].zeroShare, 0, "the test needs some dead ReLU outputs")
        let table = run("stats")
        XCTAssertTrue(table.hasPrefix("step 1: epoch 1, batch 1\nlayer"), table)
        XCTAssertTrue(table.contains("2: relu"), table)
        XCTAssertTrue(table.contains(String(format: "%.1f%%", stats.layers[2].zeroShare * 100)), table)
        XCTAssertLessThanOrEqual(table.split(separator: "\n").map(\.count).max() ?? 0, 80, table)
    }

    func testStatsAreRecordedWithEachEpochWhenOnAndAbsentWhenOff() throws {
        buildTinyModel()
        run("set stats on; train 2")
        let names = try session.store!.query("SELECT DISTINCT name FROM metrics WHERE run = 1 AND name LIKE 'stats.%' ORDER BY name").rows.map { $0[0] }
        XCTAssertTrue(names.contains("stats.1.grad_norm") && names.contains("stats.2.dead_share") && names.contains("stats.3.update_ratio"), "\(names)")
        XCTAssertFalse(names.contains("stats.1.dead_share"), "dense 8 alone is not a ReLU")
        XCTAssertEqual(try session.store!.query("SELECT COUNT(DISTINCT epoch) FROM metrics WHERE run = 1 AND name = 'stats.3.grad_norm'").rows, [["2"]])
        let recorded = try session.store!.query("SELECT value FROM metrics WHERE run = 1 AND epoch = 2 AND name = 'stats.1.grad_norm'").rows[0][0]
        let measured = try XCTUnwrap(session.trainer!.lastStatistics!.layers[1].gradientNorm)
        XCTAssertEqual(try XCTUnwrap(Double(recorded)), measured, accuracy: 1e-5 * measured, "the epoch's last batch, as `stats` shows it")
        let plot = run("plot stats.1.grad_norm")
        XCTAssertTrue(plot.contains("run 1"), plot)
        run("build mlp 8; set stats off; train 1")
        XCTAssertEqual(try session.store!.query("SELECT COUNT(*) FROM metrics WHERE run = 2 AND name LIKE 'stats.%'").rows, [["0"]])
        XCTAssertEqual(try session.store!.query("SELECT COUNT(*) FROM metrics WHERE run = 2").rows.first.map { $0[0] != "0" }, true)
    }
}
