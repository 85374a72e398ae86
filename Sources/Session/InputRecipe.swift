import Datasets
import Foundation

/// What a model takes and how its inputs were made: enough to decode a new file the way the
/// training data was decoded, with or without that data loaded. A checkpoint carries it
/// (StateKey.load, .classNames, .inputShape).
struct InputRecipe: Equatable {
    /// The `load` words, paths absolute ("videos /data/tricks frames 16 size 32x32 crop center").
    var loadWords: [String]
    var classNames: [String]
    /// The model's input: C×H×W, or C×T×H×W for clips.
    var sampleShape: [Int]

    /// Clips when the data was a folder of videos; images otherwise (PNG/JPEG, or MNIST's digits).
    var kind: SampleFileKind { loadWords.first?.lowercased() == "videos" ? .clip : .image }
    var channels: Int { sampleShape[0] }
    var frames: Int { sampleShape.count == 4 ? sampleShape[1] : 1 }
    var height: Int { sampleShape[sampleShape.count - 2] }
    var width: Int { sampleShape[sampleShape.count - 1] }
    var color: ImageColor { channels == 1 ? .gray : .rgb }
    var valuesPerSample: Int { sampleShape.reduce(1, *) }

    /// `crop center` among the load words (read by the same parser as `load`).
    var crop: Crop { InputRecipe.folderOptions(loadWords)?.crop ?? .none }

    /// `normalize …` among the load words: applied to a new file's values before the model sees them.
    var normalization: Normalization? { InputRecipe.folderOptions(loadWords)?.normalization }

    /// The options of `load images|videos DIR …` words; nil for other sources.
    static func folderOptions(_ loadWords: [String]) -> Session.FolderOptions? {
        guard ["images", "videos"].contains(loadWords.first?.lowercased() ?? ""), loadWords.count >= 2 else { return nil }
        return try? Session.folderOptions(loadWords.dropFirst(2), usage: "", allowsFrames: true)
    }

    /// What a checkpoint or an ONNX export records of it (read back by `Session.savedInput`).
    var metadata: [String: String] {
        func json<T: Encodable>(_ value: T) -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        var metadata = [Session.StateKey.classNames: json(classNames), Session.StateKey.inputShape: json(sampleShape)]
        if !loadWords.isEmpty { metadata[Session.StateKey.load] = json(loadWords) }
        return metadata
    }

    /// The `load` words a checkpoint's or an ONNX file's metadata records, if any.
    static func loadWords(in metadata: [String: String]) -> [String] {
        metadata[Session.StateKey.load].flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
    }

    /// The model's input as the model states it: "1×16×32×32" (C×T×H×W).
    var shapeText: String { sampleShape.map(String.init).joined(separator: "×") }
}
