import XCTest
@testable import NN
import Tensor

/// Helpers for the NN tests. Kept in an enum so the names cannot clash with other test files.
enum NNTestSupport {
    /// Uniform values in [-range, range).
    static func uniform(_ shape: [Int], seed: UInt64, range: Float = 1) -> Tensor {
        var random = Random(seed: seed)
        let t = Tensor(shape)
        for i in 0..<t.count { t.data[i] = random.uniform(-range, range) }
        return t
    }

    /// Values whose magnitude is at least `gap` (kept away from 0 so a ReLU's kink is never crossed).
    static func awayFromZero(_ shape: [Int], seed: UInt64, gap: Float = 0.1) -> Tensor {
        var random = Random(seed: seed)
        let t = Tensor(shape)
        for i in 0..<t.count {
            let magnitude = random.uniform(gap, 1)
            t.data[i] = random.next() & 1 == 0 ? magnitude : -magnitude
        }
        return t
    }

    /// All values distinct, at least `spacing` apart, in shuffled order (a unique max per window
    /// that a perturbation smaller than spacing/2 cannot change).
    static func distinct(_ shape: [Int], seed: UInt64, spacing: Float = 0.05) -> Tensor {
        var random = Random(seed: seed)
        let count = shape.reduce(1, *)
        let order = random.permutation(count)
        let t = Tensor(shape)
        for i in 0..<count { t.data[i] = (Float(order[i]) - Float(count) / 2) * spacing }
        return t
    }

    /// Naive max pooling of x [C, N, H, W] (sizes round down); also the flat index into x of each
    /// window's (first) maximum, in output order.
    static func naiveMaxPool(_ x: Tensor, size: Int) -> (output: Tensor, winners: [Int]) {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (h / size, w / size)
        let y = Tensor([c, n, oh, ow])
        var winners: [Int] = []
        for plane in 0..<(c * n) {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var top = -Float.infinity, best = -1
                    for dy in 0..<size {
                        for dx in 0..<size {
                            let i = plane * h * w + (oy * size + dy) * w + ox * size + dx
                            if x.data[i] > top { top = x.data[i]; best = i }
                        }
                    }
                    y.data[(plane * oh + oy) * ow + ox] = top
                    winners.append(best)
                }
            }
        }
        return (y, winners)
    }

    /// |a − n| ≤ rtol·max(|a|, |n|) + atol.
    static func close(_ analytic: Double, _ numeric: Double, rtol: Double, atol: Double) -> Bool {
        abs(analytic - numeric) <= rtol * max(abs(analytic), abs(numeric)) + atol
    }

    /// Σ out·r in Double.
    static func project(_ out: Tensor, _ r: [Float]) -> Double {
        precondition(out.count == r.count)
        var total = 0.0
        for i in 0..<out.count { total += Double(out.data[i]) * Double(r[i]) }
        return total
    }

    /// Runs `body` and asserts it throws a ModelError; returns its message.
    @discardableResult
    static func assertModelError(_ what: String, file: StaticString = #filePath, line: UInt = #line,
                                 _ body: () throws -> Void) -> String? {
        do {
            try body()
            XCTFail("\(what): expected a ModelError, nothing was thrown", file: file, line: line)
            return nil
        } catch let error as ModelError {
            return error.description
        } catch {
            XCTFail("\(what): expected a ModelError, got \(type(of: error)): \(error)", file: file, line: line)
            return nil
        }
    }
}
