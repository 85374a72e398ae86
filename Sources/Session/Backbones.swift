import Datasets
import Foundation
import NN
import Tensor

/// `backbone SOURCE` in a spec: the session reads SOURCE (an ONNX file, a checkpoint, or a run
/// of this database by its best checkpoint) and hands NN the network without its head.
extension Session {
    /// The trained network SOURCE names, head cut off; `depth` guards against a checkpoint
    /// whose own spec names itself.
    func readBackbone(_ source: String, depth: Int = 0) throws -> Backbone {
        guard depth < 8 else { throw CommandError("backbone \(source): backbones nest more than 8 deep; is a checkpoint its own source?") }
        do {
            if source.lowercased().hasSuffix(".onnx") { return try onnxBackbone(source) }
            return try checkpointBackbone(source, depth: depth)
        } catch let error as SpecError {
            throw CommandError(error.message)
        }
    }

    /// `run-3` (or `3`): that run's best checkpoint, else its latest saved epoch.
    func checkpointPath(ofRun word: String) throws -> String? {
        let digits = word.lowercased().hasPrefix("run-") ? String(word.dropFirst(4)) : word
        guard let run = Int64(digits), run > 0 else { return nil }
        if let best = bestCheckpointPath(run) { return best }
        let prefix = "run-\(run)-epoch-"
        let epochs = ((try? FileManager.default.contentsOfDirectory(atPath: checkpointDirectory)) ?? [])
            .filter { $0.hasPrefix(prefix) && $0.hasSuffix(".safetensors") }
            .compactMap { name -> (Int, String)? in
                Int(name.dropFirst(prefix.count).dropLast(".safetensors".count)).map { ($0, name) }
            }
        guard let latest = epochs.max(by: { $0.0 < $1.0 }) else {
            throw CommandError("backbone \(word): run \(run) has no checkpoint in \(checkpointDirectory) (its best is saved as it trains; or save one while it is the session's run)")
        }
        return "\(checkpointDirectory)/\(latest.1)"
    }

    private func checkpointBackbone(_ source: String, depth: Int) throws -> Backbone {
        let path = try checkpointPath(ofRun: source) ?? source
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandError("backbone \(source): no such file or run; give an ONNX file, a checkpoint (.safetensors) or a run (run-3)")
        }
        let (tensors, metadata): ([String: Tensor], [String: String])
        do { (tensors, metadata) = try Checkpoint.load(from: path) } catch { throw CommandError("backbone \(source): \(error)") }
        guard let text = metadata[StateKey.spec] else {
            throw CommandError("backbone \(source): \(path) does not say which network its weights are for (no ollie.spec); save it from ollie")
        }
        guard let shape = savedInputShape(metadata) else {
            throw CommandError("backbone \(source): \(path) does not record its input shape (saved by an older ollie)")
        }
        let network = try ModelSpec(parsing: text).resolvingBackbones { try readBackbone($0, depth: depth + 1) }
        var recipe: [String: String] = [:]
        for key in [StateKey.load, StateKey.classNames, StateKey.inputShape] { recipe[key] = metadata[key] }   // InputRecipe.metadata's keys
        return try Backbone(source: source, network: network, inputShape: shape, tensors: tensors, recipe: recipe)
    }

    private func savedInputShape(_ metadata: [String: String]) -> [Int]? {
        guard let json = metadata[StateKey.inputShape],
              let shape = try? JSONDecoder().decode([Int].self, from: Data(json.utf8)), !shape.isEmpty, shape.allSatisfy({ $0 > 0 })
        else { return nil }
        return shape
    }

    /// Lines for `build`: where a backbone's own training data differs from the loaded data in
    /// size or normalisation, what to load instead.
    func backboneNotes(_ spec: ModelSpec, data: Dataset) -> [String] {
        spec.backbones.compactMap { spec -> String? in
            guard let backbone = spec.backbone else { return nil }
            let frame = [data.channels, data.height, data.width]
            let theirs = InputRecipe.folderOptions(InputRecipe.loadWords(in: backbone.recipe))?.normalization
            let ours = InputRecipe.folderOptions(datasetSource)?.normalization
            let sizeDiffers = backbone.inputShape.count == 3 && backbone.inputShape != frame
            guard sizeDiffers || theirs != ours else { return nil }
            let expected = backbone.inputShape.map(String.init).joined(separator: "×") + (theirs.map { " normalized \($0)" } ?? "")
            let loaded = frame.map(String.init).joined(separator: "×") + (ours.map { " normalized \($0)" } ?? (theirs == nil ? "" : ", not normalized"))
            return "note: backbone \(backbone.source) was trained on \(expected) inputs; the data is \(loaded) (to match: "
                + Session.loadAdvice(kind: datasetSource.first ?? "images", shape: backbone.inputShape, normalization: theirs) + ")"
        }
    }

    /// `load KIND DIR size HxW [gray|rgb] [normalize …]`: what to load for inputs of `shape`.
    static func loadAdvice(kind: String, shape: [Int], normalization: Normalization?) -> String {
        var words = ["load", kind, "DIR"]
        if shape.count == 4 { words += ["frames", String(shape[1])] }
        if shape.count >= 3 {
            words += ["size", "\(shape[shape.count - 2])x\(shape[shape.count - 1])", shape[0] == 1 ? "gray" : "rgb"]
        }
        if let normalization { words += ["normalize", normalization.description] }
        return words.joined(separator: " ")
    }
}
