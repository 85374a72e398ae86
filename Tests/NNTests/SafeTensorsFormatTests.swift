import Foundation
import XCTest
@testable import NN
import Tensor

/// The safetensors byte layout, its round trip, and every corruption as a thrown ModelError.
final class SafeTensorsFormatTests: XCTestCase {
    private func headerLength(_ bytes: [UInt8]) -> Int {
        (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
    }

    func testEncodeLayoutHeaderLengthJSONFieldsAndMetadata() throws {
        let tensors = ["conv.weight": Tensor([2, 1, 1, 3], [1, 2, 3, 4, 5, 6]), "bias": Tensor([1], [-0.5])]
        let data = SafeTensors.encode(tensors, metadata: ["format": "pt", "note": "a \"quoted\" value"])
        let bytes = [UInt8](data)
        XCTAssertGreaterThanOrEqual(bytes.count, 8)
        let length = headerLength(bytes)
        XCTAssertEqual(length % 8, 0, "the header is padded to a multiple of 8")
        XCTAssertEqual(bytes.count, 8 + length + 7 * 4, "header, then exactly the tensors' bytes")

        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as? [String: Any])
        XCTAssertEqual(Set(json.keys), ["__metadata__", "conv.weight", "bias"])
        var ranges: [(String, Int, Int)] = []
        for (name, t) in tensors {
            let entry = try XCTUnwrap(json[name] as? [String: Any], name)
            XCTAssertEqual(entry["dtype"] as? String, "F32")
            XCTAssertEqual((entry["shape"] as? [NSNumber])?.map(\.intValue), t.shape)
            let offsets = try XCTUnwrap((entry["data_offsets"] as? [NSNumber])?.map(\.intValue))
            XCTAssertEqual(offsets.count, 2)
            XCTAssertEqual(offsets[1] - offsets[0], t.count * 4)
            ranges.append((name, offsets[0], offsets[1]))
            // The raw bytes at those offsets are the little-endian Float32 values.
            let body = Array(bytes[(8 + length + offsets[0])..<(8 + length + offsets[1])])
            let values = (0..<t.count).map { k -> Float in
                Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(body[4 * k + $1]) << (8 * UInt32($1)) })
            }
            XCTAssertEqual(values, t.data, name)
        }
        // The data ranges tile the body without gaps or overlaps, in name order (so the same
        // tensors always give the same bytes).
        ranges.sort { $0.1 < $1.1 }
        XCTAssertEqual(ranges.map(\.0), tensors.keys.sorted())
        XCTAssertEqual(ranges.first?.1, 0)
        for k in 1..<ranges.count { XCTAssertEqual(ranges[k].1, ranges[k - 1].2) }
        XCTAssertEqual(ranges.last?.2, 7 * 4)
        let metadata = try XCTUnwrap(json["__metadata__"] as? [String: String])
        XCTAssertEqual(metadata, ["format": "pt", "note": "a \"quoted\" value"])
    }

    func testDecodeOfEncodeRoundTripsValuesShapesAndMetadata() throws {
        var random = Random(seed: 1)
        var tensors: [String: Tensor] = [:]
        for (name, shape) in [("a", [3]), ("b.weight", [4, 2, 3, 3]), ("c", [1, 5]), ("d", [7])] {
            let t = Tensor(shape)
            for i in 0..<t.count { t.data[i] = random.normal() }
            tensors[name] = t
        }
        tensors["d"]!.data[0] = .greatestFiniteMagnitude
        tensors["d"]!.data[1] = -.leastNonzeroMagnitude
        tensors["d"]!.data[2] = -0.0
        tensors["d"]!.data[3] = .infinity
        let metadata = ["format": "pt", "ollie.model": "Chain(\n  relu,\n)", "empty": "", "unicode": "β₁ ✓"]
        let (decoded, decodedMetadata) = try SafeTensors.decode(SafeTensors.encode(tensors, metadata: metadata), source: "memory")
        XCTAssertEqual(Set(decoded.keys), Set(tensors.keys))
        for (name, t) in tensors {
            XCTAssertEqual(decoded[name]?.shape, t.shape, name)
            XCTAssertEqual(decoded[name]?.data.map(\.bitPattern), t.data.map(\.bitPattern), name)
        }
        XCTAssertEqual(decodedMetadata, metadata)

        // No metadata at all also round-trips.
        let (plain, plainMetadata) = try SafeTensors.decode(SafeTensors.encode(["x": Tensor([2], [1, 2])]), source: "memory")
        XCTAssertEqual(plain["x"]?.data, [1, 2])
        XCTAssertEqual(plainMetadata, [:])
    }

    /// A file with this header text (padded to a multiple of 8) and these data bytes.
    private func file(header: String, body: [UInt8] = [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]) -> Data {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(UInt8(ascii: " ")) }
        var out = Data()
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        out.append(contentsOf: body)
        return out
    }

    func testTheTestFileBuilderMakesAValidFile() throws {
        let (tensors, _) = try SafeTensors.decode(file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#),
                                                  source: "ok")
        XCTAssertEqual(tensors["x"]?.data, [1, 2])
    }

    func testFewerThan8BytesThrowsAModelError() {
        for count in 0..<8 {
            NNTestSupport.assertModelError("\(count) bytes") {
                _ = try SafeTensors.decode(Data(repeating: 1, count: count), source: "short")
            }
        }
    }

    func testHeaderLengthPastTheEndThrowsAModelError() {
        var data = file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#)
        data.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) })
        NNTestSupport.assertModelError("header length = file size") { _ = try SafeTensors.decode(data, source: "long") }
        data.replaceSubrange(0..<8, with: [UInt8](repeating: 0xff, count: 8))
        NNTestSupport.assertModelError("header length = 2⁶⁴−1") { _ = try SafeTensors.decode(data, source: "huge") }
        data.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1) << 63) { Array($0) })
        NNTestSupport.assertModelError("header length = 2⁶³") { _ = try SafeTensors.decode(data, source: "huge") }
    }

    func testHeaderThatIsNotJSONThrowsAModelError() {
        NNTestSupport.assertModelError("garbage") { _ = try SafeTensors.decode(self.file(header: "not json at all"), source: "x") }
        NNTestSupport.assertModelError("a JSON array") { _ = try SafeTensors.decode(self.file(header: "[1, 2, 3]"), source: "x") }
        NNTestSupport.assertModelError("cut JSON") {
            _ = try SafeTensors.decode(self.file(header: #"{"x":{"dtype":"F32","shape":[2],"#), source: "x")
        }
        NNTestSupport.assertModelError("empty header") { _ = try SafeTensors.decode(self.file(header: ""), source: "x") }
    }

    func testDataOffsetsOutOfRangeThrowAModelError() {
        for offsets in ["[0,12]", "[4,12]", "[8,16]", "[-4,4]", "[8,0]", "[0]", "[0,8,16]", "[0.5,8.5]", "\"0,8\""] {
            let message = NNTestSupport.assertModelError("data_offsets \(offsets)") {
                _ = try SafeTensors.decode(self.file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":"# + offsets + "}}"),
                                           source: "x")
            }
            XCTAssertTrue(message?.contains("'x'") == true, message ?? "")
        }
    }

    func testShapeThatDoesNotMatchTheOffsetsThrowsAModelError() {
        for shape in ["[3]", "[1]", "[2,2]", "[]", "[-2]", "[-1,-8]", "[9223372036854775807,2]", "\"2\""] {
            NNTestSupport.assertModelError("shape \(shape)") {
                _ = try SafeTensors.decode(self.file(header: #"{"x":{"dtype":"F32","shape":"# + shape + #","data_offsets":[0,8]}}"#),
                                           source: "x")
            }
        }
    }

    func testDtypeF16AndOtherNonF32TypesThrowAModelError() {
        for dtype in ["F16", "BF16", "F64", "I32", "U8"] {
            let message = NNTestSupport.assertModelError("dtype \(dtype)") {
                _ = try SafeTensors.decode(self.file(header: #"{"x":{"dtype":""# + dtype + #"","shape":[2],"data_offsets":[0,4]}}"#),
                                           source: "x")
            }
            XCTAssertTrue(message?.contains(dtype) == true, message ?? "")
        }
        NNTestSupport.assertModelError("no dtype") {
            _ = try SafeTensors.decode(self.file(header: #"{"x":{"shape":[2],"data_offsets":[0,8]}}"#), source: "x")
        }
    }

    func testBadMetadataThrowsAModelError() {
        NNTestSupport.assertModelError("numeric metadata") {
            _ = try SafeTensors.decode(self.file(header: #"{"__metadata__":{"steps":3}}"#), source: "x")
        }
        NNTestSupport.assertModelError("metadata not an object") {
            _ = try SafeTensors.decode(self.file(header: #"{"__metadata__":"pt"}"#), source: "x")
        }
    }

    /// Each message names the file and what is wrong with it, for the user who has to fix it.
    func testEachCorruptionsMessageNamesTheFileAndWhatIsWrong() {
        let good = [UInt8](SafeTensors.encode(["w": Tensor([2], [1, 2])]))
        let cases: [(String, Data, String)] = [
            ("too short", Data(good[0..<5]), "bytes long"),
            ("header runs past the end", Data(good[0..<20]), "truncated"),
            ("data truncated", Data(good.dropLast(3)), "outside"),
            ("bad JSON", file(header: "{\"w\": [1, 2"), "not a JSON object"),
            ("not an object", file(header: "[1, 2]"), "not a JSON object"),
            ("offsets past the end", file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#), "outside"),
            ("offsets reversed", file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#), "outside"),
            ("negative offset", file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#), "outside"),
            ("shape mismatch", file(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#), "needs 12"),
            ("huge shape", file(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#), "impossible shape"),
            ("wrong dtype", file(header: #"{"w":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}"#), "F32 only"),
            ("missing fields", file(header: #"{"w":{"dtype":"F32"}}"#), "lacks"),
            ("fractional shape", file(header: #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}"#), "lacks"),
            ("bad metadata", file(header: #"{"__metadata__":{"a":1}}"#), "not a string"),
        ]
        for (name, data, expected) in cases {
            let message = NNTestSupport.assertModelError(name) { _ = try SafeTensors.decode(data, source: "x.safetensors") }
            XCTAssertTrue(message?.contains(expected) == true, "\(name): \(message ?? "")")
            XCTAssertTrue(message?.contains("x.safetensors") == true, "\(name): \(message ?? "")")
        }
    }

    func testTruncatingAValidFileAnywhereThrowsAModelErrorNotACrash() {
        let data = SafeTensors.encode(["a": Tensor([3], [1, 2, 3]), "b": Tensor([2], [4, 5])], metadata: ["k": "v"])
        for cut in 0..<data.count {
            NNTestSupport.assertModelError("cut at \(cut)") { _ = try SafeTensors.decode(data.prefix(cut), source: "cut") }
        }
        XCTAssertNoThrow(try SafeTensors.decode(data, source: "whole"))
    }
}
