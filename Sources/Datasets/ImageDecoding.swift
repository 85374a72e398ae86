import CImageDecode
import CPNG
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many channels the images handed to a model have: 1 (gray) or 3 (red, green, blue).
public enum ImageColor: String, Sendable, CaseIterable, Codable {
    case gray, rgb
    public var channels: Int { self == .gray ? 1 : 3 }
}

/// The two formats decoded, recognised by their first bytes (never by the file name).
public enum ImageFormat: String, Sendable {
    case png = "PNG", jpeg = "JPEG"

    /// PNG starts with 89 'P' 'N' 'G' \r \n 1a \n; JPEG with the SOI marker ff d8 and another marker.
    public init?(magic bytes: [UInt8]) {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else {
            return nil
        }
    }
}

/// What a file's header says, read before any pixel is decoded.
public struct ImageHeader: Sendable, Equatable {
    public let format: ImageFormat
    public let width: Int, height: Int
    /// The channels it decodes to: 1 for a gray file, 3 for anything in color (palette, CMYK too).
    public let channels: Int
}

/// Pixels as Float32 in [0, 1], height × width × channels, row after row (the layout of `Split`).
public struct DecodedImage: Sendable, Equatable {
    public let height: Int, width: Int, channels: Int
    public let pixels: [Float]

    public init(height: Int, width: Int, channels: Int, pixels: [Float]) {
        precondition(pixels.count == height * width * channels, "pixels must be height × width × channels")
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
    }
}

/// A file that could not become pixels. Each case prints as one line naming the file and what
/// to do about it.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case empty(path: String)
    /// Neither PNG nor JPEG; `kind` is what the first bytes look like ("a GIF", "text"), or their hex.
    case notAnImage(path: String, kind: String)
    /// libpng or libjpeg gave up: damaged or truncated data.
    case corrupt(path: String, format: ImageFormat, reason: String)
    /// A header claiming more than `ImageDecoding.maximumSide` or `maximumPixels`: refused before decoding.
    case tooLarge(path: String, width: Int, height: Int)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason); check the path and its permissions"
        case let .empty(path):
            return "\(path) is empty (0 bytes); copy the image again or delete the file"
        case let .notAnImage(path, kind):
            return "\(path) is not a PNG or JPEG file (\(kind)); convert it to PNG or JPEG, or delete it"
        case let .corrupt(path, format, reason):
            return "\(path) is a damaged \(format.rawValue) file (\(reason)); copy it again, re-save it, or delete it"
        case let .tooLarge(path, width, height):
            return "\(path) claims to be \(height)×\(width) pixels, over the limit of \(ImageDecoding.maximumSide) per side "
                + "and \(ImageDecoding.maximumPixels >> 20) M pixels (a damaged header or a decompression bomb); "
                + "shrink it with an image editor or delete it"
        }
    }
}

/// PNG and JPEG to Float32 pixels with the reference C libraries: libpng's simplified API (which
/// expands 1–16-bit gray, gray+alpha, palette, RGB and RGBA) and libjpeg (baseline, progressive,
/// gray, CMYK/YCCK). Alpha is dropped, as PIL's `convert("RGB")` and torchvision do. 16-bit PNGs
/// keep their full precision (value / 65535). EXIF orientation is not applied (neither does PIL).
public enum ImageDecoding {
    /// Larger sides or pixel counts are refused from the header: a 100-byte file can claim gigabytes.
    public static let maximumSide = 16384
    public static let maximumPixels = 64 << 20

    // MARK: - Files

    /// Reads a file and decodes it to its own channel count (1 for gray files, else 3).
    public static func decode(file path: String) throws -> DecodedImage {
        try decode(try readFile(path).bytes, path: path)
    }

    /// Reads at most `limit` bytes (all when nil); `size` is the whole file's.
    static func readFile(_ path: String, limit: Int? = nil) throws -> (bytes: [UInt8], size: Int) {
        try FileBytes.read(path, limit: limit) { ImageError.unreadable(path: $0, reason: $1) }
    }

    // MARK: - Bytes

    /// The header of a PNG or JPEG held in `bytes` (the start of a file is enough unless large
    /// metadata comes first); `path` only names the file in errors. Refuses absurd sizes.
    public static func header(_ bytes: [UInt8], path: String) throws -> ImageHeader {
        let header: ImageHeader
        switch try format(bytes, path: path) {
        case .png: header = try PNG.header(bytes, path: path)
        case .jpeg: header = try JPEG.header(bytes, path: path)
        }
        try checkSize(header, path: path)
        return header
    }

    /// Decodes a whole PNG or JPEG file's bytes to its own channel count (1 for gray files, else 3).
    public static func decode(_ bytes: [UInt8], path: String) throws -> DecodedImage {
        switch try format(bytes, path: path) {
        case .png: return try PNG.decode(bytes, path: path)
        case .jpeg: return try JPEG.decode(bytes, path: path)
        }
    }

    static func format(_ bytes: [UInt8], path: String) throws -> ImageFormat {
        if bytes.isEmpty { throw ImageError.empty(path: path) }
        guard let format = ImageFormat(magic: bytes) else {
            throw ImageError.notAnImage(path: path, kind: describe(bytes))
        }
        return format
    }

    static func checkSize(_ header: ImageHeader, path: String) throws {
        guard header.width <= maximumSide, header.height <= maximumSide,
              header.width * header.height <= maximumPixels else {
            throw ImageError.tooLarge(path: path, width: header.width, height: header.height)
        }
    }

    /// What the first bytes of a file that is not PNG or JPEG look like, for the error message.
    static func describe(_ bytes: [UInt8]) -> String {
        func starts(_ pattern: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + pattern.count && Array(bytes[offset..<offset + pattern.count]) == pattern
        }
        func starts(_ text: String, at offset: Int = 0) -> Bool { starts(Array(text.utf8), at: offset) }
        if starts("GIF8") { return "it is a GIF" }
        if starts("BM") { return "it is a BMP" }
        if starts("RIFF") && starts("WEBP", at: 8) { return "it is a WebP" }
        if starts("II*\u{0}") || starts("MM\u{0}*") { return "it is a TIFF" }
        if starts([0, 0, 1, 0]) { return "it is a Windows icon (ICO)" }
        if starts("ftyp", at: 4) { return "it is HEIC/AVIF or a video" }
        if starts("<") || starts([0xEF, 0xBB, 0xBF, 0x3C]) { return "it is HTML or XML text, perhaps a failed download" }
        if starts([0x1F, 0x8B]) || starts("PK") { return "it is a compressed archive" }
        if bytes.prefix(64).allSatisfy({ $0 == 9 || $0 == 10 || $0 == 13 || (32..<127).contains($0) }) { return "it is text" }
        let hex = bytes.prefix(4).map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }
        return "it starts with " + hex.joined(separator: " ")
    }

    // MARK: - Pixels

    /// 1 → 3 channels by copying gray; 3 → 1 by ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B), as PIL's "L".
    public static func converted(_ image: DecodedImage, to color: ImageColor) -> DecodedImage {
        let pixelCount = image.height * image.width
        switch (image.channels, color.channels) {
        case (1, 3):
            let rgb = [Float](unsafeUninitializedCapacity: pixelCount * 3) { out, count in
                image.pixels.withUnsafeBufferPointer { gray in
                    for i in 0..<pixelCount {
                        out[3 * i] = gray[i]; out[3 * i + 1] = gray[i]; out[3 * i + 2] = gray[i]
                    }
                }
                count = pixelCount * 3
            }
            return DecodedImage(height: image.height, width: image.width, channels: 3, pixels: rgb)
        case (3, 1):
            let gray = [Float](unsafeUninitializedCapacity: pixelCount) { out, count in
                image.pixels.withUnsafeBufferPointer { rgb in
                    for i in 0..<pixelCount {
                        out[i] = min(1, 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2])
                    }
                }
                count = pixelCount
            }
            return DecodedImage(height: image.height, width: image.width, channels: 1, pixels: gray)
        default:
            return image
        }
    }

    /// The centre of `image` at the aspect of height × width (the full height or the full width
    /// kept), so a resize after it does not squash: a 16:9 frame going to a square loses its sides.
    public static func croppedToAspect(_ image: DecodedImage, height: Int, width: Int) -> DecodedImage {
        let (rows, columns) = centerWindow(height: image.height, width: image.width, aspectHeight: height, aspectWidth: width)
        if rows.count == image.height && columns.count == image.width { return image }
        let c = image.channels
        var pixels: [Float] = []
        pixels.reserveCapacity(rows.count * columns.count * c)
        for y in rows {
            let start = (y * image.width + columns.lowerBound) * c
            pixels += image.pixels[start..<(start + columns.count * c)]
        }
        return DecodedImage(height: rows.count, width: columns.count, channels: c, pixels: pixels)
    }

    /// The rows and columns of a height × width picture that make its centred window of the
    /// aspect aspectHeight : aspectWidth (at least one pixel each way).
    public static func centerWindow(height: Int, width: Int, aspectHeight: Int, aspectWidth: Int) -> (rows: Range<Int>, columns: Range<Int>) {
        if width * aspectHeight > height * aspectWidth {   // too wide: keep the full height
            let kept = max(1, min(width, Int((Double(height * aspectWidth) / Double(aspectHeight)).rounded())))
            let left = (width - kept) / 2
            return (0..<height, left..<(left + kept))
        }
        let kept = max(1, min(height, Int((Double(width * aspectHeight) / Double(aspectWidth)).rounded())))
        let top = (height - kept) / 2
        return (top..<(top + kept), 0..<width)
    }

    /// To height × width, each axis on its own, each channel on its own: an axis that shrinks
    /// averages the input area each output pixel covers (no aliasing, exact for whole ratios);
    /// an axis that grows interpolates linearly between pixel centres (clamped at the edges, so
    /// corners keep their values).
    public static func resized(_ image: DecodedImage, height: Int, width: Int) -> DecodedImage {
        precondition(height > 0 && width > 0, "resize to a positive size")
        if image.height == height && image.width == width { return image }
        let channels = image.channels
        let across = AxisWeights(from: image.width, to: width)
        let down = AxisWeights(from: image.height, to: height)
        // Rows first: (inHeight, inWidth, C) → (inHeight, width, C) → (height, width, C).
        var rows = [Float](repeating: 0, count: image.height * width * channels)
        image.pixels.withUnsafeBufferPointer { input in
            rows.withUnsafeMutableBufferPointer { output in
                for y in 0..<image.height {
                    across.apply(input.baseAddress! + y * image.width * channels, step: channels,
                                 into: output.baseAddress! + y * width * channels, outputStep: channels, channels: channels)
                }
            }
        }
        var result = [Float](repeating: 0, count: height * width * channels)
        rows.withUnsafeBufferPointer { input in
            result.withUnsafeMutableBufferPointer { output in
                let rowLength = width * channels
                // Down a column of "pixels" that are whole rows: each output row mixes whole input rows.
                down.apply(input.baseAddress!, step: rowLength, into: output.baseAddress!, outputStep: rowLength,
                           channels: rowLength)
            }
        }
        return DecodedImage(height: height, width: width, channels: channels, pixels: result)
    }
}

/// For each output index along one axis, the input indices it mixes (a contiguous run) and their weights.
struct AxisWeights {
    var first: [Int] = []
    var offsets: [Int] = [0]  // weights of output i are weights[offsets[i]..<offsets[i + 1]]
    var weights: [Float] = []

    init(from inputCount: Int, to outputCount: Int) {
        let scale = Double(inputCount) / Double(outputCount)
        for o in 0..<outputCount {
            var taps: [(Int, Double)] = []
            if outputCount < inputCount {
                // Area: output o covers [o·scale, (o+1)·scale) of the input.
                let start = Double(o) * scale, end = Double(o + 1) * scale
                var j = Int(start.rounded(.down))
                while j < inputCount && Double(j) < end {
                    let overlap = min(Double(j + 1), end) - max(Double(j), start)
                    if overlap > 1e-9 { taps.append((j, overlap)) }
                    j += 1
                }
            } else {
                // Linear between centres: output o's centre sits at input coordinate (o + ½)·scale − ½.
                let position = min(max((Double(o) + 0.5) * scale - 0.5, 0), Double(inputCount - 1))
                let j = Int(position.rounded(.down)), fraction = position - Double(j)
                taps.append((j, 1 - fraction))
                if fraction > 0 && j + 1 < inputCount { taps.append((j + 1, fraction)) }
            }
            let total = taps.reduce(0) { $0 + $1.1 }
            first.append(taps[0].0)
            weights += taps.map { Float($0.1 / total) }
            offsets.append(weights.count)
        }
    }

    /// output[i·outputStep + c] = Σₖ w[i][k] · input[(first[i] + k)·step + c], for c in 0..<channels.
    func apply(_ input: UnsafePointer<Float>, step: Int, into output: UnsafeMutablePointer<Float>, outputStep: Int,
               channels: Int) {
        weights.withUnsafeBufferPointer { w in
            for i in 0..<first.count {
                let target = output + i * outputStep
                let source = input + first[i] * step
                let firstWeight = w[offsets[i]]
                for c in 0..<channels { target[c] = firstWeight * source[c] }
                var k = 1
                while offsets[i] + k < offsets[i + 1] {
                    let weight = w[offsets[i] + k], row = source + k * step
                    for c in 0..<channels { target[c] += weight * row[c] }
                    k += 1
                }
            }
        }
    }
}

/// byte / 255 for every byte, exactly as the division rounds (255 → 1.0).
private let byteToUnit: [Float] = (0..<256).map { Float($0) / 255 }

// MARK: - PNG

/// libpng's simplified API: it expands low bit depths and palettes itself and never calls exit().
private enum PNG {
    static func header(_ bytes: [UInt8], path: String) throws -> ImageHeader {
        var image = try begin(bytes, path: path)
        defer { png_image_free(&image) }
        return header(of: image)
    }

    static func header(of image: png_image) -> ImageHeader {
        ImageHeader(format: .png, width: Int(image.width), height: Int(image.height),
                    channels: image.format & PNG_FORMAT_FLAG_COLOR != 0 ? 3 : 1)
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> DecodedImage {
        try bytes.withUnsafeBytes { raw in
            var image = png_image()
            image.version = png_uint_32(PNG_IMAGE_VERSION)
            guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
                throw failure(image, path: path)
            }
            defer { png_image_free(&image) }
            let header = header(of: image)
            try ImageDecoding.checkSize(header, path: path)
            let file = image.format
            let hasAlpha = file & PNG_FORMAT_FLAG_ALPHA != 0
            let sixteenBit = file & PNG_FORMAT_FLAG_LINEAR != 0
            // The file's own layout minus the palette: no conversion but the expansion.
            image.format = file & (PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA | PNG_FORMAT_FLAG_LINEAR)
            let channels = header.channels, stored = channels + (hasAlpha ? 1 : 0)
            let pixelCount = header.width * header.height
            var pixels = [Float](repeating: 0, count: pixelCount * channels)
            if sixteenBit {
                // 16-bit data is read as linear (libpng's default for 16-bit files), so values pass
                // through unchanged; with alpha, libpng premultiplies them and they are divided back.
                var samples = [UInt16](repeating: 0, count: pixelCount * stored)
                guard png_image_finish_read(&image, nil, &samples, 0, nil) != 0 else { throw failure(image, path: path) }
                for p in 0..<pixelCount {
                    let alpha = hasAlpha ? Float(samples[p * stored + channels]) : 65535
                    for c in 0..<channels {
                        let value = Float(samples[p * stored + c])
                        pixels[p * channels + c] = hasAlpha ? (alpha > 0 ? min(1, value / alpha) : 0) : value / 65535
                    }
                }
            } else {
                var samples = [UInt8](repeating: 0, count: pixelCount * stored)
                guard png_image_finish_read(&image, nil, &samples, 0, nil) != 0 else { throw failure(image, path: path) }
                for p in 0..<pixelCount {
                    for c in 0..<channels { pixels[p * channels + c] = byteToUnit[Int(samples[p * stored + c])] }
                }
            }
            return DecodedImage(height: header.height, width: header.width, channels: channels, pixels: pixels)
        }
    }

    private static func begin(_ bytes: [UInt8], path: String) throws -> png_image {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        let started = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard started != 0 else { throw failure(image, path: path) }
        return image
    }

    /// libpng's message (e.g. "IDAT: CRC error", "read beyond end of data") as a corrupt-file error.
    private static func failure(_ image: png_image, path: String) -> ImageError {
        var message = image.message
        let text = withUnsafeBytes(of: &message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let reason = text.isEmpty ? "libpng error \(image.warning_or_error)" : text
        return .corrupt(path: path, format: .png, reason: reason == "read beyond end of data" ? "the file ends early (truncated)" : reason)
    }
}

// MARK: - JPEG

/// libjpeg through CImageDecode, whose error handler returns a message instead of exiting.
private enum JPEG {
    static func header(_ bytes: [UInt8], path: String) throws -> ImageHeader {
        try bytes.withUnsafeBufferPointer { data in
            var info = ollie_jpeg_info()
            let jpeg = try begin(data, &info, path: path)
            ollie_jpeg_end(jpeg)
            return header(info)
        }
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> DecodedImage {
        try bytes.withUnsafeBufferPointer { data in
            var info = ollie_jpeg_info()
            let jpeg = try begin(data, &info, path: path)
            defer { ollie_jpeg_end(jpeg) }
            let header = header(info)
            try ImageDecoding.checkSize(header, path: path)
            let count = header.width * header.height * header.channels
            var samples = [UInt8](repeating: 0, count: count)
            var message = [CChar](repeating: 0, count: Int(OLLIE_IMAGE_MESSAGE_SIZE))
            guard ollie_jpeg_finish(jpeg, &samples, &message) != 0 else {
                throw ImageError.corrupt(path: path, format: .jpeg, reason: text(message))
            }
            let pixels = [Float](unsafeUninitializedCapacity: count) { out, written in
                for i in 0..<count { out[i] = byteToUnit[Int(samples[i])] }
                written = count
            }
            return DecodedImage(height: header.height, width: header.width, channels: header.channels, pixels: pixels)
        }
    }

    private static func begin(_ data: UnsafeBufferPointer<UInt8>, _ info: inout ollie_jpeg_info,
                              path: String) throws -> OpaquePointer {
        var message = [CChar](repeating: 0, count: Int(OLLIE_IMAGE_MESSAGE_SIZE))
        guard let jpeg = ollie_jpeg_begin(data.baseAddress, data.count, &info, &message) else {
            throw ImageError.corrupt(path: path, format: .jpeg, reason: text(message))
        }
        return jpeg
    }

    private static func header(_ info: ollie_jpeg_info) -> ImageHeader {
        ImageHeader(format: .jpeg, width: Int(info.width), height: Int(info.height), channels: Int(info.channels))
    }

    private static func text(_ message: [CChar]) -> String {
        let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return bytes.isEmpty ? "libjpeg failed" : String(decoding: bytes, as: UTF8.self)
    }
}
