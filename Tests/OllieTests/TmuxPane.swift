import Foundation

/// One `ollie` in a detached tmux pane on a private tmux server (-L), killed by `close`, so a
/// failed test leaves nothing behind: keys go in, the screen comes out.
final class TmuxPane {
    let server: String
    private let scratch: String

    init(server: String, scratch: String, command: String, columns: Int = 200, rows: Int = 100) {
        self.server = server
        self.scratch = scratch
        _ = tmux("new-session", "-d", "-s", server, "-x", String(columns), "-y", String(rows), command)
    }

    @discardableResult
    func tmux(_ args: String...) -> String { tmux(args) }

    @discardableResult
    func tmux(_ args: [String]) -> String {
        let outPath = scratch + "/tmux-out-\(server)"
        spawnAndWait("/usr/bin/tmux", ["-L", server] + args, output: outPath)
        return (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    }

    func send(_ keys: String...) { spawnAndWait("/usr/bin/tmux", ["-L", server, "send-keys", "-t", server] + keys, output: "/dev/null") }

    func screen() -> String { tmux("capture-pane", "-p", "-t", server) }

    func waitFor(_ text: String, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if screen().contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }

    func close() { tmux("kill-server") }
}
