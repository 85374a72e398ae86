import Files
import Foundation
import Tracking

/// Keeping many runs in order: names and tags to find them by, archive to hide them from lists
/// while keeping them, delete to remove them and their files for good.
extension Session {
    static let bookkeepingCommands: [Command] = [
        Command("name", usage: "name RUN NAME | name RUN -",
                summary: "Give a run a name to find it by (runs where name = NAME); - removes it.",
                example: "name 3 cnn-lstm", arity: 2...2) { session, args, console in
            let run = try session.parseRunID(args[0])
            let name = args[1] == "-" ? nil : args[1]
            try session.requireStore().setName(run: run, name)
            console.write(name.map { "run \(run) is named \($0)" } ?? "run \(run) has no name now")
        },
        Command("tag", usage: "tag RUN TAG...", summary: "Tag a run (runs where tag = TAG finds it); a run has any number of tags.",
                example: "tag 3 baseline", arity: 2...16) { session, args, console in
            let run = try session.parseRunID(args[0])
            let tags = try session.requireStore().tag(run: run, Array(args.dropFirst()))
            console.write("run \(run) tags: \(tags.joined(separator: " "))")
        },
        Command("untag", usage: "untag RUN TAG...", summary: "Remove tags from a run.",
                example: "untag 3 baseline", arity: 2...16) { session, args, console in
            let run = try session.parseRunID(args[0])
            let tags = try session.requireStore().untag(run: run, Array(args.dropFirst()))
            console.write("run \(run) tags: \(tags.isEmpty ? "none" : tags.joined(separator: " "))")
        },
        Command("archive", usage: "archive RUN...",
                summary: "Hide runs from runs, compare all and last N, keeping everything (runs archived lists them; unarchive brings them back).",
                example: "archive 3", arity: 1...32) { session, args, console in
            try session.setArchived(args, true, console)
        },
        Command("unarchive", usage: "unarchive RUN...", summary: "Show archived runs in lists again.",
                example: "unarchive 3", arity: 1...32) { session, args, console in
            try session.setArchived(args, false, console)
        },
        Command("delete", usage: "delete RUN [yes]",
                summary: "Remove a run for good: its rows and its files (epoch states, best checkpoint). Asks first at a prompt; a script says yes.",
                example: "delete 3 yes", arity: 1...2) { session, args, console in
            try session.deleteRun(args, console)
        },
    ]

    func setArchived(_ args: [String], _ archived: Bool, _ console: Console) throws {
        let store = try requireStore()
        let runs = try args.map(parseRunID)
        for run in runs { try store.setArchived(run: run, archived) }
        let list = runs.map(String.init).joined(separator: ", ")
        console.write(archived ? "archived run\(runs.count == 1 ? "" : "s") \(list): kept, left out of lists (runs archived shows them)"
                               : "run\(runs.count == 1 ? "" : "s") \(list) back in lists")
    }

    /// The files a run leaves in the checkpoint folder: its epoch states and its best model.
    func runFiles(_ run: Int64) -> [String] {
        [epochStateDirectory(run: run), "\(checkpointDirectory)/run-\(run)-best.safetensors"]
            .filter { FileManager.default.fileExists(atPath: $0) }
    }

    func deleteRun(_ args: [String], _ console: Console) throws {
        let store = try requireStore()
        let run = try parseRunID(args[0])
        guard args.count == 1 || args[1].lowercased() == "yes" else {
            throw CommandError("usage: delete RUN [yes] (got '\(args[1])')")
        }
        let summary = try store.run(run)
        guard run != runID else {
            throw CommandError("run \(run) is this session's current run; move on first (build starts a new run), then delete \(run)")
        }
        let files = runFiles(run)
        let recipe = summary.modelRecipe.count <= 24 ? summary.modelRecipe : String(summary.modelRecipe.prefix(23)) + "…"
        let what = "run \(run) (\(summary.dataset), \(recipe), \(summary.epochs) epoch\(summary.epochs == 1 ? "" : "s"))"
            + (files.isEmpty ? "" : " and its files")
        if args.count == 1 {
            // Only a person at a prompt can answer; a script must have said yes already.
            guard scriptDepth == 0, let confirm else {
                throw CommandError("delete removes \(what) for good; in a script or -c say so: delete \(run) yes")
            }
            let yes = confirm("delete \(what)? [y/N] ")
            replayOfAnsweredCommand = yes ? ["delete \(run) yes"] : []
            guard yes else {
                console.write("run \(run) kept")
                return
            }
        }
        try store.deleteRun(run)
        var left: [String] = []
        for file in files {
            do { try FileManager.default.removeItem(atPath: file) } catch { left.append(file) }
        }
        console.write("deleted run \(run)" + (files.isEmpty ? "" : " and \(files.map(ResolvedPath.shown).joined(separator: ", "))"))
        if !left.isEmpty { console.write("warning: could not remove \(left.joined(separator: ", ")); remove by hand") }
    }
}
