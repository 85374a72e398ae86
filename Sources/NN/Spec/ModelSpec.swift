import Foundation
import Tensor

/// An architecture as the user types it: layers separated by `|`, read left to right from the
/// data's per-sample shape, e.g.
///
///     conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 10
///
/// It is the one description of a model: it has one canonical printed form (`text`; parsing
/// that gives the same spec back), runs, reports and checkpoints store it, and `compile` turns
/// it into the engine's layers, applying the fast paths where shapes allow.
public struct ModelSpec: Equatable, Sendable, CustomStringConvertible {
    /// One module of the spec. An activation written inline (`conv 3x3 16 relu`) is a module
    /// of its own, as in PyTorch's nn.Sequential, marked so it prints inline again.
    public struct Module: Sendable {
        public var layer: any LayerSpec
        public var inline: Bool
    }

    public var modules: [Module]

    public init(modules: [Module]) { self.modules = modules }

    /// Every layer kind `build` knows, in the order `help build` lists them. A new layer is
    /// one file (its spec and its engine layer) plus one line here.
    public static let kinds: [LayerKind] = [
        LayerKind(ConvSpec.self), LayerKind(PoolSpec.self), LayerKind(GlobalAveragePoolSpec.self),
        LayerKind(FlattenSpec.self), LayerKind(DenseSpec.self), LayerKind(ActivationSpec.self),
        LayerKind(DropoutSpec.self), LayerKind(BatchNormSpec.self),
        LayerKind(ResidualSpec.self), LayerKind(FramesSpec.self),
        LayerKind(LSTMSpec.self), LayerKind(GRUSpec.self), LayerKind(AttentionSpec.self), LayerKind(BackboneSpec.self),
    ]

    /// Parses `conv 3x3 16 relu | pool 2 | dense 10`; the error names the layer and says what
    /// was expected.
    public init(parsing text: String) throws {
        modules = try ModelSpec.parse(text)
    }

    static func parse(_ text: String) throws -> [Module] {
        let pieces = try topLevelPieces(text)
        guard pieces.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw SpecError("an empty model; e.g. build conv 3x3 16 relu | pool 2 | dense 10")
        }
        var modules: [Module] = []
        for (index, piece) in pieces.enumerated() {
            let position = index + 1, typed = piece.trimmingCharacters(in: .whitespaces)
            if let open = typed.firstIndex(of: "(") {
                modules.append(Module(layer: try parseContainer(typed, open: open, position: position), inline: false))
                continue
            }
            let words = typed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let keyword = words.first?.lowercased() else {
                throw SpecError("layer \(position) is empty (two `|` in a row, or one at an end); remove it")
            }
            let kind = try ModelSpec.kind(keyword, position: position, typed: typed)
            var arguments = Array(words.dropFirst())
            var trailing: ActivationSpec?
            if kind.acceptsInlineActivation, let last = arguments.last, let activation = ActivationSpec.Kind(rawValue: last.lowercased()) {
                trailing = ActivationSpec(activation)
                arguments.removeLast()
            }
            let layer: any LayerSpec
            do { layer = try kind.parse(keyword, arguments) } catch {
                throw SpecError("layer \(position) \"\(typed)\": \(error); \(kind.grammar)")
            }
            modules.append(Module(layer: layer, inline: false))
            if let trailing { modules.append(Module(layer: trailing, inline: true)) }
        }
        return modules
    }

    /// How deep containers may sit inside each other (`res(res(…))`): planning a container
    /// plans its body more than once, so each level multiplies the time `build` takes.
    public static let maximumNesting = 8

    /// The text cut at every `|` outside parentheses; throws on unbalanced parentheses and on
    /// containers nested more than `maximumNesting` deep.
    static func topLevelPieces(_ text: String) throws -> [String] {
        var pieces: [String] = [], current = "", depth = 0
        for character in text {
            switch character {
            case "(":
                depth += 1
                guard depth <= maximumNesting else {
                    throw SpecError("containers nest more than \(maximumNesting) deep (like res(res(…))); put blocks one after another instead: res(…) | res(…)")
                }
            case ")":
                depth -= 1
                guard depth >= 0 else { throw SpecError("unbalanced parentheses: a ')' has no '(' before it in \"\(text)\"") }
            case "|" where depth == 0:
                pieces.append(current)
                current = ""
                continue
            default: break
            }
            current.append(character)
        }
        guard depth == 0 else { throw SpecError("unbalanced parentheses: \(depth == 1 ? "a '(' is" : "\(depth) '(' are") not closed in \"\(text)\"") }
        pieces.append(current)
        return pieces
    }

    /// `res(conv 3 16 relu | conv 3 16)`: a container keyword, its body in parentheses.
    static func parseContainer(_ typed: String, open: String.Index, position: Int) throws -> any LayerSpec {
        let keyword = typed[..<open].trimmingCharacters(in: .whitespaces).lowercased()
        guard !keyword.isEmpty else {
            throw SpecError("layer \(position) \"\(typed)\": parentheses need a container before them: res(…) or frames(…)")
        }
        let kind = try ModelSpec.kind(keyword, position: position, typed: typed)
        guard let parseBody = kind.parseBody else {
            throw SpecError("layer \(position) \"\(typed)\": \(keyword) takes no parentheses (containers: \(ModelSpec.containerKeywords)); \(kind.grammar)")
        }
        // The matching ')' is the last character: topLevelPieces has checked the balance.
        guard let close = typed.lastIndex(of: ")"), typed[typed.index(after: close)...].allSatisfy(\.isWhitespace),
              typed[typed.index(after: open)..<close].filter({ $0 == "(" }).count == typed[typed.index(after: open)..<close].filter({ $0 == ")" }).count else {
            throw SpecError("layer \(position) \"\(typed)\": nothing may follow \(keyword)(…) in the same layer; separate layers with |")
        }
        let inner = String(typed[typed.index(after: open)..<close])
        guard !inner.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw SpecError("layer \(position) \"\(typed)\": \(keyword)() is empty; put layers inside, e.g. \(kind.example ?? keyword)")
        }
        do { return try parseBody(keyword, try ModelSpec(parsing: inner)) } catch let error as SpecError {
            throw SpecError("layer \(position) \"\(keyword)(…)\": \(error.message)")
        }
    }

    /// The layer kind `keyword` names, or an error with a guess.
    static func kind(_ keyword: String, position: Int, typed: String) throws -> LayerKind {
        if let kind = ModelSpec.kinds.first(where: { $0.keyword == keyword || $0.aliases.contains(keyword) }) { return kind }
        let known = ModelSpec.kinds.flatMap { [$0.keyword] + $0.aliases }
        let guess = nearest(keyword, in: known).map { " — did you mean '\($0)'?" } ?? ""
        let word = typed.split(whereSeparator: { $0 == " " || $0 == "(" }).first.map(String.init) ?? keyword
        throw SpecError("layer \(position) \"\(typed)\": unknown layer '\(word)'\(guess); layers: \(ModelSpec.kinds.map(\.keyword).joined(separator: ", "))")
    }

    static var containerKeywords: String {
        kinds.filter { $0.parseBody != nil }.map { "\($0.keyword)(…)" }.joined(separator: ", ")
    }

    /// The canonical text: `conv 3x3 16 relu | pool 2 | dense 10`.
    public var text: String {
        var parts: [String] = []
        for module in modules {
            if module.inline, !parts.isEmpty { parts[parts.count - 1] += " " + module.layer.text } else { parts.append(module.layer.text) }
        }
        return parts.joined(separator: " | ")
    }

    public var description: String { text }

    public static func == (a: ModelSpec, b: ModelSpec) -> Bool { a.text == b.text }

    /// `help build`: the grammar of every layer kind.
    /// One line a layer where it fits in 80 columns, else its usage and then what it does.
    public static var grammar: String {
        kinds.map { kind in
            let parts = kind.grammar.components(separatedBy: "   ")
            guard parts.count == 2, 2 + kind.grammar.count > 80 else { return "  " + kind.grammar }
            return "  " + parts[0] + "\n      " + parts[1]
        }.joined(separator: "\n")
    }
}

/// A layer kind as the parser sees it: its words, its grammar, how to read its arguments.
public struct LayerKind: Sendable {
    public let keyword: String
    public let aliases: [String]
    public let grammar: String
    public let acceptsInlineActivation: Bool
    let parse: @Sendable (String, [String]) throws -> any LayerSpec
    /// For a container (`res(…)`): makes it from its parsed body; and an example of one.
    let parseBody: (@Sendable (String, ModelSpec) throws -> any LayerSpec)?
    public let example: String?

    public init<Spec: LayerSpec>(_ spec: Spec.Type) {
        keyword = Spec.keyword
        aliases = Spec.aliases
        grammar = Spec.grammar
        acceptsInlineActivation = Spec.acceptsInlineActivation
        parse = { try Spec(keyword: $0, arguments: $1) }
        parseBody = nil
        example = nil
    }

    public init<Spec: ContainerSpec>(_ spec: Spec.Type) {
        keyword = Spec.keyword
        aliases = Spec.aliases
        grammar = Spec.grammar
        acceptsInlineActivation = false
        parse = { try Spec(keyword: $0, arguments: $1) }
        parseBody = { try Spec(keyword: $0, body: $1) }
        example = Spec.example
    }
}

/// One layer of a spec: how it is written, what shape it makes, and the engine layer it becomes.
public protocol LayerSpec: Sendable {
    /// The word that starts it (`conv`), and other words for it.
    static var keyword: String { get }
    static var aliases: [String] { get }
    /// Its usage line for `help build` and for errors: `conv K OUT [stride S] [pad P|same|valid] [ACT]`.
    static var grammar: String { get }
    /// Whether an activation word may follow it inline (`conv 3x3 16 relu`, `dense 128 relu`).
    static var acceptsInlineActivation: Bool { get }
    /// Parses the words after the keyword; throws a SpecError saying what was expected.
    init(keyword: String, arguments: [String]) throws
    /// The canonical text; parsing it gives this spec back.
    var text: String { get }
    /// One sample's output shape for one sample's input shape ([C, D…] or [F]); throws a
    /// SpecError saying what it needs.
    func outputShape(for input: [Int]) throws -> [Int]
    /// Its trainable parameters and buffers for that input, counted before anything is allocated.
    func parameterCount(for input: [Int]) -> Int
    /// The engine layer for that input (whose shape `outputShape` has accepted). `fastPaths`:
    /// whether a specialised kernel may be chosen where the shapes allow (off: the portable
    /// layers, for tests).
    func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer
    /// The same three for a shape that may be a sequence (SampleShape.swift): by default a
    /// sequence is refused and anything else goes to the three above. Layers that take
    /// sequences (recurrent ones, attention, elementwise ones, containers) implement these.
    func output(for input: SampleShape) throws -> SampleShape
    func makeLayer(for input: SampleShape, fastPaths: Bool, random: inout Random) throws -> Layer
    func parameterCount(for input: SampleShape) -> Int
    /// By how much it divides each of `rank` spatial sizes (a residual block's shortcut strides
    /// by the product over its body).
    func stride(rank: Int) -> [Int]
}

extension LayerSpec {
    public static var aliases: [String] { [] }
    public static var acceptsInlineActivation: Bool { false }
    public func parameterCount(for input: [Int]) -> Int { 0 }
}

/// A spec that cannot be parsed or built: one line naming the layer and what it needed.
public struct SpecError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The closest word by edit distance, if close enough to be a typo.
func nearest(_ word: String, in candidates: [String]) -> String? {
    let w = Array(word)
    func distance(_ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, a) in w.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, c) in b.enumerated() { current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (a == c ? 0 : 1)) }
            previous = current
        }
        return previous[b.count]
    }
    let best = candidates.map { ($0, distance(Array($0))) }.min { $0.1 < $1.1 }
    guard let (candidate, d) = best, d <= max(1, min(3, candidate.count / 2)) else { return nil }
    return candidate
}

// MARK: - Shared parsing of sizes

/// "3", "3x3", "1x3x3": one size for every spatial dimension, or one per dimension.
struct Sizes: Equatable, Sendable {
    var values: [Int]

    init(values: [Int]) { self.values = values }

    /// `what` names the argument in errors ("the kernel", "the stride").
    init(parsing word: String, _ what: String, range: ClosedRange<Int>) throws {
        let parts = word.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count) else {
            throw SpecError("\(what) '\(word)' must be one size or one per dimension, like 3, 3x3 or 1x3x3")
        }
        values = try parts.map { part in
            guard let n = Int(part), range.contains(n) else {
                throw SpecError("\(what) '\(word)' must be whole numbers from \(range.lowerBound) to \(range.upperBound)")
            }
            return n
        }
    }

    var text: String { values.map(String.init).joined(separator: "x") }

    /// The sizes for an input of `rank` spatial dimensions: one value applies to all of them.
    func resolved(rank: Int) -> [Int]? {
        if values.count == 1 { return Array(repeating: values[0], count: rank) }
        return values.count == rank ? values : nil
    }
}

/// "16×14×14 (2-D)": a per-sample shape and its spatial rank, for errors.
func describe(_ shape: [Int]) -> String {
    let text = shape.map(String.init).joined(separator: "×")
    return shape.count <= 1 ? "\(text) (flat features)" : "\(text) (\(shape.count - 1)-D)"
}
