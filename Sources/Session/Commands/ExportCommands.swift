import Files
import Foundation
import ONNX
import Tracking
import Training

extension Session {
    static let exportCommands: [Command] = [
        Command("export", usage: "export mlflow URL [IDS] [experiment NAME] [forget] | export onnx FILE",
                summary: "Send runs to MLflow, or the model to an ONNX file. `export mlflow` sends runs (default: all) to an MLflow tracking server: params, per-epoch metrics, status, times, events, notes and the spec; again to update, never duplicating. `forget` drops the runs waiting for URL. `export onnx FILE` writes the model as an ONNX graph (opset 17; input [N, C, H, W], output logits) that onnxruntime runs, with the spec, class names and input recipe in its metadata.",
                example: "export mlflow http://127.0.0.1:5000 3 4", arity: 2...40, completion: .words(["mlflow", "onnx"])) { session, args, console in
            switch args[0].lowercased() {
            case "mlflow": try session.exportToMLflow(Array(args.dropFirst()), console)
            case "onnx":
                guard args.count == 2 else { throw CommandError("usage: export onnx FILE   (e.g. export onnx model.onnx)") }
                try session.exportONNX(to: args[1], console)
            default:
                throw CommandError("export sends runs to MLflow or writes the model as ONNX: export mlflow URL [IDS] | export onnx FILE (got '\(args[0])')")
            }
        },
    ]

    // MARK: - export onnx

    /// The metadata key of the input normalisation (`load … normalize`), spelt out for readers
    /// that do not parse `load` words: {"mean": […], "std": […]}, one value or one per channel.
    static let onnxNormalizeKey = "ollie.normalize"

    /// Writes the model as ONNX, its metadata the keys a checkpoint records about its inputs
    /// (the spec, the `load` words, the class names, the input shape) and the normalisation,
    /// so an importer knows what the model expects.
    func exportONNX(to path: String, _ console: Console) throws {
        let model = try requireModel()
        guard !isFollower else { return }   // under mpirun, rank 0 writes the file
        var metadata: [String: String] = [StateKey.inputShape: json(model.inputShape)]
        if let recipe = try? inputRecipe() {
            metadata.merge(recipe.metadata) { _, recipes in recipes }
            metadata[StateKey.inputShape] = json(model.inputShape)
            if let normalization = recipe.normalization {
                metadata[Session.onnxNormalizeKey] = json(["mean": normalization.mean, "std": normalization.std])
            }
        }
        let written: String
        do {
            let proto = try ONNXExport.model(model, metadata: metadata)
            try ONNXFile.write(proto, to: path)
            written = ResolvedPath.of(path)
        } catch {
            throw CommandError("\(error)")
        }
        let bytes = ((try? FileManager.default.attributesOfItem(atPath: written))?[.size] as? NSNumber)?.uint64Value ?? 0
        let classes = (try? model.validate())?.first ?? 0
        console.write("wrote \(ResolvedPath.shown(written)) (\(ByteSize.text(bytes)), ONNX opset \(ONNXExport.opsetVersion)): "
            + "input \(model.inputShape.map(String.init).joined(separator: "×")), \(classes) class\(classes == 1 ? "" : "es")")
    }

    private func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    // MARK: - export mlflow

    func exportToMLflow(_ args: [String], _ console: Console) throws {
        let usage = "usage: export mlflow URL [IDS] [experiment NAME] [forget]"
        let server = try parseMLflowServer(args[0])
        let store = try requireStore()
        var ids: [Int64] = [], experiment: String?, forget = false
        var words = args.dropFirst()[...]
        while let word = words.popFirst() {
            if let id = Int64(word) { ids.append(id); continue }
            switch word.lowercased() {
            case "experiment":
                guard let name = words.popFirst(), !name.isEmpty else { throw CommandError("experiment needs a name: export mlflow URL experiment NAME") }
                experiment = name
            case "forget":
                forget = true
            default:
                throw CommandError("'\(word)' is not a run id, `experiment NAME` or `forget`; \(usage)")
            }
        }
        if forget {
            if mlflow.live?.server == server { throw CommandError("live logging sends to \(server); set mlflow off first") }
            mlflow.catchingUp.removeAll { exporter in
                guard exporter.server == server else { return false }
                exporter.stop()
                return true
            }
            let count = try store.forgetMLflowBacklog(server: server.description)
            console.write(count == 0 ? "no runs were waiting for \(server)"
                                     : "\(count) run\(count == 1 ? "" : "s") no longer waiting for \(server) (what reached it stays there)")
            return
        }
        let chosen = ids.isEmpty ? try store.runs().map(\.id) : ids
        for id in chosen { _ = try store.run(id) }   // an unknown id is an error before anything is sent
        guard !chosen.isEmpty else { throw CommandError("no runs recorded yet to export; train one: train 1") }
        let export = MLflowExport(store: store, server: server,
                                  experiment: experiment ?? MLflowExport.defaultExperiment(forDatabase: store.path))
        func waiting(_ n: Int) -> String {
            "\(n) run\(n == 1 ? "" : "s") not exported wait\(n == 1 ? "s" : "") for it — export again once it answers, or set mlflow \(server) to send in the background; runs lists what waits"
        }
        // A server that cannot be reached now leaves the runs waiting for it (`runs` says so); one
        // that answers but is no MLflow server, or refuses, is told and nothing waits for it.
        let experimentID: String
        do { experimentID = try export.experimentID() } catch let error as MLflowError {
            guard case .unreachable = error.kind else { throw CommandError(error.message) }
            try store.markForMLflow(runs: chosen, server: server.description, experiment: export.experiment)
            for id in chosen { try? store.recordMLflowFailure(run: id, server: server.description, experiment: export.experiment, error: error.reason) }
            throw CommandError("\(error.message); \(waiting(chosen.count))")
        }
        try store.markForMLflow(runs: chosen, server: server.description, experiment: export.experiment)
        var failed: [Int64] = []
        for (index, id) in chosen.enumerated() {
            do {
                let outcome = try export.sync(run: id)
                let values = "\(outcome.metricValuesSent) metric value\(outcome.metricValuesSent == 1 ? "" : "s")"
                console.write("run \(id) → MLflow run \(outcome.mlflowRun) (\(outcome.created ? "created, \(values)" : outcome.metricValuesSent == 0 ? "up to date" : "updated, \(outcome.metricValuesSent) new metric value\(outcome.metricValuesSent == 1 ? "" : "s")"))")
            } catch let error as MLflowError {
                if case .unreachable = error.kind {
                    throw CommandError("\(error.message); \(waiting(chosen.count - index))")
                }
                console.write("run \(id): not exported: \(error.message)")
                failed.append(id)
            }
        }
        let exported = chosen.count - failed.count
        if exported > 0 { console.write("\(exported) run\(exported == 1 ? "" : "s") in MLflow experiment \"\(export.experiment)\": \(server.page(ofExperiment: experimentID))") }
        if !failed.isEmpty {
            throw CommandError("\(failed.count) of \(chosen.count) runs not exported (\(failed.map(String.init).joined(separator: ", "))); they wait, and runs lists them")
        }
    }

    func parseMLflowServer(_ text: String) throws -> MLflowServer {
        do { return try MLflowServer(text) } catch { throw CommandError("\(error)") }
    }

    // MARK: - set mlflow: live logging

    /// Refuses live logging without a run database: what waits is kept there.
    func checkMLflowSetting(_ server: String?) throws {
        guard server != nil else { return }
        let store = try requireStore()
        if store.isReadOnly { throw CommandError(storeProblem ?? "the run database is read-only") }
    }

    /// Starts or stops live logging after `set mlflow`; says whether the server answers now.
    func mlflowSettingChanged(_ console: Console) {
        guard let store else { return }
        let waiting = (try? store.mlflowBacklog()) ?? []
        guard let text = settings.mlflowServer, let server = try? MLflowServer(text) else {
            mlflow.live?.stop()
            mlflow.live = nil
            if !waiting.isEmpty {
                console.write("\(runCount(waiting.count)) not yet in MLflow stay marked; export mlflow URL sends them (runs lists them)")
            }
            return
        }
        let experiment = MLflowExport.defaultExperiment(forDatabase: store.path)
        if let live = mlflow.live, live.server == server, live.experiment == experiment { return }
        mlflow.live?.stop()
        let live = LiveExporter(store: store, server: server, experiment: experiment)
        mlflow.live = live
        for mark in waiting where mark.server == server.description && mark.experiment == experiment { live.enqueue(mark.run) }
        if let runID { mlflowRunChanged(runID) }
        do {
            try MLflowClient(server: server, timeoutSeconds: 2).checkHealth()
            console.write("training logs live to MLflow experiment \"\(experiment)\" at \(server)")
        } catch {
            console.write("warning: \(error); training goes on, and its runs are sent when the server answers (runs shows what waits)")
        }
    }

    /// A change of the current run was recorded: with live logging on, the run is marked as
    /// waiting (in the database, before anything is sent) and queued for the background thread.
    func mlflowRunChanged(_ run: Int64) {
        guard let live = mlflow.live, let store else { return }
        if !mlflow.marked.contains(run) {
            guard (try? store.markForMLflow(runs: [run], server: live.server.description, experiment: live.experiment)) != nil else { return }
            mlflow.marked.insert(run)
        }
        live.enqueue(run)
    }

    /// Runs left waiting by an earlier process are sent in the background from the start.
    func startMLflowCatchUp() {
        // A read-only database cannot note what reached the server: nothing is sent from it.
        guard let store, !store.isReadOnly, let waiting = try? store.mlflowBacklog(), !waiting.isEmpty else { return }
        var exporters: [String: LiveExporter] = [:]
        for mark in waiting {
            guard let server = try? MLflowServer(mark.server) else { continue }
            let key = "\(mark.server)\n\(mark.experiment)"
            let exporter = exporters[key] ?? LiveExporter(store: store, server: server, experiment: mark.experiment)
            exporters[key] = exporter
            exporter.enqueue(mark.run)
        }
        mlflow.catchingUp = Array(exporters.values)
    }

    /// The `runs` footer: which runs are not yet on an MLflow server, and why.
    func mlflowBacklogLines() -> [String] {
        guard let store, let waiting = try? store.mlflowBacklog(), !waiting.isEmpty else { return [] }
        let exporters = ([mlflow.live].compactMap { $0 } + mlflow.catchingUp)
        var lines: [String] = []
        var servers: [String] = []
        for mark in waiting where !servers.contains(mark.server) { servers.append(mark.server) }
        for server in servers {
            let marks = waiting.filter { $0.server == server }
            let ids = Array(Set(marks.map(\.run))).sorted()
            let exporter = exporters.first { $0.server.description == server }
            let why = exporter?.lastProblem ?? marks.compactMap(\.error).last
            let next = exporter == nil ? "export mlflow \(server) sends them"
                : exporter?.lastProblem == nil ? "sending in the background" : "retrying in the background"
            lines.append("\(runCount(ids.count)) not yet in MLflow at \(server) (run\(ids.count == 1 ? "" : "s") \(ids.map(String.init).joined(separator: ", "))\(why.map { "; \($0)" } ?? "")); \(next)")
        }
        return lines
    }

    private func runCount(_ n: Int) -> String { "\(n) run\(n == 1 ? "" : "s")" }
}

/// The session's exporters to MLflow: the live one of `set mlflow`, those catching up on runs
/// an earlier process left waiting, and the runs already marked for the live one.
final class MLflowLink: @unchecked Sendable {
    var live: LiveExporter?
    var catchingUp: [LiveExporter] = []
    var marked: Set<Int64> = []

    /// How long the end of a session waits for live logging to deliver what it queued.
    static let exitWaitSeconds = 3.0

    /// At the end of a session: what live logging still has queued or in flight gets up to
    /// `seconds` to reach the server, and `announce` says so first; nothing queued, no wait.
    /// Runs that earlier processes left waiting are not waited for (each process would wait
    /// again on a server that hangs): they stay marked, and the next process sends them.
    /// A server known to be failing is not waited for either (`waitUntilSent`).
    func finish(seconds: Double = exitWaitSeconds, announce: (String) -> Void = { _ in }, isInterrupted: () -> Bool = { false }) {
        for exporter in catchingUp { exporter.stop() }
        catchingUp = []
        if let live, !live.isIdle, live.lastProblem == nil {
            announce("MLflow: still sending to \(live.server); waiting up to \(String(format: "%g", seconds)) s (Ctrl-C leaves it to the next ollie process: the runs stay marked in the database)")
            live.waitUntilSent(seconds: seconds, isInterrupted: isInterrupted)
        }
        live?.stop()
        live = nil
    }
}
