import Foundation
import Datasets
import Tensor

/// Random changes to each training sample (`set augment …`), drawn from the seed: only training
/// steps see them (and `predict N augmented`, which shows one); evaluation, `accuracy`, `predict`
/// and the feature cache never do.
///
/// Images, as torchvision's transforms in this order: RandomCrop(size, padding: P) → horizontal
/// flip (p 0.5) → RandomAffine(±DEG, scale 1±S), one bilinear warp about the centre, fill black
/// → ColorJitter(brightness B, contrast C), brightness first, each factor uniform in [1−x, 1+x],
/// contrast about the mean grey of the frame, results clamped to [0, 1] pixels. A normalised
/// dataset (`load … normalize`) is augmented as pixels: black and the clamp are pixel values.
///
/// Clips [C, T, H, W]: one draw per clip, so every frame gets the same crop, flip, warp and colour
/// factors. The T stored frames are resampled in time: output frame t is stored frame
/// min(start + t·k, T−1), with `offset [F]` drawing start from 0…F (F defaults to ⌊T/4⌋) and
/// `stride S` drawing k from 1…S; the end of the clip repeats the last frame, as the loader does
/// for clips shorter than T. On images (T = 1) offset and stride do nothing.
public struct Augmentation: Equatable, Sendable, CustomStringConvertible {
    public var flip = false
    /// Zero padding on every side before a random crop back to size, in pixels (0: no crop).
    public var cropPadding = 0
    /// Largest rotation either way, in degrees (0: none).
    public var rotationDegrees: Float = 0
    /// Largest relative change of size: the scale factor is drawn from [1−S, 1+S] (0: none).
    public var scale: Float = 0
    public var brightness: Float = 0
    public var contrast: Float = 0
    /// Clips start up to this many frames late (nil: no offset; 0 is written `offset` and means ⌊T/4⌋).
    public var offsetFrames: Int?
    /// Largest temporal stride (1: every frame).
    public var temporalStride = 1

    public init() {}

    public static let off = Augmentation()
    public var isOn: Bool { self != .off }

    /// The words `set augment` takes, for did-you-mean.
    public static let words = ["flip", "crop", "rotate", "scale", "brightness", "contrast", "offset", "stride", "off"]

    /// The words that give it back, in a fixed order: `flip crop 4 rotate 10`, or `off`.
    public var text: String {
        var words: [String] = []
        func number(_ x: Float) -> String { x == x.rounded() ? String(Int(x)) : "\(x)" }
        if flip { words.append("flip") }
        if cropPadding > 0 { words += ["crop", String(cropPadding)] }
        if rotationDegrees > 0 { words += ["rotate", number(rotationDegrees)] }
        if scale > 0 { words += ["scale", number(scale)] }
        if brightness > 0 { words += ["brightness", number(brightness)] }
        if contrast > 0 { words += ["contrast", number(contrast)] }
        if let offsetFrames { words += offsetFrames > 0 ? ["offset", String(offsetFrames)] : ["offset"] }
        if temporalStride > 1 { words += ["stride", String(temporalStride)] }
        return words.isEmpty ? "off" : words.joined(separator: " ")
    }

    public var description: String { text }

    /// Reads `off` or words such as `flip crop 4 rotate 10 scale 0.1 brightness 0.2 contrast 0.2
    /// offset stride 2`, in any order, each at most once.
    public init(parsing text: String) throws {
        let words = text.lowercased().split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        if words == ["off"] || words == ["none"] { self = .off; return }
        guard !words.isEmpty else { throw AugmentationError("augment needs words, e.g. set augment flip crop 4, or off") }
        var seen = Set<String>(), i = 0
        func number(_ x: Float) -> String { x == x.rounded() ? String(Int(x)) : "\(x)" }
        func value(_ word: String, _ example: String) throws -> String {
            guard i + 1 < words.count, Float(words[i + 1]) != nil else {
                throw AugmentationError("augment \(word) needs a number, e.g. set augment \(word) \(example)")
            }
            i += 1
            return words[i]
        }
        func float(_ word: String, _ example: String, above low: Float, atMost high: Float, _ meaning: String) throws -> Float {
            let text = try value(word, example)
            guard let x = Float(text), x > low, x <= high else {
                throw AugmentationError("augment \(word) takes \(meaning) > \(Int(low)) and ≤ \(number(high)), e.g. \(word) \(example) (got \(text))")
            }
            return x
        }
        func int(_ word: String, _ example: String, _ range: ClosedRange<Int>, _ meaning: String) throws -> Int {
            let text = try value(word, example)
            guard let n = Int(text), range.contains(n) else {
                throw AugmentationError("augment \(word) takes \(meaning) from \(range.lowerBound) to \(range.upperBound), e.g. \(word) \(example) (got \(text))")
            }
            return n
        }
        var result = Augmentation()
        while i < words.count {
            let word = words[i]
            guard Augmentation.words.contains(word), word != "off" else {
                if word == "off" { throw AugmentationError("augment off stands alone: set augment off") }
                throw AugmentationError("unknown augmentation '\(word)'", unknownWord: word)
            }
            guard seen.insert(word).inserted else { throw AugmentationError("augment \(word) is given twice; give it once") }
            switch word {
            case "flip": result.flip = true
            case "crop": result.cropPadding = try int(word, "4", 1...64, "the padding in pixels")
            case "rotate": result.rotationDegrees = try float(word, "10", above: 0, atMost: 180, "the largest angle in degrees")
            case "scale": result.scale = try float(word, "0.1", above: 0, atMost: 0.9, "the largest change of size")
            case "brightness": result.brightness = try float(word, "0.2", above: 0, atMost: 1, "the largest change")
            case "contrast": result.contrast = try float(word, "0.2", above: 0, atMost: 1, "the largest change")
            case "offset":
                // The number is optional: `offset stride 2` draws up to ⌊T/4⌋ frames late.
                if i + 1 < words.count, Float(words[i + 1]) != nil {
                    result.offsetFrames = try int(word, "4", 1...1024, "the most frames a clip starts late")
                } else {
                    result.offsetFrames = 0
                }
            case "stride": result.temporalStride = try int(word, "2", 2...16, "the largest stride in frames")
            default: break
            }
            i += 1
        }
        self = result
    }

    /// One sample's random choices.
    public struct Draw: Equatable, Sendable {
        public var flip = false
        /// Output pixel (y, x) shows padded-and-cropped input pixel (y + shiftY, x + shiftX).
        public var shiftY = 0, shiftX = 0
        /// Counter-clockwise as drawn, in radians; scale > 1 enlarges.
        public var angle: Float = 0, scale: Float = 1
        public var brightness: Float = 1, contrast: Float = 1
        /// Output frame t is stored frame min(start + t·stride, T−1).
        public var start = 0, stride = 1
        public init() {}

        var warps: Bool { angle != 0 || scale != 1 }
        var movesPixels: Bool { flip || shiftY != 0 || shiftX != 0 || warps }
        var resamplesTime: Bool { start != 0 || stride != 1 }
        var changesColour: Bool { brightness != 1 || contrast != 1 }
    }

    /// The choices for the sample at `position` of step `step`'s minibatch: a function of
    /// (seed, step, position) only, so one or two threads (or ranks) draw the same. Every
    /// value is drawn whether used or not, so adding a word leaves the others' draws unchanged.
    public func draw(seed: UInt64, step: Int, position: Int, frames: Int) -> Draw {
        var random = Random(seed: seed ^ 0x6175_676D_656E_74,   // "augment"
                            stream: UInt64(truncatingIfNeeded: step) << 24 ^ UInt64(truncatingIfNeeded: position))
        var d = Draw()
        let flipped = random.nextFloat() < 0.5
        let p = cropPadding
        let dy = Int(random.next() % UInt64(2 * p + 1)) - p, dx = Int(random.next() % UInt64(2 * p + 1)) - p
        let angle = random.uniform(-rotationDegrees, rotationDegrees) * .pi / 180
        let scale = random.uniform(1 - self.scale, 1 + self.scale)
        let brightness = random.uniform(1 - self.brightness, 1 + self.brightness)
        let contrast = random.uniform(1 - self.contrast, 1 + self.contrast)
        let latest = offsetFrames.map { $0 > 0 ? $0 : frames / 4 } ?? 0
        let start = Int(random.next() % UInt64(latest + 1))
        let stride = 1 + Int(random.next() % UInt64(temporalStride))
        if flip { d.flip = flipped }
        (d.shiftY, d.shiftX) = (dy, dx)
        if rotationDegrees > 0 { d.angle = angle }
        if self.scale > 0 { d.scale = scale }
        if self.brightness > 0 { d.brightness = brightness }
        if self.contrast > 0 { d.contrast = contrast }
        if frames > 1 { (d.start, d.stride) = (min(start, frames - 1), stride) }
        return d
    }

    /// Augments `count` samples of a worker's slice in place: x is [C, count, T, H, W] (T = 1 for
    /// images), the samples at minibatch positions first, first+1, … of step `step`.
    /// `pixels`: the normalisation the values carry (nil: they are pixels in [0, 1]).
    /// One scratch per call, reused for every sample: nothing is allocated per sample.
    public func apply(to x: UnsafeMutablePointer<Float>, count: Int, firstPosition: Int, step: Int, seed: UInt64,
                      channels: Int, frames: Int, height: Int, width: Int, pixels: Normalization?) {
        guard isOn, count > 0 else { return }
        let perChannel = frames * height * width
        let scratch = AugmentationScratch(frames: frames, height: height, width: width)
        for i in 0..<count {
            let d = draw(seed: seed, step: step, position: firstPosition + i, frames: frames)
            Augmentation.apply(d, to: x + i * perChannel, channelStride: count * perChannel, channels: channels,
                               frames: frames, height: height, width: width, pixels: pixels, scratch: scratch)
        }
    }

    /// Applies one draw in place to one sample whose channel c holds T×H×W values at
    /// `sample + c·channelStride`.
    public static func apply(_ d: Draw, to sample: UnsafeMutablePointer<Float>, channelStride: Int, channels: Int,
                             frames: Int, height: Int, width: Int, pixels: Normalization?, scratch: AugmentationScratch) {
        precondition(scratch.fits(frames: frames, height: height, width: width), "augmentation scratch of another size")
        let plane = height * width
        func mean(_ c: Int) -> Float { pixels.map { $0.mean.count == 1 ? $0.mean[0] : $0.mean[c] } ?? 0 }
        func std(_ c: Int) -> Float { pixels.map { $0.std.count == 1 ? $0.std[0] : $0.std[c] } ?? 1 }
        if d.movesPixels || d.resamplesTime {
            // One map for every channel and frame: the warp's cost is paid once a sample.
            if d.movesPixels { planMap(d, height: height, width: width, scratch) }
            for c in 0..<channels {
                let channel = sample + c * channelStride
                scratch.frames.update(from: channel, count: frames * plane)
                let black = -mean(c) / std(c)   // pixel 0 as a value
                for t in 0..<frames {
                    let source = scratch.frames + min(d.start + t * d.stride, frames - 1) * plane
                    let output = channel + t * plane
                    if d.movesPixels {
                        resample(from: source, to: output, count: plane, fill: black, scratch)
                    } else {
                        output.update(from: source, count: plane)
                    }
                }
            }
        }
        guard d.changesColour else { return }
        // torchvision's grey: ITU-R 601 weights for RGB, the channel mean otherwise.
        func weight(_ c: Int) -> Float { channels == 3 ? (c == 0 ? 0.2989 : c == 1 ? 0.587 : 0.114) : 1 / Float(channels) }
        for t in 0..<frames {
            // Brightness in place (as pixels, clamped), summing the grey for contrast's mean.
            var grey: Float = 0
            for c in 0..<channels {
                let (m, s, w) = (mean(c), std(c), weight(c))
                let values = sample + c * channelStride + t * plane
                var sum: Float = 0
                for p in 0..<plane {
                    let pixel = min(max((values[p] * s + m) * d.brightness, 0), 1)
                    values[p] = pixel
                    sum += pixel
                }
                grey += w * sum
            }
            grey /= Float(plane)
            let keep = d.contrast, blend = (1 - d.contrast) * grey
            for c in 0..<channels {
                let (m, s) = (mean(c), 1 / std(c))
                let values = sample + c * channelStride + t * plane
                for p in 0..<plane { values[p] = (min(max(keep * values[p] + blend, 0), 1) - m) * s }
            }
        }
    }

    /// Crop, flip and warp as a map from each output pixel to four source taps and their bilinear
    /// weights: output (y, x) samples the cropped-and-flipped image at the centre-relative point
    /// R(−angle)·(x − cx, y − cy)/scale. A tap outside the cropped frame or outside the source
    /// image (the padding) reads the fill: its weight goes to `fillWeight` and it points at 0.
    static func planMap(_ d: Draw, height: Int, width: Int, _ scratch: AugmentationScratch) {
        let (taps, weights) = (scratch.taps, scratch.weights)
        // Source index of cropped-frame pixel (ty, tx), or -1 for the fill.
        let (flip, shiftY, shiftX) = (d.flip, d.shiftY, d.shiftX)
        @inline(__always) func source(_ ty: Int, _ tx: Int) -> Int {
            if ty < 0 || ty >= height || tx < 0 || tx >= width { return -1 }   // outside the crop
            let sy = ty + shiftY, sx = (flip ? width - 1 - tx : tx) + shiftX
            if sy < 0 || sy >= height || sx < 0 || sx >= width { return -1 }   // the padding
            return sy * width + sx
        }
        if !d.warps {
            for y in 0..<height {
                for x in 0..<width {
                    let p = y * width + x, index = source(y, x)
                    (taps + 4 * p).update(repeating: 0, count: 4)
                    (weights + 5 * p).update(repeating: 0, count: 5)
                    if index < 0 { weights[5 * p + 4] = 1 } else { taps[4 * p] = Int32(index); weights[5 * p] = 1 }
                }
            }
            return
        }
        let (cy, cx) = (Float(height - 1) / 2, Float(width - 1) / 2)
        let (cosine, sine) = (cos(d.angle) / d.scale, sin(d.angle) / d.scale)
        for y in 0..<height {
            let v = Float(y) - cy
            // The source point moves by (cosine, sine) per output column.
            var sx = -cosine * cx - sine * v + cx, sy = -sine * cx + cosine * v + cy
            for x in 0..<width {
                let p = y * width + x
                defer { sx += cosine; sy += sine }
                // No tap inside (a large rotation's corners): all fill, and no Int overflow.
                guard sx > -1, sy > -1, sx < Float(width), sy < Float(height) else {
                    (taps + 4 * p).update(repeating: 0, count: 4)
                    (weights + 5 * p).update(repeating: 0, count: 4)
                    weights[5 * p + 4] = 1
                    continue
                }
                let (x0, y0) = (Int(sx + 1) - 1, Int(sy + 1) - 1)   // floor, for values > −1
                let (ax, ay) = (sx - Float(x0), sy - Float(y0))
                let indices = (source(y0, x0), source(y0, x0 + 1), source(y0 + 1, x0), source(y0 + 1, x0 + 1))
                let tapWeights = ((1 - ay) * (1 - ax), (1 - ay) * ax, ay * (1 - ax), ay * ax)
                var fill: Float = 0
                @inline(__always) func put(_ k: Int, _ index: Int, _ weight: Float) {
                    taps[4 * p + k] = index < 0 ? 0 : Int32(index)
                    weights[5 * p + k] = index < 0 ? 0 : weight
                    if index < 0 { fill += weight }
                }
                put(0, indices.0, tapWeights.0)
                put(1, indices.1, tapWeights.1)
                put(2, indices.2, tapWeights.2)
                put(3, indices.3, tapWeights.3)
                weights[5 * p + 4] = fill
            }
        }
    }

    /// One plane through the planned map.
    static func resample(from source: UnsafePointer<Float>, to output: UnsafeMutablePointer<Float>, count: Int,
                         fill: Float, _ scratch: AugmentationScratch) {
        let (taps, weights) = (scratch.taps, scratch.weights)
        for p in 0..<count {
            let t = taps + 4 * p, w = weights + 5 * p
            output[p] = w[0] * source[Int(t[0])] + w[1] * source[Int(t[1])] + w[2] * source[Int(t[2])]
                + w[3] * source[Int(t[3])] + w[4] * fill
        }
    }
}

/// What augmenting one sample needs beside it, allocated once and reused for every sample of a
/// slice: one channel's T×H×W values, and the warp's map (4 taps and 5 weights a pixel).
public final class AugmentationScratch {
    let frames: UnsafeMutablePointer<Float>
    let taps: UnsafeMutablePointer<Int32>
    let weights: UnsafeMutablePointer<Float>
    let shape: (frames: Int, height: Int, width: Int)

    public init(frames: Int, height: Int, width: Int) {
        let plane = height * width
        shape = (frames, height, width)
        self.frames = .allocate(capacity: max(1, frames * plane))
        taps = .allocate(capacity: max(1, 4 * plane))
        weights = .allocate(capacity: max(1, 5 * plane))
    }

    func fits(frames: Int, height: Int, width: Int) -> Bool { shape == (frames, height, width) }

    deinit {
        frames.deallocate()
        taps.deallocate()
        weights.deallocate()
    }
}

/// A bad `set augment` value: one line saying what to write.
public struct AugmentationError: Error, CustomStringConvertible {
    public let description: String
    /// The word that is no augmentation, for a did-you-mean.
    public let unknownWord: String?
    init(_ message: String, unknownWord: String? = nil) {
        description = message
        self.unknownWord = unknownWord
    }
}
