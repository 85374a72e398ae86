import Foundation

/// One ollie run as MLflow records it: params, tags, metrics, status and times. Pure mapping,
/// no network, so it is tested on its own.
///
/// MLflow parameters are write-once, so each setting goes out as the value the run started
/// with; a setting that changed during the run (an LR drop, a `set` between trains) is also a
/// metric of that name with its value in force at every epoch (`lr` at step 1, 2, …), and its
/// whole history is the tag `ollie.changed.NAME` ("3e-3 → 3e-4@6").
public struct MLflowRunContent: Sendable {
    public var name: String
    public var startTime: Int64
    public var endTime: Int64?
    /// RUNNING, FINISHED, FAILED or KILLED.
    public var status: String
    public var params: [MLflowClient.KeyValue]
    public var tags: [MLflowClient.KeyValue]
    /// Every value, by step (= epoch) then key.
    public var metrics: [MLflowClient.Metric]

    /// MLflow's limits on a param's and a tag's value (characters).
    public static let maxParamLength = 6000, maxTagLength = 8000

    /// The tags that find an exported run again: the ollie run id and the database it is in.
    public static let runIDTag = "ollie.run_id", databaseTag = "ollie.database"

    public init(_ snapshot: RunExportSnapshot) {
        let run = snapshot.summary
        name = "run \(run.id)"
        startTime = MLflowRunContent.milliseconds(run.created.timeIntervalSince1970)
        status = MLflowRunContent.status(ofRunStatus: run.status)
        endTime = status == "RUNNING" ? nil : run.finished.map { MLflowRunContent.milliseconds($0.timeIntervalSince1970) }

        // A spec longer than a param may be is in the `ollie.spec` tag only.
        params = snapshot.params.compactMap { history in
            guard let value = history.initial, value.count <= MLflowRunContent.maxParamLength else { return nil }
            return MLflowClient.KeyValue(key: history.name, value: value)
        }

        var tags: [(String, String)] = [
            (MLflowRunContent.runIDTag, String(run.id)),
            (MLflowRunContent.databaseTag, snapshot.databaseID),
            ("ollie.status", run.status),
            ("ollie.dataset", run.dataset),
            ("ollie.spec", snapshot.params.first { $0.name == "model" }?.initial ?? run.model),
            ("ollie.parameter_count", String(run.parameterCount)),
        ]
        if let lineage = run.parentRun { tags.append(("ollie.parent", "\(lineage)@\(run.parentEpoch ?? 0)")) }
        if let note = run.note, !note.isEmpty {
            tags.append(("ollie.note", note))
            tags.append(("mlflow.note.content", note))   // shown as the run's description
        }
        // The best epoch's confusion counts (data for `report`, kilobytes of JSON) stay out of a tag.
        let events = snapshot.events.filter { $0.kind != BestConfusionRecord.eventKind }
        if !events.isEmpty {
            tags.append(("ollie.events", events.map { "epoch \($0.epoch): \($0.kind) \($0.detail)" }.joined(separator: "\n")))
        }
        for history in snapshot.params where history.values.count > 1 && history.name != "model" {
            let text = history.text
            if text.contains("→") { tags.append(("ollie.changed.\(history.name)", text)) }
        }
        self.tags = tags.map { MLflowClient.KeyValue(key: $0.0, value: MLflowRunContent.fitTag($0.1)) }

        // The recorded metrics, then the per-epoch series of settings that changed.
        var metrics = snapshot.metrics.map {
            MLflowClient.Metric(key: $0.name, value: $0.value, timestamp: MLflowRunContent.milliseconds($0.time), step: Int64($0.epoch))
        }
        var epochTimes: [Int: Double] = [:]
        for m in snapshot.metrics { epochTimes[m.epoch] = min(epochTimes[m.epoch] ?? .infinity, m.time) }
        let epochs = epochTimes.keys.sorted()
        for history in snapshot.params where history.name != "model" {
            let values = history.values.map { (value: Double($0.value), fromEpoch: $0.fromEpoch) }
            guard values.contains(where: { $0.value != values[0].value }),
                  values.allSatisfy({ $0.value?.isFinite == true }) else { continue }   // unchanged, or not a number
            for epoch in epochs {
                // The last row from an epoch at or before this one is in force (later rows win).
                guard let inForce = values.last(where: { $0.fromEpoch <= epoch })?.value ?? values.first?.value else { continue }
                metrics.append(MLflowClient.Metric(key: history.name, value: inForce,
                                                   timestamp: MLflowRunContent.milliseconds(epochTimes[epoch]!), step: Int64(epoch)))
            }
        }
        self.metrics = metrics.sorted { ($0.step, $0.key) < ($1.step, $1.key) }
    }

    /// ollie's status word as MLflow's RunStatus.
    public static func status(ofRunStatus status: String) -> String {
        switch RunStatus(rawValue: status) {
        case .running: "RUNNING"
        case .finished: "FINISHED"
        case .interrupted, .pruned: "KILLED"
        case .failed, .crashed: "FAILED"
        case nil: "FINISHED"
        }
    }

    static func milliseconds(_ seconds: Double) -> Int64 { Int64((seconds * 1000).rounded()) }

    /// A tag value within MLflow's limit; the database keeps the whole text.
    static func fitTag(_ text: String) -> String {
        guard text.count > maxTagLength else { return text }
        let suffix = "\n… (cut to fit MLflow's tag limit; the whole text is in the ollie database)"
        return String(text.prefix(maxTagLength - suffix.count)) + suffix
    }

    /// The metric values not yet on the server: MLflow appends every logged value to a key's
    /// history, and ollie sends each key's values in epoch order, so a key's latest step on the
    /// server says which of them are there already.
    public func metrics(after latestSteps: [String: Int64]) -> [MLflowClient.Metric] {
        metrics.filter { $0.step > latestSteps[$0.key] ?? Int64.min }
    }
}
