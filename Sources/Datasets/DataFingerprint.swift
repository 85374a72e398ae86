/// A fingerprint of what training reads: both splits' decoded values (Float32 bits) and labels,
/// the sample shape and the class names. Two loads of the same files give the same text; a
/// changed pixel, label, size or order gives another. Not cryptographic (it guards against
/// files that changed, not against an adversary); a 64-bit multiply-rotate hash over 8-byte
/// words, four lanes so the multiplies overlap (MNIST's 220 MB of floats: well under a second).
extension Dataset {
    public var fingerprint: String {
        var hash = FingerprintHash()
        hash.add(words: [channels, frames, height, width, classNames.count, train.count, test.count].map { UInt64($0) })
        for name in classNames { hash.add(bytes: Array(name.utf8)) }
        for split in [train, test] {
            split.images.withUnsafeBytes { hash.add(raw: $0) }
            split.labels.withUnsafeBytes { hash.add(raw: $0) }
        }
        return hash.hex
    }
}

struct FingerprintHash {
    private var lanes: (UInt64, UInt64, UInt64, UInt64) = (0x9E37_79B9_7F4A_7C15, 0xBF58_476D_1CE4_E5B9,
                                                           0x94D0_49BB_1331_11EB, 0xCBF2_9CE4_8422_2325)
    private var length: UInt64 = 0
    private static let prime: UInt64 = 0x0000_0100_0000_01B3

    private static func mix(_ lane: UInt64, _ word: UInt64) -> UInt64 {
        let x = (lane ^ word) &* prime
        return (x << 31) | (x >> 33)
    }

    mutating func add(words: [UInt64]) {
        words.withUnsafeBytes { add(raw: $0) }
    }

    mutating func add(bytes: [UInt8]) {
        bytes.withUnsafeBytes { add(raw: $0) }
    }

    /// Every byte counts: whole 32-byte blocks go through the four lanes, the tail byte by byte
    /// into the first, and the length ends up in the result, so shifted boundaries differ.
    mutating func add(raw: UnsafeRawBufferPointer) {
        var (a, b, c, d) = lanes
        let blocks = raw.count / 32
        for i in 0..<blocks {
            let base = i * 32
            a = Self.mix(a, raw.loadUnaligned(fromByteOffset: base, as: UInt64.self))
            b = Self.mix(b, raw.loadUnaligned(fromByteOffset: base + 8, as: UInt64.self))
            c = Self.mix(c, raw.loadUnaligned(fromByteOffset: base + 16, as: UInt64.self))
            d = Self.mix(d, raw.loadUnaligned(fromByteOffset: base + 24, as: UInt64.self))
        }
        for i in (blocks * 32)..<raw.count { a = Self.mix(a, UInt64(raw[i]) | 0x100) }
        lanes = (a, b, c, d)
        length &+= UInt64(raw.count)
        // A boundary between two inputs changes the state too ("ab" + "c" ≠ "a" + "bc").
        lanes.0 = Self.mix(lanes.0, length)
    }

    var hex: String {
        let (a, b, c, d) = lanes
        var x = a ^ (b &* 31) ^ (c &* 961) ^ (d &* 29791) ^ length
        // A final avalanche (splitmix64) so similar states print unlike.
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        x ^= x >> 31
        let text = String(x, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}
