import Foundation
import XCTest
import Tracking

/// A real `mlflow server` on 127.0.0.1 with a SQLite backend store in a temporary folder,
/// from the venv `scripts/test-peers.sh` makes (or `$OLLIE_MLFLOW`). Foundation's Process
/// starts it in a process group of its own, so stopping the group ends its uvicorn worker too.
final class MLflowPeer {
    let url: String
    let port: Int
    let folder: String
    private let process: Process

    /// The package's root, from this file's path (Tests/SessionTests/MLflowPeer.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    static var mlflowProgram: String? {
        let candidates = [ProcessInfo.processInfo.environment["OLLIE_MLFLOW"], packageRoot + "/.venv-peers/bin/mlflow"]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The venv's python, which has MLflow's own client.
    static var python: String? {
        mlflowProgram.map { URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent("python").path }
    }

    /// Why the tests cannot run here, said as what to do; nil when they can.
    static var missing: String? {
        mlflowProgram == nil ? "no mlflow server program: run `bash scripts/test-peers.sh` (installs mlflow into .venv-peers) or set OLLIE_MLFLOW" : nil
    }

    /// Starts a server on `port` (default: a free one) and waits for its /health.
    init(port: Int? = nil) throws {
        guard let program = MLflowPeer.mlflowProgram else { throw TrackingError(MLflowPeer.missing!) }
        self.port = try port ?? freePort()
        folder = NSTemporaryDirectory() + "ollie-mlflow-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        url = "http://127.0.0.1:\(self.port)"
        process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = ["server", "--backend-store-uri", "sqlite:///\(folder)/mlflow.db",
                             "--default-artifact-root", "\(folder)/artifacts", "--host", "127.0.0.1",
                             "--port", String(self.port), "--workers", "1"]
        var environment = ProcessInfo.processInfo.environment
        environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"   // no job runner: a faster start
        process.environment = environment
        _ = FileManager.default.createFile(atPath: folder + "/server.log", contents: nil)
        let log = FileHandle(forWritingAtPath: folder + "/server.log")
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let client = MLflowClient(server: try MLflowServer(url), timeoutSeconds: 1)
        let deadline = Date().addingTimeInterval(90)
        while true {
            if (try? client.checkHealth()) != nil { break }
            guard process.isRunning, Date() < deadline else {
                let text = (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? ""
                stop()
                throw TrackingError("mlflow server did not start on port \(self.port): \(text.suffix(600))")
            }
            usleep(200_000)
        }
    }

    /// SIGTERM to its process group, SIGKILL after 5 s (the server may take its time to exit).
    func stop() {
        let pid = process.processIdentifier
        guard pid > 0 else { return }
        // Its own group when Foundation made one; else the server process alone.
        let target = getpgid(pid) == pid ? -pid : pid
        kill(target, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(100_000) }
        kill(target, SIGKILL)
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// What MLflow's own Python client reads back of a database's runs in an experiment: for
    /// each run its ollie id, status, times, params, tags and every metric's whole history.
    static func readBack(url: String, experiment: String, database: String) throws -> [ExportedRun] {
        let script = """
            import json, sys
            from mlflow.tracking import MlflowClient
            uri, experiment, database = sys.argv[1:4]
            client = MlflowClient(uri)
            found = client.get_experiment_by_name(experiment)
            runs = []
            if found is not None:
                for r in client.search_runs([found.experiment_id], filter_string=f"tags.`ollie.database` = '{database}'", max_results=1000):
                    histories = {key: [[m.step, m.value, m.timestamp] for m in client.get_metric_history(r.info.run_id, key)] for key in r.data.metrics}
                    runs.append(dict(ollie_run=int(r.data.tags["ollie.run_id"]), status=r.info.status, start=r.info.start_time,
                                     end=r.info.end_time, params=r.data.params, tags=r.data.tags, histories=histories))
            print(json.dumps(runs))
            """
        guard let python else { throw TrackingError(missing!) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script, url, experiment, database]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let problem = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TrackingError("MLflow's client failed: \(String(decoding: problem.suffix(800), as: UTF8.self))")
        }
        return try JSONDecoder().decode([ExportedRun].self, from: data).sorted { $0.ollieRun < $1.ollieRun }
    }

    struct ExportedRun: Decodable {
        var ollieRun: Int64
        var status: String
        var start: Int64
        var end: Int64?
        var params: [String: String]
        var tags: [String: String]
        /// key → [[step, value, timestamp]]
        var histories: [String: [[Double]]]
        enum CodingKeys: String, CodingKey { case ollieRun = "ollie_run", status, start, end, params, tags, histories }
    }
}

/// A port nothing listens on now (the OS picks it, then it is closed again).
func freePort() throws -> Int {
    let socket = try ListeningSocket()
    defer { socket.close() }
    return socket.port
}

/// A socket on 127.0.0.1 that listens and never accepts: connecting works, and then no answer
/// ever comes — a server that hangs.
final class ListeningSocket {
    let port: Int
    private var descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TrackingError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            _ = Glibc.close(descriptor)
            throw TrackingError("bind/listen failed")
        }
        var actual = sockaddr_in()
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        port = Int(UInt16(bigEndian: actual.sin_port))
        self.descriptor = descriptor
    }

    func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }

    deinit { close() }
}
