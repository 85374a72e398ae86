import Foundation
import Files
import ONNXProto
import SwiftProtobuf
import Tensor

/// An ONNX model file, read and written whole through swift-protobuf's types generated from
/// `onnx.proto` (Sources/ONNXProto, made by scripts/generate-onnx-proto.sh). Weights stored
/// beside the file (external data, as `torch.onnx` writes models over 2 GB) are read in.
public enum ONNXFile {
    /// The model in `path`, with every external tensor's bytes brought in as raw data; throws
    /// one line for a missing, truncated or corrupt file or a missing external-data file.
    public static func read(_ path: String) throws -> Onnx_ModelProto {
        let bytes: [UInt8]
        do { bytes = try FileContents.read(path) } catch { throw ONNXError("\(error)") }
        guard !bytes.isEmpty else { throw ONNXError("\(path) is empty: not an ONNX model") }
        var model: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 200
            model = try Onnx_ModelProto(serializedBytes: bytes, partial: true, options: options)
        } catch {
            throw ONNXError("\(path) is not a readable ONNX model (truncated or corrupt: \(error)); export it again")
        }
        guard model.hasGraph, !model.graph.node.isEmpty else {
            throw ONNXError("\(path) holds no ONNX graph (truncated, or not an ONNX model); export it again")
        }
        let folder = (path as NSString).deletingLastPathComponent
        for index in model.graph.initializer.indices where model.graph.initializer[index].dataLocation == .external {
            try bringIn(&model.graph.initializer[index], from: folder, modelPath: path)
        }
        return model
    }

    /// Writes `model` to `path` (write-then-rename: an interrupted export leaves no half file).
    public static func write(_ model: Onnx_ModelProto, to path: String) throws {
        let data: Data
        do { data = try model.serializedData() } catch { throw ONNXError("cannot encode the ONNX model: \(error)") }
        _ = try SafeFile.write(data, to: path)
    }

    /// Reads an external tensor's bytes (keys `location`, `offset`, `length` of the ONNX spec).
    static func bringIn(_ tensor: inout Onnx_TensorProto, from folder: String, modelPath: String) throws {
        let entries = Dictionary(tensor.externalData.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        guard let location = entries["location"], !location.isEmpty, !location.hasPrefix("/"),
              !location.split(separator: "/").contains("..") else {
            throw ONNXError("\(modelPath): tensor '\(tensor.name)' names no usable external-data file (its location must be a path beside the model)")
        }
        let file = (folder as NSString).appendingPathComponent(location)
        let bytes: [UInt8]
        do { bytes = try FileContents.read(file) } catch {
            throw ONNXError("\(modelPath): the external-data file \(location) of tensor '\(tensor.name)' cannot be read (\(error)); keep it beside the model")
        }
        let offset = Int(entries["offset"] ?? "0") ?? -1
        let length = entries["length"].map { Int($0) ?? -1 } ?? (bytes.count - max(offset, 0))
        guard offset >= 0, length >= 0, offset + length <= bytes.count else {
            throw ONNXError("\(modelPath): tensor '\(tensor.name)' lies past the end of \(location) (truncated external data)")
        }
        tensor.rawData = Data(bytes[offset..<(offset + length)])
        tensor.dataLocation = .default
        tensor.externalData = []
    }
}

/// One line saying what is wrong with an ONNX model and what to do.
public struct ONNXError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

// MARK: - Tensors

extension Onnx_TensorProto {
    /// A float tensor named `name`, stored as raw little-endian bytes (what exporters write).
    public init(name: String, shape: [Int], floats: [Float]) {
        self.init()
        self.name = name
        dims = shape.map(Int64.init)
        dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        rawData = floats.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    /// An int64 tensor (shapes for Reshape, axes).
    public init(name: String, shape: [Int], int64s: [Int64]) {
        self.init()
        self.name = name
        dims = shape.map(Int64.init)
        dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        rawData = int64s.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    public var shape: [Int] { dims.map(Int.init) }

    /// Its values as floats (float, double or float16 storage); throws naming the tensor otherwise.
    public func floatValues() throws -> [Float] {
        let count = dims.reduce(1) { $0 * Int($1) }
        guard count >= 0 else { throw ONNXError("tensor '\(name)' has a negative dimension") }
        let values: [Float]
        switch Onnx_TensorProto.DataType(rawValue: Int(dataType)) {
        case .float?:
            values = rawData.isEmpty ? floatData : rawData.withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
        case .double?:
            values = rawData.isEmpty ? doubleData.map(Float.init) : rawData.withUnsafeBytes { raw in
                (0..<(raw.count / 8)).map { Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
            }
        case .float16?:
            // float16 is stored in int32_data (one value each) or as raw 2-byte values.
            let halves: [UInt16] = rawData.isEmpty ? int32Data.map { UInt16(truncatingIfNeeded: $0) } : rawData.withUnsafeBytes { raw in
                (0..<(raw.count / 2)).map { UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
            }
            values = halves.map { Float(Float16(bitPattern: $0)) }
        default:
            throw ONNXError("tensor '\(name)' holds \(Onnx_TensorProto.DataType(rawValue: Int(dataType)).map { "\($0)" } ?? "type \(dataType)") values, not floats")
        }
        guard values.count == count else {
            throw ONNXError("tensor '\(name)' has \(values.count) values for its shape \(dims) (\(count)); the file is corrupt")
        }
        return values
    }

    /// Its values as integers (int64 or int32 storage: shapes, axes, pads).
    public func integerValues() throws -> [Int] {
        switch Onnx_TensorProto.DataType(rawValue: Int(dataType)) {
        case .int64?:
            return rawData.isEmpty ? int64Data.map(Int.init) : rawData.withUnsafeBytes { raw in
                (0..<(raw.count / 8)).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
            }
        case .int32?:
            return rawData.isEmpty ? int32Data.map(Int.init) : rawData.withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            }
        default:
            throw ONNXError("tensor '\(name)' holds \(dataType)-typed values, not integers")
        }
    }

    /// As an ollie tensor, with the same shape.
    public func tensor() throws -> Tensor { Tensor(shape, try floatValues()) }
}
