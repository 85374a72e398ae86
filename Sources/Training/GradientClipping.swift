import NN

/// Global gradient-norm clipping, as torch.nn.utils.clip_grad_norm_ (L2, all parameters as one
/// vector): with n = ‖(g₁, g₂, …)‖₂, every gradient is multiplied by c = maxNorm / (n + 1e-6)
/// when c < 1, and left alone otherwise.
///
/// Deterministic: the squares are summed in Double, parameter by parameter in the model's order
/// and element by element, so the same gradients give the same bits on any thread count.
public enum GradientClipping {
    /// The L2 norm of all the parameters' gradients taken together.
    public static func norm(_ parameters: [Parameter]) -> Float {
        var sumOfSquares = 0.0
        for p in parameters {
            p.grad.data.withUnsafeBufferPointer { g in
                for x in g { sumOfSquares += Double(x) * Double(x) }
            }
        }
        return Float(sumOfSquares.squareRoot())
    }

    /// Scales the gradients down to `maxNorm` when their norm is larger; returns the norm they
    /// had (before clipping).
    @discardableResult
    public static func clip(_ parameters: [Parameter], maxNorm: Float) -> Float {
        let total = norm(parameters)
        let scale = maxNorm / (total + 1e-6)
        guard scale < 1 else { return total }
        for p in parameters {
            p.grad.data.withUnsafeMutableBufferPointer { g in
                for i in 0..<g.count { g[i] *= scale }
            }
        }
        return total
    }
}
