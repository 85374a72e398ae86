import CVideoDecode
import Foundation

/// How a picture of another shape is fitted to the model's height × width.
public enum Crop: String, Sendable, Codable, CaseIterable {
    /// Resized whole: a 16:9 frame going to a square is squashed.
    case none
    /// Its centre at the target's aspect is kept, then resized (`crop center`).
    case center
}

/// One sample decoded exactly as a loaded folder's samples are: the folder loaders decode each
/// file through these, and so does `predict FILE`, so a file is never decoded two ways.
extension DatasetCatalog {
    /// An image as height × width × channels Float32 values in [0, 1].
    public static func decodeImage(path: String, height: Int, width: Int, color: ImageColor, crop: Crop) throws -> [Float] {
        var image = try ImageDecoding.decode(file: path)
        if crop == .center { image = ImageDecoding.croppedToAspect(image, height: height, width: width) }
        // Gray first when going to gray: fewer channels to resize. Both steps are linear, so the order is free.
        if color == .gray { image = ImageDecoding.converted(image, to: .gray) }
        image = ImageDecoding.resized(image, height: height, width: width)
        return ImageDecoding.converted(image, to: color).pixels
    }

    /// A clip as frames × height × width × channels values, and the frames it holds (a shorter
    /// clip repeats its last frame). Written straight into `into` (the folder loaders' slots).
    static func decodeClip(path: String, frames: Int, height: Int, width: Int, channels: Int, crop: Crop,
                           into slot: UnsafeMutablePointer<Float>) -> (framesFound: Int, failure: String?) {
        var error = [CChar](repeating: 0, count: 256)
        var framesFound: Int32 = 0
        let ok = ollie_decode_clip(path, Int32(frames), Int32(height), Int32(width), Int32(channels), crop == .center ? 1 : 0,
                                   slot, &framesFound, &error, Int32(error.count))
        guard ok == 1 else { return (Int(framesFound), String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
        return (Int(framesFound), nil)
    }

    /// One clip decoded alone: frames × height × width × channels values, and the frames it holds.
    public static func decodeClip(path: String, frames: Int, height: Int, width: Int, color: ImageColor,
                                  crop: Crop = .none) throws -> (values: [Float], framesFound: Int) {
        var values = [Float](repeating: 0, count: frames * height * width * color.channels)
        let result = values.withUnsafeMutableBufferPointer { buffer in
            decodeClip(path: path, frames: frames, height: height, width: width, channels: color.channels, crop: crop,
                       into: buffer.baseAddress!)
        }
        if let failure = result.failure { throw VideoFolderError.badClip(path: path, reason: failure) }
        return (values, result.framesFound)
    }
}

/// What a single file holds, judged as the folder loaders judge it: an image by its first bytes
/// or its ending, a clip by its ending.
public enum SampleFileKind: Sendable, Equatable {
    case image, clip
}

extension DatasetCatalog {
    /// `.image` for a PNG/JPEG (or a file named like one), `.clip` for a video ending, nil otherwise.
    public static func sampleKind(ofFile path: String) -> SampleFileKind? {
        let ending = (path as NSString).pathExtension.lowercased()
        if videoExtensions.contains(ending) { return .clip }
        if ImageFolderScan.imageExtensions.contains(ending) { return .image }
        if let start = try? ImageDecoding.readFile(path, limit: 16).bytes, ImageFormat(magic: start) != nil { return .image }
        return nil
    }

    /// The endings a clip file may have, for messages: ".avi .m4v …".
    public static var clipEndings: String { videoExtensionList }
}
