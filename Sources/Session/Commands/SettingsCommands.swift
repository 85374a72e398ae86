import Foundation
import Tensor
import Tracking
import Training

extension Session {
    static let settingsCommands: [Command] = [
        Command("set", usage: "set KEY VALUE",
                summary: "Change a setting; help set describes each, show lists their values.",
                example: "set lr 3e-4", arity: 2...32, completion: .settings) { session, args, console in
            // A value may be several words (set augment flip crop 4, set schedule step 3 0.1).
            try session.set(args[0], args.dropFirst().joined(separator: " "), console)
        },
        Command("show", usage: "show | show N [test|train]",
                summary: "List settings with values and defaults, and the kernel set in use; with N, draw image N with its label and the model's top 3.",
                example: "show 7 test", arity: 0...2, completion: .words(["test", "train"])) { session, args, console in
            if args.isEmpty {
                console.write(session.renderSettings())
            } else {
                try session.showImage(args, console)
            }
        },
    ]

    func set(_ name: String, _ value: String, _ console: Console) throws {
        guard let setting = Setting.named(name) else {
            let names = Setting.settable.map(\.name)
            let hint = closestWord(to: name, in: names).map { " — did you mean '\($0)'?" } ?? ""
            throw CommandError("unknown setting '\(name)'\(hint); settings: \(names.joined(separator: ", "))")
        }
        if setting.name == "frozen" {
            throw CommandError("frozen changes with freeze LAYERS and unfreeze [LAYERS], e.g. freeze 0-3")
        }
        if setting.name == "lr-mult" { try checkMultipliers(value) }
        if setting.name == "class-weights" { try checkClassWeights(value) }
        try apply(setting, value, console)
    }

    /// Changes a setting the user asked for (`set`, `freeze`): in force from the next step,
    /// recorded with the run from its next epoch, said in one line.
    func apply(_ setting: Setting, _ value: String, _ console: Console) throws {
        var updated = settings
        try setting.write(&updated, value)
        if setting.name == "mlflow" { try checkMLflowSetting(updated.mlflowServer) }
        let old = setting.value(in: settings), new = setting.value(in: updated)
        settings = updated   // the trainer reads the same copy from its next step on
        try setting.write(&live.chosen, value)   // and it is the user's choice, for later runs too
        if let runID, let trainer, old != new, setting.isRunSetting {
            let epoch = trainer.epochsDone + 1
            recordInOrder(console, run: runID, "\(setting.name) = \(new) from epoch \(epoch) of run \(runID)") {
                try $0.recordParamChange(run: runID, name: setting.name, value: new, fromEpoch: epoch)
            }
            console.write("\(setting.name) = \(new) (was \(old); applies from epoch \(epoch) of run \(runID))")
        } else {
            console.write("\(setting.name) = \(new)\(old == new ? " (unchanged)" : " (was \(old))")")
        }
        if setting.name == "mlflow" && old != new { mlflowSettingChanged(console) }
        if setting.name == "augment", let data = dataset, data.frames == 1,
           settings.augmentation.offsetFrames != nil || settings.augmentation.temporalStride > 1 {
            console.write("note: offset and stride resample clips in time; on these images they do nothing")
        }
        if setting.name == "seed" && model != nil {
            console.write("note: the seed sets initial weights at the next build or reset")
        }
    }

    func renderSettings() -> String {
        let defaults = Hyperparameters()
        var differ = false
        let rows = Setting.all.map { s in
            let value = s.value(in: settings), initial = s.value(in: defaults), yours = s.value(in: live.chosen)
            // The policy changed it in this run (an LR drop): the value in force, then the user's.
            let inRun = yours == value ? "" : " (in run\(runID.map { " \($0)" } ?? ""); you set \(yours))"
            if !inRun.isEmpty { differ = true }
            return [s.name, value + (value == initial ? "" : " *") + inRun, initial, s.summary]
        }
        // The meaning wraps between words in what the other columns leave of 80.
        var firstColumns = TextTable(header: ["setting", "value", "default"])
        rows.forEach { firstColumns.add(Array($0.prefix(3))) }
        let meaningWidth = max(20, 80 - firstColumns.columnWidths.reduce(0, +) - 3 * 2)
        var table = TextTable(header: ["setting", "value", "default", "meaning"])
        for row in rows { table.add(row, wrappingTo: [nil, nil, nil, meaningWidth]) }
        return table.render() + "\n(* changed from the default"
            + (differ ? "; \"in run\": changed by the run's policy, the next new run starts from your setting)" : ")")
            + "\nkernels: \(Kernels.setName) (of \(Kernels.available.joined(separator: ", ")); OLLIE_KERNELS chooses)"
    }
}

/// The nearest word by edit distance, if it is close enough to be a plausible typo.
func closestWord(to word: String, in candidates: [String]) -> String? {
    let w = Array(word.lowercased())
    func distance(_ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, a) in w.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, c) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (a == c ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
    let scored = candidates.map { ($0, distance(Array($0))) }.min { $0.1 < $1.1 }
    guard let (best, d) = scored, d <= max(1, min(3, best.count / 2)) else { return nil }
    return best
}
