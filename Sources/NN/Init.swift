import Tensor

/// Glorot (Xavier) uniform: U(−a, a) with a = √(6 / (fan_in + fan_out)), as Flux and Keras use.
public func glorotUniform(_ shape: [Int], fanIn: Int, fanOut: Int, random: inout Random) -> Tensor {
    let limit = (6 / Float(fanIn + fanOut)).squareRoot()
    let t = Tensor(shape)
    for i in 0..<t.count { t.data[i] = random.uniform(-limit, limit) }
    return t
}

/// A model that cannot be built or loaded as asked; the message says why.
public struct ModelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// A convolution's weight [OC, C/G, k…] (Glorot-uniform over fan-in (C/G)·∏k, what one output
/// sees, and fan-out OC·∏k: PyTorch's fans of that tensor) and zero bias, named as PyTorch names
/// them. Every convolution layer draws them this way, so the portable and fast layers built from
/// the same seed have the same weights.
func convolutionParameters(inChannels: Int, outChannels: Int, kernel: [Int], groups: Int = 1,
                           random: inout Random) -> (weight: Parameter, bias: Parameter) {
    let volume = kernel.reduce(1, *), groupChannels = inChannels / groups
    let weight = Parameter(name: "weight", value: glorotUniform([outChannels, groupChannels] + kernel,
                                                                fanIn: groupChannels * volume, fanOut: outChannels * volume,
                                                                random: &random))
    return (weight, Parameter(name: "bias", value: Tensor([outChannels])))
}
