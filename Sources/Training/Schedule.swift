import Foundation

/// How the learning rate moves from step to step (`set schedule`). The `lr` setting is the base
/// every schedule scales; `plateau` is the reference policy's (conv.jl: the rate is divided after
/// `patience` idle epochs, written into the settings), the others leave `lr` alone and compute
/// each step's rate from it.
public enum LearningRateSchedule: Equatable, Sendable {
    /// The reference policy's drops on a plateau (the default).
    case plateau
    /// `lr` at every step.
    case constant
    /// PyTorch StepLR(step_size: epochs, gamma: factor): lr × factor^⌊(epoch − 1) / epochs⌋,
    /// counting the model's epochs from 1.
    case step(epochs: Int, factor: Float)
    /// PyTorch CosineAnnealingLR(T_max: the span, eta_min 0) over the `train` call that starts it.
    case cosine
    /// PyTorch OneCycleLR's defaults (pct_start 0.3, cos annealing, div_factor 25,
    /// final_div_factor 1e4, no momentum cycling) over the `train` call that starts it, peaking at
    /// `maxRate` (nil: the `lr` setting).
    case oneCycle(maxRate: Float?)

    /// What `set schedule` takes and `show` prints: "step 3 0.1", "onecycle 0.01".
    public var text: String {
        switch self {
        case .plateau: "plateau"
        case .constant: "constant"
        case .step(let epochs, let factor): "step \(epochs) \(Self.number(factor))"
        case .cosine: "cosine"
        case .oneCycle(let maxRate): maxRate.map { "onecycle \(Self.number($0))" } ?? "onecycle"
        }
    }

    static func number(_ x: Float) -> String {
        let text = "\(x)"
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }

    /// The usage every refusal ends with.
    public static let usage = "constant | step EPOCHS FACTOR | cosine | onecycle [MAX_LR] | plateau, e.g. set schedule step 3 0.1"

    /// Parses `set schedule`'s words; a mistake is a one-line message saying what to type.
    public init(parsing text: String) throws {
        let words = text.split(separator: " ").map { $0.lowercased() }
        func refuse(_ why: String) -> TrainingError { TrainingError("schedule \(why); schedule must be \(Self.usage)") }
        guard let name = words.first else { throw refuse("needs a name") }
        let rest = Array(words.dropFirst())
        func noArguments(_ kind: LearningRateSchedule) throws -> LearningRateSchedule {
            guard rest.isEmpty else {
                throw refuse("\(name) takes no numbers (got '\(rest.joined(separator: " "))'; it spans the `train N` that starts it)")
            }
            return kind
        }
        switch name {
        case "plateau": self = try noArguments(.plateau)
        case "constant": self = try noArguments(.constant)
        case "cosine": self = try noArguments(.cosine)
        case "step":
            guard rest.count == 2 else { throw refuse("step needs EPOCHS and FACTOR (got \(rest.count) number\(rest.count == 1 ? "" : "s"))") }
            guard let epochs = Int(rest[0]), (1...100_000).contains(epochs) else {
                throw refuse("step's EPOCHS must be a whole number from 1 to 100000 (got '\(rest[0])')")
            }
            guard let factor = Float(rest[1]), factor.isFinite, factor > 0, factor <= 1 else {
                throw refuse("step's FACTOR must be a number > 0 and ≤ 1 (got '\(rest[1])')")
            }
            self = .step(epochs: epochs, factor: factor)
        case "onecycle", "one-cycle":
            guard rest.count <= 1 else { throw refuse("onecycle takes at most MAX_LR (got '\(rest.joined(separator: " "))')") }
            guard let word = rest.first else { self = .oneCycle(maxRate: nil); return }
            guard let rate = Float(word), rate.isFinite, rate > 0, rate <= 10 else {
                throw refuse("onecycle's MAX_LR must be a number > 0 and ≤ 10 (got '\(word)')")
            }
            self = .oneCycle(maxRate: rate)
        default: throw refuse("'\(name)' is unknown")
        }
    }

    /// Whether the schedule spans a `train` call (cosine, onecycle).
    public var spansCall: Bool {
        switch self {
        case .cosine, .oneCycle: true
        default: false
        }
    }

    /// Whether the rate can change from one step to the next (then each step's rate is recorded).
    public func movesPerStep(warmupSteps: Int) -> Bool { self != .plateau || warmupSteps > 0 }
}

/// The steps a cosine or one-cycle schedule anneals over: from `firstStep` (the run's step count
/// when the `train N` that started it began), `steps` long. Part of a run's state (saved in
/// checkpoints) so that `resume`, `fork` and a continued Ctrl-C retrace the same rates.
public struct ScheduleSpan: Equatable, Sendable {
    public var firstStep: Int
    public var steps: Int
    /// The schedule it was started for (`set schedule` to another starts a new span).
    public var schedule: String

    public init(firstStep: Int, steps: Int, schedule: String) {
        self.firstStep = firstStep
        self.steps = steps
        self.schedule = schedule
    }

    public var endStep: Int { firstStep + steps }
}

public enum Schedule {
    /// The learning rate of optimizer step `step` (0-based, counted over the model's life, as
    /// `Trainer.stepsDone`), taken during epoch `epoch` (1-based). `base` is the `lr` setting;
    /// `span` is where a cosine or one-cycle schedule anneals (nil: not started, the base rate).
    ///
    /// Warmup (transformers' get_*_schedule_with_warmup): over steps 0..<warmup the rate is
    /// step/warmup of the schedule's; a cosine starts annealing where the warmup ends.
    public static func rate(step: Int, epoch: Int, base: Float, schedule: LearningRateSchedule,
                            warmupSteps: Int, span: ScheduleSpan?) -> Float {
        let base = Double(base)
        var rate: Double
        switch schedule {
        case .plateau, .constant:
            rate = base
        case .step(let epochs, let factor):
            rate = base * pow(Double(factor), Double(max(0, epoch - 1) / epochs))
        case .cosine:
            guard let span else { rate = base; break }
            let start = min(max(span.firstStep, warmupSteps), span.endStep)
            let length = span.endStep - start
            let progress = length > 0 ? min(1, Double(max(0, step - start)) / Double(length)) : 0
            rate = base * 0.5 * (1 + cos(Double.pi * progress))
        case .oneCycle(let maxRate):
            let peak = maxRate.map(Double.init) ?? base
            guard let span else { rate = peak / 25; break }
            rate = oneCycle(step: step - span.firstStep, totalSteps: span.steps, maxRate: peak)
        }
        if step < warmupSteps { rate *= Double(step) / Double(warmupSteps) }
        return Float(rate)
    }

    /// torch.optim.lr_scheduler.OneCycleLR.get_lr with its defaults (two phases, cos annealing),
    /// at step `t` of `totalSteps`; past the end, the last phase's end (its smallest rate).
    static func oneCycle(step t: Int, totalSteps: Int, maxRate: Double) -> Double {
        let initial = maxRate / 25, minimum = initial / 1e4
        let phases: [(end: Double, from: Double, to: Double)] = [
            (0.3 * Double(totalSteps) - 1, initial, maxRate),
            (Double(totalSteps) - 1, maxRate, minimum),
        ]
        func anneal(_ from: Double, _ to: Double, _ pct: Double) -> Double { to + (from - to) / 2 * (cos(Double.pi * pct) + 1) }
        var start = 0.0
        for (i, phase) in phases.enumerated() {
            if Double(t) <= phase.end || i == phases.count - 1 {
                let width = phase.end - start
                let pct = width > 0 ? min(1, (Double(t) - start) / width) : 1
                return anneal(phase.from, phase.to, pct)
            }
            start = phase.end
        }
        return minimum
    }
}
