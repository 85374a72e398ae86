import Foundation
import NN
import ONNXProto
import Tensor

/// An ONNX classifier as ollie sees it: the spec that builds the same function, one sample's
/// input shape, the class count, and the weights named as `spec.compile` names its tensors.
public struct ImportedNetwork: Sendable {
    public let spec: ModelSpec
    /// One sample: C,H,W for images (C,L 1-D, C,D,H,W 3-D), F for flat features, and for a
    /// sequence model over [N, T, F] the clip 1,T,1,F (read by `frames(flatten)`, which lays
    /// the batch out as ONNX's [N, T, F]).
    public let inputShape: [Int]
    public let classes: Int
    /// "0.weight", "3.body.0.bias", "5.weight_ih_l0_reverse", … exactly as the compiled model's.
    public let tensors: [String: Tensor]
    /// The model's metadata_props.
    public let metadata: [String: String]
}

/// ONNX import: a graph that is a chain of the layers ollie has (with residual blocks) becomes
/// a spec and its weights; anything else is refused in one line naming the node.
public enum ONNXImport {
    /// The operators `network(from:source:)` reads, for errors.
    public static let operators = ["Conv", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "Gelu",
                                   "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Squeeze",
                                   "Gemm", "MatMul", "Add", "Dropout", "Identity", "LSTM", "GRU", "Transpose",
                                   "Shape", "Gather", "Unsqueeze", "Concat", "Constant", "ConstantOfShape"]

    /// The model in the ONNX file at `path`.
    public static func read(_ path: String) throws -> ImportedNetwork {
        try network(from: try ONNXFile.read(path), source: path)
    }

    /// The spec, shapes and weights of `model`; `source` (its file) starts every error.
    public static func network(from model: Onnx_ModelProto, source: String) throws -> ImportedNetwork {
        var walk = GraphWalk(graph: model.graph, source: source)
        let (pieces, input, inputShape, output) = try walk.run()
        let pruned = Piece.droppingFlattenBeforeDense(pieces)
        let spec: ModelSpec
        do { spec = try ModelSpec(parsing: Piece.text(of: pruned)) } catch {
            throw ONNXError("\(source): the imported model \(Piece.text(of: pruned)) does not parse: \(error)")
        }
        guard output.dims.count == 1, !output.isSequence else {
            throw ONNXError("\(source): the graph's output is \(output.text), not one score per class; ollie imports classifiers")
        }
        var tensors: [String: Tensor] = [:]
        do { try Piece.name(pruned, input: input, prefix: "", into: &tensors) } catch {
            throw ONNXError("\(source): the imported model \(spec.text) does not fit its input \(input.text): \(error)")
        }
        let metadata = Dictionary(model.metadataProps.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        return ImportedNetwork(spec: spec, inputShape: inputShape, classes: output.dims[0], tensors: tensors, metadata: metadata)
    }

    /// The imported network compiled (its layers drawn from `seed`, then overwritten) with its
    /// weights loaded; every tensor of the model must be imported and every imported one used.
    /// Loads OpenBLAS (as the trainer does), so the model runs as it is returned.
    public static func model(_ imported: ImportedNetwork, seed: UInt64) throws -> Model {
        let model: Model
        do {
            try BLAS.load()
            model = try imported.spec.compile(inputShape: imported.inputShape, classes: imported.classes, seed: seed)
            try Checkpoint.loadWeights(imported.tensors, into: model)
        } catch {
            throw ONNXError("the imported model \(imported.spec.text) cannot be built: \(error)")
        }
        let names = Set((model.parameters + model.buffers).map(\.name))
        if let extra = imported.tensors.keys.sorted().first(where: { !names.contains($0) }) {
            throw ONNXError("the imported tensor '\(extra)' has no place in \(imported.spec.text)")
        }
        return model
    }
}
