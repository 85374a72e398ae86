import Foundation

/// MD5 (RFC 1321), only to check downloads against published checksums: Linux has no CryptoKit.
struct MD5 {
    private var a: UInt32 = 0x6745_2301, b: UInt32 = 0xEFCD_AB89, c: UInt32 = 0x98BA_DCFE, d: UInt32 = 0x1032_5476
    private var pending: [UInt8] = []  // < 64 bytes waiting for a full block
    private var byteCount: UInt64 = 0

    static func hex(_ bytes: [UInt8]) -> String {
        var md5 = MD5()
        md5.update(bytes)
        return md5.hexDigest()
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        byteCount &+= UInt64(bytes.count)
        var start = 0
        if !pending.isEmpty {
            let taken = min(64 - pending.count, bytes.count)
            pending += bytes[0..<taken]
            start = taken
            guard pending.count == 64 else { return }
            pending.withUnsafeBytes { compress($0.baseAddress!) }
            pending.removeAll(keepingCapacity: true)
        }
        let fullEnd = start + (bytes.count - start) / 64 * 64
        for offset in stride(from: start, to: fullEnd, by: 64) { compress(bytes.baseAddress! + offset) }
        pending += bytes[fullEnd...]
    }

    /// The 16-byte digest as lowercase hex; the padding is added to a copy, so `self` is unchanged.
    func hexDigest() -> String {
        var copy = self
        let bitCount = byteCount &* 8
        var tail: [UInt8] = [0x80] + [UInt8](repeating: 0, count: (119 - pending.count) % 64)
        withUnsafeBytes(of: bitCount.littleEndian) { tail += $0 }
        copy.updateBlocksOnly(tail)
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for word in [copy.a, copy.b, copy.c, copy.d] {
            for shift in stride(from: 0, to: 32, by: 8) {
                let byte = Int((word >> UInt32(shift)) & 0xFF)
                text += [digits[byte >> 4], digits[byte & 15]]
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// `update` without counting the bytes: the padding is not part of the message length.
    private mutating func updateBlocksOnly(_ bytes: [UInt8]) {
        let saved = byteCount
        update(bytes)
        byteCount = saved
    }

    private static let shifts: [UInt32] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]
    /// K[i] = floor(|sin(i + 1)| · 2³²), as RFC 1321 defines them.
    private static let constants: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296)) }

    private mutating func compress(_ block: UnsafeRawPointer) {
        var words = (UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0),
                     UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0))
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(start: block, count: 64)) }
        var (a, b, c, d) = (self.a, self.b, self.c, self.d)
        withUnsafeBytes(of: &words) { raw in
            let m = raw.bindMemory(to: UInt32.self)
            Self.constants.withUnsafeBufferPointer { k in
                Self.shifts.withUnsafeBufferPointer { s in
                    for i in 0..<64 {
                        let f: UInt32, g: Int
                        switch i >> 4 {
                        case 0: f = (b & c) | (~b & d); g = i
                        case 1: f = (d & b) | (~d & c); g = (5 &* i &+ 1) & 15
                        case 2: f = b ^ c ^ d; g = (3 &* i &+ 5) & 15
                        default: f = c ^ (b | ~d); g = (7 &* i) & 15
                        }
                        let sum = f &+ a &+ k[i] &+ UInt32(littleEndian: m[g])
                        let shift = s[(i >> 4) << 2 | (i & 3)]
                        a = d; d = c; c = b
                        b = b &+ (sum << shift | sum >> (32 - shift))
                    }
                }
            }
        }
        self.a &+= a; self.b &+= b; self.c &+= c; self.d &+= d
    }
}
