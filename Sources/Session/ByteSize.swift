import Foundation

/// Sizes as people type and read them: "2G", "500M", "1.5GB", "4096" (bytes); shown as
/// "1.2 GB", "350 MB". Units are powers of 1024.
enum ByteSize {
    static let units: [(suffix: String, bytes: UInt64)] = [("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]

    static func parse(_ text: String, _ name: String) throws -> UInt64 {
        var number = text.uppercased()
        if number.hasSuffix("B") { number.removeLast() }
        var scale: UInt64 = 1
        if let unit = units.first(where: { number.hasSuffix($0.suffix) }) {
            number.removeLast()
            scale = unit.bytes
        }
        guard let value = Double(number), value.isFinite, value >= 0, value * Double(scale) < 1e18 else {
            throw CommandError("\(name) must be a size like 2G, 500M or 0 (got '\(text)')")
        }
        return UInt64((value * Double(scale)).rounded())
    }

    static func text(_ bytes: UInt64) -> String {
        guard let unit = units.first(where: { bytes >= $0.bytes }) else { return "\(bytes) B" }
        let value = Double(bytes) / Double(unit.bytes)
        let digits = value < 10 && value != value.rounded() ? String(format: "%.1f", value) : String(format: "%.0f", value)
        return "\(digits) \(unit.suffix)B"
    }
}
