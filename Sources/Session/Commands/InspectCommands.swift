import Datasets
import Foundation
import Tracking
import Training

extension Session {
    static let inspectCommands: [Command] = [
        Command("confusion", usage: "confusion [test|train|val] [normalized]",
                summary: "Confusion matrix (rows: true class, columns: predicted) with per-class accuracy; normalized: each row as shares of its true class (sums to 1, sklearn's normalize='true').",
                example: "confusion normalized", arity: 0...2, completion: .words(["test", "train", "val", "normalized"])) { session, args, console in
            let normalized = args.contains { $0.lowercased() == "normalized" }
            let splits = args.filter { $0.lowercased() != "normalized" }
            guard splits.count <= 1 else { throw CommandError("usage: confusion [test|train|val] [normalized] (got '\(args.joined(separator: " "))')") }
            let (name, evaluation) = try session.evaluate(splits.first)
            let split = try session.split(named: name)
            console.write(renderConfusion(evaluation.predictions, split.labels, classNames: try session.requireDataset().classNames,
                                          normalized: normalized))
        },
        Command("metrics", usage: "metrics [test|train|val]",
                summary: "Per-class precision, recall and F1 of the current model. With support, and macro and weighted averages, as sklearn's classification_report lays them out.",
                example: "metrics val", arity: 0...1, completion: .words(["test", "train", "val"])) { session, args, console in
            let (name, evaluation) = try session.evaluate(args.first)
            let split = try session.split(named: name)
            let report = ClassificationReport(predictions: evaluation.predictions, labels: split.labels,
                                              classNames: try session.requireDataset().classNames)
            console.write("\(name): \(split.count) samples\n" + report.render())
        },
        Command("stats", usage: "stats",
                summary: "Per layer, for the last batch trained: weight and gradient norms, the step's |Δw|/|w|, the outputs' mean and std, and the share of ReLU outputs that are zero (dead units). `set stats on` records them with each epoch.",
                example: "stats", arity: 0...0) { session, _, console in
            let trainer = try session.requireTrainer()
            guard let stats = trainer.lastStatistics else {
                throw CommandError("no batch trained yet with this model; train one first: step")
            }
            console.write(LayerStatisticsTable.render(stats, model: trainer.model, lastStep: trainer.stepsDone))
        },
        Command("predict", usage: "predict N [test|train] [augmented] | predict FILE | predict DIR [csv OUT]",
                summary: "Draw sample N with its label and the model's top 3. A clip is drawn as rows of its frames; with `augmented`, the sample is also drawn as `set augment` changes it for training, beside or below it. Or classify an image or clip file, decoded as the data was (works after restore with no data loaded); or every one in a folder, with a CSV of each class's probability.",
                example: "predict 0", arity: 1...3, completion: .files) { session, args, console in
            if Int(args[0]) != nil { try session.showImage(args, console) } else { try session.predictPath(args, console) }
        },
        Command("misses", usage: "misses [K]", summary: "The first K (default 10) misclassified test images or clips: index, label, prediction.",
                example: "misses 5", arity: 0...1) { session, args, console in
            let k = try args.first.map { try parseInt($0, "K", 1...10_000) } ?? 10
            let (_, evaluation) = try session.evaluate("test")
            let split = try session.split(named: "test")
            let names = try session.requireDataset().classNames
            let missed = zip(evaluation.predictions, split.labels).enumerated().filter { $0.element.0 != $0.element.1 }
            var table = TextTable(header: ["index", "label", "predicted"], alignRight: [true, false, false])
            for (index, pair) in missed.prefix(k) {
                table.add([String(index), names[Int(pair.1)], names[Int(pair.0)]])
            }
            console.write(table.render())
            let samples = try session.requireDataset().frames > 1 ? "clips" : "images"
            console.write("\(missed.count) of \(split.count) test \(samples) misclassified; see one with: predict \(missed.first?.offset ?? 0)")
        },
    ]

    func split(named name: String) throws -> Split {
        let data = try requireDataset()
        switch name.lowercased() {
        case "test": return data.test
        case "train": return data.train
        case "val", "validation":
            guard let validation = trainer?.validationSplit else { throw CommandError("no validation split; hold one out first: set val 0.1") }
            return validation
        default: throw CommandError("choose test, train or val (got '\(name)')")
        }
    }

    /// `show N [test|train]` and `predict N`: the image, its label, and the top 3 if a model
    /// exists; with `augmented`, also the sample as training's augmentation changes it.
    func showImage(_ args: [String], _ console: Console) throws {
        let data = try requireDataset()
        let augmented = args.dropFirst().contains { $0.lowercased() == "augmented" }
        let which = args.dropFirst().first { $0.lowercased() != "augmented" } ?? "test"
        let split = try split(named: which)
        if augmented && !settings.augmentation.isOn {
            throw CommandError("augmentation is off, so training sees samples as they are; turn it on first, e.g. set augment flip crop 4")
        }
        guard let index = Int(args[0]), (0..<split.count).contains(index) else {
            throw CommandError("image index must be a whole number from 0 to \(split.count - 1) (got '\(args[0])')")
        }
        if augmented { return try showAugmented(index, of: split, named: which, data, console) }
        let features = data.valuesPerSample
        let values = Array(split.images[(index * features)..<((index + 1) * features)])
        // Drawn as pixels: a normalised sample (`load … normalize`) is mapped back first.
        let pixels = data.normalization.map { $0.undo(values, channels: data.channels) } ?? values
        console.write(renderSample(pixels, frames: data.frames, height: data.height, width: data.width,
                                   channels: data.channels, color: console.isInteractive))
        var line = "\(which) \(data.frames > 1 ? "clip" : "image") \(index): label \(data.classNames[Int(split.labels[index])])"
        if let trainer {
            line += "; model: " + Session.topClasses(trainer.probabilities(split, indices: [index])[0], names: data.classNames)
        }
        console.write(line)
    }
}

extension Session {
    /// Sample `index` and the same sample augmented (drawn as training step `stepsDone` would
    /// draw minibatch position `index`), side by side when both fit 80 columns, else one above
    /// the other; then the label and, with a model, its top 3 for each.
    func showAugmented(_ index: Int, of split: Split, named which: String, _ data: Dataset, _ console: Console) throws {
        let values = Array(split.images[(index * data.valuesPerSample)..<((index + 1) * data.valuesPerSample)])
        let changed = augmentedSample(values, data, step: trainer?.stepsDone ?? 0, position: index)
        let normalization = data.normalization
        func pixels(_ v: [Float]) -> [Float] { normalization.map { $0.undo(v, channels: data.channels) } ?? v }
        let color = console.isInteractive
        let caption = "augmented (\(settings.augmentation.text))"
        if data.frames > 1 {
            console.write("original:")
            console.write(renderSample(pixels(values), frames: data.frames, height: data.height, width: data.width, channels: data.channels, color: color))
            console.write(wrapWords(caption + ":", width: 80).joined(separator: "\n"))
            console.write(renderSample(pixels(changed), frames: data.frames, height: data.height, width: data.width, channels: data.channels, color: color))
        } else {
            // Columns per pixel: 1 on a TTY (half blocks), else 2, or 1 with square pixels to fit.
            let square = !color && 4 * data.width + 3 > 80
            let columns = color || square ? data.width : 2 * data.width
            func draw(_ v: [Float]) -> String {
                renderImage(pixels(v), height: data.height, width: data.width, channels: data.channels, color: color, squarePixels: square)
            }
            if 2 * columns + 3 <= 80 {
                console.write(sideBySide(["original"] + draw(values).components(separatedBy: "\n"),
                                         ["augmented"] + draw(changed).components(separatedBy: "\n"), leftWidth: columns))
                console.write(wrapWords(caption, width: 80).joined(separator: "\n"))
            } else {
                console.write("original:\n" + draw(values))
                console.write(wrapWords(caption + ":", width: 80).joined(separator: "\n") + "\n" + draw(changed))
            }
        }
        var line = "\(which) \(data.frames > 1 ? "clip" : "image") \(index): label \(data.classNames[Int(split.labels[index])])"
        if let trainer {
            let both = Split(images: values + changed, labels: [split.labels[index], split.labels[index]])
            let probabilities = trainer.probabilities(both, indices: [0, 1])
            line += "; model: " + Session.topClasses(probabilities[0], names: data.classNames)
            line += "\naugmented: model: " + Session.topClasses(probabilities[1], names: data.classNames)
        }
        console.write(line)
    }

    /// One sample (as `Split.images` holds it: T×H×W×C) as `set augment` changes it for
    /// training step `step` at minibatch position `position`.
    func augmentedSample(_ values: [Float], _ data: Dataset, step: Int, position: Int) -> [Float] {
        let (channels, perChannel) = (data.channels, data.valuesPerSample / data.channels)
        // To the trainer's channel-major layout [C, 1, T, H, W] and back.
        var planes = [Float](repeating: 0, count: values.count)
        for p in 0..<perChannel { for c in 0..<channels { planes[c * perChannel + p] = values[p * channels + c] } }
        planes.withUnsafeMutableBufferPointer { x in
            settings.augmentation.apply(to: x.baseAddress!, count: 1, firstPosition: position, step: step, seed: settings.seed,
                                        channels: channels, frames: data.frames, height: data.height, width: data.width,
                                        pixels: data.normalization)
        }
        var result = values
        for p in 0..<perChannel { for c in 0..<channels { result[p * channels + c] = planes[c * perChannel + p] } }
        return result
    }
}

/// Two drawings side by side, the left one's lines padded to `leftWidth` visible columns
/// (colour escapes take none), three spaces between.
func sideBySide(_ left: [String], _ right: [String], leftWidth: Int) -> String {
    func visible(_ line: String) -> Int {
        var count = 0, escaped = false
        for character in line {
            if character == "\u{1B}" { escaped = true } else if escaped { if character == "m" { escaped = false } } else { count += 1 }
        }
        return count
    }
    return (0..<max(left.count, right.count)).map { i in
        let l = i < left.count ? left[i] : "", r = i < right.count ? right[i] : ""
        return (l + String(repeating: " ", count: max(0, leftWidth - visible(l))) + "   " + r).replacingTrailingSpaces()
    }.joined(separator: "\n")
}

/// A sample as `predict` draws it: an image, or a clip as rows of its frames.
func renderSample(_ pixels: [Float], frames: Int, height: Int, width: Int, channels: Int, color: Bool) -> String {
    frames > 1 ? renderClip(pixels, frames: frames, height: height, width: width, channels: channels, color: color)
               : renderImage(pixels, height: height, width: width, channels: channels, color: color)
}

/// An image in the terminal: on a TTY, upper-half blocks with 24-bit foreground and background
/// colours (two pixel rows per line; RGB images in colour, others in grey); elsewhere, shade
/// characters two columns per pixel (or, with `squarePixels`, one column per pixel and one line
/// per two rows).
func renderImage(_ pixels: [Float], height: Int, width: Int, channels: Int, color: Bool, squarePixels: Bool = false) -> String {
    func clamp(_ v: Float) -> Float { min(max(v, 0), 1) }
    func grey(_ y: Int, _ x: Int) -> Float {
        var sum: Float = 0
        for c in 0..<channels { sum += pixels[(y * width + x) * channels + c] }
        return clamp(sum / Float(channels))
    }
    /// "R;G;B" of a pixel, 0–255.
    func rgb(_ y: Int, _ x: Int) -> String {
        guard y < height else { return "0;0;0" }
        if channels == 3 {
            let base = (y * width + x) * 3
            return (0..<3).map { String(Int(clamp(pixels[base + $0]) * 255)) }.joined(separator: ";")
        }
        let v = Int(grey(y, x) * 255)
        return "\(v);\(v);\(v)"
    }
    var lines: [String] = []
    if color {
        for y in stride(from: 0, to: height, by: 2) {
            var line = ""
            for x in 0..<width { line += "\u{1B}[38;2;\(rgb(y, x))m\u{1B}[48;2;\(rgb(y + 1, x))m▀" }
            lines.append(line + "\u{1B}[0m")
        }
    } else {
        let shades: [Character] = [" ", "░", "▒", "▓", "█"]
        // Two columns a pixel, or (squarePixels) one column a pixel and a line for two pixel rows.
        for y in stride(from: 0, to: height, by: squarePixels ? 2 : 1) {
            var line = ""
            for x in 0..<width {
                let value = squarePixels ? (grey(y, x) + (y + 1 < height ? grey(y + 1, x) : 0)) / 2 : grey(y, x)
                let shade = shades[min(Int(value * Float(shades.count)), shades.count - 1)]
                line.append(shade)
                if !squarePixels { line.append(shade) }
            }
            lines.append(line.replacingTrailingSpaces())
        }
    }
    return lines.joined(separator: "\n")
}

/// A clip as its frames in reading order, as many to a row as fit `columns` characters at one
/// character per pixel: frames are shrunk by a whole factor (a box average) until four fit, so
/// 16 frames of 32×32 are four rows of four 16×16 frames. On a TTY half blocks draw two pixel
/// rows a line; elsewhere each line is the mean of two pixel rows.
func renderClip(_ pixels: [Float], frames: Int, height: Int, width: Int, channels: Int, color: Bool,
                columns: Int = 80) -> String {
    var factor = 1
    while factor < width, 4 * (width / (factor) + 1) - 1 > columns { factor += 1 }
    let (h, w) = (max(1, height / factor), max(1, width / factor))
    let perRow = max(1, min(frames, (columns + 1) / (w + 1)))
    let rows = (frames + perRow - 1) / perRow
    // Frame rows sit 2 pixels apart (one line), columns 1 pixel apart.
    let (mosaicHeight, mosaicWidth) = (rows * (h + 2) - 2, perRow * (w + 1) - 1)
    var mosaic = [Float](repeating: 0, count: mosaicHeight * mosaicWidth * channels)
    for t in 0..<frames {
        let (top, left) = ((t / perRow) * (h + 2), (t % perRow) * (w + 1))
        for y in 0..<h {
            for x in 0..<w {
                for c in 0..<channels {
                    var total: Float = 0
                    for dy in 0..<factor {
                        for dx in 0..<factor {
                            let (sy, sx) = (min(height - 1, y * factor + dy), min(width - 1, x * factor + dx))
                            total += pixels[((t * height + sy) * width + sx) * channels + c]
                        }
                    }
                    mosaic[((top + y) * mosaicWidth + left + x) * channels + c] = total / Float(factor * factor)
                }
            }
        }
    }
    return renderImage(mosaic, height: mosaicHeight, width: mosaicWidth, channels: channels, color: color, squarePixels: true)
}

/// Rows: true class; columns: predicted class; last column: that class's accuracy. Column
/// names are abbreviated only when the full names would not fit 80 columns, and then a
/// legend says what they stand for.
func renderConfusion(_ predictions: [Int32], _ labels: [Int32], classNames: [String], width: Int = 80,
                     normalized: Bool = false) -> String {
    let k = classNames.count
    let counts = confusionCounts(predictions, labels, classes: k)
    /// A cell: the count, or (normalized) its share of the row's true class, "-" for an empty row.
    func cell(_ count: Int, _ total: Int) -> String {
        guard normalized else { return String(count) }
        return total == 0 ? "-" : String(format: "%.2f", Double(count) / Double(total))
    }
    func table(_ columns: [String]) -> TextTable {
        var table = TextTable(header: ["true\\pred"] + columns + ["acc"], alignRight: [false] + Array(repeating: true, count: k + 1))
        for i in 0..<k {
            let total = counts[i].reduce(0, +)
            let accuracy = total == 0 ? "-" : String(format: "%.3f", Double(counts[i][i]) / Double(total))
            table.add([classNames[i]] + counts[i].map { cell($0, total) } + [accuracy])
        }
        return table
    }
    func fits(_ table: TextTable) -> Bool { table.columnWidths.reduce(0, +) + 2 * (table.columnWidths.count - 1) <= width }
    let full = table(classNames)
    if fits(full) { return full.render() }
    // The longest prefixes that fit and still tell the classes apart; else the class numbers.
    let longest = classNames.map(\.count).max() ?? 1
    var columns = classNames.indices.map(String.init)
    for length in stride(from: longest - 1, through: 2, by: -1) {
        let short = classNames.map { String($0.prefix(length)) }
        if Set(short).count == k, fits(table(short)) { columns = short; break }
    }
    let legend = zip(columns, classNames).filter { $0.0 != $0.1 }.map { "\($0.0) = \($0.1)" }.joined(separator: ", ")
    return table(columns).render() + "\n" + wrapWords("columns: " + legend, width: width).joined(separator: "\n")
}
