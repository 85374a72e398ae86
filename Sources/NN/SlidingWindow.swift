/// The output sizes of a window (a convolution's kernel, a pooling window) sliding with `stride`
/// over `input` zero-padded by `padding` on each side: Oi = ⌊(Di + 2·pi − ki) / si⌋ + 1 on each
/// axis, rounding down as PyTorch and Flux do (7 with window 2 → 3). nil when the window is
/// larger than the padded input on some axis. The one copy of this formula: the specs, the
/// layers' shape checks and their kernels' geometry all call it.
func slidingWindowOutputSizes(input: [Int], window: [Int], stride: [Int], padding: [Int]) -> [Int]? {
    precondition(input.count == window.count && stride.count == window.count && padding.count == window.count,
                 "one size, stride and padding per axis: input \(input), window \(window), stride \(stride), padding \(padding)")
    var sizes: [Int] = []
    sizes.reserveCapacity(window.count)
    for axis in window.indices {
        let room = input[axis] + 2 * padding[axis] - window[axis]
        guard room >= 0 else { return nil }
        sizes.append(room / stride[axis] + 1)
    }
    return sizes
}
