import Datasets
import Foundation
import NN
import Tracking
import Training

extension Session {
    static let dataCommands: [Command] = [
        Command("load", usage: "load mnist | fashion-mnist | idx DIR",
                summary: "Load a dataset into memory (searches OLLIE_DATA_PATH, ./data, ../shared/datasets, /usr/share/datasets).",
                example: "load mnist", arity: 1...2, completion: .datasets) { session, args, console in
            try session.load(args, console)
        },
        Command("build", usage: "build conv | mlp [HIDDEN...]",
                summary: "Build a fresh model for the loaded data and start a new run.",
                example: "build mlp 256 128", arity: 1...8, completion: .words(["conv", "mlp"])) { session, args, console in
            try session.build(args, console)
        },
        Command("summary", usage: "summary", summary: "Layers, output shapes and parameter counts of the model.",
                example: "summary", arity: 0...0) { session, _, console in
            let model = try session.requireModel()
            console.write(renderSummary(model))
        },
        Command("reset", usage: "reset", summary: "Rebuild the model with fresh weights, keeping data and settings (a new run).",
                example: "reset", arity: 0...0) { session, _, console in
            guard !session.modelRecipe.isEmpty else { throw CommandError("nothing to reset; build a model first: build conv") }
            try session.build(session.modelRecipe, console)
        },
    ]

    func load(_ args: [String], _ console: Console) throws {
        let started = Date()
        let loaded: Dataset
        switch args[0].lowercased() {
        case "idx":
            guard args.count == 2 else { throw CommandError("usage: load idx DIR (a folder with the four IDX files)") }
            loaded = try DatasetCatalog.load(idxDirectory: args[1])
        default:
            guard args.count == 1 else { throw CommandError("usage: load mnist | fashion-mnist | idx DIR") }
            guard DatasetCatalog.names.contains(args[0].lowercased()) else {
                throw CommandError("unknown dataset '\(args[0])'; choose \(DatasetCatalog.names.joined(separator: ", ")), or: load idx DIR")
            }
            loaded = try DatasetCatalog.load(args[0].lowercased())
        }
        dataset = loaded
        let elapsed = Date().timeIntervalSince(started)
        console.write("\(loaded.name): \(loaded.train.count) train, \(loaded.test.count) test images, "
            + "\(loaded.height)×\(loaded.width)×\(loaded.channels), \(loaded.classCount) classes "
            + "(\(String(format: "%.2f", elapsed)) s, from \(loaded.source))")
        if let model, model.inputShape != [loaded.channels, loaded.height, loaded.width] {
            console.write("note: the current model takes \(model.inputShape.map(String.init).joined(separator: "×")) inputs; build a new one for this data")
            self.model = nil
            trainer = nil
            endRun(console)
        } else if let model {
            trainer = try Trainer(model: model, dataset: loaded, settings: settings)
        }
    }

    func build(_ args: [String], _ console: Console) throws {
        let built = try makeModel(args)
        try install(built, recipe: args, console)
        console.write("built \(args.joined(separator: " ")): \(built.parameterCount) parameters (a new run starts at the next train)")
    }

    /// A fresh model for the loaded data from a recipe such as ["mlp", "128"]; the session is not touched.
    func makeModel(_ args: [String]) throws -> Model {
        let data = try requireDataset()
        let input = [data.channels, data.height, data.width]
        let built: Model
        switch args[0].lowercased() {
        case "conv":
            guard args.count == 1 else { throw CommandError("usage: build conv (the reference convnet takes no arguments)") }
            built = try Model.referenceConvNet(inputShape: input, classes: data.classCount, seed: settings.seed)
        case "mlp":
            let hidden = try args.dropFirst().map { word -> Int in
                guard let n = Int(word), (1...65536).contains(n) else {
                    throw CommandError("mlp layer sizes must be whole numbers from 1 to 65536 (got '\(word)'), e.g. build mlp 128")
                }
                return n
            }
            built = try Model.mlp(inputShape: input, hidden: hidden.isEmpty ? [128] : hidden,
                                  classes: data.classCount, seed: settings.seed)
        default:
            throw CommandError("unknown model '\(args[0])'; choose conv or mlp [HIDDEN...], e.g. build conv")
        }
        return built
    }

    /// Makes `model` the session's model, with a fresh trainer; the next `train` starts a new run.
    func install(_ model: Model, recipe: [String], _ console: Console) throws {
        let trainer = try Trainer(model: model, dataset: try requireDataset(), settings: settings)
        endRun(console)
        self.model = model
        modelRecipe = recipe
        self.trainer = trainer
    }
}

/// Keras-style table: layer, output shape, parameter count, and the total.
func renderSummary(_ model: Model) -> String {
    let rows = model.summary()
    var table = TextTable(header: ["layer", "output shape", "params"], alignRight: [false, false, true])
    table.add(["input", model.inputShape.map(String.init).joined(separator: "×"), ""])
    for row in rows {
        table.add([row.layer, row.outputShape.map(String.init).joined(separator: "×"), row.parameters == 0 ? "0" : grouped(row.parameters)])
    }
    return table.render() + "\ntotal: \(grouped(model.parameterCount)) trainable parameters"
}

/// 12345 → "12,345".
func grouped(_ n: Int) -> String {
    let digits = String(abs(n))
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}
