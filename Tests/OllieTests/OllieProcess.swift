import Foundation

/// What the tests that start real processes share (BinaryTests, and MPITests and
/// MPISweepTests through MPIJobTest): where the built binary is, and how a process is set up.
enum OllieProcess {
    /// The built `ollie` next to the test bundle that holds `type`.
    static func binary(besides type: AnyClass) -> String {
        let candidates = [Bundle.main.bundleURL, Bundle(for: type).bundleURL.deletingLastPathComponent()]
            .map { $0.appendingPathComponent("ollie").path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// `program arguments` in `directory`, with the test's environment plus `extra`, and
    /// session transcripts under `folder`/sessions (never the user's).
    static func make(_ program: String, _ arguments: [String], in directory: String, folder: String,
                     environment extra: [String: String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var environment = ProcessInfo.processInfo.environment
        environment["OLLIE_SESSIONS"] = folder + "/sessions"
        for (k, v) in extra { environment[k] = v }
        process.environment = environment
        return process
    }
}
