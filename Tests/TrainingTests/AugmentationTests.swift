import XCTest
import Datasets
import NN
import Tensor
@testable import Training

/// `set augment`: each transform against a naive reference written apart from the kernel, clips
/// alike in every frame, the documented frame order, draws from the seed alone, and the trainer
/// augmenting only its training steps.
final class AugmentationTests: XCTestCase {
    /// A deterministic image [C, H, W] (channel-major), values in (0, 1).
    func image(channels: Int = 1, height: Int, width: Int, seed: UInt64 = 9) -> [Float] {
        var random = Random(seed: seed)
        return (0..<(channels * height * width)).map { _ in 0.05 + 0.9 * random.nextFloat() }
    }

    /// Applies one draw to a [C, T, H, W] sample held channel-major.
    func applied(_ d: Augmentation.Draw, _ x: [Float], channels: Int = 1, frames: Int = 1, height: Int, width: Int,
                 pixels: Normalization? = nil) -> [Float] {
        var y = x
        let scratch = AugmentationScratch(frames: frames, height: height, width: width)
        y.withUnsafeMutableBufferPointer { y in
            Augmentation.apply(d, to: y.baseAddress!, channelStride: frames * height * width, channels: channels,
                               frames: frames, height: height, width: width, pixels: pixels, scratch: scratch)
        }
        return y
    }

    func assertClose(_ a: [Float], _ b: [Float], _ tolerance: Float = 1e-5, _ what: String = "",
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        let gap = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(gap, tolerance, "\(what): \(a) vs \(b)", file: file, line: line)
    }

    // MARK: - The setting

    func testTheSettingReadsItsWordsAndPrintsThemBack() throws {
        let all = try Augmentation(parsing: "stride 2 flip contrast 0.2 crop 4 offset rotate 10 scale 0.1 brightness 0.25")
        XCTAssertEqual(all.text, "flip crop 4 rotate 10 scale 0.1 brightness 0.25 contrast 0.2 offset stride 2")
        XCTAssertEqual(try Augmentation(parsing: all.text), all)
        XCTAssertEqual(all.cropPadding, 4)
        XCTAssertEqual(all.rotationDegrees, 10)
        XCTAssertEqual(all.scale, 0.1)
        XCTAssertEqual(all.offsetFrames, 0, "offset without a number: a quarter of the clip")
        XCTAssertEqual(all.temporalStride, 2)
        XCTAssertEqual(try Augmentation(parsing: "offset 3 flip").text, "flip offset 3")
        XCTAssertEqual(try Augmentation(parsing: "off"), .off)
        XCTAssertEqual(Augmentation.off.text, "off")
        XCTAssertFalse(Augmentation.off.isOn)
        XCTAssertEqual(Hyperparameters().augmentation, .off, "off by default")
    }

    func testBadWordsAreRefusedSayingWhatToWrite() {
        func message(_ text: String) -> String {
            do { _ = try Augmentation(parsing: text); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(message("crop"), "augment crop needs a number, e.g. set augment crop 4")
        XCTAssertEqual(message("flip crop rotate 5"), "augment crop needs a number, e.g. set augment crop 4")
        XCTAssertEqual(message("rotate 400"), "augment rotate takes the largest angle in degrees > 0 and ≤ 180, e.g. rotate 10 (got 400)")
        XCTAssertEqual(message("crop 2.5"), "augment crop takes the padding in pixels from 1 to 64, e.g. crop 4 (got 2.5)")
        XCTAssertEqual(message("scale 1"), "augment scale takes the largest change of size > 0 and ≤ 0.9, e.g. scale 0.1 (got 1)")
        XCTAssertEqual(message("stride 1"), "augment stride takes the largest stride in frames from 2 to 16, e.g. stride 2 (got 1)")
        XCTAssertEqual(message("flip flip"), "augment flip is given twice; give it once")
        XCTAssertEqual(message("flip off"), "augment off stands alone: set augment off")
        XCTAssertEqual(message("flip 3"), "unknown augmentation '3'")
        do { _ = try Augmentation(parsing: "flp"); XCTFail("accepted") } catch let error as AugmentationError {
            XCTAssertEqual(error.unknownWord, "flp")
        } catch { XCTFail("\(error)") }
    }

    // MARK: - Images against naive references

    func testFlipIsAMirrorOfEveryChannel() {
        let (c, h, w) = (2, 3, 4)
        let x = image(channels: c, height: h, width: w)
        var d = Augmentation.Draw()
        d.flip = true
        var mirror = x
        for ch in 0..<c { for y in 0..<h { for col in 0..<w { mirror[(ch * h + y) * w + col] = x[(ch * h + y) * w + (w - 1 - col)] } } }
        XCTAssertEqual(applied(d, x, channels: c, height: h, width: w), mirror)
    }

    func testCropAfterPaddingShiftsAndFillsWithZeros() {
        let (h, w) = (4, 5)
        let x = image(height: h, width: w)
        var d = Augmentation.Draw()
        (d.shiftY, d.shiftX) = (1, -2)
        // torchvision: pad by P, take the H×W window at (P + shiftY, P + shiftX).
        let p = 2
        var padded = [Float](repeating: 0, count: (h + 2 * p) * (w + 2 * p))
        for y in 0..<h { for col in 0..<w { padded[(y + p) * (w + 2 * p) + col + p] = x[y * w + col] } }
        var window = [Float](repeating: -1, count: h * w)
        for y in 0..<h { for col in 0..<w { window[y * w + col] = padded[(y + p + 1) * (w + 2 * p) + col + p - 2] } }
        XCTAssertEqual(applied(d, x, height: h, width: w), window)
        XCTAssertEqual(window[0], 0, "the left edge came from the padding")
        // Then the flip mirrors the cropped window.
        d.flip = true
        var flipped = window
        for y in 0..<h { for col in 0..<w { flipped[y * w + col] = window[y * w + (w - 1 - col)] } }
        XCTAssertEqual(applied(d, x, height: h, width: w), flipped)
    }

    func testARotationBy90DegreesTurnsASquareImage() {
        for n in [4, 5] {
            let x = image(height: n, width: n)
            var d = Augmentation.Draw()
            d.angle = .pi / 2
            // numpy's rot90 (counter-clockwise): out[y][x] = in[x][n−1−y].
            var turned = x
            for y in 0..<n { for col in 0..<n { turned[y * n + col] = x[col * n + (n - 1 - y)] } }
            assertClose(applied(d, x, height: n, width: n), turned, 1e-5, "\(n)×\(n) by +90°")
            d.angle = -.pi / 2
            for y in 0..<n { for col in 0..<n { turned[y * n + col] = x[(n - 1 - col) * n + y] } }
            assertClose(applied(d, x, height: n, width: n), turned, 1e-5, "\(n)×\(n) by −90°")
        }
    }

    /// Crop, flip, then a bilinear rotation and scale about the centre with zeros outside, as
    /// three separate steps in Double: one warp must equal them done one after the other.
    func testOneWarpEqualsCropFlipAndAffineInTurn() {
        let (h, w) = (6, 7)
        let x = image(height: h, width: w)
        var d = Augmentation.Draw()
        (d.flip, d.shiftY, d.shiftX, d.angle, d.scale) = (true, -1, 2, 0.3, 1.2)
        var cropped = [Double](repeating: 0, count: h * w)
        for y in 0..<h {
            for col in 0..<w {
                let (sy, sx) = (y - 1, col + 2)
                if sy >= 0, sy < h, sx >= 0, sx < w { cropped[y * w + col] = Double(x[sy * w + sx]) }
            }
        }
        var flipped = cropped
        for y in 0..<h { for col in 0..<w { flipped[y * w + col] = cropped[y * w + w - 1 - col] } }
        func at(_ y: Int, _ col: Int) -> Double { y >= 0 && y < h && col >= 0 && col < w ? flipped[y * w + col] : 0 }
        var reference = [Float](repeating: 0, count: h * w)
        let (cy, cx) = (Double(h - 1) / 2, Double(w - 1) / 2)
        for y in 0..<h {
            for col in 0..<w {
                // The inverse map: rotate back by −angle and shrink by the scale.
                let (u, v) = (Double(col) - cx, Double(y) - cy)
                let a = 0.3, s = 1.2
                let sx = (cos(a) * u - sin(a) * v) / s + cx, sy = (sin(a) * u + cos(a) * v) / s + cy
                let (x0, y0) = (Int(sx.rounded(.down)), Int(sy.rounded(.down)))
                let (fx, fy) = (sx - Double(x0), sy - Double(y0))
                let value = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1))
                reference[y * w + col] = Float(value)
            }
        }
        assertClose(applied(d, x, height: h, width: w), reference, 1e-5, "crop, flip, rotate 0.3 rad, scale 1.2")
    }

    func testBrightnessAndContrastFollowColorJitter() {
        let (h, w) = (2, 3)
        let x = image(channels: 3, height: h, width: w)
        var d = Augmentation.Draw()
        (d.brightness, d.contrast) = (1.4, 0.6)
        // torchvision: brightness blends with black, contrast with the mean grey, each clamped to [0, 1].
        let bright = x.map { min(max($0 * 1.4, 0), 1) }
        var grey: Float = 0
        for p in 0..<(h * w) { grey += 0.2989 * bright[p] + 0.587 * bright[h * w + p] + 0.114 * bright[2 * h * w + p] }
        grey /= Float(h * w)
        let expected = bright.map { min(max(0.6 * $0 + 0.4 * grey, 0), 1) }
        assertClose(applied(d, x, channels: 3, height: h, width: w), expected, 1e-6, "RGB")
        XCTAssertTrue(bright.contains(1), "the test should reach the clamp")
        // Normalised values are changed as the pixels they stand for.
        let normalization = Normalization(mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3])
        var normalized = x
        for c in 0..<3 { for p in 0..<(h * w) { normalized[c * h * w + p] = (x[c * h * w + p] - normalization.mean[c]) / normalization.std[c] } }
        var back = applied(d, normalized, channels: 3, height: h, width: w, pixels: normalization)
        for c in 0..<3 { for p in 0..<(h * w) { back[c * h * w + p] = back[c * h * w + p] * normalization.std[c] + normalization.mean[c] } }
        assertClose(back, expected, 1e-5, "normalised")
        // And the padding is black as a pixel, not the value 0.
        var shift = Augmentation.Draw()
        shift.shiftX = -1
        let filled = applied(shift, normalized, channels: 3, height: h, width: w, pixels: normalization)
        XCTAssertEqual(filled[0], -0.5 / 0.2, accuracy: 1e-6)
        XCTAssertEqual(filled[2 * h * w], -0.3 / 0.3, accuracy: 1e-6)
    }

    /// torchvision itself (the PyPI peer in .venv-onnx): pad+crop, hflip, F.affine (bilinear,
    /// zeros outside; its angle turns clockwise, ours counter-clockwise), then adjust_brightness
    /// and adjust_contrast, on an RGB image, against one warp and one colour pass here.
    func testTheSameAsTorchvisionsTransformsInTurn() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let python = root.appendingPathComponent(".venv-onnx/bin/python").path
        // On a machine with too little disk for torch, test-peers.sh says so here instead.
        if let reason = try? String(contentsOf: root.appendingPathComponent(".venv-onnx/torch-skipped"), encoding: .utf8) {
            throw XCTSkip(reason.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard FileManager.default.isExecutableFile(atPath: python) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("no \(python): bash scripts/test-peers.sh installs it") }
            throw XCTSkip("no torchvision peer at \(python) (scripts/test-peers.sh installs it)")
        }
        let (h, w) = (9, 11)
        let x = image(channels: 3, height: h, width: w, seed: 4)
        // One process for every case (importing torch takes seconds): each line of stdin is one
        // case's ten numbers, the image is the same.
        let script = """
        import sys, torch
        from torchvision.transforms.v2 import functional as F
        from torchvision.transforms import InterpolationMode
        h, w = int(sys.argv[1]), int(sys.argv[2])
        lines = sys.stdin.read().strip().split("\\n")
        image = torch.tensor([float(v) for v in lines[0].split()]).reshape(3, h, w)
        for case in lines[1:]:
            pad, dy, dx, flip, deg, scale, b, c = case.split()
            pad, dy, dx, flip = map(int, (pad, dy, dx, flip))
            x = F.pad(image, [pad, pad, pad, pad], fill=0)[:, pad + dy:pad + dy + h, pad + dx:pad + dx + w]
            if flip: x = F.horizontal_flip(x)
            x = F.affine(x, angle=-float(deg), translate=[0, 0], scale=float(scale), shear=[0.0, 0.0],
                         interpolation=InterpolationMode.BILINEAR)
            x = F.adjust_contrast(F.adjust_brightness(x, float(b)), float(c))
            print(" ".join(repr(v) for v in x.flatten().tolist()))
        """
        let cases: [(flip: Bool, dy: Int, dx: Int, degrees: Float, scale: Float, brightness: Float, contrast: Float)] = [
            (true, 2, -1, 12, 1.1, 1.2, 0.7), (false, -2, 0, -25, 0.85, 0.8, 1.3), (true, 0, 2, 90, 1, 1, 1)]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script, "\(h)", "\(w)"]
        let (input, output) = (Pipe(), Pipe())
        (process.standardInput, process.standardOutput, process.standardError) = (input, output, output)
        try process.run()
        let lines = [x.map { "\($0)" }.joined(separator: " ")]
            + cases.map { "2 \($0.dy) \($0.dx) \($0.flip ? 1 : 0) \($0.degrees) \($0.scale) \($0.brightness) \($0.contrast)" }
        input.fileHandleForWriting.write(Data(lines.joined(separator: "\n").utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text)
        let answers = text.split(separator: "\n")
        XCTAssertEqual(answers.count, cases.count, text)
        for (c, answer) in zip(cases, answers) {
            var d = Augmentation.Draw()
            (d.flip, d.shiftY, d.shiftX, d.angle, d.scale, d.brightness, d.contrast) = (c.flip, c.dy, c.dx, c.degrees * .pi / 180, c.scale, c.brightness, c.contrast)
            let theirs = answer.split(separator: " ").compactMap { Float($0) }
            assertClose(applied(d, x, channels: 3, height: h, width: w), theirs, 2e-5, "torchvision: \(c)")
        }
    }

    // MARK: - Clips

    func testEveryFrameOfAClipGetsTheSameTransform() {
        let (c, t, h, w) = (2, 3, 5, 6)
        let clip = image(channels: c * t, height: h, width: w)   // [C, T, H, W]
        var d = Augmentation.Draw()
        (d.flip, d.shiftY, d.shiftX, d.angle, d.scale, d.brightness, d.contrast) = (true, 1, -1, 0.2, 0.9, 1.2, 0.8)
        let done = applied(d, clip, channels: c, frames: t, height: h, width: w)
        for frame in 0..<t {
            var alone = [Float](), got = [Float]()
            for ch in 0..<c {
                let at = (ch * t + frame) * h * w
                alone += clip[at..<(at + h * w)]
                got += done[at..<(at + h * w)]
            }
            assertClose(got, applied(d, alone, channels: c, height: h, width: w), 1e-6, "frame \(frame)")
        }
    }

    func testOffsetAndStrideTakeTheDocumentedFrames() {
        let (t, h, w) = (5, 2, 2)
        // Frame k holds the value k everywhere, so the output names the frames it took.
        let clip = (0..<t).flatMap { k in [Float](repeating: Float(k) / 10, count: h * w) }
        func frames(start: Int, stride: Int) -> [Int] {
            var d = Augmentation.Draw()
            (d.start, d.stride) = (start, stride)
            let out = applied(d, clip, frames: t, height: h, width: w)
            return (0..<t).map { Int((out[$0 * h * w] * 10).rounded()) }
        }
        XCTAssertEqual(frames(start: 0, stride: 1), [0, 1, 2, 3, 4])
        XCTAssertEqual(frames(start: 1, stride: 1), [1, 2, 3, 4, 4], "min(start + t·k, T−1): the last frame repeats")
        XCTAssertEqual(frames(start: 0, stride: 2), [0, 2, 4, 4, 4])
        XCTAssertEqual(frames(start: 1, stride: 2), [1, 3, 4, 4, 4])
        // The draws cover their ranges: start 0…F (⌊T/4⌋ when F is not given), stride 1…S.
        let both = try! Augmentation(parsing: "offset stride 3"), upTo3 = try! Augmentation(parsing: "offset 3")
        let draws = (0..<200).map { both.draw(seed: 1, step: 0, position: $0, frames: 16) }
        XCTAssertEqual(Set(draws.map(\.start)), Set(0...4))
        XCTAssertEqual(Set(draws.map(\.stride)), Set(1...3))
        XCTAssertEqual(Set((0..<200).map { upTo3.draw(seed: 1, step: 0, position: $0, frames: 16).start }), Set(0...3))
        XCTAssertEqual(both.draw(seed: 1, step: 0, position: 0, frames: 1).start, 0, "images have one frame")
        XCTAssertEqual(both.draw(seed: 1, step: 0, position: 0, frames: 1).resamplesTime, false)
    }

    // MARK: - Drawn from the seed

    func testDrawsDependOnSeedStepAndPositionAlone() throws {
        let a = try Augmentation(parsing: "flip crop 4 rotate 10 scale 0.1 brightness 0.2 contrast 0.2")
        func draws(seed: UInt64, step: Int, _ a: Augmentation) -> [Augmentation.Draw] {
            (0..<32).map { a.draw(seed: seed, step: step, position: $0, frames: 1) }
        }
        XCTAssertEqual(draws(seed: 1, step: 3, a), draws(seed: 1, step: 3, a))
        XCTAssertNotEqual(draws(seed: 1, step: 3, a), draws(seed: 2, step: 3, a))
        XCTAssertNotEqual(draws(seed: 1, step: 3, a), draws(seed: 1, step: 4, a))
        let flips = draws(seed: 1, step: 3, a).map(\.flip)
        XCTAssertTrue(flips.contains(true) && flips.contains(false))
        XCTAssertEqual(draws(seed: 1, step: 3, try Augmentation(parsing: "flip")).map(\.flip), flips,
                       "adding words leaves the other draws as they were")
        for d in draws(seed: 5, step: 0, a) {
            XCTAssertTrue((-4...4).contains(d.shiftY) && (-4...4).contains(d.shiftX))
            XCTAssertLessThanOrEqual(abs(d.angle), 10 * .pi / 180)
            XCTAssertTrue((0.9...1.1).contains(d.scale) && (0.8...1.2).contains(d.brightness) && (0.8...1.2).contains(d.contrast))
        }
    }

    /// A worker's slice [C, n, H, W] is augmented by minibatch position: two workers' halves get
    /// exactly what one worker's whole slice gets.
    func testTwoSlicesGetTheBitsOneSliceGets() throws {
        let a = try Augmentation(parsing: "flip crop 2 rotate 15 scale 0.1 brightness 0.3 contrast 0.3")
        let (c, n, h, w) = (3, 6, 5, 5)
        let batch = image(channels: c * n, height: h, width: w)   // [C, n, H, W]
        var whole = batch
        whole.withUnsafeMutableBufferPointer {
            a.apply(to: $0.baseAddress!, count: n, firstPosition: 0, step: 7, seed: 3, channels: c, frames: 1, height: h, width: w, pixels: nil)
        }
        XCTAssertNotEqual(whole, batch)
        var halves = [Float]()
        let plane = h * w
        for (first, count) in [(0, 4), (4, 2)] {
            var slice = [Float]()
            for ch in 0..<c {
                let start: Int = (ch * n + first) * plane
                slice += batch[start..<(start + count * plane)]
            }
            slice.withUnsafeMutableBufferPointer {
                a.apply(to: $0.baseAddress!, count: count, firstPosition: first, step: 7, seed: 3, channels: c, frames: 1, height: h, width: w, pixels: nil)
            }
            halves.append(contentsOf: slice)
        }
        // Back to [C, n, H, W] from the two slices' [C, 4, …] and [C, 2, …].
        var joined = [Float]()
        for ch in 0..<c {
            let first: Int = ch * 4 * plane, second: Int = c * 4 * plane + ch * 2 * plane
            joined += halves[first..<(first + 4 * plane)]
            joined += halves[second..<(second + 2 * plane)]
        }
        XCTAssertEqual(joined, whole)
    }

    // MARK: - In the trainer

    func makeTrainer(_ augment: String, threads: Int = 1, seed: UInt64 = 1, learningRate: Float = 3e-3) throws -> Trainer {
        var settings = Hyperparameters()
        settings.batchSize = 32
        settings.target = 2
        settings.threads = threads
        settings.seed = seed
        settings.learningRate = learningRate
        settings.augmentation = try Augmentation(parsing: augment)
        settings.shuffle = false   // the same order whatever the seed
        // No dropout: its masks are drawn per worker, augmentation's per sample.
        let model = try ModelSpec(parsing: "conv 3 8 relu | pool 2 | dense 4").compile(inputShape: [1, 8, 8], classes: 4, seed: 1)
        return try Trainer(model: model, dataset: quadrantDataset(train: 256, test: 64), settings: settings)
    }

    func trainLoss(_ trainer: Trainer) -> Double {
        var loss = -1.0
        trainer.train(epochs: 1) { if case .epochFinished(let m) = $0 { loss = m.trainLoss } }
        return loss
    }

    /// At a rate too small to move a weight, an epoch's loss is a function of its inputs: one
    /// thread and two see the same augmented inputs; another seed or no augmentation do not.
    func testOneThreadAndTwoTrainOnTheSameAugmentedInputs() throws {
        let words = "flip crop 2 rotate 20 brightness 0.3"
        let one = trainLoss(try makeTrainer(words, threads: 1, learningRate: 1e-30))
        let two = trainLoss(try makeTrainer(words, threads: 2, learningRate: 1e-30))
        XCTAssertEqual(one, two, accuracy: 1e-9 * one)
        XCTAssertNotEqual(trainLoss(try makeTrainer(words, seed: 2, learningRate: 1e-30)), one, accuracy: 1e-6 * one)
        XCTAssertNotEqual(trainLoss(try makeTrainer("off", learningRate: 1e-30)), one, accuracy: 1e-6 * one)
    }

    /// The draws follow the step count, which checkpoints keep: an epoch trained in two calls
    /// (as after a Ctrl-C, or a resume) sees the inputs one call sees.
    func testAnEpochInTwoCallsAugmentsAsOneCallDoes() throws {
        let words = "flip crop 2 rotate 10 scale 0.1 brightness 0.2 contrast 0.2"
        let whole = try makeTrainer(words), split = try makeTrainer(words)
        whole.train(epochs: 1) { _ in }
        split.train(.batches(3)) { _ in }
        split.train(epochs: 1) { _ in }
        XCTAssertEqual(split.stepsDone, whole.stepsDone)
        XCTAssertEqual(split.model.parameters.flatMap(\.value.data), whole.model.parameters.flatMap(\.value.data))
        let other = try makeTrainer("flip crop 2 rotate 10 scale 0.1 brightness 0.2 contrast 0.3")
        other.train(epochs: 1) { _ in }
        XCTAssertNotEqual(other.model.parameters.flatMap(\.value.data), whole.model.parameters.flatMap(\.value.data))
    }

    func testTrainingAugmentsButEvaluationDoesNot() throws {
        let trainer = try makeTrainer("flip crop 2 rotate 10 contrast 0.2")
        let before = trainer.model.parameters.flatMap(\.value.data)
        XCTAssertGreaterThan(trainLoss(trainer), 0)
        XCTAssertNotEqual(trainer.model.parameters.flatMap(\.value.data), before)
        let augmenting = trainer.evaluate(trainer.dataset.test)
        trainer.live.values.augmentation = .off
        let plain = trainer.evaluate(trainer.dataset.test)
        XCTAssertEqual(augmenting.loss, plain.loss)
        XCTAssertEqual(augmenting.predictions, plain.predictions)
        XCTAssertEqual(trainer.probabilities(trainer.dataset.test, indices: [3]), trainer.probabilities(trainer.dataset.test, indices: [3]))
    }

    func testNoFeatureCacheWhileAugmenting() throws {
        var settings = Hyperparameters()
        settings.batchSize = 32
        settings.target = 2
        settings.frozenModules = [0, 1, 2]
        settings.augmentation = try Augmentation(parsing: "flip")
        let model = try ModelSpec(parsing: FreezingTests.spec).compile(inputShape: [1, 8, 8], classes: 4, seed: 5)
        let trainer = try Trainer(model: model, dataset: quadrantDataset(train: 256, test: 64), settings: settings)
        XCTAssertNil(trainer.updateFeatureCache())
        trainer.train(epochs: 1) { _ in }
        XCTAssertNil(trainer.featureCacheModules, "inputs change every step: the frozen prefix runs each time")
        trainer.live.values.augmentation = .off
        XCTAssertNotNil(trainer.updateFeatureCache(), "off again: the cache is built")
        XCTAssertEqual(trainer.featureCacheModules, 0..<4)
        trainer.live.values.augmentation = try Augmentation(parsing: "crop 1")
        XCTAssertNil(trainer.featureCacheModules, "on again: dropped")
    }

    /// Clips through the trainer: [C, n, T, H, W] slices, the temporal words in force.
    func testClipsTrainWithTemporalAugmentation() throws {
        var random = Random(seed: 4)
        let (t, h, w) = (4, 6, 6)
        func split(_ count: Int) -> Split {
            Split(images: (0..<(count * t * h * w)).map { _ in random.nextFloat() }, labels: (0..<count).map { Int32($0 % 2) })
        }
        let clips = Dataset(name: "clips", train: split(16), test: split(8), height: h, width: w, channels: 1, frames: t,
                            classNames: ["a", "b"], source: "memory")
        var settings = Hyperparameters()
        settings.batchSize = 8
        settings.target = 2
        settings.augmentation = try Augmentation(parsing: "flip crop 1 offset stride 2")
        let model = try ModelSpec(parsing: "conv 3x3x3 4 relu | dense 2").compile(inputShape: [1, t, h, w], classes: 2, seed: 1)
        let trainer = try Trainer(model: model, dataset: clips, settings: settings)
        let loss = trainLoss(trainer)
        XCTAssertTrue(loss.isFinite && loss > 0)
        XCTAssertEqual(trainer.stepsDone, 2)
    }
}
