@preconcurrency import Glibc
import ArgumentParser
import Cluster
import Foundation
import Session
import Training

/// ollie started by mpirun: every rank runs the same script or `-c` commands on its own copy
/// of the session and trains its slice of every minibatch (Trainer + Distributed/). Rank 0
/// prints, records the run and writes the files; the others stay silent, write nothing and
/// keep their best checkpoint (for `restore best`) in a private folder removed at the end.
enum ClusterMode {
    static func run(database: String?, commands: String?, scripts: [String]) throws {
        let world: MPIWorld
        do { world = try MPIWorld() } catch {
            print("error: \(error)")
            throw ExitCode(1)
        }
        let leader = world.rank == 0
        // No progress bars: mpirun relays output through a pty, where redraws come out garbled.
        let terminal = TerminalConsole(interactive: false)
        func stopEveryRank(_ message: String) -> Never {
            world.onFailure = { reason, _ in if leader { terminal.write("error: \(reason)") } }
            world.stop(message, seenByEveryRank: true)
        }
        guard commands != nil || !scripts.isEmpty else {
            stopEveryRank("under mpirun, give ollie a script or -c 'COMMANDS' (standard input reaches rank 0 only)")
        }
        // The same script on every rank, or one line now instead of a confusing failure later.
        var text = ContentDigest()
        text.add(Array((commands ?? "").utf8))
        for script in scripts { text.add(Array(((try? String(contentsOfFile: script, encoding: .utf8)) ?? "unreadable \(script)").utf8)) }
        let digests = world.allGather([text.value], during: "the ranks' script check")
        if let other = digests.firstIndex(where: { $0 != digests[0] }) {
            stopEveryRank("the MPI ranks were given different scripts: rank \(other)'s \(commands == nil ? scripts.joined(separator: " ") : "-c commands") differ from rank 0's; give every rank the same script (a shared folder, or the same file copied to every host)")
        }

        Trainer.processGroup = world
        let session: Session
        var privateFolder: String?
        if leader {
            session = Session(databasePath: database)
            if let problem = session.storeProblem { terminal.write("warning: \(problem)") }
        } else {
            removeFoldersOfGoneRanks()
            let folder = NSTemporaryDirectory() + "ollie-rank-\(world.rank)-\(getpid())"
            privateFolder = folder
            session = Session(store: nil, checkpointDirectory: folder)
            session.isFollower = true
            session.decodedCache = nil
        }
        session.isInterrupted = { Interrupt.isSet }
        session.isStopping = { world.isStopping }
        let console: Console = leader ? terminal : SilentConsole()
        world.onFailure = { reason, seenByEveryRank in
            if leader {
                terminal.write("error: \(reason)")
                session.abandonRun(because: reason)
            } else if !seenByEveryRank {
                FileHandle.standardError.write(Data("error: rank \(world.rank): \(reason)\n".utf8))
            }
            if let privateFolder { try? FileManager.default.removeItem(atPath: privateFolder) }
        }

        var succeeded = true
        if let commands {
            succeeded = session.execute(commands, console: console)
        } else {
            for script in scripts {
                do { try session.runScript(script, console: console) } catch {
                    console.write("error: \(error)")
                    succeeded = false
                    break
                }
                if session.quitRequested { break }
            }
        }
        session.close(console)
        if let privateFolder { try? FileManager.default.removeItem(atPath: privateFolder) }
        // Rank 0 stopped at a failing line while the others, which go on past errors, may be
        // waiting for it: end them all now.
        if leader && !succeeded { world.abort(code: 1) }
        world.finish()
    }

    /// A rank that mpirun killed (when another failed) had no chance to remove its private
    /// folder: the next rank on this host removes those whose process is gone.
    static func removeFoldersOfGoneRanks() {
        let temporary = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix("ollie-rank-") {
            guard let pid = name.split(separator: "-").last.flatMap({ Int32($0) }), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(atPath: temporary + name) }
        }
    }
}

/// A rank other than 0 prints nothing: rank 0 speaks for the job.
final class SilentConsole: Console {
    func write(_ line: String) {}
    func progress(_ line: String) {}
    var isInteractive: Bool { false }
}
