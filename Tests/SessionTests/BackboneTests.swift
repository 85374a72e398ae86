import XCTest
import Foundation
import NN
import Datasets
@testable import Session

/// `backbone SOURCE`: a network trained earlier, without its head, with its weights.
final class BackboneTests: SessionTestCase {
    /// Trains `conv 3 4 relu | pool 2 | dense 8 relu | dense 4` on the quadrants for run 1
    /// and saves it; returns the checkpoint path.
    func trainSource() -> String {
        loadQuadrants()
        run("build conv 3 4 relu | pool 2 | dense 8 relu | dense 4; train 1")
        let path = folder + "/digits.safetensors"
        run("save \(path)")
        return path
    }

    func testABackboneKeepsTheSourceWeightsAndDropsItsHead() throws {
        let path = trainSource()
        let source = try XCTUnwrap(session.model)
        let trained = Dictionary(uniqueKeysWithValues: source.parameters.map { ($0.name, $0.value.data) })
        for word in [path, "run-1"] {
            let shown = run("build backbone \(word) | dense 4")
            XCTAssertTrue(shown.hasPrefix("built backbone ") && shown.contains("| dense 4"), shown)
            let model = try XCTUnwrap(session.model)
            // The conv's weights are run 1's, under the backbone's index; the dense layers are gone.
            XCTAssertEqual(model.parameters.map(\.name), ["0.0.weight", "0.0.bias", "2.weight", "2.bias"])
            XCTAssertEqual(model.parameters[0].value.data, trained["0.weight"])
            XCTAssertEqual(model.parameters[1].value.data, trained["0.bias"])
            let summary = run("summary")
            XCTAssertTrue(summary.contains("0: backbone"), summary)
            XCTAssertTrue(summary.contains("  0.0: conv 3 4"), summary)
        }
        // It trains, is recorded as typed, and a checkpoint of it restores (the source is read again).
        run("train 1")
        let saved = folder + "/head.safetensors"
        run("save \(saved)")
        let weights = session.model!.parameters.map(\.value.data)
        run("build conv 3 4 relu | pool 2 | dense 4")
        XCTAssertTrue(run("restore \(saved)").contains("backbone run-1 | dense 4"))
        XCTAssertEqual(session.model!.parameters.map(\.value.data), weights)
    }

    func testBadSourcesAreOneLineAndTheModelStays() {
        _ = trainSource()
        let before = session.model?.description
        for (line, expected) in [("build backbone run-9 | dense 4", "run 9 has no checkpoint"),
                                 ("build backbone missing.safetensors | dense 4", "no such file or run"),
                                 ("build backbone | dense 4", "needs one SOURCE"),
                                 ("build backbone run-1 run-2 | dense 4", "needs one SOURCE")] {
            let error = run(line, ok: false)
            XCTAssertTrue(error.contains(expected), "\(line) → \(error)")
            XCTAssertFalse(error.dropLast().contains("\n"), error)
        }
        XCTAssertEqual(session.model?.description, before)
        // A network with no head to cut.
        run("build conv 3 4 relu | pool 2 | dense 4")
        let headless = folder + "/x.safetensors"
        run("save \(headless)")
        XCTAssertTrue(run("build backbone \(headless) | dense 4").contains("built"))
    }
}

/// `build FILE.onnx` on data it does not fit: one line saying how to load the data or to keep
/// the network's body, and the session's model stays.
final class ONNXBuildTests: SessionTestCase {
    func testAnImportThatDoesNotFitTheDataSaysWhatToDo() throws {
        try writeQuadrantIDX(to: folder + "/q", train: 64, test: 16, seed: 1)
        run("load idx \(folder)/q; set batch 32; build conv 3 4 relu | pool 2 | dense 4")
        let file = folder + "/q.onnx"
        run("export onnx \(file)")
        // Other sizes: the line names both shapes and the way out.
        session.workbench = .data(Dataset(name: "big", train: Split(images: [Float](repeating: 0.5, count: 2 * 256), labels: [0, 1]),
                                          test: Split(images: [Float](repeating: 0.5, count: 2 * 256), labels: [0, 1]),
                                          height: 16, width: 16, channels: 1, classNames: ["a", "b", "c", "d"], source: "memory"))
        var error = run("build \(file)", ok: false)
        XCTAssertTrue(error.contains("takes 1×8×8 inputs but the data is 1×16×16"), error)
        XCTAssertTrue(error.contains("build backbone \(file) | dense 4"), error)
        // The same size, other classes.
        session.workbench = .data(Dataset(name: "three", train: Split(images: [Float](repeating: 0.5, count: 2 * 64), labels: [0, 1]),
                                          test: Split(images: [Float](repeating: 0.5, count: 2 * 64), labels: [0, 1]),
                                          height: 8, width: 8, channels: 1, classNames: ["a", "b", "c"], source: "memory"))
        error = run("build \(file)", ok: false)
        XCTAssertTrue(error.contains("ends with 4 classes but the data has 3"), error)
        // Its body with a head of the data's own does fit.
        XCTAssertTrue(run("build backbone \(file) | dense 3").hasPrefix("built backbone"))
        // Not there, or not ONNX: one line each.
        XCTAssertTrue(run("build \(folder)/missing.onnx", ok: false).contains("missing.onnx"))
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: folder + "/bad.onnx"))
        error = run("build \(folder)/bad.onnx", ok: false)
        XCTAssertEqual(error.split(separator: "\n").count, 1, error)
        XCTAssertTrue(session.model?.description.hasPrefix("backbone") ?? false)
    }
}
