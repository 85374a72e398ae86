/// A 64-bit digest of values' bits (FNV-1a over 64-bit words, 4 lanes so it runs at memory
/// speed): enough to tell two ranks' data or weights apart, not a cryptographic hash.
public struct ContentDigest: Sendable {
    public private(set) var lanes: (UInt64, UInt64, UInt64, UInt64) = (0xcbf2_9ce4_8422_2325, 1, 2, 3)
    public init() {}

    public mutating func add<T: BitwiseCopyable>(_ values: [T]) {
        values.withUnsafeBytes { add(bytes: $0) }
    }

    public mutating func add(bytes: UnsafeRawBufferPointer) {
        let prime: UInt64 = 0x100_0000_01b3
        var (a, b, c, d) = lanes
        let words = bytes.count / 8
        var i = 0
        while i + 4 <= words {
            a = (a ^ bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) &* prime
            b = (b ^ bytes.loadUnaligned(fromByteOffset: i * 8 + 8, as: UInt64.self)) &* prime
            c = (c ^ bytes.loadUnaligned(fromByteOffset: i * 8 + 16, as: UInt64.self)) &* prime
            d = (d ^ bytes.loadUnaligned(fromByteOffset: i * 8 + 24, as: UInt64.self)) &* prime
            i += 4
        }
        for k in (i * 8)..<bytes.count { a = (a ^ UInt64(bytes[k])) &* prime }
        a = (a ^ UInt64(bytes.count)) &* prime
        lanes = (a, b, c, d)
    }

    public var value: UInt64 {
        let (a, b, c, d) = lanes
        return a ^ (b &* 0x9E37_79B9_7F4A_7C15) ^ (c &* 0xC2B2_AE3D_27D4_EB4F) ^ (d &* 0x1656_67B1_9E37_79F9)
    }

    public var hex: String { String(value, radix: 16) }
}
