import CJPEG
import CPNG
import CZlib
import Foundation
import XCTest
@testable import Datasets

/// `load images DIR`: every file here is made by the test with libpng, libjpeg or zlib.
final class ImageFolderTests: XCTestCase {
    // MARK: - PNG, every kind

    func testEveryPNGFormatDecodesToExactlyTheValuesWritten() throws {
        let width = 5, height = 3, count = width * height
        let gray = (0..<count).map { UInt8(($0 * 17 + 3) % 256) }
        let image = try ImageDecoding.decode(PNGWriter.write(width: width, height: height, format: PNG_FORMAT_GRAY, bytes: gray), path: "gray.png")
        XCTAssertEqual([image.height, image.width, image.channels], [3, 5, 1])
        XCTAssertEqual(image.pixels, gray.map { Float($0) / 255 })

        let wide = (0..<count).map { UInt16(($0 * 4111 + 7) % 65536) }
        let sixteen = try ImageDecoding.decode(PNGWriter.write(width: width, height: height, wide: wide), path: "gray16.png")
        XCTAssertEqual(sixteen.channels, 1)
        XCTAssertEqual(sixteen.pixels, wide.map { Float($0) / 65535 }, "16-bit keeps all 16 bits")
        // The same values from a plain encoder (big-endian, no gamma chunk), as most tools write them.
        let raw = RawPNG.write(width: width, height: height, bitDepth: 16, colorType: 0,
                               rows: (0..<height).map { y in wide[y * width..<(y + 1) * width].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } })
        XCTAssertEqual(try ImageDecoding.decode(raw, path: "raw16.png").pixels, wide.map { Float($0) / 65535 })

        // 1-bit: eight pixels a byte, most significant first; 1 is white.
        let bits: [UInt8] = [1, 0, 1, 1, 0, 0, 1, 0, 1]
        var packed = [UInt8](repeating: 0, count: 2)
        for (i, bit) in bits.enumerated() where bit == 1 { packed[i / 8] |= 0x80 >> UInt8(i % 8) }
        let oneBit = try ImageDecoding.decode(RawPNG.write(width: 9, height: 1, bitDepth: 1, colorType: 0, rows: [packed]), path: "1bit.png")
        XCTAssertEqual(oneBit.pixels, bits.map(Float.init))

        // 16-bit gray + alpha: libpng hands these over premultiplied; the gray comes back to within 1/alpha.
        let pairs: [(UInt16, UInt16)] = [(0, 65535), (1234, 65535), (65535, 65535), (40000, 32768), (20000, 1000), (5, 0)]
        let gaRows = [pairs.flatMap { value, alpha -> [UInt8] in
            [UInt8(value >> 8), UInt8(value & 0xFF), UInt8(alpha >> 8), UInt8(alpha & 0xFF)]
        }]
        let ga16 = try ImageDecoding.decode(RawPNG.write(width: pairs.count, height: 1, bitDepth: 16, colorType: 4, rows: gaRows), path: "ga16.png")
        XCTAssertEqual(ga16.channels, 1)
        XCTAssertEqual(Array(ga16.pixels.prefix(3)), [0, Float(1234) / 65535, 1], "opaque: exact")
        XCTAssertEqual(ga16.pixels[3], Float(40000) / 65535, accuracy: 1 / 32768)
        XCTAssertEqual(ga16.pixels[4], Float(20000) / 65535, accuracy: 1 / 1000)
        XCTAssertEqual(ga16.pixels[5], 0, "fully transparent keeps no color")

        // Gray + alpha and RGBA: the alpha is dropped, the colors kept exactly, even where transparent.
        let grayAlpha = (0..<count).flatMap { [gray[$0], UInt8($0 * 18)] }
        let ga = try ImageDecoding.decode(PNGWriter.write(width: width, height: height, format: PNG_FORMAT_GA, bytes: grayAlpha), path: "ga.png")
        XCTAssertEqual(ga.channels, 1)
        XCTAssertEqual(ga.pixels, gray.map { Float($0) / 255 })

        let rgb = (0..<count * 3).map { UInt8(($0 * 29 + 11) % 256) }
        let color = try ImageDecoding.decode(PNGWriter.write(width: width, height: height, format: PNG_FORMAT_RGB, bytes: rgb), path: "rgb.png")
        XCTAssertEqual(color.channels, 3)
        XCTAssertEqual(color.pixels, rgb.map { Float($0) / 255 })

        var rgba: [UInt8] = []
        for i in 0..<count { rgba += rgb[3 * i..<3 * i + 3] + [UInt8(255 - i * 17)] }
        let rgbaFormat = PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA  // PNG_FORMAT_RGBA, which Swift does not import
        let withAlpha = try ImageDecoding.decode(PNGWriter.write(width: width, height: height, format: rgbaFormat, bytes: rgba), path: "rgba.png")
        XCTAssertEqual(withAlpha.channels, 3)
        XCTAssertEqual(withAlpha.pixels, rgb.map { Float($0) / 255 })

        // Palette: a color-mapped file (IHDR color type 3) decodes to its palette's colors.
        let palette: [UInt8] = [255, 0, 0, 0, 128, 0, 10, 20, 30, 200, 200, 255]
        let indices = (0..<count).map { UInt8($0 % 4) }
        let mapped = PNGWriter.write(width: width, height: height, format: PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_COLORMAP, bytes: indices, colormap: palette)
        XCTAssertEqual(mapped[25], 3, "written as a palette image")
        let decoded = try ImageDecoding.decode(mapped, path: "palette.png")
        XCTAssertEqual(decoded.channels, 3)
        let colors: [UInt8] = indices.flatMap { index -> [UInt8] in Array(palette[Int(index) * 3..<Int(index) * 3 + 3]) }
        XCTAssertEqual(decoded.pixels, colors.map { Float($0) / 255 })
        XCTAssertEqual(try ImageDecoding.header(mapped, path: "palette.png"), ImageHeader(format: .png, width: 5, height: 3, channels: 3))
    }

    // MARK: - JPEG, every kind

    func testEveryJPEGKindDecodesWithinJPEGTolerance() throws {
        let width = 16, height = 8
        let rgb = (0..<height).flatMap { y in (0..<width).flatMap { x in [UInt8(x * 16), UInt8(y * 32), UInt8(128)] } }
        let expected = rgb.map { Float($0) / 255 }
        let baseline = JPEGWriter.write(width: width, height: height, colorSpace: JCS_RGB, samples: rgb)
        let progressive = JPEGWriter.write(width: width, height: height, colorSpace: JCS_RGB, samples: rgb, progressive: true)
        XCTAssertTrue(Self.hasMarker(0xC0, in: baseline), "baseline SOF0")
        XCTAssertTrue(Self.hasMarker(0xC2, in: progressive), "progressive SOF2")
        for (name, bytes) in [("baseline", baseline), ("progressive", progressive)] {
            let image = try ImageDecoding.decode(bytes, path: name + ".jpg")
            XCTAssertEqual([image.height, image.width, image.channels], [8, 16, 3], name)
            assertClose(image.pixels, expected, tolerance: 6 / 255, name)
        }

        let gray = (0..<width * height).map { UInt8(($0 % width) * 12 + ($0 / width) * 8) }
        let grayImage = try ImageDecoding.decode(JPEGWriter.write(width: width, height: height, colorSpace: JCS_GRAYSCALE, samples: gray), path: "gray.jpg")
        XCTAssertEqual(grayImage.channels, 1)
        assertClose(grayImage.pixels, gray.map { Float($0) / 255 }, tolerance: 3 / 255, "gray")

        // CMYK as Adobe writes it (inks inverted, and libjpeg marks the file so): stored (r, g, b, 255)
        // is RGB (r, g, b); a stored black channel of 128 halves every color.
        let inks = (0..<width * height).flatMap { i -> [UInt8] in
            [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], i < width * height / 2 ? 255 : 128]
        }
        let inkExpected = (0..<width * height).flatMap { i -> [Float] in
            let k: Float = i < width * height / 2 ? 1 : 128 / 255
            return (0..<3).map { Float(rgb[3 * i + $0]) / 255 * k }
        }
        for stored in [JCS_CMYK, JCS_YCCK] {
            let bytes = JPEGWriter.write(width: width, height: height, colorSpace: JCS_CMYK, samples: inks, stored: stored)
            let image = try ImageDecoding.decode(bytes, path: "cmyk.jpg")
            XCTAssertEqual(image.channels, 3, "CMYK becomes RGB")
            assertClose(image.pixels, inkExpected, tolerance: 6 / 255, "stored as \(stored == JCS_CMYK ? "CMYK" : "YCCK")")
        }
    }

    func testDamagedJPEGsAreErrorsNotCrashes() throws {
        let rgb = (0..<32 * 32 * 3).map { UInt8(($0 * 7919) % 251) }
        let good = JPEGWriter.write(width: 32, height: 32, colorSpace: JCS_RGB, samples: rgb)
        let cases: [(String, [UInt8], String)] = [
            ("truncated.jpg", Array(good.prefix(good.count * 2 / 3)), "truncated"),
            ("garbage.jpg", [0xFF, 0xD8, 0xFF] + (0..<200).map { UInt8($0 * 7 % 251) }, ""),
            ("header-only.jpg", Array(good.prefix(4)), "truncated"),
        ]
        for (name, bytes, mentions) in cases {
            assertImageError(try ImageDecoding.decode(bytes, path: name)) { error in
                guard case let .corrupt(path, format, reason) = error else { return XCTFail("\(name): \(error)") }
                XCTAssertEqual(path, name)
                XCTAssertEqual(format, .jpeg)
                if !mentions.isEmpty { XCTAssertTrue(reason.contains(mentions), "\(name): \(reason)") }
            }
        }
    }

    func testAHeaderClaiming100000SquareIsRefusedBeforeDecoding() throws {
        // A real IHDR (correct CRC) over a few bytes of data: decoding would need 10¹⁰ pixels.
        let bomb = RawPNG.write(width: 100_000, height: 100_000, bitDepth: 8, colorType: 0, rows: [[0, 0, 0]])
        let started = Date()
        for check in [{ _ = try ImageDecoding.header(bomb, path: "bomb.png") }, { _ = try ImageDecoding.decode(bomb, path: "bomb.png") }] {
            assertImageError(try check()) { error in
                XCTAssertEqual(error, .tooLarge(path: "bomb.png", width: 100_000, height: 100_000))
                XCTAssertTrue(error.description.contains("decompression bomb"), error.description)
            }
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1, "refused from the header, not after trying")

        let root = try TemporaryFolder()
        try writeGray(root, "flat/a/1.png", value: 10)
        try writeGray(root, "flat/a/2.png", value: 20)
        try writeGray(root, "flat/b/1.png", value: 30)
        try writeGray(root, "flat/b/2.png", value: 40)
        let bombPath = try root.write("flat/b/bomb.png", bomb)
        assertFolderError(try load(root.path + "/flat")) { error in
            XCTAssertEqual(error, .badImage(.tooLarge(path: bombPath, width: 100_000, height: 100_000)))
            XCTAssertTrue(error.description.contains("skip-bad"), error.description)
        }
        let (data, report) = try load(root.path + "/flat", testFraction: 0.5, skipBad: true)
        XCTAssertEqual(data.train.count + data.test.count, 4)
        XCTAssertEqual(report.skipped.map(\.path), [bombPath])
    }

    func testHeadersBehindLargeMetadataAreFound() throws {
        // 130 kB before the size in either format: past the first read of each file, so read whole.
        let root = try TemporaryFolder()
        let gray = (0..<12).map { UInt8($0 * 20) }
        try root.write("d/a/exif.jpg", JPEGWriter.write(width: 4, height: 3, colorSpace: JCS_GRAYSCALE, samples: gray, metadataBytes: 130_000))
        let text = Array("Comment\u{0}".utf8) + [UInt8](repeating: 0x61, count: 130_000)
        let png = PNGWriter.write(width: 4, height: 3, format: PNG_FORMAT_GRAY, bytes: gray)
        // tEXt goes right after IHDR (8 signature + 25 IHDR bytes).
        try root.write("d/b/text.png", Array(png.prefix(33)) + RawPNG.chunk("tEXt", text) + Array(png.dropFirst(33)))
        try root.write("d/b/plain.png", png)
        let (data, report) = try load(root.path + "/d", testFraction: 0.5)
        XCTAssertEqual(report.trainCount + report.testCount, 3)
        XCTAssertEqual([data.height, data.width, data.channels], [3, 4, 1])
        XCTAssertEqual(data.train.images.count + data.test.images.count, 36)
    }

    // MARK: - Layouts

    func testTrainAndTestFoldersWithSortedClassNames() throws {
        let root = try TemporaryFolder()
        // Code-point order, as Python's sorted(): upper case first.
        for (c, name) in ["zebra", "ant", "Moth"].enumerated() {
            for i in 0..<3 { try writeGray(root, "pets/train/\(name)/\(i).png", value: UInt8(c * 50 + i)) }
            try writeGray(root, "pets/test/\(name)/x.png", value: UInt8(200 + c))
        }
        let (data, report) = try load(root.path + "/pets/")
        XCTAssertEqual(data.classNames, ["Moth", "ant", "zebra"])
        XCTAssertEqual(data.name, "pets")
        XCTAssertEqual(data.source, root.path + "/pets/")
        XCTAssertEqual([data.height, data.width, data.channels], [2, 3, 1])
        XCTAssertEqual(data.train.labels.sorted(), [0, 0, 0, 1, 1, 1, 2, 2, 2])
        XCTAssertEqual(data.test.labels, [0, 1, 2])
        // Moth was written third (c = 2), ant second, zebra first. The training images come in an
        // order drawn from the seed (not one class after another); each keeps its label.
        XCTAssertEqual(Self.labelled(data.train), [(0, 100), (0, 101), (0, 102), (1, 50), (1, 51), (1, 52), (2, 0), (2, 1), (2, 2)].map { "\($0.0):\($0.1)" })
        XCTAssertNotEqual(data.train.labels, data.train.labels.sorted(), "not in class order")
        XCTAssertEqual(Self.firstPixels(data.test, values: 6), [202, 201, 200].map { Float($0) / 255 })
        XCTAssertEqual(report.heldOut, .folder(root.path + "/pets/test"))
        XCTAssertEqual(report.trainCountPerClass, [3, 3, 3])
        XCTAssertEqual(report.testCountPerClass, [1, 1, 1])
        XCTAssertEqual(report.decodedMegabytes, Double(12 * 6 * 4) / 1_048_576)
        XCTAssertTrue(report.description.contains("3 classes (Moth, ant, zebra), 9 train + 3 test images, 2×3 gray"), report.description)
    }

    func testValAndValidFoldersHoldTheTestImagesAndAClassMayBeMissingThere() throws {
        for heldOut in ["val", "valid"] {
            let root = try TemporaryFolder()
            try writeGray(root, "d/train/a/1.png", value: 1)
            try writeGray(root, "d/train/b/1.png", value: 2)
            try writeGray(root, "d/\(heldOut)/b/1.png", value: 3)
            let (data, report) = try load(root.path + "/d")
            XCTAssertEqual(data.test.labels, [1], heldOut)
            XCTAssertEqual(report.heldOut, .folder(root.path + "/d/" + heldOut))
            XCTAssertEqual(report.testCountPerClass, [0, 1])
        }
        // With both, test is the held-out folder and val is reported as unused.
        let root = try TemporaryFolder()
        try writeGray(root, "d/train/a/1.png", value: 1)
        try writeGray(root, "d/val/a/1.png", value: 2)
        try writeGray(root, "d/test/a/1.png", value: 3)
        let (data, report) = try load(root.path + "/d")
        XCTAssertEqual(data.test.images.first, 3 / 255)
        XCTAssertEqual(report.unusedFolders, [root.path + "/d/val"])
    }

    func testFlatLayoutHoldsOutASeededStratifiedFraction() throws {
        let root = try TemporaryFolder()
        for i in 0..<10 { try writeGray(root, "f/a/\(i).png", value: UInt8(i)) }
        for i in 0..<20 { try writeGray(root, "f/b/\(i).png", value: UInt8(100 + i)) }
        let (data, report) = try load(root.path + "/f", testFraction: 0.3, seed: 7)
        XCTAssertEqual(report.trainCountPerClass, [7, 14])
        XCTAssertEqual(report.testCountPerClass, [3, 6])
        XCTAssertEqual(report.heldOut, .fraction(0.3, seed: 7, isDefault: false))
        let again = try load(root.path + "/f", testFraction: 0.3, seed: 7).dataset
        XCTAssertEqual(again.test.images, data.test.images, "same seed, same split")
        XCTAssertEqual(again.train.images, data.train.images)
        let other = try load(root.path + "/f", testFraction: 0.3, seed: 8).dataset
        XCTAssertNotEqual(other.test.images, data.test.images, "another seed, another split")
        // Every image is in exactly one split.
        let all = Set((Self.firstPixels(data.train, values: 6) + Self.firstPixels(data.test, values: 6)).map { Int(($0 * 255).rounded()) })
        XCTAssertEqual(all, Set(Array(0..<10) + Array(100..<120)))
        XCTAssertEqual(data.train.labels.sorted(), [Int32](repeating: 0, count: 7) + [Int32](repeating: 1, count: 14))

        let (_, defaulted) = try load(root.path + "/f", seed: 7)
        XCTAssertEqual(defaulted.heldOut, .fraction(0.2, seed: 7, isDefault: true))
        XCTAssertEqual(defaulted.testCountPerClass, [2, 4])
        XCTAssertTrue(defaulted.description.contains("the default 20%"), defaulted.description)
    }

    func testHiddenAndNonImageFilesAreIgnoredAndCounted() throws {
        let root = try TemporaryFolder()
        try writeGray(root, "d/a/1.png", value: 1)
        try writeGray(root, "d/a/sub/2.png", value: 2)   // subfolders belong to their class
        try writeGray(root, "d/b/1.png", value: 3)
        try writeGray(root, "d/b/2.png", value: 4)
        try writeGray(root, "d/a/.hidden.png", value: 5)
        try writeGray(root, "d/.cache/x.png", value: 6)  // a hidden folder counts once and is not a class
        try root.write("d/a/.DS_Store", [0, 0, 0, 1])
        try root.write("d/a/notes.txt", Array("a note".utf8))
        try root.write("d/b/labels.csv", Array("file,label\n".utf8))
        try root.write("d/README", Array("about".utf8))
        let (data, report) = try load(root.path + "/d", testFraction: 0.5)
        XCTAssertEqual(data.classNames, ["a", "b"])
        XCTAssertEqual(report.trainCount + report.testCount, 4)
        XCTAssertEqual(report.ignoredFileCount, 6)
        XCTAssertTrue(report.description.contains("ignored 6 files"), report.description)
    }

    func testAnUnknownTestClassAndTestWithoutTrainAreErrors() throws {
        let root = try TemporaryFolder()
        try writeGray(root, "d/train/a/1.png", value: 1)
        try writeGray(root, "d/test/q/1.png", value: 1)
        assertFolderError(try load(root.path + "/d")) { error in
            XCTAssertEqual(error, .unknownTestClass(root.path + "/d/test/q", known: ["a"]))
        }
        try writeGray(root, "e/test/a/1.png", value: 1)
        assertFolderError(try load(root.path + "/e")) { error in
            XCTAssertEqual(error, .heldOutWithoutTrain(directory: root.path + "/e", heldOut: "test"))
        }
        assertFolderError(try load(root.path + "/d", testFraction: 0.2)) { error in
            XCTAssertEqual(error, .fractionWithHeldOutFolder(fraction: 0.2, folder: root.path + "/d/test"))
        }
        assertFolderError(try load(root.path + "/nowhere")) { XCTAssertEqual($0, .notADirectory(root.path + "/nowhere")) }
    }

    func testAnEmptyClassFolderIsNamed() throws {
        let root = try TemporaryFolder()
        try writeGray(root, "d/a/1.png", value: 1)
        try writeGray(root, "d/a/2.png", value: 1)
        _ = try root.subfolder("d/b")
        try root.write("d/b/readme.txt", Array("nothing".utf8))
        assertFolderError(try load(root.path + "/d")) { error in
            XCTAssertEqual(error, .emptyClassFolder(root.path + "/d/b", ignored: 1))
            XCTAssertTrue(error.description.contains(root.path + "/d/b holds no PNG or JPEG images (1 other file ignored)"), error.description)
        }
    }

    /// Links inside a class folder never take in what is outside it: a link to `..` (the class
    /// root), to a folder above that, to another class or elsewhere is counted as ignored; a link
    /// to a file is followed; a link back into the class ends (no loop). A class folder that is
    /// a link to the class root itself is an error; one that is a link to a folder elsewhere is a class.
    func testLinksInsideAClassFolderNeverLeaveIt() throws {
        let root = try TemporaryFolder()
        try writeGray(root, "d/a/1.png", value: 1)
        try writeGray(root, "d/a/inner/2.png", value: 2)
        try writeGray(root, "d/b/1.png", value: 3)
        try writeGray(root, "d/b/2.png", value: 4)
        try writeGray(root, "elsewhere/x.png", value: 5)
        try writeGray(root, "elsewhere/y.png", value: 6)
        let links = ["d/a/up": "..", "d/a/top": "../..", "d/a/sibling": "../b", "d/a/out": root.path + "/elsewhere",
                     "d/a/inner/loop": "..", "d/a/file.png": "../b/2.png"]
        for (link, target) in links {
            try FileManager.default.createSymbolicLink(atPath: root.path + "/" + link, withDestinationPath: target)
        }
        let (data, report) = try load(root.path + "/d", testFraction: 0.5)
        XCTAssertEqual(data.classNames, ["a", "b"])
        XCTAssertEqual(zip(report.trainCountPerClass, report.testCountPerClass).map(+), [3, 2], "a: 1.png, inner/2.png, file.png")
        XCTAssertEqual(report.ignoredFileCount, 5, "up, top, sibling, out and inner/loop")
        XCTAssertEqual(Set((Self.firstPixels(data.train, values: 6) + Self.firstPixels(data.test, values: 6)).map { Int(($0 * 255).rounded()) }),
                       [1, 2, 3, 4], "nothing from elsewhere")

        try writeGray(root, "e/a/1.png", value: 1)
        try FileManager.default.createSymbolicLink(atPath: root.path + "/e/all", withDestinationPath: ".")
        assertFolderError(try load(root.path + "/e")) { error in
            XCTAssertEqual(error, .classFolderHoldsTheClasses(root.path + "/e/all", resolved: root.path + "/e"))
        }
        try writeGray(root, "f/a/1.png", value: 1)
        try writeGray(root, "f/a/2.png", value: 2)
        try FileManager.default.createSymbolicLink(atPath: root.path + "/f/b", withDestinationPath: "../elsewhere")
        XCTAssertEqual(try load(root.path + "/f", testFraction: 0.5).report.classNames, ["a", "b"])
        // A class that is a link to another class (or into it) would count its files twice.
        try writeGray(root, "g/cats/1.png", value: 1)
        try writeGray(root, "g/cats/young/2.png", value: 2)
        try writeGray(root, "g/dogs/3.png", value: 3)
        try FileManager.default.createSymbolicLink(atPath: root.path + "/g/kittens", withDestinationPath: "cats/young")
        assertFolderError(try load(root.path + "/g")) { error in
            XCTAssertEqual(error, .classFoldersOverlap(root.path + "/g/cats", root.path + "/g/kittens", resolved: root.path + "/g/cats/young"))
            XCTAssertTrue(error.description.contains("so its files would count as both classes"), error.description)
        }
    }

    // MARK: - Sizes

    func testImagesOfAnotherSizeNameTheFileAndSuggestSize() throws {
        let root = try TemporaryFolder()
        try writeGray(root, "d/a/1.png", value: 1)
        try writeGray(root, "d/a/2.png", value: 1)
        let odd = try root.write("d/b/1.png", PNGWriter.write(width: 4, height: 5, format: PNG_FORMAT_GRAY, bytes: [UInt8](repeating: 9, count: 20)))
        try writeGray(root, "d/b/2.png", value: 1)
        assertFolderError(try load(root.path + "/d", testFraction: 0.5)) { error in
            XCTAssertEqual(error, .sizeMismatch(path: odd, height: 5, width: 4, first: root.path + "/d/a/1.png", firstHeight: 2, firstWidth: 3))
            XCTAssertTrue(error.description.contains("size 2x3"), error.description)
        }
        let (data, report) = try load(root.path + "/d", size: (height: 4, width: 4), testFraction: 0.5)
        XCTAssertEqual([data.height, data.width], [4, 4])
        XCTAssertEqual(data.train.images.count, 2 * 16)
        XCTAssertEqual(report.resizedCount, 4, "2×3 and 5×4 all become 4×4")
        XCTAssertTrue(data.train.images.allSatisfy { abs($0 - 1 / 255) < 1e-6 || abs($0 - 9 / 255) < 1e-6 }, "a flat image stays flat")
    }

    func testAreaAveragingShrinks4x4To2x2Exactly() {
        // Two channels, values in sixteenths so every average is exact.
        let pixels = (0..<16).flatMap { i in [Float(i) / 16, Float(15 - i) / 16] }
        let image = DecodedImage(height: 4, width: 4, channels: 2, pixels: pixels)
        let small = ImageDecoding.resized(image, height: 2, width: 2)
        func average(_ indices: [Int], _ channel: Int) -> Float { indices.map { pixels[2 * $0 + channel] }.reduce(0, +) / 4 }
        let blocks = [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
        XCTAssertEqual(small.pixels, blocks.flatMap { [average($0, 0), average($0, 1)] })
        XCTAssertEqual(ImageDecoding.resized(image, height: 4, width: 4), image)
        // A third of a pixel each way: still an average, so a flat image stays flat.
        let flat = ImageDecoding.resized(DecodedImage(height: 3, width: 5, channels: 1, pixels: [Float](repeating: 0.5, count: 15)), height: 2, width: 3)
        for value in flat.pixels { XCTAssertEqual(value, 0.5, accuracy: 1e-6) }
    }

    func testBilinearGrowthIsMonotoneAndCornerExact() {
        let pixels: [Float] = [0, 0.25, 0.5, 1]  // 2×2, increasing to the right and down
        let big = ImageDecoding.resized(DecodedImage(height: 2, width: 2, channels: 1, pixels: pixels), height: 5, width: 7)
        XCTAssertEqual([big.height, big.width], [5, 7])
        let at = { (y: Int, x: Int) in big.pixels[y * 7 + x] }
        XCTAssertEqual([at(0, 0), at(0, 6), at(4, 0), at(4, 6)], pixels, "corners keep their values")
        for y in 0..<5 { for x in 1..<7 { XCTAssertLessThanOrEqual(at(y, x - 1), at(y, x)) } }
        for x in 0..<7 { for y in 1..<5 { XCTAssertLessThanOrEqual(at(y - 1, x), at(y, x)) } }
        XCTAssertGreaterThan(at(2, 3), 0)
        XCTAssertLessThan(at(2, 3), 1)
        // One axis shrinks, the other grows.
        let mixed = ImageDecoding.resized(DecodedImage(height: 4, width: 1, channels: 1, pixels: [0, 1, 0, 1]), height: 2, width: 3)
        XCTAssertEqual(mixed.pixels, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    }

    // MARK: - Color

    func testGrayOrRGBByTheImagesOrAsAsked() throws {
        let root = try TemporaryFolder()
        try writeGray(root, "gray/a/1.png", value: 51)
        try writeGray(root, "gray/b/1.png", value: 102)
        try writeGray(root, "gray/b/2.png", value: 153)
        XCTAssertEqual(try load(root.path + "/gray", testFraction: 0.5).dataset.channels, 1, "all gray: gray")

        try root.write("mixed/a/1.png", PNGWriter.write(width: 3, height: 2, format: PNG_FORMAT_RGB, bytes: [UInt8](repeating: 0, count: 18)))
        try root.write("mixed/a/2.png", PNGWriter.write(width: 3, height: 2, format: PNG_FORMAT_RGB,
                                                        bytes: (0..<6).flatMap { _ in [UInt8(255), 0, 0] }))
        try writeGray(root, "mixed/b/1.png", value: 51)
        try writeGray(root, "mixed/b/2.png", value: 51)
        let (rgb, report) = try load(root.path + "/mixed", testFraction: 0.5)
        XCTAssertEqual(rgb.channels, 3, "any color: RGB")
        XCTAssertEqual(report.color, .rgb)
        let grayAsRGB = rgb.train.labels.firstIndex(of: 1).map { Array(rgb.train.images[$0 * 18..<$0 * 18 + 18]) }
        XCTAssertEqual(grayAsRGB, [Float](repeating: 0.2, count: 18), "gray copied to all three channels")

        let (gray, _) = try load(root.path + "/mixed", color: .gray, testFraction: 0.5)
        XCTAssertEqual(gray.channels, 1)
        let all = gray.train.images + gray.test.images
        XCTAssertTrue(all.contains { abs($0 - 0.299) < 1e-6 }, "pure red is 0.299 gray")
        XCTAssertTrue(all.contains(0.2))
    }

    // MARK: - Bad files

    func testDamagedFilesAreErrorsNamingThemAndSkipBadListsThem() throws {
        let noise = (0..<64 * 64).map { UInt8(($0 * 7919) % 251) }
        let png = PNGWriter.write(width: 64, height: 64, format: PNG_FORMAT_GRAY, bytes: noise)
        let jpeg = JPEGWriter.write(width: 64, height: 64, colorSpace: JCS_GRAYSCALE, samples: noise)
        let bad: [(String, [UInt8])] = [
            ("truncated.png", Array(png.prefix(png.count / 2))),
            ("empty.png", []),
            ("download.png", Array("<html><body>404</body></html>".utf8)),
            ("truncated.jpg", Array(jpeg.prefix(jpeg.count / 2))),
        ]
        for (name, bytes) in bad {
            let root = try TemporaryFolder()
            for i in 0..<2 {
                try root.write("d/a/\(i).png", PNGWriter.write(width: 64, height: 64, format: PNG_FORMAT_GRAY, bytes: noise))
                try root.write("d/b/\(i).jpg", jpeg)
            }
            let path = try root.write("d/b/" + name, bytes)
            assertFolderError(try load(root.path + "/d")) { error in
                XCTAssertTrue(error.description.hasPrefix(path + " "), "\(name): \(error)")
                if name == "download.png" { XCTAssertTrue(error.description.contains("HTML"), error.description) }
                XCTAssertTrue(error.description.contains("`skip-bad`"), error.description)
            }
            let (data, report) = try load(root.path + "/d", testFraction: 0.5, skipBad: true)
            XCTAssertEqual(data.train.count + data.test.count, 4, name)
            XCTAssertEqual(report.skipped.map(\.path), [path], name)
            XCTAssertTrue(report.description.contains("skipped 1 unreadable file:\n  \(path): "), report.description)
        }
    }

    func testTooManyDecodedBytesAreRefusedWithASmallerSizeSuggested() throws {
        let root = try TemporaryFolder()
        for i in 0..<4 { try writeGray(root, "d/\(i < 2 ? "a" : "b")/\(i).png", value: 1) }
        // 4 images × 2×3 × 1 channel × 4 bytes = 96 bytes: refused under 95, loaded at 96.
        XCTAssertNoThrow(try DatasetCatalog.load(imagesDirectory: root.path + "/d", size: nil, color: nil, testFraction: 0.5, seed: 0,
                                                 skipBad: false, memoryLimitBytes: 96))
        assertFolderError(try DatasetCatalog.load(imagesDirectory: root.path + "/d", size: (height: 512, width: 512), color: .rgb,
                                                  testFraction: 0.5, seed: 0, skipBad: false, memoryLimitBytes: 8 << 20)) { error in
            // 4 × 512 × 512 × 3 × 4 bytes = 12 MB; 8 MB holds 4 × 3 × 4 × s² for s up to 418, so 416.
            XCTAssertEqual(error, .tooMuchMemory(megabytes: 12, limitMegabytes: 8, suggestedSide: 416))
            XCTAssertTrue(error.description.contains("12 MB") && error.description.contains("`size 416x416`"), error.description)
        }
    }

    // MARK: - Helpers

    private func load(_ directory: String, size: (height: Int, width: Int)? = nil, color: ImageColor? = nil,
                      testFraction: Double? = nil, seed: UInt64 = 1,
                      skipBad: Bool = false) throws -> (dataset: Dataset, report: ImageFolderReport) {
        try DatasetCatalog.load(imagesDirectory: directory, size: size, color: color, testFraction: testFraction, seed: seed, skipBad: skipBad)
    }

    /// A 3-wide, 2-high gray PNG of one value.
    private func writeGray(_ root: TemporaryFolder, _ relative: String, value: UInt8) throws {
        try root.write(relative, PNGWriter.write(width: 3, height: 2, format: PNG_FORMAT_GRAY, bytes: [UInt8](repeating: value, count: 6)))
    }

    /// The first value of each image.
    /// "label:first pixel value" of every image, sorted: a split's content whatever its order.
    private static func labelled(_ split: Split) -> [String] {
        let values = split.images.count / max(split.count, 1)
        return zip(split.labels, firstPixels(split, values: values)).map { "\($0):\(Int(($1 * 255).rounded()))" }
            .sorted { ($0.split(separator: ":").map { Int($0)! }).lexicographicallyPrecedes($1.split(separator: ":").map { Int($0)! }) }
    }

    private static func firstPixels(_ split: Split, values: Int) -> [Float] {
        stride(from: 0, to: split.images.count, by: values).map { split.images[$0] }
    }

    private static func hasMarker(_ marker: UInt8, in bytes: [UInt8]) -> Bool {
        zip(bytes, bytes.dropFirst()).contains { $0 == 0xFF && $1 == marker }
    }

    private func assertClose(_ got: [Float], _ expected: [Float], tolerance: Float, _ message: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, expected.count, message, file: file, line: line)
        let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, "\(message): worst difference \(worst * 255)/255", file: file, line: line)
    }

    private func assertImageError<T>(_ body: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line,
                                     _ check: (ImageError) -> Void) {
        do {
            _ = try body()
            XCTFail("expected an ImageError, got a value", file: file, line: line)
        } catch let error as ImageError {
            XCTAssertFalse(error.description.contains("\n"), "one line: \(error)", file: file, line: line)
            check(error)
        } catch {
            XCTFail("expected an ImageError, got \(error)", file: file, line: line)
        }
    }

    private func assertFolderError<T>(_ body: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line,
                                      _ check: (ImageFolderError) -> Void) {
        do {
            _ = try body()
            XCTFail("expected an ImageFolderError, got a value", file: file, line: line)
        } catch let error as ImageFolderError {
            XCTAssertFalse(error.description.contains("\n"), "one line: \(error)", file: file, line: line)
            check(error)
        } catch {
            XCTFail("expected an ImageFolderError, got \(error)", file: file, line: line)
        }
    }
}

// MARK: - Encoders

/// PNGs through libpng's simplified write API.
private enum PNGWriter {
    /// 8-bit samples in `format`'s layout; for a color-mapped format, indices into `colormap`.
    static func write(width: Int, height: Int, format: some BinaryInteger, bytes: [UInt8], colormap: [UInt8] = []) -> [UInt8] {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = png_uint_32(format)
        image.colormap_entries = png_uint_32(colormap.count / 3)
        return bytes.withUnsafeBytes { samples in
            colormap.withUnsafeBytes { map in
                encode(&image, samples.baseAddress!, colormap: colormap.isEmpty ? nil : map.baseAddress)
            }
        }
    }

    /// 16-bit gray, written as libpng writes linear data.
    static func write(width: Int, height: Int, wide: [UInt16]) -> [UInt8] {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = PNG_FORMAT_LINEAR_Y
        return wide.withUnsafeBytes { encode(&image, $0.baseAddress!, colormap: nil) }
    }

    private static func encode(_ image: inout png_image, _ samples: UnsafeRawPointer, colormap: UnsafeRawPointer?) -> [UInt8] {
        var size: png_alloc_size_t = 0
        guard png_image_write_to_memory(&image, nil, &size, 0, samples, 0, colormap) != 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        guard png_image_write_to_memory(&image, &bytes, &size, 0, samples, 0, colormap) != 0 else { return [] }
        return Array(bytes.prefix(Int(size)))
    }
}

/// A PNG written by hand (chunks, zlib, CRCs), for what the simplified API does not write:
/// 1-bit and big-endian 16-bit files without a gamma chunk, and headers that lie.
private enum RawPNG {
    /// `rows` are the packed scanlines without their filter byte (filter 0 is added).
    static func write(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]]) -> [UInt8] {
        var header = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        header += [bitDepth, colorType, 0, 0, 0]
        let scanlines: [UInt8] = rows.flatMap { row -> [UInt8] in [0] + row }
        var compressed = [UInt8](repeating: 0, count: Int(compressBound(uLong(scanlines.count))))
        var length = uLongf(compressed.count)
        _ = compress(&compressed, &length, scanlines, uLong(scanlines.count))
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", header) + chunk("IDAT", Array(compressed.prefix(Int(length)))) + chunk("IEND", [])
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        let crc = body.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc)
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}

/// JPEGs through libjpeg's compressor: quality 95, no chroma subsampling.
private enum JPEGWriter {
    /// `samples` in `colorSpace` (gray, RGB or CMYK), stored as `stored` (the library's choice when nil).
    static func write(width: Int, height: Int, colorSpace: J_COLOR_SPACE, samples: [UInt8], progressive: Bool = false,
                      stored: J_COLOR_SPACE? = nil, metadataBytes: Int = 0) -> [UInt8] {
        let components = colorSpace == JCS_GRAYSCALE ? 1 : colorSpace == JCS_CMYK ? 4 : 3
        // libjpeg keeps these pointers until the end, so none may be a Swift temporary.
        let errors = UnsafeMutablePointer<jpeg_error_mgr>.allocate(capacity: 1)
        let info = UnsafeMutablePointer<jpeg_compress_struct>.allocate(capacity: 1)
        let output = UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>.allocate(capacity: 1)
        let outputSize = UnsafeMutablePointer<UInt>.allocate(capacity: 1)
        defer { errors.deallocate(); info.deallocate(); output.deallocate(); outputSize.deallocate() }
        info.initialize(to: jpeg_compress_struct())
        output.initialize(to: nil)
        outputSize.initialize(to: 0)
        info.pointee.err = jpeg_std_error(errors)
        // The default would exit() the test run; a test fixture may stop it loudly instead.
        errors.pointee.error_exit = { common in fatalError("libjpeg could not encode: message \(common!.pointee.err.pointee.msg_code)") }
        jpeg_CreateCompress(info, JPEG_LIB_VERSION, MemoryLayout<jpeg_compress_struct>.size)
        defer { jpeg_destroy_compress(info) }
        jpeg_mem_dest(info, output, outputSize)
        info.pointee.image_width = JDIMENSION(width)
        info.pointee.image_height = JDIMENSION(height)
        info.pointee.input_components = Int32(components)
        info.pointee.in_color_space = colorSpace
        jpeg_set_defaults(info)
        if let stored { jpeg_set_colorspace(info, stored) }
        jpeg_set_quality(info, 95, 1)
        for c in 0..<Int(info.pointee.num_components) {
            info.pointee.comp_info[c].h_samp_factor = 1
            info.pointee.comp_info[c].v_samp_factor = 1
        }
        if progressive { jpeg_simple_progression(info) }
        jpeg_start_compress(info, 1)
        // APP1 segments (as EXIF) between the file header and the frame header, 60000 bytes at most each.
        var metadata = [UInt8](repeating: 0x45, count: 60000)
        for start in stride(from: 0, to: metadataBytes, by: 60000) {
            jpeg_write_marker(info, JPEG_APP0 + 1, &metadata, UInt32(min(60000, metadataBytes - start)))
        }
        samples.withUnsafeBufferPointer { buffer in
            for y in 0..<height {
                var row: JSAMPROW? = UnsafeMutablePointer(mutating: buffer.baseAddress! + y * width * components)
                _ = jpeg_write_scanlines(info, &row, 1)
            }
        }
        jpeg_finish_compress(info)
        guard let bytes = output.pointee else { return [] }
        defer { free(bytes) }
        return Array(UnsafeBufferPointer(start: bytes, count: Int(outputSize.pointee)))
    }
}
