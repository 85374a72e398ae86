import Datasets
import Files
import Foundation
import NN
import Tracking
import Training

/// `predict FILE` and `predict DIR [csv OUT]`: new files classified by the model, each decoded
/// exactly as its training data was (the loaders' own decoding, the recipe's size, colour,
/// frames and crop), with or without that data loaded.
extension Session {
    /// The recipe the model's inputs follow: the loaded data's, or the restored checkpoint's.
    func inputRecipe() throws -> InputRecipe {
        if let dataset {
            return InputRecipe(loadWords: datasetSource, classNames: dataset.classNames, sampleShape: dataset.sampleShape)
        }
        if let restoredInput { return restoredInput }
        throw CommandError("no model to classify with; restore a checkpoint first (restore FILE), or load data and build and train a model")
    }

    /// `predict PATH [csv OUT]`: a file is drawn with its top 3; a folder's files go in a table (and a CSV).
    func predictPath(_ args: [String], _ console: Console) throws {
        let path = args[0]
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw CommandError("no such file or folder: \(path) (predict N shows test sample N; predict FILE classifies an image or clip)")
        }
        let csv = try Session.csvTarget(Array(args.dropFirst()))
        if isFolder.boolValue {
            try predictFolder(path, csv: csv, console)
        } else {
            guard csv == nil else { throw CommandError("csv OUT goes with a folder: predict DIR csv OUT") }
            try predictFile(path, console)
        }
    }

    /// `csv OUT` after the path, or nothing.
    static func csvTarget(_ words: [String]) throws -> String? {
        if words.isEmpty { return nil }
        guard words.count == 2, words[0].lowercased() == "csv" else {
            throw CommandError("usage: predict N [test|train] | predict FILE | predict DIR [csv OUT]")
        }
        return words[1]
    }

    func predictFile(_ path: String, _ console: Console) throws {
        let model = try requireModel()
        let recipe = try inputRecipe()
        let values = try decodeSample(path, recipe)
        let probabilities = try classProbabilities(values, count: 1, recipe: recipe, model: model)[0]
        let pixels = recipe.normalization.map { $0.undo(values, channels: recipe.channels) } ?? values
        console.write(renderSample(pixels, frames: recipe.frames, height: recipe.height, width: recipe.width,
                                   channels: recipe.channels, color: console.isInteractive))
        console.write("\((path as NSString).lastPathComponent): model: \(Session.topClasses(probabilities, names: recipe.classNames))")
    }

    /// Every file of the model's kind directly in `folder`, sorted by name; files that cannot be
    /// decoded are named and left out; the CSV has a row per classified file.
    func predictFolder(_ folder: String, csv: String?, _ console: Console) throws {
        let model = try requireModel()
        let recipe = try inputRecipe()
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        let paths = names.map { (folder as NSString).appendingPathComponent($0) }
            .filter { DatasetCatalog.sampleKind(ofFile: $0) == recipe.kind }
        let noun = recipe.kind == .clip ? "clips" : "images"
        guard !paths.isEmpty else {
            throw CommandError("\(folder) holds no \(noun) to classify (\(recipe.kind == .clip ? DatasetCatalog.clipEndings : "PNG or JPEG")"
                + (names.isEmpty ? ", it is empty)" : "; \(names.count) other \(names.count == 1 ? "file" : "files"))"))
        }
        var rows: [(path: String, probabilities: [Float])] = []
        var skipped: [String] = []
        // A few files at a time: one forward pass each, with bounded memory.
        for start in stride(from: 0, to: paths.count, by: 16) {
            var values: [Float] = [], decoded: [String] = []
            for path in paths[start..<min(start + 16, paths.count)] {
                do {
                    values += try decodeSample(path, recipe)
                    decoded.append(path)
                } catch {
                    skipped.append("\(error)")
                }
            }
            guard !decoded.isEmpty else { continue }
            let probabilities = try classProbabilities(values, count: decoded.count, recipe: recipe, model: model)
            rows += zip(decoded, probabilities).map { ($0, $1) }
        }
        var table = TextTable(header: ["file", "class", "probability"], alignRight: [false, false, true])
        let shown = 20
        for row in rows.prefix(shown) {
            let best = row.probabilities.indices.max { row.probabilities[$0] < row.probabilities[$1] }!
            table.add([(row.path as NSString).lastPathComponent, recipe.classNames[best], String(format: "%.1f%%", 100 * row.probabilities[best])])
        }
        if !rows.isEmpty { console.write(table.render()) }
        if rows.count > shown { console.write("… \(rows.count - shown) more" + (csv == nil ? " (all of them with: predict \(folder) csv OUT)" : " (all in the CSV)")) }
        for line in skipped { console.write("skipped: \(line)") }
        var summary = "classified \(rows.count) \(noun) in \(folder)"
        if let csv {
            let text = Session.predictionCSV(rows, classNames: recipe.classNames)
            let written: String
            do { written = try SafeFile.write(Data(text.utf8), to: csv) } catch { throw CommandError("\(error)") }
            summary += "; wrote \(ResolvedPath.shown(written))"
        }
        console.write(summary)
    }

    /// One file as the model's input, or an error of one line: not there, not the model's kind, not decodable.
    func decodeSample(_ path: String, _ recipe: InputRecipe) throws -> [Float] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue else {
            throw CommandError("no such file: \(path)")
        }
        let wanted = recipe.kind == .clip ? "clips (\(recipe.shapeText), C×T×H×W); give a video (\(DatasetCatalog.clipEndings))"
                                          : "images (\(recipe.shapeText), C×H×W); give a PNG or JPEG"
        switch DatasetCatalog.sampleKind(ofFile: path) {
        case nil:
            throw CommandError("\(path) is neither an image (PNG, JPEG) nor a video clip; this model takes \(wanted)")
        case .image where recipe.kind == .clip:
            throw CommandError("\(path) is an image, but this model takes \(wanted)")
        case .clip where recipe.kind == .image:
            throw CommandError("\(path) is a video clip, but this model takes \(wanted)")
        default:
            break
        }
        do {
            let values: [Float]
            switch recipe.kind {
            case .image:
                values = try DatasetCatalog.decodeImage(path: path, height: recipe.height, width: recipe.width,
                                                        color: recipe.color, crop: recipe.crop)
            case .clip:
                values = try DatasetCatalog.decodeClip(path: path, frames: recipe.frames, height: recipe.height, width: recipe.width,
                                                       color: recipe.color, crop: recipe.crop).values
            }
            // Normalised as the training data was (`load … normalize`).
            return recipe.normalization.map { $0.apply(to: values, channels: recipe.channels) } ?? values
        } catch let VideoFolderError.badClip(path, reason) {
            throw CommandError("cannot decode \(path): \(reason)")
        } catch {
            throw CommandError("\(error)")
        }
    }

    /// Class probabilities of `count` samples laid end to end, by the session's trainer, or
    /// (restored with no data) by one made for these inputs alone.
    func classProbabilities(_ values: [Float], count: Int, recipe: InputRecipe, model: Model) throws -> [[Float]] {
        let samples = Split(images: values, labels: [Int32](repeating: 0, count: count))
        let trainer = try self.trainer ?? Trainer(
            model: model, dataset: Dataset(name: "predict", train: samples, test: samples, height: recipe.height, width: recipe.width,
                                           channels: recipe.channels, frames: recipe.frames, classNames: recipe.classNames, source: ""),
            live: live)
        return trainer.probabilities(samples, indices: Array(0..<count))
    }

    /// "kickflip 81.2%, ollie 12.0%, shuvit 6.8%": the three most probable classes.
    static func topClasses(_ probabilities: [Float], names: [String]) -> String {
        probabilities.enumerated().sorted { $0.element > $1.element }.prefix(3)
            .map { "\(names[$0.offset]) \(String(format: "%.1f", 100 * $0.element))%" }.joined(separator: ", ")
    }

    /// path, class, then one probability column per class name (RFC 4180 quoting).
    static func predictionCSV(_ rows: [(path: String, probabilities: [Float])], classNames: [String]) -> String {
        func field(_ text: String) -> String {
            text.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var lines = [(["path", "class"] + classNames).map(field).joined(separator: ",")]
        for row in rows {
            let best = row.probabilities.indices.max { row.probabilities[$0] < row.probabilities[$1] }!
            lines.append(([field(row.path), field(classNames[best])] + row.probabilities.map { String(format: "%.6f", $0) }).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
