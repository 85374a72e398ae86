import Datasets
import Foundation
import NN
import ONNX

/// `build FILE.onnx`: a network from another framework, with its weights, as an ollie model
/// (its layers printed as a spec); and `backbone FILE.onnx` inside a spec.
extension Session {
    /// The file's network, or one line saying what is wrong with it.
    func importONNX(_ path: String) throws -> ImportedNetwork {
        do { return try ONNXImport.read(path) } catch let error as ONNXError {
            throw CommandError(error.message)
        } catch let error as SpecError {
            throw CommandError("\(path): \(error.message)")
        }
    }

    func onnxBackbone(_ source: String) throws -> Backbone {
        let imported = try importONNX(source)
        return try Backbone(source: source, network: imported.spec, inputShape: imported.inputShape, tensors: imported.tensors,
                            recipe: imported.metadata)
    }

    /// A whole imported classifier for the loaded data: its inputs must be the data's and its
    /// classes as many; otherwise the line says how to load the data or to keep only its body.
    func buildFromONNX(_ path: String, _ console: Console) throws {
        let data = try requireDataset()
        let imported = try importONNX(path)
        let theirs = imported.inputShape.map(String.init).joined(separator: "×")
        guard imported.inputShape == data.sampleShape else {
            let ours = data.sampleShape.map(String.init).joined(separator: "×")
            let words = InputRecipe.loadWords(in: imported.metadata)
            let advice = imported.inputShape.count < 3 ? "" : " (" + Session.loadAdvice(
                kind: words.first ?? (imported.inputShape.count == 4 ? "videos" : "images"), shape: imported.inputShape,
                normalization: InputRecipe.folderOptions(words)?.normalization) + ")"
            throw CommandError("\(path) takes \(theirs) inputs but the data is \(ours)\(advice); or keep its body: build backbone \(path) | dense \(data.classCount)")
        }
        guard imported.classes == data.classCount else {
            throw CommandError("\(path) ends with \(imported.classes) classes but the data has \(data.classCount); keep its body with a head of your own: build backbone \(path) | dense \(data.classCount)")
        }
        let model: Model
        do { model = try ONNXImport.model(imported, seed: settings.seed) } catch let error as ONNXError {
            throw CommandError(error.message)
        } catch let error as SpecError {
            throw CommandError("\(path): \(error.message)")
        }
        let reset = try install(model)
        console.write(wrapSpec(model.description, after: "built \((path as NSString).lastPathComponent): ")
            + "\n\(grouped(model.parameterCount)) parameters, weights from \(path) (a new run starts at the next train)")
        if let reset { console.write(reset) }
    }
}
