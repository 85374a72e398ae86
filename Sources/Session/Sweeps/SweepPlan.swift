import Foundation
import Tensor
import Tracking
import Training

/// One swept setting as typed: `lr 1e-4,3e-4` (values), `lr 1e-4..1e-2 log` (a range to draw
/// from), or a mix (`batch 32,64..256`). `build` sweeps model specs.
struct SweepAxis: Codable, Equatable {
    enum Scale: String, Codable { case linear, log }
    enum Item: Codable, Equatable {
        /// A value as the setting reads it back (`1e-3`, `64`), checked by its parser.
        case value(String)
        /// Endpoints checked by the setting's parser; `integer`: the setting takes only whole
        /// numbers, so draws are rounded.
        case range(low: Double, high: Double, integer: Bool)
    }

    var name: String
    var items: [Item]
    var scale: Scale = .linear

    var values: [String] { items.compactMap { if case .value(let v) = $0 { v } else { nil } } }
    var hasRange: Bool { items.contains { if case .range = $0 { true } else { false } } }
}

/// What a sweep does, recorded (as JSON) with it so `sweep resume` in another process does
/// exactly the same: the axes, the settings every run starts from, the spec, the epochs.
struct SweepPlan: Codable, Equatable {
    var axes: [SweepAxis]
    /// Epochs each configuration trains (the last rung).
    var epochs: Int
    /// Configurations drawn from the seed (nil: the grid of every combination).
    var randomCount: Int?
    var halving: Bool
    /// The session's settings when the sweep started, every run setting: each run starts from
    /// these plus its configuration.
    var base: [SweepValue]
    /// The spec the runs are built from when `build` is not swept.
    var spec: String?
    /// How the data was loaded, for the line that says what to load before `sweep resume`.
    var load: [String]

    var kind: SweepKind { halving ? .halving : randomCount == nil ? .grid : .random }

    /// The cumulative epochs after which successive halving keeps the better half: 1, 2, 4, …
    /// up to `epochs` (Jamieson & Talwalkar, η = 2). Without halving, one rung of all epochs.
    var rungs: [Int] {
        guard halving else { return [epochs] }
        var rungs: [Int] = []
        var r = 1
        while r < epochs { rungs.append(r); r *= 2 }
        return rungs + [epochs]
    }

    /// How many configurations train in each rung: all, then half (rounded down, at least one).
    static func survivors(of count: Int, rungs: Int) -> [Int] {
        var alive = count, result: [Int] = []
        for _ in 0..<rungs { result.append(alive); alive = max(1, alive / 2) }
        return result
    }

    /// Epochs the whole sweep trains: with halving, each rung's survivors times its new epochs.
    func epochBudget(configurations: Int) -> Int {
        let alive = SweepPlan.survivors(of: configurations, rungs: rungs.count)
        return zip(alive, zip(rungs, [0] + rungs)).map { $0 * ($1.0 - $1.1) }.reduce(0, +)
    }

    var json: String { String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self) }

    static func decode(_ text: String, sweep: Int64) throws -> SweepPlan {
        do { return try JSONDecoder().decode(SweepPlan.self, from: Data(text.utf8)) } catch {
            throw CommandError("sweep \(sweep)'s plan in the database cannot be read by this ollie (\(error)); start it again as a new sweep")
        }
    }

    /// The settings a configuration's run starts with: `start`, then the base, then its values.
    /// A base setting this ollie no longer knows is left out (the run records what it has).
    func settings(for configuration: [SweepValue], startingFrom start: Hyperparameters) throws -> Hyperparameters {
        try SweepPlan.apply(base + configuration, to: start)
    }

    /// `values` written over `start` by their settings' parsers (`build` is the spec, not a setting).
    static func apply(_ values: [SweepValue], to start: Hyperparameters) throws -> Hyperparameters {
        var h = start
        for value in values where value.name != SweepPlan.buildAxis {
            guard let setting = Setting.named(value.name) else { continue }
            do { try setting.write(&h, value.value) } catch {
                throw CommandError("the sweep records \(value.name) = '\(value.value)', which this ollie cannot use: \(error)")
            }
        }
        return h
    }

    /// The spec a configuration's run is built from: its swept one, or the sweep's.
    func spec(for member: SweepMember) throws -> String {
        guard let spec = member.settings.first(where: { $0.name == SweepPlan.buildAxis })?.value ?? spec else {
            throw CommandError("the sweep records no spec to build its runs from; start a new sweep after: build conv")
        }
        return spec
    }

    static let buildAxis = "build"
    /// The settings a sweep refuses: they follow the model's modules (and lr-mult's own
    /// commas), or rank the runs (`monitor`: scores of different metrics do not compare).
    static let unsweepable: Set<String> = ["frozen", "lr-mult", "monitor"]
    static let keywords = ["train", "random", "halving", "log", "linear", buildAxis]
    static let usage = "usage: sweep SETTING VALUES [log]… [random N] [halving] train N, e.g. sweep lr 1e-4,1e-3 batch 64,128 train 3"
    /// The most configurations a sweep trains.
    static let largest = 1000

    // MARK: - Parsing

    /// Reads `sweep` words into a plan and its configurations, checking every value with its
    /// setting's own parser (and every spec by compiling it) before anything trains.
    /// `checkSpec` compiles a spec for the loaded data; `base`: the session's settings.
    static func parse(_ words: [String], base: Hyperparameters, spec: String?, load: [String],
                      checkSpec: (String) throws -> Void) throws -> (plan: SweepPlan, configurations: [[SweepValue]]) {
        var axes: [SweepAxis] = []
        var epochs: Int?, randomCount: Int?, halving = false
        var i = 0
        func number(after word: String, _ range: ClosedRange<Int>, example: String) throws -> Int {
            guard i + 1 < words.count, let n = Int(words[i + 1]), range.contains(n) else {
                let got = i + 1 < words.count ? "'\(words[i + 1])'" : "nothing"
                throw CommandError("\(word) needs a whole number from \(range.lowerBound) to \(range.upperBound) (got \(got)), e.g. \(example)")
            }
            return n
        }
        while i < words.count {
            let word = words[i].lowercased()
            switch word {
            case "train":
                epochs = try number(after: "train", 1...10_000, example: "train 3"); i += 2
            case "random":
                randomCount = try number(after: "random", 1...largest, example: "random 8"); i += 2
            case "halving":
                halving = true; i += 1
            case "log", "linear":
                guard !axes.isEmpty else { throw CommandError("\(word) follows a setting's values, e.g. sweep lr 1e-4..1e-2 log random 8 train 3") }
                axes[axes.count - 1].scale = word == "log" ? .log : .linear
                i += 1
            default:
                guard i + 1 < words.count, !keywords.dropLast().contains(words[i + 1].lowercased()) else {
                    if word == buildAxis || Setting.named(word) != nil {
                        throw CommandError("\(word) needs values, e.g. \(word == buildAxis ? "build \"dense 64 relu | dense 10\",\"dense 10\"" : "\(word) \(Setting.named(word)!.suggestions.prefix(2).joined(separator: ","))")")
                    }
                    throw unknown(words[i])
                }
                guard !axes.contains(where: { $0.name == word }) else {
                    throw CommandError("\(word) is swept twice; give all its values at once, e.g. \(word) 1e-4,1e-3")
                }
                if word == buildAxis {
                    axes.append(try buildAxis(words[i + 1], checkSpec: checkSpec))
                } else {
                    guard let setting = Setting.named(word) else { throw unknown(words[i]) }
                    axes.append(try axis(setting, words[i + 1], base: base))
                }
                i += 2
            }
        }
        guard !axes.isEmpty else {
            throw CommandError("nothing to sweep: name settings and their values, e.g. sweep lr 1e-4,1e-3 train 3")
        }
        guard let epochs else {
            throw CommandError("a sweep trains every configuration: end it with train N, e.g. sweep \(axes[0].name) … train 3")
        }
        for axis in axes where axis.scale == .log {
            let lows = axis.items.map { item -> Double in
                switch item {
                case .range(let low, _, _): low
                case .value(let v): Double(v) ?? 0
                }
            }
            guard lows.allSatisfy({ $0 > 0 }) else {
                throw CommandError("\(axis.name) is swept on a log scale, so its values must be numbers > 0 (got \(axis.name) with \(formatRate(lows.min() ?? 0)))")
            }
        }
        if halving && epochs < 2 {
            throw CommandError("halving needs train N with N ≥ 2 (it keeps the better half after 1, 2, 4… epochs), e.g. halving train 4")
        }
        if randomCount == nil, let ranged = axes.first(where: \.hasRange) {
            throw CommandError("\(ranged.name) has a range: draw configurations from it with random N, e.g. random 8 (or list values: \(ranged.name) 1e-4,1e-3)")
        }
        if spec == nil && !axes.contains(where: { $0.name == buildAxis }) {
            throw CommandError("the model has no spec to rebuild each run from (it was built from an ONNX file); build one, or sweep specs: sweep build \"dense 64 relu | dense 10\",\"dense 10\" train 2")
        }
        let baseValues = Setting.recorded.map { SweepValue(name: $0.name, value: $0.value(in: base)) }
        let plan = SweepPlan(axes: axes, epochs: epochs, randomCount: randomCount, halving: halving, base: baseValues,
                             spec: spec, load: load)
        return (plan, try plan.configurations(seed: base.seed))
    }

    static func unknown(_ word: String) -> CommandError {
        let names = Setting.recorded.map(\.name).filter { !unsweepable.contains($0) } + keywords
        // One line that fits a screen: the guess, or where the list is (help set has 20 names).
        if let guess = closestWord(to: word.lowercased(), in: names) {
            return CommandError("unknown setting '\(word)' — did you mean '\(guess)'? (help sweep says what it takes)")
        }
        return CommandError("unknown setting '\(word)'; help sweep says what sweep takes")
    }

    /// `1e-4,3e-4..1e-3`: values and ranges, each checked by the setting's parser.
    static func axis(_ setting: Setting, _ text: String, base: Hyperparameters) throws -> SweepAxis {
        guard setting.isRunSetting else {
            throw CommandError("\(setting.name) is not a run setting (runs do not record it), so there is nothing to compare; sweep settings such as lr, batch")
        }
        if setting.name == "monitor" {
            throw CommandError("monitor ranks the sweep's runs, so every run follows the same one; set monitor before the sweep, e.g. set monitor val_loss")
        }
        guard !unsweepable.contains(setting.name) else {
            throw CommandError("\(setting.name) follows the model's modules; it is not swept (change it with freeze, unfreeze or fine-tune)")
        }
        var items: [SweepAxis.Item] = []
        func canonical(_ value: String) throws -> String {
            var h = base
            try setting.write(&h, value)
            return setting.value(in: h)
        }
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !part.isEmpty else {
                throw CommandError("\(setting.name) has an empty value in '\(text)'; separate values with single commas, e.g. \(setting.name) \(setting.suggestions.prefix(2).joined(separator: ","))")
            }
            if let dots = part.range(of: "..") {
                let lowText = String(part[..<dots.lowerBound]), highText = String(part[dots.upperBound...])
                _ = try canonical(lowText)
                _ = try canonical(highText)
                guard let low = Double(lowText), let high = Double(highText) else {
                    throw CommandError("\(setting.name) \(part): a range needs numbers at both ends, e.g. \(setting.name) 1e-4..1e-2")
                }
                guard low < high else {
                    throw CommandError("\(setting.name) \(part): write the lower end first, e.g. \(setting.name) \(highText)..\(lowText)")
                }
                // A setting that refuses a fraction between the ends takes whole numbers: draws round.
                let probe = low.rounded(.down) + 0.5
                let integer = Int(lowText) != nil && Int(highText) != nil && (probe >= high || (try? canonical(String(probe))) == nil)
                items.append(.range(low: low, high: high, integer: integer))
            } else {
                let value = try canonical(part)
                if !items.contains(.value(value)) { items.append(.value(value)) }
            }
        }
        return SweepAxis(name: setting.name, items: items)
    }

    /// `build "spec A","spec B"`: the line parser keeps quoted spaces, so the word is the specs
    /// joined by commas; commas inside parentheses belong to a spec.
    static func buildAxis(_ text: String, checkSpec: (String) throws -> Void) throws -> SweepAxis {
        var specs: [String] = [], current = "", depth = 0
        for ch in text {
            if ch == "(" { depth += 1 }
            if ch == ")" { depth -= 1 }
            if ch == "," && depth == 0 { specs.append(current); current = "" } else { current.append(ch) }
        }
        specs.append(current)
        var items: [SweepAxis.Item] = []
        for raw in specs {
            let spec = raw.split(separator: " ").joined(separator: " ")
            guard !spec.isEmpty else {
                throw CommandError("build has an empty spec in '\(text)'; quote each spec and separate them with commas, e.g. build \"dense 64 relu | dense 10\",\"dense 10\"")
            }
            do { try checkSpec(spec) } catch { throw CommandError("build \"\(spec)\": \(error)") }
            if !items.contains(.value(spec)) { items.append(.value(spec)) }
        }
        return SweepAxis(name: buildAxis, items: items)
    }

    // MARK: - Configurations

    /// The grid (every combination, the first axis changing slowest) or `randomCount` draws
    /// from the seed. Refused when empty or over `largest`.
    func configurations(seed: UInt64) throws -> [[SweepValue]] {
        if let randomCount {
            // A stream of its own: the draws never shift the weights' or shuffling's.
            var random = Random(seed: seed, stream: 0x5357_4545_50)
            return try (0..<randomCount).map { _ in try axes.map { SweepValue(name: $0.name, value: try draw($0, &random)) } }
        }
        let sizes = axes.map(\.values.count)
        let count = sizes.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        guard count > 0 else { throw CommandError("the grid is empty: every swept setting needs at least one value") }
        guard count <= SweepPlan.largest else {
            throw CommandError("the grid has \(count) configurations (\(zip(axes, sizes).map { "\($0.name) \($1)" }.joined(separator: " × "))), more than \(SweepPlan.largest); sweep fewer values, or draw some: random 50")
        }
        var result: [[SweepValue]] = [[]]
        for axis in axes {
            result = result.flatMap { partial in axis.values.map { partial + [SweepValue(name: axis.name, value: $0)] } }
        }
        return result
    }

    /// One value of `axis`: an item chosen uniformly, and within a range uniformly (on a log
    /// scale: uniformly in its logarithm), kept to three significant digits, as typed values are.
    func draw(_ axis: SweepAxis, _ random: inout Random) throws -> String {
        let item = axis.items.count == 1 ? axis.items[0] : axis.items[Int(random.next() % UInt64(axis.items.count))]
        switch item {
        case .value(let value):
            return value
        case .range(let low, let high, let integer):
            let u = Double(random.next() >> 11) / Double(1 << 53)   // [0, 1), 53 bits
            var x = axis.scale == .log ? exp(log(low) + u * (log(high) - log(low))) : low + u * (high - low)
            if integer { x = min(max(x.rounded(), low), high) }
            let text = integer ? String(Int(x)) : String(format: "%.3g", x)
            guard let setting = Setting.named(axis.name) else { return text }
            var h = Hyperparameters()
            try setting.write(&h, text)
            return setting.value(in: h)
        }
    }
}
