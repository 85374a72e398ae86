import Tensor

extension ModelSpec {
    /// The presets `build` knows by name, for `help build` and `build` alone.
    public static let presets: [(usage: String, summary: String)] = [
        ("conv", "the Flux model-zoo MNIST convnet (conv.jl): " + referenceConvNet(classes: 10).text),
        ("mlp [HIDDEN...]", "flatten, dense HIDDEN relu for each size (default 128), dense to the classes"),
    ]

    /// conv.jl's network: three 3×3 convolutions with ReLU and 2×2 max pooling (28 → 14 → 7 → 3),
    /// then (flatten, implied) dense to the classes.
    public static func referenceConvNet(classes: Int) -> ModelSpec {
        // swiftlint:disable:next force_try
        try! ModelSpec(parsing: "conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense \(classes)")
    }

    /// Dense + ReLU for each hidden size, then dense to the classes.
    public static func mlp(hidden: [Int], classes: Int) throws -> ModelSpec {
        try ModelSpec(parsing: (hidden.map { "dense \($0) relu" } + ["dense \(classes)"]).joined(separator: " | "))
    }

    /// The tensor names checkpoints of the first versions used for the presets ("conv1.weight"
    /// … "fc.bias" for conv, "fc1.weight" … for mlp), mapped to this spec's module indices, so
    /// those files still restore. Empty when the spec has no such layers.
    public func legacyNames(inputShape: [Int]) -> [String: String] {
        guard let planned = try? plan(inputShape: inputShape) else { return [:] }
        let convs = planned.indices.filter { planned[$0].module.layer is ConvSpec }
        let denses = planned.indices.filter { planned[$0].module.layer is DenseSpec }
        var names: [String: String] = [:]
        for (k, i) in convs.enumerated() { names["conv\(k + 1)"] = String(i) }
        for (k, i) in denses.enumerated() { names["fc\(k + 1)"] = String(i) }
        if let last = denses.last { names["fc"] = String(last) }
        return names
    }
}
