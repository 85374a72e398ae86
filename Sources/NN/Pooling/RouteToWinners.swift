import CBLAS
import Tensor

/// A max pool's backward scatter, shared by the pooling algorithms whose windows do not overlap:
/// routes output planes `first`..<first+count of `dout` (each `outputSize` long; `output` and
/// `winners` laid out alike) to their winners in `dx`, that many consecutive zeroed input planes
/// or volumes `inputSize` apart, skipping windows whose max is ≤ 0 when `masked` (the ReLU's
/// derivative). Returns the sum of what was routed, plane by plane (ollie_maxpool2_route: four
/// partial sums, then the rest).
func routeToWinners(_ dout: Tensor, output: Tensor, winners: [Int32], planes first: Int, count: Int,
                    outputSize: Int, inputSize: Int, masked: Bool, into dx: UnsafeMutablePointer<Float>) -> Float {
    var total: Float = 0
    dout.data.withUnsafeBufferPointer { dyp in
        output.data.withUnsafeBufferPointer { yp in
            winners.withUnsafeBufferPointer { wp in
                for plane in 0..<count {
                    let offset = (first + plane) * outputSize
                    total += ollie_maxpool2_route(dyp.baseAddress! + offset, yp.baseAddress! + offset, wp.baseAddress! + offset,
                                                  Int32(outputSize), masked ? 1 : 0, dx + plane * inputSize)
                }
            }
        }
    }
    return total
}
