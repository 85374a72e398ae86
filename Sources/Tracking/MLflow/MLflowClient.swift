import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An MLflow tracking server's address as a user typed it, checked: `http(s)://host[:port][/path]`.
public struct MLflowServer: Sendable, Hashable, CustomStringConvertible {
    /// The base URL without a trailing slash; the REST API lives under `api/2.0/mlflow/`.
    public let url: URL

    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let example = "give one like http://127.0.0.1:5000 (where `mlflow server` listens)"
        guard let parts = URLComponents(string: trimmed), let scheme = parts.scheme?.lowercased(),
              ["http", "https"].contains(scheme), let host = parts.host, !host.isEmpty,
              parts.query == nil, parts.fragment == nil else {
            throw TrackingError("'\(text)' is not an MLflow server URL; \(example)")
        }
        var base = trimmed
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base) else { throw TrackingError("'\(text)' is not an MLflow server URL; \(example)") }
        self.url = url
    }

    public var description: String { url.absoluteString }

    /// The web page of an experiment, for people.
    public func page(ofExperiment id: String) -> String { "\(url.absoluteString)/#/experiments/\(id)" }
}

/// What went wrong talking to an MLflow server, in one line that names the server.
public struct MLflowError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No answer at all: connection refused, unknown host, timeout.
        case unreachable
        /// An HTTP error status; `code` is MLflow's error_code when it sent one.
        case refused(status: Int, code: String?)
        /// An answer that is not what the REST API returns (another kind of server?).
        case badReply
    }
    public let kind: Kind
    /// The whole line, naming the server.
    public let message: String
    /// The cause alone, for a list of what waits: "server unreachable: connection refused".
    public let reason: String
    public var description: String { message }

    init(kind: Kind, message: String, reason: String? = nil) {
        self.kind = kind
        self.message = message
        self.reason = reason ?? message
    }
    public var errorDescription: String? { message }

    /// MLflow's code for "no such experiment/run".
    var isMissingResource: Bool {
        if case .refused(_, let code) = kind { return code == "RESOURCE_DOES_NOT_EXIST" }
        return false
    }
}

/// The few REST calls of MLflow's tracking API (2.0) that an export needs, each a blocking
/// request with short timeouts: an unreachable server fails in seconds, never hangs a caller.
/// JSON field names are the API's own (snake_case).
public struct MLflowClient: Sendable {
    public let server: MLflowServer
    /// Seconds of silence before a request gives up.
    public let timeoutSeconds: Double

    public init(server: MLflowServer, timeoutSeconds: Double = 5) {
        self.server = server
        self.timeoutSeconds = timeoutSeconds
    }

    // MARK: - Records of the API

    public struct KeyValue: Codable, Sendable, Hashable {
        public var key: String
        public var value: String
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    public struct Metric: Codable, Sendable, Equatable {
        public var key: String
        public var value: Double
        /// Milliseconds since 1970.
        public var timestamp: Int64
        public var step: Int64
        public init(key: String, value: Double, timestamp: Int64, step: Int64) {
            self.key = key
            self.value = value
            self.timestamp = timestamp
            self.step = step
        }

        // The server leaves out fields that are zero (proto3 JSON), so each may be missing.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            key = try c.decode(String.self, forKey: .key)
            value = try c.decodeIfPresent(Double.self, forKey: .value) ?? 0
            timestamp = try c.flexibleInt64(.timestamp) ?? 0
            step = try c.flexibleInt64(.step) ?? 0
        }
    }

    public struct RunInfo: Decodable, Sendable {
        public var runID: String
        public var status: String?
        public var lifecycleStage: String?
        enum CodingKeys: String, CodingKey {
            case runID = "run_id", status, lifecycleStage = "lifecycle_stage"
        }
    }

    public struct RunData: Decodable, Sendable {
        public var metrics: [Metric]
        public var params: [KeyValue]
        public var tags: [KeyValue]
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            metrics = try c.decodeIfPresent([Metric].self, forKey: .metrics) ?? []
            params = try c.decodeIfPresent([KeyValue].self, forKey: .params) ?? []
            tags = try c.decodeIfPresent([KeyValue].self, forKey: .tags) ?? []
        }
        enum CodingKeys: String, CodingKey { case metrics, params, tags }
    }

    public struct Run: Decodable, Sendable {
        public var info: RunInfo
        public var data: RunData
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            info = try c.decode(RunInfo.self, forKey: .info)
            data = try c.decodeIfPresent(RunData.self, forKey: .data) ?? RunData(empty: ())
        }
        enum CodingKeys: String, CodingKey { case info, data }
    }

    /// MLflow's limits on one runs/log-batch request.
    public static let maxMetricsPerBatch = 1000, maxParamsPerBatch = 100, maxTagsPerBatch = 100, maxEntriesPerBatch = 1000

    // MARK: - Calls

    /// The experiment's id, created when there is none of that name.
    public func experimentID(named name: String) throws -> String {
        struct Reply: Decodable {
            struct Experiment: Decodable {
                var experiment_id: String
                var lifecycle_stage: String?
            }
            var experiment: Experiment
        }
        do {
            let reply: Reply = try get("experiments/get-by-name", ["experiment_name": name])
            if reply.experiment.lifecycle_stage == "deleted" {
                throw MLflowError(kind: .refused(status: 400, code: "RESOURCE_DELETED"),
                                  message: "the MLflow experiment \"\(name)\" at \(server) is deleted; restore it there, or export to another: experiment NAME")
            }
            return reply.experiment.experiment_id
        } catch let error as MLflowError where error.isMissingResource {
            struct Created: Decodable { var experiment_id: String }
            struct Create: Encodable { var name: String }
            let created: Created = try post("experiments/create", Create(name: name))
            return created.experiment_id
        }
    }

    /// Active runs of an experiment matching an MLflow search filter.
    public func searchRuns(experimentID: String, filter: String) throws -> [RunInfo] {
        struct Search: Encodable {
            var experiment_ids: [String]
            var filter: String
            var max_results: Int
        }
        struct Reply: Decodable { var runs: [Run]? }
        let reply: Reply = try post("runs/search", Search(experiment_ids: [experimentID], filter: filter, max_results: 10))
        return (reply.runs ?? []).map(\.info)
    }

    public func createRun(experimentID: String, name: String, startTime: Int64, tags: [KeyValue]) throws -> String {
        struct Create: Encodable {
            var experiment_id: String
            var run_name: String
            var start_time: Int64
            var tags: [KeyValue]
        }
        struct Reply: Decodable { var run: Run }
        let reply: Reply = try post("runs/create", Create(experiment_id: experimentID, run_name: name, start_time: startTime, tags: tags))
        return reply.run.info.runID
    }

    /// The run with its latest metric values, params and tags; nil when the server has no such
    /// (active) run.
    public func run(id: String) throws -> Run? {
        struct Reply: Decodable { var run: Run }
        do {
            let reply: Reply = try get("runs/get", ["run_id": id])
            return reply.run.info.lifecycleStage == "deleted" ? nil : reply.run
        } catch let error as MLflowError where error.isMissingResource {
            return nil
        }
    }

    public func logBatch(runID: String, metrics: [Metric], params: [KeyValue], tags: [KeyValue]) throws {
        struct Batch: Encodable {
            var run_id: String
            var metrics: [Metric]
            var params: [KeyValue]
            var tags: [KeyValue]
        }
        struct Reply: Decodable {}
        let _: Reply = try post("runs/log-batch", Batch(run_id: runID, metrics: metrics, params: params, tags: tags))
    }

    /// Sets a run's status (RUNNING, FINISHED, FAILED, KILLED) and, once it has ended, its end time.
    public func updateRun(runID: String, status: String, endTime: Int64?) throws {
        struct Update: Encodable {
            var run_id: String
            var status: String
            var end_time: Int64?
        }
        struct Reply: Decodable {}
        let _: Reply = try post("runs/update", Update(run_id: runID, status: status, end_time: endTime))
    }

    /// GET /health: whether something answers there at all.
    public func checkHealth() throws {
        _ = try send(path: "health", method: "GET", query: [:], body: nil, endpoint: "health", expectJSON: false)
    }

    // MARK: - HTTP

    func get<Reply: Decodable>(_ endpoint: String, _ query: [String: String]) throws -> Reply {
        let data = try send(path: "api/2.0/mlflow/\(endpoint)", method: "GET", query: query, body: nil, endpoint: endpoint)
        return try decode(data, endpoint)
    }

    func post<Body: Encodable, Reply: Decodable>(_ endpoint: String, _ body: Body) throws -> Reply {
        let json: Data
        do { json = try JSONEncoder().encode(body) } catch {
            throw MLflowError(kind: .badReply, message: "could not encode the \(endpoint) request: \(error)")
        }
        let data = try send(path: "api/2.0/mlflow/\(endpoint)", method: "POST", query: [:], body: json, endpoint: endpoint)
        return try decode(data, endpoint)
    }

    private func decode<Reply: Decodable>(_ data: Data, _ endpoint: String) throws -> Reply {
        do { return try JSONDecoder().decode(Reply.self, from: data.isEmpty ? Data("{}".utf8) : data) } catch {
            throw MLflowError(kind: .badReply, message: "the server at \(server) answered \(endpoint) with something that is not MLflow's reply (\(String(decoding: data.prefix(120), as: UTF8.self))); is it an MLflow tracking server?",
                              reason: "not an MLflow reply to \(endpoint)")
        }
    }

    /// One request, waited for; every failure becomes an MLflowError naming the server.
    private func send(path: String, method: String, query: [String: String], body: Data?, endpoint: String,
                      expectJSON: Bool = true) throws -> Data {
        guard var parts = URLComponents(url: server.url.appendingPathComponent(path), resolvingAgainstBaseURL: false) else {
            throw MLflowError(kind: .badReply, message: "cannot form a request URL from \(server)")
        }
        if !query.isEmpty { parts.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) } }
        guard let url = parts.url else { throw MLflowError(kind: .badReply, message: "cannot form a request URL from \(server)") }
        let (status, data) = url.scheme?.lowercased() == "http"
            ? try sendOverSocket(url: url, method: method, body: body)
            : try sendThroughURLSession(url: url, method: method, body: body, endpoint: endpoint)
        guard (200..<300).contains(status) else {
            struct ErrorReply: Decodable {
                var error_code: String?
                var message: String?
            }
            let detail = try? JSONDecoder().decode(ErrorReply.self, from: data)
            var said = [detail?.error_code, detail?.message.map { MLflowClient.firstLine($0) }].compactMap { $0 }.joined(separator: ": ")
            let body = MLflowClient.firstLine(String(decoding: data.prefix(200), as: UTF8.self))
            if said.isEmpty && !body.hasPrefix("<") { said = body }   // a web page says nothing in one line
            let hint = status == 404 && detail?.error_code == nil ? " (is \(server) an MLflow tracking server?)" : ""
            let answer = "HTTP \(status) to \(endpoint)\(said.isEmpty ? "" : ": \(said)")\(hint)"
            throw MLflowError(kind: .refused(status: status, code: detail?.error_code),
                              message: "the MLflow server at \(server) answered \(answer)", reason: "server answered \(answer)")
        }
        return data
    }

    /// http://: a socket whose every wait blocks (SocketHTTP says why not URLSession).
    private func sendOverSocket(url: URL, method: String, body: Data?) throws -> (Int, Data) {
        do {
            let response = try SocketHTTP.send(url: url, method: method, headers: body == nil ? [:] : ["Content-Type": "application/json"],
                                               body: body, timeoutSeconds: timeoutSeconds)
            return (response.status, response.body)
        } catch let failure as SocketHTTP.Failure {
            throw MLflowError(kind: .unreachable, message: "cannot reach the MLflow server at \(server) (\(failure.reason))",
                              reason: "server unreachable: \(failure.reason)")
        }
    }

    /// https://: URLSession, which does TLS.
    private func sendThroughURLSession(url: URL, method: String, body: Data?, endpoint: String) throws -> (Int, Data) {
        var request = URLRequest(url: url, timeoutInterval: timeoutSeconds)
        request.httpMethod = method
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeoutSeconds
        configuration.timeoutIntervalForResource = timeoutSeconds * 2
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }

        let reply = Reply()
        let task = session.dataTask(with: request) { data, response, error in
            reply.finish(data: data, status: (response as? HTTPURLResponse)?.statusCode, error: error)
        }
        task.resume()
        // URLSession enforces the timeouts; the extra wait only guards against a lost callback.
        guard reply.done.wait(timeout: .now() + timeoutSeconds * 2 + 2) == .success else {
            task.cancel()
            throw MLflowError(kind: .unreachable, message: "the MLflow server at \(server) did not answer \(endpoint) within \(Int(timeoutSeconds * 2)) s",
                              reason: "server unreachable: no answer within \(Int(timeoutSeconds * 2)) s")
        }
        if let error = reply.error {
            let why = MLflowClient.reason(error)
            throw MLflowError(kind: .unreachable, message: "cannot reach the MLflow server at \(server) (\(why))", reason: "server unreachable: \(why)")
        }
        return (reply.status ?? 0, reply.data ?? Data())
    }

    static func firstLine(_ text: String) -> String {
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return line.count > 300 ? String(line.prefix(300)) + "…" : line
    }

    /// Words for the usual network failures, the rest as Foundation says them.
    static func reason(_ error: Error) -> String {
        guard let error = error as? URLError else { return error.localizedDescription }
        switch error.code {
        case .cannotConnectToHost: return "connection refused"
        case .timedOut: return "no answer within the timeout"
        case .cannotFindHost, .dnsLookupFailed: return "unknown host"
        case .networkConnectionLost: return "connection lost"
        case .notConnectedToInternet: return "no network"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid:
            return "TLS failed: \(error.localizedDescription)"
        default: return error.localizedDescription
        }
    }

    /// The callback's result, handed from URLSession's queue to the waiting caller.
    private final class Reply: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        // Written once, before `done` is signalled.
        private(set) var data: Data?
        private(set) var status: Int?
        private(set) var error: Error?

        func finish(data: Data?, status: Int?, error: Error?) {
            self.data = data
            self.status = status
            self.error = error
            done.signal()
        }
    }
}

extension MLflowClient.RunData {
    init(empty: Void) {
        metrics = []
        params = []
        tags = []
    }
}

extension KeyedDecodingContainer {
    /// An int64 the server may write as a number or, as protobuf's JSON does, as a string.
    func flexibleInt64(_ key: Key) throws -> Int64? {
        if let number = try? decodeIfPresent(Int64.self, forKey: key) { return number }
        if let text = try? decodeIfPresent(String.self, forKey: key) { return Int64(text) }
        return nil
    }
}
