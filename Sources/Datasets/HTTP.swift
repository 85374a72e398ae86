import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A blocking HTTP GET: `load` is a synchronous command, and the REPL waits for it anyway.
enum HTTP {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The body of a 200 response. `idleSeconds` bounds silence on the connection; a whole
    /// file may take longer on a slow link, up to `totalSeconds`.
    static func get(_ url: URL, idleSeconds: Double = 30, totalSeconds: Double = 600) throws -> [UInt8] {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = idleSeconds
        configuration.timeoutIntervalForResource = totalSeconds
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }

        let reply = Reply()
        let task = session.dataTask(with: url) { data, response, error in
            reply.finish {
                if let error { return .failure(Failure(description: error.localizedDescription)) }
                let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                guard status == 200 else { return .failure(Failure(description: "HTTP \(status)")) }
                return .success([UInt8](data ?? Data()))
            }
        }
        task.resume()
        // URLSession enforces the timeouts; the extra wait only guards against a lost callback.
        guard reply.done.wait(timeout: .now() + totalSeconds + 5) == .success else {
            task.cancel()
            throw Failure(description: "no answer after \(Int(totalSeconds)) s")
        }
        return try reply.result!.get()
    }

    /// The callback's result, handed from URLSession's queue to the waiting caller.
    private final class Reply: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        private(set) var result: Result<[UInt8], Failure>?  // written once, before `done` is signalled

        func finish(_ make: () -> Result<[UInt8], Failure>) {
            result = make()
            done.signal()
        }
    }
}
