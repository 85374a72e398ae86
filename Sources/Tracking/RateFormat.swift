import Foundation

/// 3e-3 rather than 0.003: how people write learning rates. Plain decimals from 0.01 up.
public func formatRate(_ v: Double) -> String {
    if v == 0 { return "0" }
    if abs(v) >= 0.01 && abs(v) < 100_000 {
        return String(format: "%g", (v * 1e6).rounded() / 1e6)
    }
    var exponent = Int(log10(abs(v)).rounded(.down))
    var mantissa = v / pow(10, Double(exponent))
    mantissa = (mantissa * 1000).rounded() / 1000
    if abs(mantissa) >= 10 { mantissa /= 10; exponent += 1 }
    return String(format: "%g", mantissa) + "e" + String(exponent)
}

public func formatRate(_ value: Float) -> String { formatRate(Double(value)) }
