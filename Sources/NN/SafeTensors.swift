import Foundation
import Tensor

/// The safetensors file format: an 8-byte little-endian header length, a JSON header
/// {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}
/// padded with spaces to a multiple of 8, then the raw little-endian data. PyTorch, JAX and
/// Julia read it directly.
public enum SafeTensors {
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) -> Data {
        let names = tensors.keys.sorted()
        var offset = 0
        var entries: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            entries.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        for name in names {
            let t = tensors[name]!
            let bytes = t.count * 4
            entries.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var header = Array("{\(entries.joined(separator: ","))}".utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var data = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: header)
        for name in names {
            tensors[name]!.data.withUnsafeBufferPointer { values in
                #if _endian(big)
                for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
                #else
                data.append(UnsafeBufferPointer(start: UnsafeRawPointer(values.baseAddress!).assumingMemoryBound(to: UInt8.self),
                                                count: values.count * 4))
                #endif
            }
        }
        return data
    }

    /// Parses a safetensors file; every malformation is a ModelError naming what is wrong.
    public static func decode(_ data: Data, source: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        func bad(_ why: String) -> ModelError { ModelError("\(source) is not a valid safetensors file: \(why)") }
        guard data.count >= 8 else { throw bad("it is only \(data.count) bytes long") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8) else { throw bad("the header length \(headerLength) runs past the end (truncated?)") }
        let header = data.subdata(in: 8..<(8 + Int(headerLength)))
        guard let json = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            throw bad("the header is not a JSON object")
        }
        let body = data.subdata(in: (8 + Int(headerLength))..<data.count)
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in json {
            if name == "__metadata__" {
                guard let fields = value as? [String: String] else { throw bad("__metadata__ must map strings to strings") }
                metadata = fields
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = (entry["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  let offsets = (entry["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  offsets.count == 2 else {
                throw bad("tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            guard dtype == "F32" else { throw bad("tensor '\(name)' is \(dtype); ollie reads F32 only") }
            let count = shape.reduce(1, *)
            guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[1] <= body.count, offsets[1] - offsets[0] == count * 4 else {
                throw bad("tensor '\(name)' has data_offsets \(offsets) that do not fit its shape \(shape) and the \(body.count) data bytes")
            }
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBytes { target in
                body.copyBytes(to: target.bindMemory(to: UInt8.self), from: offsets[0]..<offsets[1])
            }
            #if _endian(big)
            values = values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }
            #endif
            tensors[name] = Tensor(shape, values)
        }
        return (tensors, metadata)
    }

    private static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

/// A model's weights and its optimizer's state in one safetensors file. Weights use PyTorch's
/// names and layouts ("conv1.weight" [16, 1, 3, 3], "fc.weight" [10, 288]), so the same network
/// written in PyTorch loads them with `load_state_dict`; optimizer state sits under
/// "optimizer.<param>.m" etc., and counters in the metadata.
public enum Checkpoint {
    public static func save(model: Model, optimizer: Optimizer, metadata: [String: String], to path: String) throws {
        var tensors: [String: Tensor] = [:]
        for p in model.parameters { tensors[p.name] = pytorchLayout(p, model) }
        for (key, t) in optimizer.state(for: model.parameters) { tensors["optimizer.\(key)"] = t }
        var meta = metadata
        meta["format"] = "pt"
        meta["ollie.model"] = model.description
        meta["ollie.optimizer"] = optimizer.kind
        meta["ollie.learning_rate"] = String(optimizer.learningRate)
        meta["ollie.optimizer_steps"] = String(optimizer.stepCount)
        let url = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            // Write then rename, so a crash never leaves half a checkpoint under the real name.
            try SafeTensors.encode(tensors, metadata: meta).write(to: url, options: .atomic)
        } catch {
            throw ModelError("could not write \(path): \(error.localizedDescription)")
        }
    }

    public static func read(_ path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError("no checkpoint at \(path); list saved ones with: ls checkpoints")
        }
        return try SafeTensors.decode(data, source: path)
    }

    /// Copies the weights into `model` (every parameter must be present with the right size).
    public static func loadWeights(_ tensors: [String: Tensor], into model: Model) throws {
        for p in model.parameters {
            guard let t = tensors[p.name] else { throw ModelError("the checkpoint has no '\(p.name)'; was it saved from another model?") }
            guard t.count == p.value.count else {
                throw ModelError("'\(p.name)' is \(t.shape.map(String.init).joined(separator: "×")) in the checkpoint but \(pytorchShape(p, model).map(String.init).joined(separator: "×")) in this model")
            }
        }
        for p in model.parameters { p.value.data = tensors[p.name]!.data }
    }

    /// Rebuilds an optimizer of the saved kind with the saved state.
    public static func loadOptimizer(_ tensors: [String: Tensor], metadata: [String: String], for model: Model) throws -> Optimizer {
        let rate = Float(metadata["ollie.learning_rate"] ?? "") ?? 3e-3
        let steps = Int(metadata["ollie.optimizer_steps"] ?? "") ?? 0
        let optimizer: Optimizer
        switch metadata["ollie.optimizer"] ?? "adam" {
        case "sgd": optimizer = SGD(learningRate: rate, momentum: 0)
        case "momentum": optimizer = SGD(learningRate: rate, momentum: 0.9)
        default: optimizer = Adam(learningRate: rate)
        }
        var state: [String: Tensor] = [:]
        for (key, t) in tensors where key.hasPrefix("optimizer.") { state[String(key.dropFirst("optimizer.".count))] = t }
        try optimizer.restore(state, stepCount: steps, for: model.parameters)
        return optimizer
    }

    /// Conv weights are stored [OC, C·k·k] here, which is PyTorch's [OC, C, k, k] in memory.
    static func pytorchShape(_ p: Parameter, _ model: Model) -> [Int] {
        for (_, layer) in model.layers {
            if let conv = layer as? Conv2D, conv.weight.value === p.value {
                return [conv.outChannels, conv.inChannels, conv.kernel, conv.kernel]
            }
        }
        return p.value.shape
    }

    static func pytorchLayout(_ p: Parameter, _ model: Model) -> Tensor {
        Tensor(pytorchShape(p, model), p.value.data)
    }
}
