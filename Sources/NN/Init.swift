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
