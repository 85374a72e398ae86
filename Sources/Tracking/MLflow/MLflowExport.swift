import Foundation

/// Brings runs of the database up to date on one MLflow server's experiment: creates the
/// MLflow run once (found again by its `ollie.run_id` and `ollie.database` tags), sends params
/// and tags (both idempotent in MLflow), the metric values the server does not have yet, and
/// the status and times; then marks in the database what was sent.
///
/// What is on the server is read from the server (runs/get: each key's latest step) rather
/// than trusted from the database, so an export cut off between sending and marking never
/// sends a value twice. The database's marks say what still waits, without asking the server.
public final class MLflowExport: @unchecked Sendable {
    public let client: MLflowClient
    public let experiment: String
    let store: RunStore
    /// The experiment's id on the server, looked up (or created) once.
    private var experimentIDCache: String?

    /// One export at a time per process: the live exporter and `export mlflow` never both
    /// create the same run.
    static let lock = NSLock()

    public init(store: RunStore, server: MLflowServer, experiment: String, timeoutSeconds: Double = 5) {
        self.store = store
        client = MLflowClient(server: server, timeoutSeconds: timeoutSeconds)
        self.experiment = experiment
    }

    public var server: MLflowServer { client.server }

    /// The experiment a database's runs go to by default: the file's name without extension.
    public static func defaultExperiment(forDatabase path: String) -> String {
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return stem.isEmpty ? "ollie" : stem
    }

    public func experimentID() throws -> String {
        if let experimentIDCache { return experimentIDCache }
        let id = try client.experimentID(named: experiment)
        experimentIDCache = id
        return id
    }

    /// What one run's sync did.
    public struct Outcome: Sendable {
        public var run: Int64
        public var mlflowRun: String
        public var created: Bool
        public var metricValuesSent: Int
    }

    /// Sends what the server lacks of `run`, which the caller has marked for this server and
    /// experiment. A failure is recorded with the run's mark (it stays waiting) and thrown.
    @discardableResult
    public func sync(run: Int64) throws -> Outcome {
        MLflowExport.lock.lock()
        defer { MLflowExport.lock.unlock() }
        let serverKey = server.description
        do {
            let snapshot = try store.exportSnapshot(run: run)
            let content = MLflowRunContent(snapshot)
            let experimentID = try experimentID()

            var found: MLflowClient.Run?
            if let known = try store.mlflowMark(run: run, server: serverKey, experiment: experiment)?.mlflowRun {
                found = try client.run(id: known)
            }
            if found == nil {
                let filter = "tags.`\(MLflowRunContent.runIDTag)` = '\(run)' and tags.`\(MLflowRunContent.databaseTag)` = '\(snapshot.databaseID)'"
                if let info = try client.searchRuns(experimentID: experimentID, filter: filter).first {
                    found = try client.run(id: info.runID)
                }
            }
            let created = found == nil
            let mlflowRun: String
            if let found {
                mlflowRun = found.info.runID
            } else {
                mlflowRun = try client.createRun(experimentID: experimentID, name: content.name, startTime: content.startTime,
                                                 tags: content.tags.filter { [MLflowRunContent.runIDTag, MLflowRunContent.databaseTag].contains($0.key) })
            }
            try store.recordMLflowRun(run: run, server: serverKey, experiment: experiment, mlflowRun: mlflowRun)

            var latest: [String: Int64] = [:]
            for metric in found?.data.metrics ?? [] { latest[metric.key] = max(latest[metric.key] ?? .min, metric.step) }
            let metrics = content.metrics(after: latest)
            // A param already there with the same value need not go again; one with another
            // value does, so that MLflow's own refusal says what differs.
            let existingParams = Set(found?.data.params ?? [])
            let params = content.params.filter { !existingParams.contains($0) }
            try send(mlflowRun, metrics: metrics, params: params, tags: content.tags)
            try client.updateRun(runID: mlflowRun, status: content.status, endTime: content.endTime)
            try store.recordMLflowSent(run: run, server: serverKey, experiment: experiment, state: snapshot.state)
            return Outcome(run: run, mlflowRun: mlflowRun, created: created, metricValuesSent: metrics.count)
        } catch let error as MLflowError {
            try? store.recordMLflowFailure(run: run, server: serverKey, experiment: experiment, error: error.reason)
            throw error
        }
    }

    /// log-batch within MLflow's per-request limits: params and tags first, then the metrics
    /// in step order, so a cut-off export resumes where it stopped.
    private func send(_ runID: String, metrics: [MLflowClient.Metric], params: [MLflowClient.KeyValue], tags: [MLflowClient.KeyValue]) throws {
        var params = params[...], tags = tags[...], metrics = metrics[...]
        repeat {
            let p = params.prefix(MLflowClient.maxParamsPerBatch)
            let t = tags.prefix(MLflowClient.maxTagsPerBatch)
            let room = min(MLflowClient.maxMetricsPerBatch, MLflowClient.maxEntriesPerBatch - p.count - t.count)
            let m = metrics.prefix(room)
            try client.logBatch(runID: runID, metrics: Array(m), params: Array(p), tags: Array(t))
            params = params.dropFirst(p.count)
            tags = tags.dropFirst(t.count)
            metrics = metrics.dropFirst(m.count)
        } while !(params.isEmpty && tags.isEmpty && metrics.isEmpty)
    }
}
