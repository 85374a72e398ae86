import Foundation
import Tracking
import Training

/// One `set`-able setting: its name, help, how to parse it and where it lives. `set`, `show`,
/// completion and the run record all read this table.
public struct Setting: Sendable {
    public let name: String
    public let summary: String
    /// Values offered by tab completion (examples for numbers).
    public let suggestions: [String]
    let read: @Sendable (Hyperparameters) -> String
    /// Parses and validates text; throws a CommandError naming what was expected.
    let write: @Sendable (inout Hyperparameters, String) throws -> Void
    /// Whether runs record it (in `params` and checkpoints): true for everything that changes
    /// a number; false for bookkeeping such as `keep`.
    var isRunSetting = true
    /// What a run recorded before this setting existed had in force (nil: the setting is as
    /// old as the record): `resume` and `fork` of such a run take this, not the session's value.
    var unrecordedValue: String?

    public func value(in h: Hyperparameters) -> String { read(h) }
}

extension Setting {
    /// Every setting, in the order `show` lists them.
    public static let all: [Setting] = [
        Setting(name: "lr", summary: "learning rate", suggestions: ["3e-3", "1e-3", "3e-4"],
                read: { formatRate($0.learningRate) },
                write: { $0.learningRate = try parseFloat($1, "lr", above: 0, atMost: 10) }),
        Setting(name: "batch", summary: "minibatch size", suggestions: ["32", "64", "128", "256"],
                read: { String($0.batchSize) },
                write: { $0.batchSize = try parseInt($1, "batch", 1...65536) }),
        Setting(name: "noise", summary: "std-dev of Gaussian noise added to training inputs", suggestions: ["0", "0.1", "0.2"],
                read: { formatRate($0.noise) },
                write: { $0.noise = try parseFloat($1, "noise", atLeast: 0, atMost: 10) }),
        Setting(name: "clip", summary: "largest global gradient norm: longer gradients are scaled down to it (off: never)",
                suggestions: ["1", "5", "off"],
                read: { $0.clipNorm.map(formatRate) ?? "off" },
                write: {
                    if ["off", "none"].contains($1.lowercased()) { $0.clipNorm = nil; return }
                    guard let norm = Float($1), norm.isFinite, norm > 0 else {
                        throw CommandError("clip must be a number > 0 (a gradient norm, like 1) or off (got '\($1)')")
                    }
                    $0.clipNorm = norm
                }, unrecordedValue: "off"),
        Setting(name: "optimizer", summary: "adam, adamw (decoupled wd), sgd, momentum (SGD, momentum 0.9), nesterov (Nesterov momentum 0.9) or rmsprop (PyTorch's: alpha 0.99, eps 1e-8, no momentum; Keras' defaults are rho 0.9, eps 1e-7)",
                suggestions: OptimizerKind.allCases.map(\.rawValue),
                read: { $0.optimizer.rawValue },
                write: {
                    guard let kind = OptimizerKind(rawValue: $1.lowercased()) else {
                        throw CommandError("optimizer must be one of \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")) (got '\($1)')")
                    }
                    $0.optimizer = kind
                }),
        Setting(name: "seed", summary: "seed for weights, noise and shuffling", suggestions: ["1", "42"],
                read: { String($0.seed) },
                write: {
                    guard let seed = UInt64($1) else { throw CommandError("seed must be a whole number ≥ 0 (got '\($1)')") }
                    $0.seed = seed
                }),
        Setting(name: "threads", summary: "worker threads (each trains a slice of every batch)", suggestions: ["1", "2"],
                read: { String($0.threads) },
                write: { $0.threads = try parseInt($1, "threads", 1...256) }),
        Setting(name: "patience", summary: "epochs without improvement before lr is decayed", suggestions: ["3", "5"],
                read: { String($0.patience) },
                write: { $0.patience = try parseInt($1, "patience", 1...10_000) }),
        Setting(name: "decay", summary: "factor lr is multiplied by after `patience` idle epochs", suggestions: ["0.1", "0.5"],
                read: { formatRate($0.decay) },
                write: { $0.decay = try parseFloat($1, "decay", above: 0, atMost: 1) }),
        Setting(name: "target", summary: "test accuracy that stops training early (off: never stop early)", suggestions: ["0.999", "0.99", "off"],
                read: { $0.target > 1 ? "off" : formatRate($0.target) },
                write: {
                    if ["off", "none"].contains($1.lowercased()) { $0.target = .infinity; return }
                    $0.target = try parseFloat($1, "target", above: 0, atMost: 1)
                }),
        Setting(name: "stop-after", summary: "idle epochs after which the run is called converged", suggestions: ["10"],
                read: { String($0.stopAfter) },
                write: { $0.stopAfter = try parseInt($1, "stop-after", 1...10_000) }),
        Setting(name: "shuffle", summary: "shuffle the training set each epoch (on/off)", suggestions: ["on", "off"],
                read: { $0.shuffle ? "on" : "off" },
                write: { $0.shuffle = try parseSwitch($1, "shuffle") }),
        Setting(name: "val", summary: "fraction of the training set held out (stratified, seeded) for the policy to score; 0: score the test set each epoch",
                suggestions: ["0", "0.1", "0.2"],
                read: { formatRate($0.validationFraction) },
                write: {
                    if ["off", "none"].contains($1.lowercased()) { $0.validationFraction = 0; return }
                    $0.validationFraction = try parseFloat($1, "val", atLeast: 0, atMost: 0.9)
                }),
        Setting(name: "frozen", summary: "top-level modules (as summary numbers them) whose weights training leaves as they are; change with freeze and unfreeze",
                suggestions: ["none"],
                read: { ModuleList.text($0.frozenModules) },
                write: { $0.frozenModules = try ModuleList.parse($1, "frozen") }, unrecordedValue: "none"),
        Setting(name: "lr-mult", summary: "what lr is multiplied by per top-level module, MODULE:FACTOR,… (others: 1); fine-tune sets it; off: lr for all",
                suggestions: ["off", "0:0.1"],
                read: { ModuleList.multipliersText($0.learningRateMultipliers) },
                write: { $0.learningRateMultipliers = try ModuleList.parseMultipliers($1) }, unrecordedValue: "off"),
        // schedules
        Setting(name: "schedule", summary: "how lr moves each step: plateau (policy drops), constant, step EPOCHS FACTOR, cosine or onecycle [MAX_LR] (these two span the train N that starts them)",
                suggestions: ["plateau", "constant", "step 3 0.1", "cosine", "onecycle"],
                read: { $0.schedule.text },
                write: {
                    do { $0.schedule = try LearningRateSchedule(parsing: $1) } catch { throw CommandError("\(error)") }
                }, unrecordedValue: "plateau"),
        Setting(name: "warmup", summary: "steps of linear warmup from 0 to the scheduled lr at the start of training (0: none)",
                suggestions: ["0", "100", "500"],
                read: { String($0.warmupSteps) },
                write: { $0.warmupSteps = try parseInt($1, "warmup", 0...100_000_000) }, unrecordedValue: "0"),
        Setting(name: "monitor", summary: "the metric the policy follows (best checkpoint, restore best, plateau, stop-after; compare shows its best), METRIC [min|max]: accuracy (the scored split's), val_loss, val_accuracy, …; target applies only to accuracies",
                suggestions: ["accuracy", "val_loss", "val_accuracy"],
                read: { $0.monitor.text },
                write: {
                    do { $0.monitor = try Monitor(parsing: $1) } catch { throw CommandError("\(error)") }
                }, unrecordedValue: "accuracy"),
        // augment
        Setting(name: "augment", summary: "random changes to training inputs, drawn per sample from the seed: flip, crop P (pad P, crop back), rotate DEG, scale S, brightness B, contrast C; clips (one draw for all frames) also offset [F] (start 0…F frames late, F ⌊T/4⌋ if not given) and stride S (every k-th frame, k 1…S): frame t is min(start+t·k, T−1); off",
                suggestions: ["off", "flip", "crop", "rotate", "scale", "brightness", "contrast", "offset", "stride"],
                read: { $0.augmentation.text },
                write: {
                    do { $0.augmentation = try Augmentation(parsing: $1) } catch let error as AugmentationError {
                        let hint = error.unknownWord.flatMap { closestWord(to: $0, in: Augmentation.words) }.map { " — did you mean '\($0)'?" } ?? ""
                        let words = error.unknownWord == nil || !hint.isEmpty ? "" : "; augment takes flip, crop P, rotate DEG, scale S, brightness B, contrast C, offset [F], stride S or off"
                        throw CommandError("\(error)\(hint)\(words)")
                    }
                }, unrecordedValue: "off"),
        // recipes
        Setting(name: "wd", summary: "weight decay, PyTorch's weight_decay: L2 added to the gradient (adam, sgd, momentum, nesterov, rmsprop) or decoupled, p -= lr·wd·p (adamw, usually 1e-2); every trained parameter, biases too",
                suggestions: ["1e-2", "1e-4", "0"],
                read: { formatRate($0.weightDecay) },
                write: { $0.weightDecay = try parseFloat($1, "wd", atLeast: 0, atMost: 1) }, unrecordedValue: "0"),
        Setting(name: "smoothing", summary: "label smoothing ε of the training loss (torch's label_smoothing), from 0 to below 1; val/test loss stay plain cross-entropy",
                suggestions: ["0", "0.1"],
                read: { formatRate($0.labelSmoothing) },
                write: {
                    guard let value = Float($1), value.isFinite, value >= 0, value < 1 else {
                        throw CommandError("smoothing must be a number ≥ 0 and < 1, like 0.1 (got '\($1)')")
                    }
                    $0.labelSmoothing = value
                }, unrecordedValue: "0"),
        Setting(name: "class-weights", summary: "weights of each class in the training loss: balanced (n/(classes·count), from the training split), W1,W2,… (one per class) or off; val/test loss stay unweighted",
                suggestions: ["off", "balanced"],
                read: { $0.classWeights.text },
                write: {
                    do { $0.classWeights = try ClassWeights(parsing: $1) } catch { throw CommandError("\(error)") }
                }, unrecordedValue: "off"),
        Setting(name: "topk", summary: "record top-K accuracy on the scored split each epoch (val_topK or test_topK), K ≥ 2, or off",
                suggestions: ["off", "5"],
                read: { $0.topK.map(String.init) ?? "off" },
                write: {
                    if ["off", "none"].contains($1.lowercased()) { $0.topK = nil; return }
                    guard let k = Int($1), (2...1000).contains(k) else {
                        throw CommandError("topk must be off or a whole number from 2 to 1000, like 5 (got '\($1)')")
                    }
                    $0.topK = k
                }, unrecordedValue: "off"),
        Setting(name: "keep", summary: "epoch states kept on disk for resume/fork: all, N (the last N) or best-and-last",
                suggestions: ["all", "best-and-last", "3"],
                read: { $0.keep.text },
                write: {
                    guard let keep = StateRetention($1) else {
                        throw CommandError("keep must be all, best-and-last or a whole number ≥ 1 (the last N epochs), e.g. set keep 3 (got '\($1)')")
                    }
                    $0.keep = keep
                }, isRunSetting: false),
        Setting(name: "mlflow", summary: "an MLflow tracking server's URL to log runs to live while training (in the background), or off",
                suggestions: ["http://127.0.0.1:5000", "off"],
                read: { $0.mlflowServer ?? "off" },
                write: {
                    if ["off", "none"].contains($1.lowercased()) { $0.mlflowServer = nil; return }
                    do { $0.mlflowServer = try MLflowServer($1).description } catch { throw CommandError("\(error)") }
                }, isRunSetting: false),
        Setting(name: "stats", summary: "record each layer's `stats` with every epoch, as metrics stats.LAYER.NAME (on/off)",
                suggestions: ["on", "off"],
                read: { $0.recordsLayerStatistics ? "on" : "off" },
                write: { $0.recordsLayerStatistics = try parseSwitch($1, "stats") }, isRunSetting: false),
        Setting(name: "cache-limit", summary: "the most disk the decoded image and video folders keep (see `cache`); least recently used go first",
                suggestions: ["2G", "500M", "0"],
                read: { ByteSize.text($0.decodedCacheLimitBytes) },
                write: { $0.decodedCacheLimitBytes = try ByteSize.parse($1, "cache-limit") }, isRunSetting: false),
    ]

    /// The settings a run records.
    public static var recorded: [Setting] { all.filter(\.isRunSetting) }

    public static func named(_ name: String) -> Setting? {
        all.first { $0.name == name.lowercased() }
    }

    /// What `set` changes, and so what its help and completion offer: every setting but those
    /// changed through a command of their own (`frozen`, through freeze and unfreeze, which check
    /// the model), still listed by `show`.
    public static var settable: [Setting] { all.filter { $0.name != "frozen" } }
}

func parseFloat(_ text: String, _ name: String, above low: Float? = nil, atLeast floor: Float? = nil,
                atMost high: Float) throws -> Float {
    let range = low.map { "> \(formatRate($0))" } ?? floor.map { "≥ \(formatRate($0))" } ?? ""
    let expected = "\(name) must be a number \(range) and ≤ \(formatRate(high)), like \(Setting.named(name)?.suggestions.first ?? "1")"
    guard let value = Float(text), value.isFinite else { throw CommandError("\(expected) (got '\(text)')") }
    if let low, value <= low { throw CommandError("\(expected) (got \(text))") }
    if let floor, value < floor { throw CommandError("\(expected) (got \(text))") }
    if value > high { throw CommandError("\(expected) (got \(text))") }
    return value
}

func parseSwitch(_ text: String, _ name: String) throws -> Bool {
    switch text.lowercased() {
    case "on", "true", "yes", "1": return true
    case "off", "false", "no", "0": return false
    default: throw CommandError("\(name) must be on or off (got '\(text)')")
    }
}

func parseInt(_ text: String, _ name: String, _ range: ClosedRange<Int>) throws -> Int {
    guard let value = Int(text), range.contains(value) else {
        throw CommandError("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound) (got '\(text)')")
    }
    return value
}
