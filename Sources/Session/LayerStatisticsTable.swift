import Foundation
import NN
import Tracking
import Training

/// `stats`: the last measured step's numbers, one row per layer, in 80 columns; and the same
/// numbers as metrics for `set stats on`.
enum LayerStatisticsTable {
    /// Room for a layer's name: what the six number columns and their gaps leave of 80.
    static let nameWidth = 22

    /// Each measured layer's spec text ("conv 3x3 16 relu": a convolution and the ReLU fused
    /// into it; "res": a residual block), by layer name (its module index: the modules from it
    /// up to the next measured layer's are its text); a model put together by hand has its
    /// layers' descriptions.
    static func layerTexts(_ model: Model, layers names: [String]) -> [String: String] {
        var texts: [String: String] = [:]
        let starts = names.map { Int($0) }
        for (i, name) in names.enumerated() {
            guard let start = starts[i], !model.modules.isEmpty else {
                texts[name] = model.layers.first { $0.name == name }?.layer.description ?? name
                continue
            }
            let end = i + 1 < starts.count ? starts[i + 1] ?? Int.max : Int.max
            texts[name] = model.modules.filter { $0.depth == 0 && $0.index >= start && $0.index < end }.map(\.text).joined(separator: " ")
        }
        return texts
    }

    /// Whether a layer's outputs pass through a ReLU last, so a zero output is a dead unit.
    static func endsWithReLU(_ text: String) -> Bool {
        text.split(separator: " ").last.map { $0.lowercased() == "relu" } ?? false
    }

    static func render(_ stats: StepStatistics, model: Model, lastStep: Int) -> String {
        let texts = layerTexts(model, layers: stats.layers.map(\.layer))
        var table = TextTable(header: ["layer", "|w|", "|grad|", "|Δw|/|w|", "act mean", "act std", "dead"],
                              alignRight: [false, true, true, true, true, true, true])
        for layer in stats.layers {
            let text = texts[layer.layer] ?? ""
            table.add([cut("\(layer.layer): \(text)", to: nameWidth),
                       number(layer.weightNorm), number(layer.gradientNorm), number(layer.updateRatio),
                       number(layer.activationMean), number(layer.activationStd),
                       endsWithReLU(text) ? String(format: "%.1f%%", layer.zeroShare * 100) : "-"])
        }
        let unmeasured = stats.step == lastStep ? "" : " (step \(lastStep), the last, was interrupted before it was measured)"
        return "step \(stats.step): epoch \(stats.epoch), batch \(stats.batch)\(unmeasured)\n" + table.render()
    }

    /// The metrics `set stats on` records with an epoch: `stats.3.grad_norm` and the like
    /// (dead_share only for layers ending in ReLU).
    static func metrics(_ stats: StepStatistics, model: Model) -> [String: Double] {
        let texts = layerTexts(model, layers: stats.layers.map(\.layer))
        var metrics: [String: Double] = [:]
        for layer in stats.layers {
            for statistic in LayerStatistic.allCases {
                if statistic == .deadShare && !endsWithReLU(texts[layer.layer] ?? "") { continue }
                if let value = layer.value(statistic) { metrics[statistic.metricName(layer: layer.layer)] = value }
            }
        }
        return metrics
    }

    /// Four significant digits at most, the exponent without padding: "0.0123", "1.23e-5".
    static func number(_ value: Double?) -> String {
        guard let value else { return "-" }
        return String(format: "%.3g", value).replacingOccurrences(of: "e-0", with: "e-").replacingOccurrences(of: "e+0", with: "e+")
    }
}
