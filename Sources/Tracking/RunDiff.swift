import Foundation

/// `diff A B`: two runs in depth. The settings that differ (with their timelines, "3e-3 →
/// 3e-4@4"), then every epoch of either run side by side with the difference B − A, then both
/// runs' events by epoch, then the commands that set each run up and drove it.
public enum RunDiff {
    public static func render(_ a: RunDetail, _ b: RunDetail, commands: ([CommandRecord], [CommandRecord]),
                              width: Int = 80) -> String {
        let labels = ["run \(a.id)", "run \(b.id)"]
        var out = ["diff: \(labels[0]) against \(labels[1])", ""]

        // Settings: what differs on top, the rest on one line.
        var rows: [(String, String, String)] = [
            ("dataset", a.summary.dataset, b.summary.dataset),
            ("model", a.summary.modelRecipe, b.summary.modelRecipe),
            ("parameters", String(a.summary.parameterCount), String(b.summary.parameterCount)),
            ("lineage", a.summary.lineage ?? "-", b.summary.lineage ?? "-"),
        ]
        var names: [String] = []
        for p in a.params + b.params where !names.contains(p.name) && p.name != "model" { names.append(p.name) }
        for name in names {
            rows.append((name, a.params.first { $0.name == name }?.text ?? "-", b.params.first { $0.name == name }?.text ?? "-"))
        }
        let differing = rows.filter { $0.1 != $0.2 }
        let same = rows.filter { $0.1 == $0.2 && $0.1 != "-" }
        if differing.isEmpty {
            out.append("settings: the same in both runs")
        } else {
            var table = TextTable(header: ["setting"] + labels)
            // Long values (a model's spec) wrap between words, each run's in half the room.
            let nameWidth = differing.map(\.0.count).max() ?? 0
            let valueWidth = max(12, (width - nameWidth - 4) / 2)
            for row in differing { table.add([row.0, row.1, row.2], wrappingTo: [nil, valueWidth, valueWidth]) }
            out.append(table.render())
        }
        if !same.isEmpty {
            out.append(CompareTable.wrap("same: " + same.map { "\($0.0) \($0.1)" }.joined(separator: ", "), width: width))
        }

        // Epochs: the accuracy the policy scored (validation, when either run held one out; the
        // test scores after each train get columns of their own), train loss and learning rate, with B − A.
        out.append("")
        let split: Metric.Split = a.selectedOn == .validation || b.selectedOn == .validation ? .validation : .test
        let shown: [Metric] = [split.accuracy, .testAccuracy, .trainLoss]
        let epochs = Set([a, b].flatMap { run in shown.flatMap { run.metricSeries($0).map(\.epoch) } }).sorted()
        if epochs.isEmpty {
            out.append("epochs: neither run has a recorded epoch")
        } else {
            func value(_ run: RunDetail, _ metric: Metric, _ epoch: Int) -> Double? {
                run.metricSeries(metric).first { $0.epoch == epoch }?.value
            }
            func cell(_ v: Double?, _ format: String) -> String { v.map { String(format: format, $0) } ?? "-" }
            func delta(_ x: Double?, _ y: Double?, _ format: String) -> String {
                guard let x, let y else { return "" }
                return y == x ? "=" : String(format: format, y - x)
            }
            let acc = split == .validation ? "val" : "acc"
            let withTest = split == .validation
            var table = TextTable(header: ["epoch", "\(acc) \(a.id)", "\(acc) \(b.id)", "Δ \(acc)"]
                                    + (withTest ? ["test \(a.id)", "test \(b.id)"] : [])
                                    + ["loss \(a.id)", "loss \(b.id)", "Δ loss", "lr \(a.id)", "lr \(b.id)"],
                                  alignRight: Array(repeating: true, count: withTest ? 11 : 9))
            for e in epochs {
                let (accA, accB) = (value(a, split.accuracy, e), value(b, split.accuracy, e))
                let (lossA, lossB) = (value(a, .trainLoss, e), value(b, .trainLoss, e))
                table.add([String(e), cell(accA, "%.4f"), cell(accB, "%.4f"), delta(accA, accB, "%+.4f")]
                          + (withTest ? [cell(value(a, .testAccuracy, e), "%.4f"), cell(value(b, .testAccuracy, e), "%.4f")] : [])
                          + [cell(lossA, "%.4f"), cell(lossB, "%.4f"), delta(lossA, lossB, "%+.4f"),
                             value(a, .learningRate, e).map(formatRate) ?? "-", value(b, .learningRate, e).map(formatRate) ?? "-"])
            }
            out.append(table.render())
            out.append("(Δ is \(labels[1]) − \(labels[0]); = means the same to the last bit)")
        }

        // Events, by epoch, then run.
        out.append("")
        // (The best epoch's confusion counts are data for `report`, not an event to read.)
        let events = (a.events.map { (a.id, $0) } + b.events.map { (b.id, $0) })
            .filter { $0.1.kind != BestConfusionRecord.eventKind }
            .sorted { ($0.1.epoch, $0.0) < ($1.1.epoch, $1.0) }
        if events.isEmpty {
            out.append("events: none")
        } else {
            var table = TextTable(header: ["epoch", "run", "event", "detail"], alignRight: [true, true, false, false])
            let used = 5 + 3 + (events.map(\.1.kind.count).max() ?? 0) + 6
            for (run, event) in events {
                table.add([String(event.epoch), String(run), event.kind, event.detail], wrappingTo: [nil, nil, nil, max(12, width - used)])
            }
            out.append(table.render())
        }

        // Commands.
        out.append("")
        for (label, list) in zip(labels, [commands.0, commands.1]) {
            let done = list.filter { !$0.failed }.map(\.command)
            out.append(CompareTable.wrap("commands of \(label): " + (done.isEmpty ? "none recorded" : done.joined(separator: " · ")), width: width))
        }
        return out.joined(separator: "\n")
    }
}
