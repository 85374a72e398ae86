import Foundation
import Files
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

    /// Parses a safetensors file; every malformation (truncation, bad JSON, a wrong dtype,
    /// offsets outside the data or not matching the shape) is a ModelError naming what is wrong.
    public static func decode(_ data: Data, source: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        func bad(_ why: String) -> ModelError { ModelError("\(source) is not a valid safetensors file: \(why)") }
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw bad("it is only \(bytes.count) bytes long (truncated?)") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw bad("the header claims \(headerLength) bytes but only \(bytes.count - 8) follow (truncated?)")
        }
        let bodyStart = 8 + Int(headerLength)
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(bytes[8..<bodyStart])),
              let json = parsed as? [String: Any] else {
            throw bad("the header is not a JSON object")
        }
        let bodyCount = bytes.count - bodyStart
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in json {
            if name == "__metadata__" {
                guard let fields = value as? [String: Any] else { throw bad("__metadata__ must map strings to strings") }
                for (key, field) in fields {
                    guard let text = field as? String else { throw bad("__metadata__ value for '\(key)' is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = integers(entry["shape"]), let offsets = integers(entry["data_offsets"]),
                  offsets.count == 2 else {
                throw bad("tensor '\(name)' lacks a dtype, an integer shape or two integer data_offsets")
            }
            guard dtype == "F32" else { throw bad("tensor '\(name)' is \(dtype); ollie reads F32 only") }
            var count = 1
            for size in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: size)
                guard size >= 0, !overflow, product <= Int(Int32.max) else {
                    throw bad("tensor '\(name)' has an impossible shape \(shape)")
                }
                count = product
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= bodyCount else {
                throw bad("tensor '\(name)' has data_offsets [\(begin), \(end)] outside the \(bodyCount) data bytes (truncated?)")
            }
            guard end - begin == count * 4 else {
                throw bad("tensor '\(name)' has \(end - begin) data bytes but its shape \(shape) needs \(count * 4)")
            }
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBytes { target in
                bytes.withUnsafeBytes { source in
                    target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[(bodyStart + begin)..<(bodyStart + end)]))
                }
            }
            #if _endian(big)
            values = values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }
            #endif
            tensors[name] = Tensor(shape, values)
        }
        return (tensors, metadata)
    }

    /// A JSON array of whole numbers, or nil.
    private static func integers(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var out: [Int] = []
        for element in array {
            guard let number = element as? NSNumber else { return nil }
            let d = number.doubleValue
            guard d.rounded() == d, abs(d) < 0x1p53 else { return nil }
            out.append(Int(d))
        }
        return out
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
/// names and layouts ("conv1.weight" [16, 1, 3, 3], "fc.weight" [10, 288], "fc.bias" [10]), so
/// the same network written in PyTorch loads them with `load_state_dict`. Optimizer state sits
/// under "optimizer.<param>.m" / ".v" (Adam, AdamW), ".momentum" (SGD with momentum or Nesterov)
/// or ".square_avg" (RMSprop); its kind, step count, learning rate, weight decay and constants
/// (β₁, β₂, ε; momentum; α), and the model's description, are in the metadata.
public enum Checkpoint {
    public static let optimizerPrefix = "optimizer."
    /// Metadata keys of the optimizer's constants, e.g. "ollie.optimizer.beta1".
    static let constantPrefix = "ollie.optimizer."

    public static func save(model: Model, optimizer: Optimizer, metadata: [String: String] = [:], to path: String) throws {
        var tensors: [String: Tensor] = [:]
        for p in model.parameters + model.buffers { tensors[p.name] = p.value }
        for (key, t) in optimizer.state(for: model.parameters) { tensors[optimizerPrefix + key] = t }
        var meta = metadata
        meta["format"] = "pt"
        meta["ollie.model"] = model.description
        meta["ollie.optimizer"] = optimizer.kind
        meta["ollie.learning_rate"] = String(optimizer.learningRate)
        meta["ollie.optimizer_steps"] = String(optimizer.stepCount)
        meta["ollie.weight_decay"] = String(optimizer.weightDecay)
        for (name, value) in optimizer.constants { meta[constantPrefix + name] = String(value) }
        do {
            // Write then rename, so a crash never leaves half a checkpoint under the real name.
            try SafeFile.write(SafeTensors.encode(tensors, metadata: meta), to: path)
        } catch let error as FileWriteError {
            throw ModelError(error.description)
        }
    }

    /// The tensors and metadata of a checkpoint file.
    public static func load(from path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let bytes: [UInt8]
        do { bytes = try FileContents.read(path) } catch FileReadError.notFound {
            throw ModelError("no checkpoint at \(path); list saved ones with: ls checkpoints")
        } catch {
            throw ModelError("\(error)")
        }
        return try SafeTensors.decode(Data(bytes), source: path)
    }

    /// Restores a checkpoint into an existing model and (optionally) optimizer: weights, then
    /// the optimizer's moments, step count and learning rate. Everything is checked before
    /// anything changes, so a failed apply leaves both untouched.
    public static func apply(_ tensors: [String: Tensor], metadata: [String: String], to model: Model, optimizer: Optimizer?) throws {
        try checkWeights(tensors, model)
        if let optimizer {
            let saved = metadata["ollie.optimizer"] ?? "none"
            guard saved == optimizer.kind else {
                throw ModelError("the checkpoint holds \(saved) optimizer state but the optimizer here is \(optimizer.kind); set optimizer \(saved) first")
            }
            guard let steps = Int(metadata["ollie.optimizer_steps"] ?? ""), steps >= 0,
                  let rate = Float(metadata["ollie.learning_rate"] ?? ""), rate.isFinite else {
                throw ModelError("the checkpoint's metadata lacks the optimizer's step count or learning rate")
            }
            for (name, value) in try savedConstants(metadata) where optimizer.constants[name] != value {
                throw ModelError("the checkpoint's \(saved) \(name) is \(value), the optimizer here has \(optimizer.constants[name].map { String($0) } ?? "none")")
            }
            let weightDecay = try savedWeightDecay(metadata)
            try optimizer.restore(optimizerState(tensors), stepCount: steps, for: model.parameters)
            optimizer.learningRate = rate
            optimizer.weightDecay = weightDecay
        }
        copyWeights(tensors, model)
    }

    /// Copies the weights into `model`; every parameter must be present with its exact shape.
    public static func loadWeights(_ tensors: [String: Tensor], into model: Model) throws {
        try checkWeights(tensors, model)
        copyWeights(tensors, model)
    }

    /// Rebuilds an optimizer of the saved kind with the saved state; nil for a file of weights
    /// only (no optimizer metadata or state, e.g. one written by PyTorch). Partial optimizer
    /// information is an error, not a guess.
    public static func loadOptimizer(_ tensors: [String: Tensor], metadata: [String: String], for model: Model) throws -> Optimizer? {
        let hasState = tensors.keys.contains { $0.hasPrefix(optimizerPrefix) }
        guard metadata["ollie.optimizer"] != nil || hasState else { return nil }
        guard let steps = Int(metadata["ollie.optimizer_steps"] ?? ""), steps >= 0,
              let rate = Float(metadata["ollie.learning_rate"] ?? ""), rate.isFinite, metadata["ollie.optimizer"] != nil else {
            throw ModelError("the checkpoint has optimizer state but its metadata lacks the optimizer's kind, step count or learning rate")
        }
        // Checkpoints written before the constants were recorded used these defaults.
        let constants = try savedConstants(metadata)
        guard let kind = OptimizerKind(rawValue: metadata["ollie.optimizer"]!) else {
            throw ModelError("the checkpoint's optimizer '\(metadata["ollie.optimizer"]!)' is unknown; expected one of \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let optimizer = kind.make(learningRate: rate, weightDecay: try savedWeightDecay(metadata), constants: constants)
        try optimizer.restore(optimizerState(tensors), stepCount: steps, for: model.parameters)
        return optimizer
    }

    /// The weight decay a checkpoint was saved with; 0 for one written before it was recorded
    /// (there was none then).
    private static func savedWeightDecay(_ metadata: [String: String]) throws -> Float {
        guard let text = metadata["ollie.weight_decay"] else { return 0 }
        guard let value = Float(text), value.isFinite, value >= 0 else {
            throw ModelError("the checkpoint's metadata ollie.weight_decay = '\(text)' is not a number ≥ 0")
        }
        return value
    }

    /// The optimizer constants in the metadata; a value that is not a finite number is an error.
    private static func savedConstants(_ metadata: [String: String]) throws -> [String: Float] {
        var constants: [String: Float] = [:]
        for (key, text) in metadata where key.hasPrefix(constantPrefix) {
            guard let value = Float(text), value.isFinite else {
                throw ModelError("the checkpoint's metadata \(key) = '\(text)' is not a number")
            }
            constants[String(key.dropFirst(constantPrefix.count))] = value
        }
        return constants
    }

    private static func optimizerState(_ tensors: [String: Tensor]) -> [String: Tensor] {
        var state: [String: Tensor] = [:]
        for (key, t) in tensors where key.hasPrefix(optimizerPrefix) { state[String(key.dropFirst(optimizerPrefix.count))] = t }
        return state
    }

    /// Throws unless every parameter of `model` is present with its exact shape.
    public static func checkWeights(_ tensors: [String: Tensor], _ model: Model) throws {
        for p in model.parameters + model.buffers {
            guard let t = tensors[p.name] else {
                throw ModelError("the checkpoint has no '\(p.name)'; was it saved from another model?")
            }
            guard t.shape == p.value.shape else {
                throw ModelError("'\(p.name)' is \(shapeText(t.shape)) in the checkpoint but \(shapeText(p.value.shape)) in this model")
            }
        }
    }

    /// Copies checked weights (see `checkWeights`) into `model`.
    public static func copyWeights(_ tensors: [String: Tensor], _ model: Model) {
        for p in model.parameters + model.buffers {
            let source = tensors[p.name]!
            p.value.data.withUnsafeMutableBufferPointer { target in
                source.data.withUnsafeBufferPointer { target.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
            }
        }
    }
}
