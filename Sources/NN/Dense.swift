import Tensor

/// Fully connected: y = x·Wᵀ + b.   Shapes: x [N, In] → y [N, Out]; weight [Out, In]; bias [Out].
/// Cache: the input x (owned by the layer below, unchanged until the next forward), for dW.
public final class Dense: Layer {
    public let inputs: Int, outputs: Int
    public let weight: Parameter
    public let bias: Parameter
    public var needsInputGradient = true
    private let output = Tensor([0])
    private let inputGradient = Tensor([0])
    private var input: Tensor?

    public init(_ inputs: Int, _ outputs: Int, random: inout Random) {
        self.inputs = inputs
        self.outputs = outputs
        weight = Parameter(name: "weight", value: glorotUniform([outputs, inputs], fanIn: inputs, fanOut: outputs, random: &random))
        bias = Parameter(name: "bias", value: Tensor([outputs]))
    }

    private init(sharing other: Dense) {
        inputs = other.inputs; outputs = other.outputs
        weight = Parameter(sharing: other.weight)
        bias = Parameter(sharing: other.bias)
        needsInputGradient = other.needsInputGradient
    }

    public func replica() -> Layer { Dense(sharing: self) }
    public var parameters: [Parameter] { [weight, bias] }
    public var description: String { "Dense(\(inputs) => \(outputs))" }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 1, input[0] == inputs else {
            throw ModelError("\(description) needs \(inputs) features, got \(input.map(String.init).joined(separator: "×")); flatten first or change the size")
        }
        return [outputs]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let n = x.shape[0]
        input = x
        output.resize([n, outputs])
        x.data.withUnsafeBufferPointer { xp in
            weight.value.data.withUnsafeBufferPointer { wp in
                output.data.withUnsafeMutableBufferPointer { yp in
                    BLAS.sgemm(transB: true, m: n, n: outputs, k: inputs, a: xp.baseAddress!, lda: inputs,
                               b: wp.baseAddress!, ldb: inputs, c: yp.baseAddress!, ldc: outputs)
                    bias.value.data.withUnsafeBufferPointer { b in
                        for row in 0..<n {
                            let y = yp.baseAddress! + row * outputs
                            for o in 0..<outputs { y[o] += b[o] }
                        }
                    }
                }
            }
        }
        return output
    }

    public func backward(_ dout: Tensor) -> Tensor {
        guard let x = input else { return inputGradient }
        let n = x.shape[0]
        dout.data.withUnsafeBufferPointer { dyp in
            let dy = dyp.baseAddress!
            bias.grad.data.withUnsafeMutableBufferPointer { db in
                for row in 0..<n {
                    for o in 0..<outputs { db[o] += dy[row * outputs + o] }
                }
            }
            x.data.withUnsafeBufferPointer { xp in
                weight.grad.data.withUnsafeMutableBufferPointer { dw in
                    BLAS.sgemm(transA: true, m: outputs, n: inputs, k: n, a: dy, lda: outputs,
                               b: xp.baseAddress!, ldb: inputs, beta: 1, c: dw.baseAddress!, ldc: inputs)
                }
            }
            guard needsInputGradient else { return }
            inputGradient.resize([n, inputs])
            weight.value.data.withUnsafeBufferPointer { wp in
                inputGradient.data.withUnsafeMutableBufferPointer { dx in
                    BLAS.sgemm(m: n, n: inputs, k: outputs, a: dy, lda: outputs,
                               b: wp.baseAddress!, ldb: inputs, c: dx.baseAddress!, ldc: inputs)
                }
            }
        }
        return inputGradient
    }
}

// MARK: - In a spec

/// `dense N [ACT]`: a fully connected layer to N features (Glorot-uniform weights, zero bias).
public struct DenseSpec: LayerSpec, Equatable {
    public static let keyword = "dense"
    public static let aliases = ["linear", "fc"]
    public static let grammar = "dense N [ACT]   fully connected to N features"
    public static let acceptsInlineActivation = true

    var outputs: Int

    public init(keyword: String, arguments: [String]) throws {
        guard arguments.count == 1 else { throw SpecError("needs one size, e.g. dense 10") }
        guard let n = Int(arguments[0]), (1...1_048_576).contains(n) else {
            throw SpecError("the size '\(arguments[0])' must be a whole number from 1 to 1048576")
        }
        outputs = n
    }

    public init(_ outputs: Int) { self.outputs = outputs }

    public var text: String { "\(DenseSpec.keyword) \(outputs)" }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 1 else { throw SpecError("needs flat features, got \(describe(input)); flatten or gap first") }
        return [outputs]
    }

    public func parameterCount(for input: [Int]) -> Int { outputs * input.reduce(1, *) + outputs }

    public func makeLayer(for input: [Int], fastPaths: Bool, random: inout Random) throws -> Layer {
        Dense(input[0], outputs, random: &random)
    }
}
