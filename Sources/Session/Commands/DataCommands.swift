import Datasets
import Foundation
import NN
import Tracking
import Training

extension Session {
    static let dataCommands: [Command] = [
        Command("load", usage: "load mnist | fashion-mnist | idx DIR | images DIR [size HxW] [gray|rgb] [crop center] [test FRACTION] [normalize imagenet|MEAN/STD] [skip-bad] | videos DIR [frames T] [size HxW] [gray|rgb] [crop center] [test FRACTION] [normalize imagenet|MEAN/STD] [skip-bad]",
                summary: "Load a dataset into memory: a named one (searched in OLLIE_DATA_PATH, ./data, ../shared/datasets, /usr/share/datasets), four IDX files, a folder of PNG/JPEG images in class folders, or one of video clips (FFmpeg).",
                example: "load images photos size 32x32 rgb", arity: 1...14, completion: .datasets) { session, args, console in
            try session.load(args, console)
        },
        Command("cache", usage: "cache [clear]",
                summary: "List the decoded image and video folders kept on disk (source, options, size, last used), within `set cache-limit`; `cache clear` deletes them.",
                example: "cache", arity: 0...1, completion: .words(["clear"])) { session, args, console in
            guard let cache = session.boundedDecodedCache else { throw CommandError("this session keeps no decoded cache") }
            switch args.first?.lowercased() {
            case nil: console.write(renderCache(cache))
            case "clear":
                let (count, bytes) = cache.clear()
                console.write("deleted \(count) entr\(count == 1 ? "y" : "ies") (\(ByteSize.text(bytes))) from \(cache.directory)")
            default: throw CommandError("usage: cache [clear] (got '\(args[0])')")
            }
        },
        Command("build", usage: "build SPEC | FILE.onnx | conv | mlp [HIDDEN...]",
                summary: "Build a fresh model for the loaded data (a new run starts at the next train): a layer spec such as `conv 3x3 16 relu | pool 2 | dense 10`, a network with its weights from an ONNX file, or a preset; `build` alone lists the layers and presets.",
                example: "build conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 10", arity: 0...1000,
                completion: .words(["conv", "mlp"] + ModelSpec.kinds.map(\.keyword))) { session, args, console in
            guard !args.isEmpty else {
                console.write(Session.buildHelp)
                return
            }
            try session.build(args, console)
        },
        Command("summary", usage: "summary", summary: "Layers, output shapes and parameter counts of the model.",
                example: "summary", arity: 0...0) { session, _, console in
            let model = try session.requireModel()
            console.write(renderSummary(model, frozen: session.settings.frozenModules))
        },
        Command("reset", usage: "reset", summary: "Rebuild the model with fresh weights, keeping data and settings (a new run).",
                example: "reset", arity: 0...0) { session, _, console in
            guard let spec = session.modelSpec else { throw CommandError("nothing to reset; build a model first: build conv") }
            try session.build([spec.text], console)
        },
    ]


    /// Loads data by its `load` words ("mnist", "idx /abs/dir", "images /abs/dir size 32x32"); the
    /// session is not touched.
    func loadDataset(_ words: [String]) throws -> Dataset {
        try loadDatasetReporting(words).dataset
    }

    /// The data and, for an image folder, what the load found (counts, classes, skipped files).
    func loadDatasetReporting(_ words: [String]) throws -> (dataset: Dataset, report: String?) {
        if words.first?.lowercased() == "images" {
            let (dataset, report) = try loadImages(words)
            return (dataset, report.description)
        }
        if words.first?.lowercased() == "videos" { return try loadVideos(words) }
        return (try loadNamedOrIDX(words), nil)
    }

    /// The options of `load images` and `load videos`, in any order after DIR.
    struct FolderOptions {
        var size: (height: Int, width: Int)?
        var color: ImageColor?
        /// `crop center`: each picture's centre at the target aspect, so nothing is squashed.
        var crop = Crop.none
        var testFraction: Double?
        var skipBad = false
        var frames: Int?
        /// `normalize imagenet` or `normalize MEAN/STD`: what a pretrained backbone expects.
        var normalization: Normalization?
    }

    static func folderOptions(_ words: ArraySlice<String>, usage: String, allowsFrames: Bool) throws -> FolderOptions {
        var options = FolderOptions()
        var rest = words
        while let word = rest.popFirst()?.lowercased() {
            switch word {
            case "size":
                guard let value = rest.popFirst() else { throw CommandError("size needs HxW, e.g. size 32x32") }
                let parts = value.lowercased().split(separator: "x").map { Int($0) }
                guard parts.count == 2, let h = parts[0], let w = parts[1], (1...4096).contains(h), (1...4096).contains(w) else {
                    throw CommandError("size must be HxW with sides from 1 to 4096, e.g. size 32x32 (got '\(value)')")
                }
                options.size = (h, w)
            case "gray", "grey": options.color = .gray
            case "rgb", "color", "colour": options.color = .rgb
            case "test":
                guard let value = rest.popFirst(), let f = Double(value), f > 0, f < 1 else {
                    throw CommandError("test needs a fraction between 0 and 1, e.g. test 0.2")
                }
                options.testFraction = f
            case "skip-bad": options.skipBad = true
            case "normalize", "normalise":
                guard let value = rest.popFirst() else {
                    throw CommandError("normalize needs imagenet or MEAN/STD, e.g. normalize imagenet or normalize 0.5/0.25")
                }
                do { options.normalization = try Normalization(parsing: value) } catch { throw CommandError("\(error)") }
            case "crop":
                guard let value = rest.popFirst()?.lowercased(), let crop = Crop(rawValue: value) else {
                    throw CommandError("crop needs center (keep each picture's centre at the size's aspect) or none, e.g. crop center")
                }
                options.crop = crop
            case "frames" where allowsFrames:
                guard let value = rest.popFirst(), let t = Int(value), (1...1024).contains(t) else {
                    throw CommandError("frames needs a whole number from 1 to 1024, e.g. frames 16")
                }
                options.frames = t
            default:
                throw CommandError("unexpected '\(word)'; usage: \(usage)")
            }
        }
        return options
    }

    /// `load images DIR [size HxW] [gray|rgb] [crop center] [test FRACTION] [normalize imagenet|MEAN/STD] [skip-bad]`.
    func loadImages(_ words: [String]) throws -> (Dataset, ImageFolderReport) {
        let usage = "load images DIR [size HxW] [gray|rgb] [crop center] [test FRACTION] [normalize imagenet|MEAN/STD] [skip-bad]"
        guard words.count >= 2 else { throw CommandError("usage: \(usage), e.g. load images photos size 32x32") }
        let o = try Session.folderOptions(words.dropFirst(2), usage: usage, allowsFrames: false)
        do {
            let (dataset, report) = try DatasetCatalog.load(imagesDirectory: words[1], size: o.size, color: o.color, crop: o.crop,
                                                            testFraction: o.testFraction, seed: settings.seed, skipBad: o.skipBad,
                                                            cache: boundedDecodedCache)
            return (try o.normalization.map { try dataset.normalized(by: $0) } ?? dataset, report)
        } catch {
            throw CommandError("\(error)")   // ImageFolderError, ImageError, DatasetError: one line each
        }
    }

    /// `load videos DIR [frames T] [size HxW] [gray|rgb] [crop center] [test FRACTION] [normalize imagenet|MEAN/STD] [skip-bad]`.
    func loadVideos(_ words: [String]) throws -> (Dataset, String) {
        let usage = "load videos DIR [frames T] [size HxW] [gray|rgb] [crop center] [test FRACTION] [normalize imagenet|MEAN/STD] [skip-bad]"
        guard words.count >= 2 else { throw CommandError("usage: \(usage), e.g. load videos tricks frames 16 size 32x32") }
        let o = try Session.folderOptions(words.dropFirst(2), usage: usage, allowsFrames: true)
        do {
            let (dataset, report) = try DatasetCatalog.load(videosDirectory: words[1], frames: o.frames ?? 16, size: o.size, color: o.color,
                                                            crop: o.crop, testFraction: o.testFraction, seed: settings.seed, skipBad: o.skipBad,
                                                            cache: boundedDecodedCache)
            return (try o.normalization.map { try dataset.normalized(by: $0) } ?? dataset, report.description)
        } catch {
            throw CommandError("\(error)")
        }
    }

    func loadNamedOrIDX(_ words: [String]) throws -> Dataset {
        switch words.first?.lowercased() ?? "" {
        case "idx":
            guard words.count == 2 else { throw CommandError("usage: load idx DIR (a folder with the four IDX files)") }
            return try DatasetCatalog.load(idxDirectory: words[1])
        default:
            guard words.count == 1 else { throw CommandError("usage: load mnist | fashion-mnist | idx DIR | images DIR [options]") }
            guard DatasetCatalog.names.contains(words[0].lowercased()) else {
                throw CommandError("unknown dataset '\(words[0])'; choose \(DatasetCatalog.names.joined(separator: ", ")), or: load idx DIR, load images DIR")
            }
            return try DatasetCatalog.load(words[0].lowercased())
        }
    }

    /// The `load` words with paths made absolute, so the same data loads from any folder.
    static func canonicalSource(_ words: [String]) -> [String] {
        guard let kind = words.first?.lowercased(), ["idx", "images", "videos"].contains(kind), words.count >= 2 else {
            return words.map { $0.lowercased() }
        }
        return [kind, URL(fileURLWithPath: words[1]).standardizedFileURL.path] + words.dropFirst(2).map { $0.lowercased() }
    }

    /// Other data ends the current run: its epochs are history. A model that fits the new data
    /// keeps its weights, and the next `train` starts a new run whose lineage names the state
    /// it came from. Loading the same data again changes nothing.
    func load(_ args: [String], _ console: Console) throws {
        let started = Date()
        let source = Session.canonicalSource(args)
        let (loaded, report) = try loadDatasetReporting(args)
        let elapsed = Date().timeIntervalSince(started)
        // The shape as the model takes it and `summary` prints it: C×H×W, or C×T×H×W for clips.
        console.write(fold("\(loaded.name): \(loaded.train.count) train, \(loaded.test.count) test \(loaded.frames > 1 ? "clips" : "images"), "
            + "\(loaded.sampleShape.map(String.init).joined(separator: "×")), \(loaded.classCount) classes "
            + "(\(String(format: "%.2f", elapsed)) s, from \(loaded.source))"))
        // A folder's report is wrapped at 80 columns (ten classes' counts make a long line).
        if let report { console.write(fold(report)) }
        if let current = dataset, source == datasetSource, current.train.count == loaded.train.count,
           current.test.count == loaded.test.count, current.train.images == loaded.train.images,
           current.test.images == loaded.test.images, current.train.labels == loaded.train.labels,
           current.test.labels == loaded.test.labels {
            if runID != nil { console.write("(the same data as before; run \(runID!) goes on)") }
            return
        }
        let previous = runID.flatMap { run in trainer.map { (run: run, epoch: $0.epochsDone) } }
        let current = model
        let fits = current.map { $0.inputShape == loaded.sampleShape } ?? false
        // A model that fits keeps its weights under a trainer over the new data; one that does not is dropped.
        workbench = try fits ? .training(Trainer(model: current!, dataset: loaded, live: live)) : .data(loaded)
        datasetSource = source
        if let current, !fits {
            console.write("note: the current model takes \(current.inputShape.map(String.init).joined(separator: "×")) inputs; build a new one for this data")
            if let line = endRun() { console.write(line) }
            forgetModuleSettings()
        } else if current != nil {
            if let line = endRun() { console.write(line) }
            if let previous, previous.epoch > 0 {
                pendingLineage = previous
                console.write("run \(previous.run) ended (its epochs stay as recorded); the model keeps its weights and the next train starts a new run from them, forked from \(previous.run)@\(previous.epoch)")
            }
        }
    }

    func build(_ args: [String], _ console: Console) throws {
        if args.count == 1, args[0].lowercased().hasSuffix(".onnx") { return try buildFromONNX(args[0], console) }
        let built = try makeModel(args, for: try requireDataset(), seed: settings.seed)
        let reset = try install(built)
        let preset = Session.isPreset(args) ? "\(args.joined(separator: " ")): " : ""
        console.write(wrapSpec(built.description, after: "built \(preset)") + "\n\(grouped(built.parameterCount)) parameters (a new run starts at the next train)")
        if let reset { console.write(reset) }
        if let spec = built.spec, let data = dataset {
            for note in backboneNotes(spec, data: data) { console.write(fold(note)) }
        }
    }

    static func isPreset(_ args: [String]) -> Bool {
        let words = args.joined(separator: " ").split(separator: " ").map { $0.lowercased() }
        return words == ["conv"] || words.first == "mlp"
    }

    /// The spec `build` words stand for: a preset (`conv`, `mlp [HIDDEN...]`) or a layer spec.
    static func spec(_ args: [String], classes: Int) throws -> ModelSpec {
        let words = args.joined(separator: " ").split(separator: " ").map(String.init)
        do {
            switch words.first?.lowercased() {
            case "conv" where words.count == 1:
                return ModelSpec.referenceConvNet(classes: classes)
            case "mlp":
                let hidden = try words.dropFirst().map { word -> Int in
                    guard let n = Int(word), (1...65536).contains(n) else {
                        throw CommandError("mlp layer sizes must be whole numbers from 1 to 65536 (got '\(word)'), e.g. build mlp 128")
                    }
                    return n
                }
                return try ModelSpec.mlp(hidden: hidden.isEmpty ? [128] : hidden, classes: classes)
            default:
                return try ModelSpec(parsing: words.joined(separator: " "))
            }
        } catch let error as SpecError {
            throw CommandError(error.message)
        }
    }

    /// A fresh model for `data` from `build` words or a spec's text; the session is not touched.
    /// Every shape is checked here, before anything is allocated.
    func makeModel(_ args: [String], for data: Dataset, seed: UInt64) throws -> Model {
        try makeModel(args, inputShape: data.sampleShape, classes: data.classCount, seed: seed)
    }

    /// The same for inputs of `inputShape` (C×H×W or C×T×H×W) and `classes` classes.
    func makeModel(_ args: [String], inputShape: [Int], classes: Int, seed: UInt64) throws -> Model {
        let spec = try Session.spec(args, classes: classes).resolvingBackbones { try readBackbone($0) }
        do {
            return try spec.compile(inputShape: inputShape, classes: classes, seed: seed)
        } catch let error as SpecError {
            throw CommandError(error.message)
        } catch let error as ModelError {
            throw CommandError(error.description)
        }
    }

    /// `build` alone: the grammar and the presets.
    static var buildHelp: String {
        (["build SPEC: layers separated by |, read from the data's shape, e.g.",
          "  build conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 10",
          "a residual network (images):",
          "  build conv 3 16 relu | res(conv 3 16 relu | conv 3 16) | relu",
          "        | res(conv 3 32 stride 2 relu | conv 3 32) | relu | gap | dense 10",
          "a CNN feeding an LSTM (clips):",
          "  build frames(conv 3 16 relu | pool 2 | conv 3 32 relu | pool 2",
          "        | dense 64 relu) | lstm 64 | dense 5",
          "a trained network without its head, with its weights (ONNX, checkpoint, run):",
          "  build backbone resnet18.onnx | dense 5",
          "  build frames(backbone run-3) | lstm 64 | dense 5",
          "a whole network with its weights: build FILE.onnx",
          "layers:", ModelSpec.grammar, "presets:"]
            + ModelSpec.presets.map { "  " + wrapWords("build \($0.usage): \($0.summary)", width: 78).joined(separator: "\n      ") })
            .joined(separator: "\n")
    }

    /// Makes `model` the session's model, with a fresh trainer; the next `train` starts a new
    /// run, from the user's settings (the line saying what that undid, if anything).
    func install(_ model: Model) throws -> String? {
        let trainer = try Trainer(model: model, dataset: try requireDataset(), live: live, group: trainerGroup)
        let reset = endRun()
        workbench = .training(trainer)
        forgetModuleSettings()
        return reset
    }
}

/// The spec, then a Keras-style table: each module (numbered as PyTorch's nn.Sequential of the
/// same layers numbers it, the prefix of its tensors' names), output shape, parameter count, total.
/// `frozen`: the top-level modules to mark "(frozen)", whose parameters the total leaves out
/// of the trainable count.
func renderSummary(_ model: Model, frozen: Set<Int> = []) -> String {
    let rows = model.summary()
    // Each row's top-level module index (nil for the modules inside a container).
    let topLevel: [Int?] = model.modules.isEmpty ? rows.indices.map { $0 } : model.modules.map { $0.depth == 0 ? $0.index : nil }
    var table = TextTable(header: ["layer", "output shape", "params"], alignRight: [false, false, true])
    let shapes = rows.map { $0.outputShape.map(String.init).joined(separator: "×") }
    let counts = rows.map { $0.parameters == 0 ? "0" : grouped($0.parameters) }
    // Deeply nested modules (a backbone's blocks) are cut to keep the table in 80 columns.
    let room = 80 - 4 - max(12, shapes.map(\.count).max() ?? 0) - max(6, counts.map(\.count).max() ?? 0)
    table.add(["input", model.inputShape.map(String.init).joined(separator: "×"), ""])
    for (i, (row, index)) in zip(rows, topLevel).enumerated() {
        var mark = index.map { frozen.contains($0) } ?? false ? "  (frozen)" : ""
        var label = row.layer
        if label.hasSuffix(" (implied)") {
            label.removeLast(" (implied)".count)
            mark = " (implied)" + mark
        }
        table.add([cut(label, to: max(12, room - mark.count)) + mark, shapes[i], counts[i]])
    }
    let buffers = model.buffers.reduce(0) { $0 + $1.value.count }
    let frozenCount = model.parameterCount(inModules: frozen)
    let total = frozenCount == 0 ? "\(grouped(model.parameterCount)) trainable parameters"
        : "\(grouped(model.parameterCount)) parameters, \(grouped(model.parameterCount - frozenCount)) trainable (frozen: modules \(ModuleList.text(frozen)))"
    return wrapSpec(model.description, after: "model: ") + "\n" + table.render() + "\ntotal: " + total
        + (buffers > 0 ? " (and \(grouped(buffers)) values of running statistics)" : "")
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

/// `cache`: one row per entry, most recently used first, in 80 columns.
func renderCache(_ cache: DecodedCache) -> String {
    let entries = cache.entries()
    let total = entries.reduce(0) { $0 + $1.bytes }
    let footer = "\(entries.count) entr\(entries.count == 1 ? "y" : "ies"), \(ByteSize.text(total)) of \(ByteSize.text(cache.limitBytes)) "
        + "(set cache-limit SIZE), in\n" + cut(cache.directory, to: 80, keepingEnd: true)
    guard !entries.isEmpty else { return footer }
    let when = DateFormatter()
    when.dateFormat = "yyyy-MM-dd HH:mm"
    var table = TextTable(header: ["source", "options", "size", "last used"], alignRight: [false, false, true, false])
    let sources = entries.map { cut($0.source, to: 24, keepingEnd: true) }
    let sizes = entries.map { ByteSize.text($0.bytes) }
    // The options get what the other columns (and three gaps of two) leave of 80.
    let optionsRoom = 80 - max(6, sources.map(\.count).max() ?? 0) - max(4, sizes.map(\.count).max() ?? 0) - 16 - 6
    for (i, entry) in entries.enumerated() {
        // The options name the folder again (dir=…): the source column already shows it.
        let options = entry.options.map { $0.split(separator: " ").filter { !$0.hasPrefix("dir=") }.joined(separator: " ") } ?? "-"
        table.add([sources[i], cut(options, to: max(12, optionsRoom)), sizes[i], when.string(from: entry.lastUsed)])
    }
    return table.render() + "\n" + footer
}
