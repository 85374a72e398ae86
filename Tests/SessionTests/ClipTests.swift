import XCTest
import Foundation
import Datasets
import Tensor
@testable import Session

/// Clips: samples of T frames that a model sees as [C, T, H, W]. A tiny set whose class is the
/// motion alone (a bright square moving right, left, down or up over the same positions) is
/// learned by a 3-D convnet typed at the prompt, through the whole training path.
final class ClipTests: SessionTestCase {
    /// 8 frames of 12×12: the square visits the same cells in every class, only the order differs.
    static func motionClips(count: Int, seed: UInt64) -> Split {
        var random = Random(seed: seed)
        let (t, side) = (8, 12)
        var images = [Float](repeating: 0, count: count * t * side * side), labels = [Int32]()
        for i in 0..<count {
            let k = Int(random.next() % 4)
            labels.append(Int32(k))
            let fixed = 2 + Int(random.next() % 6)
            for f in 0..<t {
                let moving = 1 + f   // 1…8, or backwards
                let step = k % 2 == 0 ? moving : 9 - moving
                let (y, x) = k < 2 ? (fixed, step) : (step, fixed)
                for dy in 0..<3 {
                    for dx in 0..<3 where y + dy < side && x + dx < side {
                        images[((i * t + f) * side + y + dy) * side + x + dx] = 0.8 + 0.2 * random.nextFloat()
                    }
                }
            }
        }
        return Split(images: images, labels: labels)
    }

    func testATinyClipSetIsLearnedByA3DConvnet() throws {
        session.workbench = .data(Dataset(name: "motion", train: Self.motionClips(count: 256, seed: 1), test: Self.motionClips(count: 64, seed: 2),
                                          height: 12, width: 12, channels: 1, frames: 8,
                                          classNames: ["right", "left", "down", "up"], source: "memory"))
        XCTAssertEqual(session.dataset?.sampleShape, [1, 8, 12, 12])
        run("set batch 16; set noise 0.05; set target off")
        let built = run("build conv 3x3x3 8 relu | pool 1x2x2 | conv 3x3x3 16 relu | pool 2 | gap | dense 4")
        XCTAssertTrue(built.contains("conv 3x3x3 8 relu"), built)
        XCTAssertTrue(run("summary").contains("8×8×12×12"))
        let trained = run("train 6")
        XCTAssertTrue(trained.contains(" clips/s") && !trained.contains("img/s"), "clips are counted as clips: \(trained)")
        let accuracy = Double(run("accuracy").split(separator: " ")[2])!
        XCTAssertGreaterThan(accuracy, 0.9, "the motion is learned")
        XCTAssertTrue(run("confusion").contains("right"))
        // Clips are called clips, and shapes are C×T×H×W everywhere.
        XCTAssertTrue(run("misses").contains("of 64 test clips misclassified"))
        let compared = run("compare")
        XCTAssertTrue(compared.contains("clips/s") && !compared.contains("images/s"), compared)
        XCTAssertTrue(compared.replacingOccurrences(of: "\n  ", with: " ").contains("input 1×8×12×12"), "the run records its input shape: \(compared)")   // the common line wraps where it will
        let strip = run("predict 0")
        XCTAssertTrue(strip.contains("test clip 0: label "), strip)
        // 8 frames of 12×12 in reading order within 80 columns: a row of 6 and a row of 2, each
        // 6 lines (two pixel rows a line) with a blank line between, one column a pixel.
        let rows = strip.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertEqual(rows.count, 6 + 1 + 6, strip)
        let widest = rows.map(\.count).max() ?? 0
        XCTAssertTrue(widest > 5 * 13 && widest <= 6 * 13 - 1, "\(widest) columns")
        // The clip model's checkpoint holds Conv3d layouts [out, in, kt, kh, kw].
        let path = folder + "/clip.safetensors"
        run("save \(path)")
        XCTAssertEqual(session.model!.parameters.first?.value.shape, [8, 1, 3, 3, 3])
        XCTAssertTrue(run("restore \(path)").hasPrefix("restored"))
    }

    /// 16 frames of 32×32 (the trick set's clips) are shrunk to 16×16 and drawn four to a row,
    /// inside 80 columns, in either drawing mode; frame t is at row t/4, column t%4.
    func testAClipIsDrawnAsRowsOfFramesWithinEightyColumns() {
        var pixels = [Float](repeating: 0, count: 16 * 32 * 32)
        for t in 0..<16 { for y in 0..<32 { for x in 0..<32 where x < 2 * (t + 1) { pixels[(t * 32 + y) * 32 + x] = 1 } } }
        for color in [false, true] {
            let text = renderClip(pixels, frames: 16, height: 32, width: 32, channels: 1, color: color)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            XCTAssertEqual(lines.count, 4 * 8 + 3, text)
            if !color {
                XCTAssertTrue(lines.allSatisfy { $0.count <= 4 * 17 - 1 }, text)
                // Frame 0 (top left) is lit 2 of 32 columns → 1 of its 16; frame 3 (top right) 8 of 32 → 4.
                XCTAssertEqual(lines[0].prefix(16).filter { $0 == "█" }.count, 1, text)
                XCTAssertEqual(lines[0].dropFirst(3 * 17).prefix(16).filter { $0 == "█" }.count, 4, text)
            }
        }
    }
}
