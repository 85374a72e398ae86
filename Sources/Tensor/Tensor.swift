import Foundation

/// A dense Float32 array with a shape, stored row-major (last index fastest).
///
/// A reference type on purpose: a layer owns the tensors it writes (its output, its cache) and
/// reuses them batch after batch, so the training step allocates nothing once the batch size
/// is fixed. `resize` keeps the storage when the element count does not grow.
///
/// Image activations use the layout [C, N, H, W] ("CNHW": channel-major across the batch), the
/// layout a convolution written as one GEMM over the whole batch produces and consumes.
public final class Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    public var data: [Float]

    public init(_ shape: [Int], repeating value: Float = 0) {
        self.shape = shape
        self.data = [Float](repeating: value, count: shape.reduce(1, *))
    }

    public init(_ shape: [Int], _ data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not match \(data.count) values")
        self.shape = shape
        self.data = data
    }

    public var count: Int { data.count }

    /// Gives the tensor a new shape; contents are unspecified unless the count is unchanged.
    public func resize(_ newShape: [Int]) {
        guard newShape != shape else { return }
        let n = newShape.reduce(1, *)
        if n != data.count { data = [Float](repeating: 0, count: n) }
        shape = newShape
    }

    /// Same values, new shape with the same element count.
    public func reshape(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) == data.count, "cannot reshape \(shape) to \(newShape)")
        shape = newShape
    }

    /// A tensor of another shape over the same values, without copying: the storage is shared
    /// copy-on-write, so whoever writes next gets its own copy. For [C, N, T, H, W] clips seen
    /// as [C, N·T, H, W] frames, and [N·T, F] rows seen as [N, T, F] sequences.
    public func viewed(as newShape: [Int]) -> Tensor { Tensor(newShape, data) }

    public func zero() {
        data.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    public func copy() -> Tensor { Tensor(shape, data) }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = data.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(\(shape.map(String.init).joined(separator: "×")): [\(shown)\(data.count > 8 ? ", …" : "")])"
    }
}

