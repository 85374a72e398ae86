import XCTest
import Foundation
@testable import Tracking

/// The plain-socket HTTP of MLflow's http:// requests (the real server is MLflowServerTests').
final class SocketHTTPTests: XCTestCase {
    func testChunkedAndLengthBodiesAreRead() throws {
        let chunked = Data("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=1\r\n:1}\r\n0\r\n\r\n".utf8)
        XCTAssertTrue(SocketHTTP.isComplete(chunked))
        XCTAssertEqual(String(decoding: try SocketHTTP.parse(chunked).body, as: UTF8.self), "{\"a\":1}")
        let sized = Data("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}extra".utf8)
        let response = try SocketHTTP.parse(sized)
        XCTAssertEqual(response.status, 404)
        XCTAssertEqual(response.body, Data("{}".utf8))
        XCTAssertFalse(SocketHTTP.isComplete(Data("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}".utf8)))
        XCTAssertThrowsError(try SocketHTTP.parse(Data("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}".utf8)))
        XCTAssertThrowsError(try SocketHTTP.parse(Data("hello".utf8)))
    }

    /// A server that answers and keeps the connection open: the answer is taken when complete,
    /// not after the timeout.
    func testAnAnswerIsTakenOnceCompleteEvenIfTheServerKeepsTheConnection() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        XCTAssertEqual(listen(listener, 4), 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let served = expectation(description: "served")
        Thread {
            let connection = accept(listener, nil, nil)
            var buffer = [UInt8](repeating: 0, count: 4096)
            var request = Data()
            while !String(decoding: request, as: UTF8.self).contains("{\"x\":1}") {
                let count = recv(connection, &buffer, buffer.count, 0)
                if count <= 0 { break }
                request.append(contentsOf: buffer[0..<count])
            }
            let text = String(decoding: request, as: UTF8.self)
            let ok = text.hasPrefix("POST /api/2.0/mlflow/runs/create?b=2 HTTP/1.1\r\n") && text.contains("Content-Length: 7\r\n")
            let answer = ok ? "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"ok\":1}" : "HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n"
            _ = answer.utf8CString.withUnsafeBufferPointer { send(connection, $0.baseAddress, answer.utf8.count, Int32(MSG_NOSIGNAL)) }
            served.fulfill()
            Thread.sleep(forTimeInterval: 5)   // the connection stays open
            close(connection)
        }.start()
        let clock = Date()
        let response = try SocketHTTP.send(url: URL(string: "http://127.0.0.1:\(port)/api/2.0/mlflow/runs/create?b=2")!, method: "POST",
                                           headers: ["Content-Type": "application/json"], body: Data("{\"x\":1}".utf8), timeoutSeconds: 3)
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body, Data("{\"ok\":1}".utf8))
        XCTAssertLessThan(Date().timeIntervalSince(clock), 2)
        wait(for: [served], timeout: 5)
    }

    func testARefusedConnectionSaysSo() throws {
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &length) } }
        close(probe)   // bound, never listened: nothing answers on that port
        let port = Int(UInt16(bigEndian: address.sin_port))
        XCTAssertThrowsError(try SocketHTTP.send(url: URL(string: "http://127.0.0.1:\(port)/health")!, method: "GET", headers: [:],
                                                 body: nil, timeoutSeconds: 2)) { error in
            XCTAssertEqual(error as? SocketHTTP.Failure, .connectionRefused)
        }
    }
}
