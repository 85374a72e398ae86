import Tracking

extension Session {
    static let sweepCommands: [Command] = [
        Command("sweep", aliases: ["sweeps"],
                usage: "sweep SETTING VALUES [log]… [random N] [halving] train N | sweep resume|show ID | sweep report ID FILE.html | sweeps",
                summary: "Train every combination of settings as its own recorded run, ranked best first at the end. VALUES: 1e-4,1e-3, or with random N ranges such as 1e-4..1e-2 (add log for a log scale); build \"SPEC\",\"SPEC\" sweeps models; halving keeps the better half after 1, 2, 4… epochs and prunes the rest. Each run is tagged (runs where sweep = ID). Ctrl-C stops it; sweep resume ID carries on, here or in another ollie. Under mpirun the runs spread over the ranks, one run per rank at a time, each trained whole on its rank's threads and recorded by rank 0 (mpirun -np 4 ollie -c '…; sweep lr 1e-4,1e-3 train 2'). sweep alone, or sweeps, lists the sweeps.",
                example: "sweep lr 1e-4,3e-4,1e-3 batch 64,128 train 3", arity: 0...1,
                completion: .words(["resume", "show", "report"] + Setting.recorded.map(\.name) + ["build", "random", "halving", "train"]),
                takesRawText: true) { session, raw, console in
            // The words as the line parser reads them (quoted specs kept whole); the text as typed
            // is what the sweep records.
            let args: [String]
            do { args = try raw.first.map { try LineParser.segments(in: $0).first?.words ?? [] } ?? [] } catch let error as LineParser.ParseError {
                throw CommandError(error.message)
            }
            let first = args.first?.lowercased() ?? ""
            // Under mpirun rank 0 alone reads and writes the record.
            if session.isFollower && ["", "show", "report"].contains(first) { return }
            switch first {
            case "":
                try session.listSweeps(console)
            case "resume", "show":
                guard args.count == 2 else { throw CommandError("usage: sweep \(first) ID, e.g. sweep \(first) 1 (list them with: sweeps)") }
                if first == "resume" { try session.resumeSweep(args[1], console) } else { try session.showSweep(args[1], console) }
            case "report":
                try session.reportSweep(Array(args.dropFirst()), console)
            default:
                try session.startSweep(args, text: "sweep " + raw[0], console)
            }
        },
    ]
}
