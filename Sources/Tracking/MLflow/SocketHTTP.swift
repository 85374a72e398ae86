import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 request to an `http://` server over a POSIX socket, every wait a blocking
/// poll(2) with a timeout. On Linux, FoundationNetworking's URLSession spins while it waits
/// for a server that accepted the connection and never answers (its dispatch source on the
/// always-writable socket fires without end): a full core per hanging request, which slowed
/// training under live MLflow logging. MLflow's REST calls need nothing more than this:
/// one request per connection (`Connection: close`), a JSON body, a JSON answer.
enum SocketHTTP {
    struct Response {
        var status: Int
        var body: Data
    }

    enum Failure: Error, Equatable {
        case unknownHost, connectionRefused, timedOut, connectionLost
        case other(String)

        /// Words for a list of what waits, as MLflowClient.reason gives URLSession's errors.
        var reason: String {
            switch self {
            case .unknownHost: "unknown host"
            case .connectionRefused: "connection refused"
            case .timedOut: "no answer within the timeout"
            case .connectionLost: "connection lost"
            case .other(let text): text
            }
        }
    }

    /// Sends the request and reads the whole answer. `timeoutSeconds` bounds each silence (the
    /// connect, and each wait to write or read), twice it the whole exchange.
    static func send(url: URL, method: String, headers: [String: String], body: Data?, timeoutSeconds: Double) throws -> Response {
        guard let parts = URLComponents(url: url, resolvingAgainstBaseURL: false), let host = parts.host else {
            throw Failure.other("cannot form a request to \(url)")
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds * 2)
        let port = parts.port ?? 80
        let socket = try connect(host: host, port: port, timeoutSeconds: timeoutSeconds, deadline: deadline)
        defer { close(socket) }
        var target = parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath
        if let query = parts.percentEncodedQuery { target += "?" + query }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nAccept: application/json\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body?.count ?? 0)\r\n\r\n"
        try write(Data(head.utf8) + (body ?? Data()), to: socket, timeoutSeconds: timeoutSeconds, deadline: deadline)
        return try parse(try readAll(socket, timeoutSeconds: timeoutSeconds, deadline: deadline))
    }

    /// Waits until `socket` is ready for `events`, at most the silence allowed and the deadline.
    private static func wait(_ socket: Int32, for events: Int16, timeoutSeconds: Double, deadline: Date) throws {
        while true {
            let remaining = min(timeoutSeconds, deadline.timeIntervalSinceNow)
            guard remaining > 0 else { throw Failure.timedOut }
            var descriptor = pollfd(fd: socket, events: events, revents: 0)
            let ready = poll(&descriptor, 1, Int32((remaining * 1000).rounded(.up)))
            if ready > 0 { return }
            if ready == 0 { throw Failure.timedOut }
            if errno != EINTR { throw Failure.other(String(cString: strerror(errno))) }
        }
    }

    private static func connect(host: String, port: Int, timeoutSeconds: Double, deadline: Date) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { throw Failure.unknownHost }
        defer { freeaddrinfo(list) }
        var failure = Failure.connectionRefused
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let address = entry?.pointee {
            entry = address.ai_next
            let socket = Glibc.socket(address.ai_family, address.ai_socktype, address.ai_protocol)
            guard socket >= 0 else { continue }
            _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
            if Glibc.connect(socket, address.ai_addr, address.ai_addrlen) == 0 { return socket }
            guard errno == EINPROGRESS else {
                close(socket)
                continue
            }
            do {
                try wait(socket, for: Int16(POLLOUT), timeoutSeconds: timeoutSeconds, deadline: deadline)
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length)
                if error == 0 { return socket }
                failure = error == ECONNREFUSED ? .connectionRefused : .other(String(cString: strerror(error)))
            } catch let error as Failure {
                failure = error
            }
            close(socket)
        }
        throw failure
    }

    private static func write(_ data: Data, to socket: Int32, timeoutSeconds: Double, deadline: Date) throws {
        var offset = 0
        while offset < data.count {
            try wait(socket, for: Int16(POLLOUT), timeoutSeconds: timeoutSeconds, deadline: deadline)
            let sent = data.withUnsafeBytes { Glibc.send(socket, $0.baseAddress! + offset, data.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent > 0 { offset += sent; continue }
            if sent < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            throw Failure.connectionLost
        }
    }

    /// The answer: until the server closes the connection, or sooner once the body its headers
    /// announce is all here (a server may keep the connection open despite `Connection: close`).
    private static func readAll(_ socket: Int32, timeoutSeconds: Double, deadline: Date) throws -> Data {
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            try wait(socket, for: Int16(POLLIN), timeoutSeconds: timeoutSeconds, deadline: deadline)
            let count = recv(socket, &buffer, buffer.count, 0)
            if count > 0 {
                received.append(contentsOf: buffer[0..<count])
                if isComplete(received) { return received }
                continue
            }
            if count == 0 { return received }
            if errno == EAGAIN || errno == EINTR { continue }
            if received.isEmpty { throw Failure.connectionLost }
            return received
        }
    }

    static func isComplete(_ data: Data) -> Bool {
        guard let end = data.range(of: Data("\r\n\r\n".utf8)) else { return false }
        let head = String(decoding: data[data.startIndex..<end.lowerBound], as: UTF8.self).lowercased()
        if head.contains("transfer-encoding: chunked") { return data.suffix(5) == Data("0\r\n\r\n".utf8) }
        guard let line = head.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) else { return false }
        return data.distance(from: end.upperBound, to: data.endIndex) >= length
    }

    /// Status line, headers, then the body as Content-Length or chunked transfer says.
    static func parse(_ data: Data) throws -> Response {
        let separator = Data("\r\n\r\n".utf8)
        guard let end = data.range(of: separator) else { throw Failure.connectionLost }
        let head = String(decoding: data[data.startIndex..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusWords = head[0].split(separator: " ")
        guard statusWords.count >= 2, statusWords[0].hasPrefix("HTTP/"), let status = Int(statusWords[1]) else {
            throw Failure.other("not an HTTP answer")
        }
        var fields: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(data[end.upperBound...])
        if fields["transfer-encoding"]?.lowercased().contains("chunked") == true {
            body = try dechunk(body)
        } else if let length = fields["content-length"].flatMap({ Int($0) }) {
            guard body.count >= length else { throw Failure.connectionLost }
            body = body.prefix(length)
        }
        return Response(status: status, body: body)
    }

    /// Chunked transfer coding: hex size, CRLF, that many bytes, CRLF, … until size 0.
    static func dechunk(_ data: Data) throws -> Data {
        var body = Data()
        var rest = data[...]
        let crlf = Data("\r\n".utf8)
        while true {
            guard let lineEnd = rest.range(of: crlf) else { throw Failure.connectionLost }
            let sizeText = String(decoding: rest[rest.startIndex..<lineEnd.lowerBound], as: UTF8.self)
                .split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard let size = Int(sizeText, radix: 16) else { throw Failure.other("a malformed chunked answer") }
            if size == 0 { return body }
            let start = lineEnd.upperBound
            guard rest.distance(from: start, to: rest.endIndex) >= size + 2 else { throw Failure.connectionLost }
            let stop = rest.index(start, offsetBy: size)
            body.append(rest[start..<stop])
            rest = rest[rest.index(stop, offsetBy: 2)...]
        }
    }
}
