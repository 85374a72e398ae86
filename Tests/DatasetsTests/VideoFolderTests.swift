import Foundation
import XCTest
@testable import Datasets

/// `load videos DIR`: every clip here is made by the test with the `ffmpeg` command-line tool
/// from frames whose pixel values are known.
final class VideoFolderTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "ollie-videos-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    // MARK: - One clip

    func testEveryCodecDecodesKnownGrayLevelsSampledEvenly() throws {
        let raw = try grayFrames(levels: (0..<12).map { UInt8($0 * 20) })
        var missing: [String] = []
        for (encoder, file) in [("libx264", "h264.mp4"), ("mjpeg", "mjpeg.avi"), ("libvpx-vp9", "vp9.webm"), ("libx265", "hevc.mkv")] {
            guard try Self.hasEncoder(encoder) else { missing.append(encoder); continue }
            let path = try encode(raw, encoder: encoder, to: file)
            let header = try DatasetCatalog.probeClip(path: path)
            XCTAssertEqual([header.height, header.width, header.rotation], [48, 64, 0], file)

            // T equal to the clip's length: every frame once, in order.
            let all = try DatasetCatalog.decodeClip(path: path, frames: 12, height: 48, width: 64, color: .gray)
            XCTAssertEqual(all.framesFound, 12, file)
            XCTAssertEqual(all.values.count, 12 * 48 * 64)
            assertLevels(all.values, frames: 12, equal: (0..<12).map { Double($0 * 20) }, file)

            // Fewer: evenly spaced, the frame on screen at (k + ½)/T of the duration → frames 1, 4, 7, 10.
            let four = try DatasetCatalog.decodeClip(path: path, frames: 4, height: 48, width: 64, color: .gray)
            assertLevels(four.values, frames: 4, equal: [20, 80, 140, 200], file)

            // More than the clip holds: the last frame repeats.
            let long = try DatasetCatalog.decodeClip(path: path, frames: 16, height: 24, width: 32, color: .rgb)
            XCTAssertEqual(long.framesFound, 12, file)
            XCTAssertEqual(long.values.count, 16 * 24 * 32 * 3)
            assertLevels(long.values, frames: 16, equal: (0..<16).map { Double(min($0, 11) * 20) }, tolerance: 5, file)
        }
        if !missing.isEmpty {
            throw XCTSkip("this ffmpeg has no \(missing.joined(separator: ", ")) encoder, so those codecs were not checked")
        }
    }

    func testVariableFrameRateClipIsSampledByTimestampNotIndex() throws {
        // Six frames 0.1 s apart, then six 0.02 s apart: 0.72 s in all.
        let raw = try grayFrames(levels: (0..<12).map { UInt8($0 * 20) })
        let path = folder + "/vfr.mp4"
        try Self.ffmpeg(["-f", "rawvideo", "-pix_fmt", "gray", "-s", "64x48", "-r", "10", "-i", raw,
                         "-vf", "settb=1/1000,setpts='if(lt(N,6),N*0.1/TB,(0.6+(N-6)*0.02)/TB)'",
                         "-fps_mode", "vfr", "-enc_time_base", "1/1000", "-c:v", "libx264", "-pix_fmt", "yuv420p", path])
        let clip = try DatasetCatalog.decodeClip(path: path, frames: 4, height: 48, width: 64, color: .gray)
        XCTAssertEqual(clip.framesFound, 12)
        // On screen at 0.09, 0.27, 0.45, 0.63 s: frames 0, 2, 4, 7 (by index it would be 1, 4, 7, 10).
        assertLevels(clip.values, frames: 4, equal: [0, 40, 80, 140])
    }

    func testRotatedClipComesOutInItsDisplayedOrientation() throws {
        // 64 wide × 48 high, the top-left pixel white, stored with a quarter-turn display matrix.
        let raw = try grayFrames(levels: [100, 100, 100], marker: true)
        let plain = try encode(raw, encoder: "libx264", to: "plain.mp4")
        let path = folder + "/rotated.mp4"
        try Self.ffmpeg(["-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90", path])
        let header = try DatasetCatalog.probeClip(path: path)
        XCTAssertEqual([header.height, header.width], [64, 48], "displayed upright: taller than wide")
        XCTAssertNotEqual(header.rotation, 0)

        let clip = try DatasetCatalog.decodeClip(path: path, frames: 1, height: 64, width: 48, color: .gray)
        // ffmpeg itself, which turns by the display matrix by default, is the reference.
        let reference = folder + "/reference.gray"
        try Self.ffmpeg(["-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", reference])
        let expected = try Data(contentsOf: URL(fileURLWithPath: reference))
        XCTAssertEqual(expected.count, 64 * 48)
        let brightest = clip.values.indices.max { clip.values[$0] < clip.values[$1] }!
        let expectedBrightest = expected.indices.max { expected[$0] < expected[$1] }!
        XCTAssertEqual(brightest, expectedBrightest, "the white corner lands where ffmpeg puts it")
        XCTAssertNotEqual(brightest, 0, "and not where it was stored")
        XCTAssertGreaterThan(clip.values[brightest], 0.8)

        // Resized to another displayed size, still upright.
        let small = try DatasetCatalog.decodeClip(path: path, frames: 1, height: 32, width: 24, color: .gray)
        XCTAssertEqual(small.values.count, 32 * 24)
        let corner = small.values.indices.max { small.values[$0] < small.values[$1] }!
        XCTAssertEqual([corner / 24 > 16, corner % 24 < 8], [expectedBrightest / 48 > 32, expectedBrightest % 48 < 16])
    }

    func testCropCenterKeepsTheMiddleOfAWideClipAtTheTargetAspect() throws {
        // 96 wide × 32 high (3:1): white bands left and right, black in the middle third.
        let path = folder + "/wide.mp4"
        try Self.ffmpeg(["-f", "lavfi", "-i", "color=black:size=96x32:rate=10:duration=0.5",
                         "-vf", "drawbox=x=0:y=0:w=32:h=32:color=white:t=fill,drawbox=x=64:y=0:w=32:h=32:color=white:t=fill",
                         "-c:v", "libx264", "-pix_fmt", "yuv444p", "-qp", "0", path])
        let squashed = try DatasetCatalog.decodeClip(path: path, frames: 2, height: 8, width: 8, color: .gray)
        XCTAssertGreaterThan(squashed.values.max()!, 0.9, "squashed: the bands are still there")
        let cropped = try DatasetCatalog.decodeClip(path: path, frames: 2, height: 8, width: 8, color: .gray, crop: .center)
        XCTAssertEqual(cropped.values.count, 2 * 8 * 8)
        XCTAssertLessThan(cropped.values.max()!, 0.1, "cropped: only the black middle is left")
        // A target as wide as the clip crops nothing.
        let same = try DatasetCatalog.decodeClip(path: path, frames: 1, height: 8, width: 24, color: .gray, crop: .center)
        let plain = try DatasetCatalog.decodeClip(path: path, frames: 1, height: 8, width: 24, color: .gray)
        XCTAssertEqual(same.values, plain.values)
    }

    // MARK: - Folders

    func testTrainTestFoldersGiveSortedClassesAndLabelledClips() throws {
        // Each class's clips have their own gray level, so a label can be checked against its clip.
        let levels = ["b_walk": UInt8(200), "a_run": 40]
        for (split, count) in [("train", 3), ("test", 1)] {
            for (name, level) in levels {
                for i in 0..<count {
                    try clip(level: level, frames: 8, at: "\(split)/\(name)/c\(i).\(i % 2 == 0 ? "mp4" : "avi")")
                }
            }
        }
        try "notes".write(toFile: folder + "/train/a_run/notes.txt", atomically: true, encoding: .utf8)
        try "x".write(toFile: folder + "/train/b_walk/.DS_Store", atomically: true, encoding: .utf8)
        try clip(level: 0, frames: 3, at: "train/b_walk/short.mp4")   // shorter than T

        let (dataset, report) = try DatasetCatalog.load(videosDirectory: folder, frames: 4)
        XCTAssertEqual(dataset.classNames, ["a_run", "b_walk"])
        XCTAssertEqual(dataset.frames, 4)
        XCTAssertEqual(dataset.sampleShape, [1, 4, 48, 64])
        XCTAssertEqual(dataset.train.count, 7)
        XCTAssertEqual(dataset.test.count, 2)
        XCTAssertEqual(report.trainCountPerClass, [3, 4])
        XCTAssertEqual(report.heldOut, .folder(folder + "/test"))
        XCTAssertEqual(report.ignoredFileCount, 2)
        XCTAssertEqual(report.shortClipCount, 1)
        XCTAssertEqual(report.codecCounts.values.reduce(0, +), 9)
        XCTAssertTrue(report.description.contains("1 clip shorter than 4 frames"), report.description)
        for split in [dataset.train, dataset.test] {
            for i in 0..<split.count {
                let values = split.images[i * dataset.valuesPerSample..<(i + 1) * dataset.valuesPerSample]
                let mean = values.reduce(0, +) / Float(values.count) * 255
                let expected: [Float] = split.labels[i] == 0 ? [40] : [200, 0]
                XCTAssertTrue(expected.contains { abs($0 - mean) < 3 }, "sample \(i) label \(split.labels[i]) mean \(mean)")
            }
        }
        // Training order drawn from the seed: not all of one class first.
        XCTAssertNotEqual(Array(dataset.train.labels), dataset.train.labels.sorted())
    }

    func testClassFoldersAloneHoldOutASeededFractionOfEachClass() throws {
        for name in ["jump", "clap"] {
            for i in 0..<5 { try clip(level: UInt8(20 * i), frames: 2, at: "\(name)/v\(i).avi") }
        }
        let (dataset, report) = try DatasetCatalog.load(videosDirectory: folder, frames: 2, seed: 7)
        XCTAssertEqual(dataset.classNames, ["clap", "jump"])
        XCTAssertEqual(report.trainCountPerClass, [4, 4])
        XCTAssertEqual(report.testCountPerClass, [1, 1])
        XCTAssertEqual(report.heldOut, .fraction(0.2, seed: 7, isDefault: true))
        let again = try DatasetCatalog.load(videosDirectory: folder, frames: 2, seed: 7).dataset
        XCTAssertEqual(again.test.images, dataset.test.images, "the same seed holds out the same clips")
    }

    func testSplitListsChooseTheClipsForEachSplit() throws {
        for name in ["Archery", "Bowling"] {
            for i in 0..<3 { try clip(level: 60, frames: 2, at: "\(name)/v_\(name)_g0\(i).avi") }
        }
        // UCF101 style: train lines carry a label number, test lines do not; case may differ.
        try "Archery/v_Archery_g00.avi 1\narchery/v_Archery_g01.avi 1\nBowling/v_Bowling_g00.avi 2\n"
            .write(toFile: folder + "/trainlist01.txt", atomically: true, encoding: .utf8)
        try "Archery/v_Archery_g02.avi\nBowling/v_Bowling_g01.avi\n".write(toFile: folder + "/testlist01.txt", atomically: true, encoding: .utf8)
        try "Archery/v_Archery_g02.avi 1\n".write(toFile: folder + "/trainlist02.txt", atomically: true, encoding: .utf8)
        try "Bowling/v_Bowling_g00.avi\n".write(toFile: folder + "/testlist02.txt", atomically: true, encoding: .utf8)

        let (dataset, report) = try DatasetCatalog.load(videosDirectory: folder, frames: 2)
        XCTAssertEqual(report.heldOut, .lists(train: folder + "/trainlist01.txt", test: folder + "/testlist01.txt"))
        XCTAssertEqual(report.trainCountPerClass, [2, 1])
        XCTAssertEqual(report.testCountPerClass, [1, 1])
        XCTAssertEqual(report.unlistedCount, 1, "Bowling g02 is in neither list")
        XCTAssertEqual(report.ignoredFileCount, 0, "the lists are not stray files")
        XCTAssertEqual(report.unused.count, 2)
        XCTAssertEqual(dataset.test.labels.sorted(), [0, 1])

        XCTAssertThrowsError(try DatasetCatalog.load(videosDirectory: folder, frames: 2, testFraction: 0.3)) { error in
            XCTAssertTrue("\(error)".contains("trainlist01.txt"), "\(error)")
        }
        try "Archery/gone.avi\n".write(toFile: folder + "/testlist01.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try DatasetCatalog.load(videosDirectory: folder, frames: 2)) { error in
            XCTAssertEqual(error as? VideoFolderError, .listedClipMissing(list: folder + "/testlist01.txt", line: 1, path: "Archery/gone.avi"))
        }
    }

    func testTruncatedClipIsNamedAndSkippedWithSkipBad() throws {
        for name in ["a", "b"] {
            for i in 0..<3 { try clip(level: 90, frames: 2, at: "\(name)/c\(i).avi") }
        }
        let whole = folder + "/whole.mp4"
        try Self.ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=30:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                         "-movflags", "+faststart", whole])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: whole))
        let broken = folder + "/a/broken.mp4"
        try bytes.prefix(bytes.count * 6 / 10).write(to: URL(fileURLWithPath: broken))
        try FileManager.default.removeItem(atPath: whole)
        try Data().write(to: URL(fileURLWithPath: folder + "/b/empty.mkv"))

        XCTAssertThrowsError(try DatasetCatalog.load(videosDirectory: folder, frames: 2, testFraction: 0.34)) { error in
            XCTAssertTrue("\(error)".contains("/a/broken.mp4") || "\(error)".contains("/b/empty.mkv"), "\(error)")
            XCTAssertTrue("\(error)".contains("skip-bad"), "\(error)")
        }
        let (dataset, report) = try DatasetCatalog.load(videosDirectory: folder, frames: 2, testFraction: 0.34, skipBad: true)
        XCTAssertEqual(dataset.train.count + dataset.test.count, 6)
        XCTAssertEqual(Set(report.skipped.map(\.path)), [broken, folder + "/b/empty.mkv"])
        XCTAssertTrue(report.skipped.first { $0.path == broken }!.reason.contains("truncated"), "\(report.skipped)")
    }

    func testSizesMustMatchUnlessOneIsGiven() throws {
        try clip(level: 50, frames: 2, at: "x/a.avi")
        try clip(level: 50, frames: 2, at: "x/b.avi")
        try clip(level: 50, frames: 2, at: "y/a.avi")
        let odd = try grayFrames(levels: [50, 50], width: 32, height: 32)
        try FileManager.default.createDirectory(atPath: folder + "/y", withIntermediateDirectories: true)
        _ = try encode(odd, encoder: "mjpeg", to: "y/odd.avi")
        XCTAssertThrowsError(try DatasetCatalog.load(videosDirectory: folder, frames: 2, testFraction: 0.5)) { error in
            XCTAssertTrue("\(error)".contains("y/odd.avi") && "\(error)".contains("`size 48x64`"), "\(error)")
        }
        let (dataset, report) = try DatasetCatalog.load(videosDirectory: folder, frames: 2, size: (24, 24), color: .rgb, testFraction: 0.5)
        XCTAssertEqual(dataset.sampleShape, [3, 2, 24, 24])
        XCTAssertEqual(report.resizedCount, 4)
    }

    func testTooMuchMemoryIsRefusedBeforeDecodingWithAHint() throws {
        for name in ["a", "b"] {
            for i in 0..<3 { try clip(level: 90, frames: 2, at: "\(name)/c\(i).avi") }
        }
        XCTAssertThrowsError(try DatasetCatalog.load(videosDirectory: folder, frames: 16, size: nil, color: nil, testFraction: 0.34,
                                                     seed: 0, skipBad: false, memoryLimitBytes: 1_000_000)) { error in
            guard case let .tooMuchMemory(megabytes, _, side, frames) = error as? VideoFolderError else { return XCTFail("\(error)") }
            XCTAssertEqual(megabytes, 2, "6 clips × 16 × 48 × 64 × 4 bytes = 1.125 MB, rounded up")
            XCTAssertGreaterThan(side, 0)
            XCTAssertEqual(frames, 1_000_000 / (6 * 48 * 64 * 4))
            XCTAssertTrue("\(error)".contains("MB") && "\(error)".contains("`frames"), "\(error)")
        }
    }

    func testDecodedClipsReloadFromTheCache() throws {
        for name in ["a", "b"] {
            for i in 0..<3 { try clip(level: UInt8(30 + 40 * i), frames: 3, at: "\(name)/c\(i).mp4") }
        }
        let cache = DecodedCache(directory: folder + "-cache")
        defer { try? FileManager.default.removeItem(atPath: cache.directory) }
        let first = try DatasetCatalog.load(videosDirectory: folder, frames: 3, cache: cache)
        XCTAssertFalse(first.report.readFromCache)
        let second = try DatasetCatalog.load(videosDirectory: folder, frames: 3, cache: cache)
        XCTAssertTrue(second.report.readFromCache)
        XCTAssertEqual(second.dataset.train.images, first.dataset.train.images)
        XCTAssertEqual(second.dataset.test.labels, first.dataset.test.labels)
        XCTAssertEqual(second.dataset.frames, 3)
        XCTAssertEqual(second.report.shortClipCount, first.report.shortClipCount)
        let other = try DatasetCatalog.load(videosDirectory: folder, frames: 2, cache: cache)
        XCTAssertFalse(other.report.readFromCache, "the frame count is part of the key")
        XCTAssertEqual(other.dataset.frames, 2)
    }

    // MARK: - Helpers

    /// Means of each frame of a gray (or RGB) clip, in 0…255, against the expected levels.
    private func assertLevels(_ values: [Float], frames: Int, equal expected: [Double], tolerance: Double = 3,
                              _ message: String = "", line: UInt = #line) {
        let perFrame = values.count / frames
        let means = (0..<frames).map { k in Double(values[k * perFrame..<(k + 1) * perFrame].reduce(0, +)) / Double(perFrame) * 255 }
        for (mean, level) in zip(means, expected) where abs(mean - level) > tolerance {
            XCTFail("\(message): frame means \(means.map { Int($0.rounded()) }), expected \(expected.map { Int($0) })", line: line)
            return
        }
    }

    /// A raw 8-bit gray file of width × height frames, one constant level each (optionally a
    /// white top-left corner of 4×4).
    private func grayFrames(levels: [UInt8], width: Int = 64, height: Int = 48, marker: Bool = false) throws -> String {
        var bytes: [UInt8] = []
        for level in levels {
            var frame = [UInt8](repeating: level, count: width * height)
            if marker { for y in 0..<4 { for x in 0..<4 { frame[y * width + x] = 255 } } }
            bytes += frame
        }
        let path = folder + "/frames-\(UUID().uuidString).gray"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func encode(_ raw: String, encoder: String, to file: String) throws -> String {
        let path = folder + "/" + file
        let size = (try? FileManager.default.attributesOfItem(atPath: raw)[.size] as? Int) ?? 0
        let dimensions = size % (64 * 48) == 0 ? "64x48" : "32x32"
        var arguments = ["-f", "rawvideo", "-pix_fmt", "gray", "-s", dimensions, "-r", "30", "-i", raw, "-c:v", encoder]
        switch encoder {
        case "mjpeg": arguments += ["-q:v", "2"]
        case "libx265": arguments += ["-pix_fmt", "yuv420p", "-x265-params", "log-level=error"]
        case "libvpx-vp9": arguments += ["-pix_fmt", "yuv420p", "-b:v", "0", "-crf", "20"]
        default: arguments += ["-pix_fmt", "yuv420p"]
        }
        try Self.ffmpeg(arguments + [path])
        return path
    }

    /// A clip of `frames` frames of one gray level at DIR/relative.
    private func clip(level: UInt8, frames: Int, at relative: String) throws {
        let path = folder + "/" + relative
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let raw = try grayFrames(levels: Array(repeating: level, count: frames))
        defer { try? FileManager.default.removeItem(atPath: raw) }
        let encoder = relative.hasSuffix(".avi") ? "mjpeg" : "libx264"
        var arguments = ["-f", "rawvideo", "-pix_fmt", "gray", "-s", "64x48", "-r", "30", "-i", raw, "-c:v", encoder]
        arguments += encoder == "mjpeg" ? ["-q:v", "2"] : ["-pix_fmt", "yuv420p"]
        try Self.ffmpeg(arguments + [path])
    }

    private static func hasEncoder(_ name: String) throws -> Bool {
        try ffmpeg(["-hide_banner", "-encoders"], quiet: false).contains(" \(name) ")
    }

    /// Runs ffmpeg with stdin from /dev/null; its output, or an error with what it printed.
    @discardableResult
    private static func ffmpeg(_ arguments: [String], quiet: Bool = true) throws -> String {
        guard let executable = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map({ $0 + "/ffmpeg" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            XCTFail("ffmpeg is not installed; run scripts/setup.sh (it installs ffmpeg and FFmpeg's libraries)")
            throw CocoaError(.fileNoSuchFile)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = (quiet ? ["-nostdin", "-y", "-loglevel", "error"] : ["-nostdin"]) + arguments
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            XCTFail("ffmpeg \(arguments.joined(separator: " ")) failed: \(text)")
            throw CocoaError(.fileWriteUnknown)
        }
        return text
    }
}
