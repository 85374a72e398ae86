import Foundation
import NN
import Tracking
import Training

/// `freeze`, `unfreeze` and `fine-tune`: Keras' trainable=False and fastai's freeze/fine_tune.
/// What is frozen and the per-module learning-rate multipliers are settings (`frozen`,
/// `lr-mult`), so runs record them per epoch and checkpoints keep them like every other.
extension Session {
    static let freezeCommands: [Command] = [
        Command("freeze", usage: "freeze LAYERS",
                summary: "Stop training top-level modules, numbered as in summary. LAYERS: 3, 0-5, 0,2,4-6, or backbone (the modules holding one). The optimizer leaves their parameters alone, their batchnorm keeps its running statistics, their dropout still acts. When the frozen modules begin the model and are deterministic, train computes their outputs once and epochs run only the rest.",
                example: "freeze 0-5", arity: 1...32) { session, args, console in
            try session.freeze(args, console)
        },
        Command("unfreeze", usage: "unfreeze [LAYERS]",
                summary: "Train frozen modules again. LAYERS as for freeze; alone, every module.",
                example: "unfreeze", arity: 0...32) { session, args, console in
            try session.unfreeze(args, console)
        },
        Command("fine-tune", usage: "fine-tune N [FROZEN]",
                summary: "Train the head, then everything at discriminative rates. As fastai's fine_tune: freeze the body (the backbone modules, else every module before the last one with parameters), train FROZEN epochs (default 1) at lr, then unfreeze all and train N epochs with discriminative rates: lr ÷ 100 at the body's first module rising geometrically to lr at the head (set lr-mult). Ctrl-C stops it as it stops train.",
                example: "fine-tune 3", arity: 1...2) { session, args, console in
            try session.fineTune(args, console)
        },
    ]

    /// The settings that name modules of the model: `restore` takes them with the weights,
    /// `build` forgets them.
    static let moduleSettings = ["frozen", "lr-mult"]

    func freeze(_ args: [String], _ console: Console) throws {
        let model = try requireModel()
        let frozen = settings.frozenModules.union(try modules(args, of: model, command: "freeze"))
        guard model.parameterCount(inModules: frozen) < model.parameterCount else {
            let body = Session.fineTuneBody(of: model)
            throw CommandError("nothing left to train: that freezes every module with parameters; leave the head out"
                + (body.isEmpty ? "" : ", e.g. freeze \(ModuleList.text(body))"))
        }
        try setFrozen(frozen, console)
    }

    func unfreeze(_ args: [String], _ console: Console) throws {
        let model = try requireModel()
        let thawed = args.isEmpty ? settings.frozenModules : try modules(args, of: model, command: "unfreeze")
        try setFrozen(settings.frozenModules.subtracting(thawed), console)
    }

    /// Makes `frozen` the frozen modules, recorded with the run like `set`, and says how many
    /// parameters train.
    func setFrozen(_ frozen: Set<Int>, _ console: Console) throws {
        try apply(Setting.named("frozen")!, ModuleList.text(frozen), console)
        if let model {
            let trained = model.parameterCount - model.parameterCount(inModules: frozen)
            console.write("\(grouped(trained)) of \(grouped(model.parameterCount)) parameters train")
        }
    }

    /// The modules LAYERS names (words as typed: `0-5`, `0,2,4-6`, `0, 2`, `backbone`), each
    /// checked against the model; a mistake says what to type.
    func modules(_ words: [String], of model: Model, command: String) throws -> Set<Int> {
        let count = model.topLevelModuleCount
        let items = words.joined(separator: ",").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw CommandError("usage: \(command) LAYERS, e.g. \(command) 0-5") }
        var chosen = Set<Int>()
        for item in items {
            if item.lowercased() == "backbone" {
                let backbone = Session.backboneModules(of: model)
                guard !backbone.isEmpty else {
                    throw CommandError("the model has no backbone module; name modules by number as summary shows them, e.g. \(command) 0-\(max(0, count - 2))")
                }
                chosen.formUnion(backbone)
                continue
            }
            guard let range = ModuleList.range(item) else {
                throw CommandError("LAYERS are top-level module numbers as summary shows them: 3, 0-5, 0,2,4-6, or backbone (got '\(item)'); e.g. \(command) 0-\(max(0, count - 2))")
            }
            guard range.upperBound <= count else {
                throw CommandError("the model has modules 0-\(count - 1) (see summary), not \(range.upperBound - 1); e.g. \(command) 0-\(max(0, count - 2))")
            }
            chosen.formUnion(range)
        }
        return chosen
    }

    /// The top-level modules holding a module of keyword `backbone` (a pretrained network).
    static func backboneModules(of model: Model) -> Set<Int> {
        guard let spec = model.spec, let planned = try? spec.plan(inputShape: model.inputShape) else { return [] }
        func isBackbone(_ layer: any LayerSpec) -> Bool {
            type(of: layer).keyword == "backbone" || ((layer as? any ContainerSpec)?.body.modules.contains { isBackbone($0.layer) } ?? false)
        }
        return Set(planned.indices.filter { isBackbone(planned[$0].module.layer) })
    }

    /// What `fine-tune` freezes first: the backbone modules, else every top-level module before
    /// the last one with parameters (the head).
    static func fineTuneBody(of model: Model) -> Set<Int> {
        let backbone = backboneModules(of: model)
        if !backbone.isEmpty { return backbone }
        guard let head = (0..<model.topLevelModuleCount).last(where: { model.parameterCount(inModules: [$0]) > 0 }) else { return [] }
        return Set(0..<head)
    }

    /// fastai's discriminative rates: the body's modules with parameters, in order, and the
    /// head as the last group, at lr × 100^(−(m−j)/m) for the j-th of m body modules (lr ÷ 100
    /// first, rising geometrically; the head at lr). Rounded to 3 digits, so the recorded text
    /// is the very value in force.
    static func discriminativeMultipliers(body: Set<Int>, of model: Model) -> [Int: Float] {
        let groups = body.sorted().filter { model.parameterCount(inModules: [$0]) > 0 }
        var multipliers: [Int: Float] = [:]
        for (j, module) in groups.enumerated() {
            let exact = pow(0.01, Double(groups.count - j) / Double(groups.count))
            multipliers[module] = Float(String(format: "%.3g", exact))!
        }
        return multipliers
    }

    func fineTune(_ args: [String], _ console: Console) throws {
        let trainer = try requireTrainer()
        let epochs = try parseInt(args[0], "the epoch count N", 1...100_000)
        let frozenEpochs = try args.count > 1 ? parseInt(args[1], "FROZEN (epochs with the body frozen)", 0...100_000) : 1
        let model = trainer.model
        let body = Session.fineTuneBody(of: model)
        guard model.parameterCount(inModules: body) > 0 else {
            throw CommandError("fine-tune needs a body with parameters before the head, and this model's only parameters are in its last module; use train")
        }
        let bodyText = ModuleList.text(body)
        let rates = ModuleList.multipliersText(Session.discriminativeMultipliers(body: body, of: model))
        let lrMult = Setting.named("lr-mult")!
        // What a script types to redo what was done, should Ctrl-C stop it part-way.
        var replay: [String] = []
        if frozenEpochs > 0 {
            replay = ["unfreeze", "set lr-mult off", "freeze \(bodyText)"]
            if !settings.learningRateMultipliers.isEmpty { try apply(lrMult, "off", console) }
            if settings.frozenModules != body { try setFrozen(body, console) }
            console.write("fine-tune: \(frozenEpochs) epoch\(frozenEpochs == 1 ? "" : "s") of the head, the body (modules \(bodyText)) frozen")
            let reason = try train(.epochs(frozenEpochs), console)
            if reason == .interrupted { replayOfInterruptedCommand = replay + (replayOfInterruptedCommand ?? []) }
            if reason == .interrupted || reason == .nanStop { return }
            replay.append("train \(frozenEpochs)")
            // The target reached by the head alone ends the run as it ends `train`; a head that
            // converged is what phase 2 is for, so that one goes on.
            if reason == .earlyExit {
                console.write(fold("fine-tune: the head reached the target, so the body stays frozen; train or fine-tune again to go on"))
                return
            }
        }
        if !settings.frozenModules.isEmpty { try setFrozen([], console) }
        try apply(lrMult, rates, console)
        replay += ["unfreeze", "set lr-mult \(rates)"]
        console.write("fine-tune: \(epochs) epoch\(epochs == 1 ? "" : "s") of every module at lr × lr-mult (the head at lr)")
        if try train(.epochs(epochs), console) == .interrupted {
            replayOfInterruptedCommand = replay + (replayOfInterruptedCommand ?? [])
        }
    }

    /// `set lr-mult`: multipliers of modules the model has.
    func checkMultipliers(_ text: String) throws {
        let multipliers = try ModuleList.parseMultipliers(text)
        guard !multipliers.isEmpty else { return }
        let model = try requireModel()
        if let beyond = multipliers.keys.sorted().last, beyond >= model.topLevelModuleCount {
            throw CommandError("the model has modules 0-\(model.topLevelModuleCount - 1) (see summary), not \(beyond); e.g. set lr-mult 0:0.1")
        }
    }

    /// A saved state's frozen modules and multipliers must be modules of its model, and leave
    /// something to train.
    static func checkModuleSettings(_ h: Hyperparameters, model: Model, path: String) throws {
        let count = model.topLevelModuleCount
        if let beyond = (Array(h.frozenModules) + Array(h.learningRateMultipliers.keys)).max(), beyond >= count {
            throw CommandError("\(path) names module \(beyond) in frozen or lr-mult, but its model has modules 0-\(count - 1); the file's metadata is damaged, so it was not loaded")
        }
        if !h.frozenModules.isEmpty && model.parameterCount(inModules: h.frozenModules) == model.parameterCount {
            throw CommandError("\(path) freezes every module with parameters (frozen = \(ModuleList.text(h.frozenModules))), leaving nothing to train; the file's metadata is damaged, so it was not loaded")
        }
    }

    /// A new model's modules are not the old one's: nothing frozen, no multipliers.
    func forgetModuleSettings() {
        guard !settings.frozenModules.isEmpty || !settings.learningRateMultipliers.isEmpty else { return }
        var cleared = settings
        cleared.frozenModules = []
        cleared.learningRateMultipliers = [:]
        settings = cleared
    }
}

/// What `train` says about the feature cache, wrapped at 80 columns.
func featureCacheLine(_ report: FeatureCacheReport) -> String {
    fold(featureCacheText(report))
}

private func featureCacheText(_ report: FeatureCacheReport) -> String {
    let modules = report.modules.count == 1 ? "module \(report.modules.lowerBound)" : "modules \(report.modules.lowerBound)-\(report.modules.upperBound - 1)"
    if report.tooLarge {
        return "note: the outputs of the frozen \(modules) are not cached: \(grouped(report.samples)) samples would take \(ByteSize.text(UInt64(report.bytes))); epochs run every module"
    }
    return "cached the outputs of the frozen \(modules) for \(grouped(report.samples)) samples (\(ByteSize.text(UInt64(report.bytes))), \(String(format: "%.1f", report.seconds)) s); epochs run only the modules after"
}

/// Module numbers as settings write them: "none", or sorted numbers with runs as ranges
/// ("0-5,7"); and per-module multipliers ("off", or "0:0.01,2:0.1").
enum ModuleList {
    /// More module numbers than any model has: a damaged value, not a model.
    static let largest = 100_000

    static func text(_ modules: Set<Int>) -> String {
        guard !modules.isEmpty else { return "none" }
        var runs: [String] = []
        var sorted = modules.sorted()[...]
        while let first = sorted.first {
            var last = first
            while sorted.dropFirst().first == last + 1 { sorted = sorted.dropFirst(); last += 1 }
            sorted = sorted.dropFirst()
            runs.append(first == last ? String(first) : "\(first)-\(last)")
        }
        return runs.joined(separator: ",")
    }

    /// "3" or "0-5": the modules, or nil when it is neither.
    static func range(_ item: String) -> Range<Int>? {
        let ends = item.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(ends.count), let low = Int(ends[0]), let high = Int(ends[ends.count - 1]),
              low >= 0, low <= high, high < largest else { return nil }
        return low..<(high + 1)
    }

    static func parse(_ text: String, _ name: String) throws -> Set<Int> {
        if ["none", "off"].contains(text.lowercased()) { return [] }
        var modules = Set<Int>()
        for item in text.split(separator: ",") {
            guard let range = range(String(item)) else {
                throw CommandError("\(name) must be none or module numbers like 0-5 or 0,2,4-6 (got '\(text)')")
            }
            modules.formUnion(range)
        }
        return modules
    }

    static func multipliersText(_ multipliers: [Int: Float]) -> String {
        guard !multipliers.isEmpty else { return "off" }
        return multipliers.keys.sorted().map { "\($0):\(multipliers[$0]!)" }.joined(separator: ",")
    }

    static func parseMultipliers(_ text: String) throws -> [Int: Float] {
        if ["off", "none"].contains(text.lowercased()) { return [:] }
        var multipliers: [Int: Float] = [:]
        for item in text.split(separator: ",") {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let module = Int(parts[0]), (0..<largest).contains(module),
                  let factor = Float(parts[1]), factor.isFinite, factor > 0, factor <= 1000 else {
                throw CommandError("lr-mult must be off or MODULE:FACTOR pairs (factor > 0) separated by commas, e.g. 0:0.01,2:0.1 (got '\(text)')")
            }
            multipliers[module] = factor
        }
        return multipliers
    }
}
