import Datasets
import Files
import Foundation
import NN
import Tracking
import Training

/// The live session: dataset, model, optimizer, settings and the current run, changed one
/// command at a time. Every command is a row in `commands`; the REPL only reads lines and
/// calls `execute` (Dispatch.swift).
public final class Session: @unchecked Sendable {
    /// Polled between minibatches; the REPL points it at its Ctrl-C flag.
    public var isInterrupted: @Sendable () -> Bool = { false }
    /// Under mpirun: whether mpirun is stopping the job. A sweep's run, which talks to no other
    /// rank while it trains, polls it too, so every rank comes to the end of its round at once.
    public var isStopping: @Sendable () -> Bool = { false }
    /// What interrupted it, for messages: "Ctrl-C", or the signal ending the process.
    public var interruptionName: @Sendable () -> String = { "Ctrl-C" }

    /// The full command table: the session's own commands and the REPL's (help, run, quit…).
    public var commands: [Command]

    /// What the session works on, held once. Once there are both a model and data, the trainer
    /// alone owns them; before that, the data alone (after `load`), or a model alone (restored
    /// with no data loaded) with the recipe its inputs follow, enough for `predict FILE`.
    /// `dataset`, `model` and `trainer` read through it; `load`, `install` (`build`, `reset`)
    /// and `adopt` (`restore`, `resume`, `fork`) replace it whole.
    enum Workbench {
        case empty
        case data(Dataset)
        case model(Model, input: InputRecipe)
        case training(Trainer)
    }

    var workbench: Workbench = .empty {
        // The fingerprint cache holds its dataset: never keep an unloaded one in memory.
        didSet { if let cached = cachedFingerprint, !(dataset.map(cached.data.isSameData) ?? false) { cachedFingerprint = nil } }
    }
    public var dataset: Dataset? {
        switch workbench {
        case .data(let data): data
        case .training(let trainer): trainer.dataset
        case .empty, .model: nil
        }
    }
    public var model: Model? {
        switch workbench {
        case .model(let model, _): model
        case .training(let trainer): trainer.model
        case .empty, .data: nil
        }
    }
    public var trainer: Trainer? {
        if case .training(let trainer) = workbench { trainer } else { nil }
    }
    /// What the model takes when it was restored with no data loaded (nil once data is loaded).
    var restoredInput: InputRecipe? {
        if case .model(_, let input) = workbench { input } else { nil }
    }
    /// How the dataset was loaded (`load` words, paths made absolute), so a saved epoch's
    /// state can load it again in another process (`resume`, `fork`).
    var datasetSource: [String] = []
    /// The model's architecture: its spec, held by the model itself (one copy).
    var modelSpec: ModelSpec? { model?.spec }
    /// The spec's canonical text, as runs, reports and checkpoints store it.
    var modelText: String { model.map(\.description) ?? "" }
    /// The settings in force: one copy, shared with the trainer (see LiveSettings).
    public let live = LiveSettings()
    public internal(set) var settings: Hyperparameters {
        get { live.values }
        set {
            // Only the policy changes the learning rate behind the user's back (an LR drop);
            // every other change made here is the user's, or a state they took up.
            var chosen = newValue
            if newValue.learningRate == live.values.learningRate { chosen.learningRate = live.chosen.learningRate }
            live.values = newValue
            live.chosen = chosen
        }
    }

    /// The run database; nil when it could not be opened (training still works).
    public let store: RunStore?
    /// Why the store is unavailable, shown once per command that would have written to it.
    public let storeProblem: String?
    /// The database row of the current run, created by the first `train` after `build`.
    public internal(set) var runID: Int64?
    /// The run and epoch whose state the model holds when the next run starts from it (after
    /// `fork`, `restore`, or `load` of other data under a trained model): the new run's lineage.
    var pendingLineage: (run: Int64, epoch: Int)?
    /// `databaseIdentity`, read once.
    var cachedDatabaseIdentity: String?
    /// The last dataset fingerprinted and its fingerprint (SavedState.swift).
    var cachedFingerprint: (data: Dataset, value: String)?
    /// Told of every command as it starts and ends (the REPL's transcript).
    public weak var commandObserver: CommandObserver?
    /// Writes to runs' histories the database could not take yet, oldest first (RunHistoryWriter.swift).
    var pendingWrites: [PendingWrite] = []
    /// Set by a command that stopped part-way (Ctrl-C in `train`): the commands that replay
    /// exactly what it did, for the transcript.
    var replayOfInterruptedCommand: [String]?
    /// Set by a command that asked the person at the prompt: what a script must say to do the
    /// same, for the transcript.
    var replayOfAnsweredCommand: [String]?
    /// Where checkpoints and epoch states go: beside the run database (see `checkpointFolder`).
    public var checkpointDirectory: String
    /// Where decoded image folders are kept for the next load (nil: none).
    public var decodedCache: DecodedCache? = DecodedCache(directory: DecodedCache.defaultDirectory())
    /// The decoded cache at the size `set cache-limit` allows now (the setting is its one copy).
    var boundedDecodedCache: DecodedCache? {
        decodedCache.map { var cache = $0; cache.limitBytes = settings.decodedCacheLimitBytes; return cache }
    }

    /// Commands run this session, for `history`.
    public internal(set) var typedHistory: [String] = []
    /// Set by `quit`; the REPL stops reading.
    public internal(set) var quitRequested = false
    /// Nesting depth of `run FILE`, to refuse a script that runs itself.
    var scriptDepth = 0
    /// Whether `train` has said that the policy selects on the test set (said once a session).
    var saidSelectingOnTest = false
    /// Asks the person at the prompt a yes/no question (`delete`); nil where nobody can answer
    /// (-c, a script, piped input), so such a command must say `yes` itself.
    public var confirm: ((String) -> Bool)?
    /// Background exporters to MLflow (`set mlflow`, and runs an earlier process left waiting).
    let mlflow = MLflowLink()
    /// An MPI rank other than 0 (RankAgreement.swift): it runs every command for its effect on
    /// the training state only, with no database and no files of its own, and goes on past a
    /// failing command (rank 0 reports; the ranks compare their states before each train).
    public var isFollower = false
    /// The first command that failed since the ranks last agreed, and why: what rank 0 reports
    /// when they disagree.
    var lastFailure: String?
    /// A sweep spread over MPI ranks, while it runs (Sweeps/SweepRanks.swift).
    let rankSweep = RankSweep()

    /// Opens (or creates) the run database at `databasePath`; a database that cannot be opened
    /// is reported by `storeProblem` and every command except the tracking ones still works.
    /// Checkpoints go beside the database (`checkpointFolder`), whatever the working directory.
    public init(databasePath: String? = nil, checkpointDirectory: String? = nil) {
        let path = databasePath ?? RunStore.defaultPath()
        do {
            store = try RunStore(path: path)
            storeProblem = nil
        } catch {
            // Reading needs no write access: a database this user cannot write is still read.
            if let why = Session.whyNotWritable(path), let reader = try? RunStore(path: path, readOnly: true) {
                store = reader
                storeProblem = "run database \(path) opened read-only (\(why)): runs, compare, sql, diff, plot and report work, but runs are not recorded; make it writable or use --db PATH"
            } else {
                store = nil
                storeProblem = "run database \(path) unavailable: \(error); runs are not being recorded"
            }
        }
        self.checkpointDirectory = checkpointDirectory ?? Session.checkpointFolder(besideDatabase: path)
        commands = []
        commands = Session.sessionCommands + Session.replCommands
        removeStaleTemporaries()
        startMLflowCatchUp()
    }

    /// The folder of a database's checkpoints and epoch states: DB_FOLDER/checkpoints for
    /// ollie.sqlite, DB_FOLDER/checkpoints/NAME for NAME.sqlite, DB_FOLDER being where the
    /// database really is (absolute, links resolved). So two databases never share a "run 1"
    /// file, `resume` finds the files from any working directory, and the layout is the one
    /// earlier versions made under the working directory when it was the database's folder.
    public static func checkpointFolder(besideDatabase path: String) -> String {
        let database = ResolvedPath.of(path)
        let slash = database.lastIndex(of: "/")!
        let folder = database[..<slash]
        let stem = URL(fileURLWithPath: String(database[database.index(after: slash)...])).deletingPathExtension().lastPathComponent
        return stem == "ollie" ? "\(folder)/checkpoints" : "\(folder)/checkpoints/\(stem)"
    }

    /// Temporaries that an ollie killed mid-write left in the checkpoint folder and its runs' folders.
    func removeStaleTemporaries() {
        SafeFile.removeStaleTemporaries(in: checkpointDirectory)
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: checkpointDirectory)) ?? []
        for name in runs where name.hasPrefix("run-") && !name.hasSuffix(".safetensors") {
            SafeFile.removeStaleTemporaries(in: checkpointDirectory + "/" + name)
        }
    }

    /// Why this process cannot write the database at `path`, which exists; nil when it can
    /// (or the file is missing). SQLite also writes -wal and -shm files beside it.
    static func whyNotWritable(_ path: String) -> String? {
        let files = FileManager.default
        guard files.fileExists(atPath: path) else { return nil }
        if !files.isWritableFile(atPath: path) { return "the file is not writable by this user" }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !files.isWritableFile(atPath: folder) { return "its folder \(folder) is not writable, and SQLite writes journal files beside it" }
        return nil
    }

    /// A session with no run database (tests, `ollie-bench`).
    public init(store: RunStore?, checkpointDirectory: String = "checkpoints") {
        self.store = store
        storeProblem = store == nil ? "no run database" : nil
        self.checkpointDirectory = checkpointDirectory
        commands = []
        commands = Session.sessionCommands + Session.replCommands
        removeStaleTemporaries()
        startMLflowCatchUp()
    }

    deinit { mlflow.finish() }

    /// Before the process exits: live MLflow logging gets a few seconds, said on `console`,
    /// to send what it queued (none when nothing waits); Ctrl-C (`isInterrupted`) cuts it short.
    public func finishMLflow(_ console: Console) {
        mlflow.finish(announce: { console.write($0) }, isInterrupted: isInterrupted)
    }

    // MARK: - Preconditions with the next step in the message

    func requireDataset() throws -> Dataset {
        guard let dataset else {
            if let restoredInput {
                throw CommandError("no data loaded: the restored model can classify files (predict FILE), but this needs its data; load it first: load \(restoredInput.loadWords.joined(separator: " "))")
            }
            throw CommandError("no dataset loaded; load one first: load mnist")
        }
        return dataset
    }

    func requireModel() throws -> Model {
        guard let model else {
            throw CommandError(dataset == nil ? "no model yet; run: load mnist, then build conv"
                                              : "no model yet; build one first: build conv")
        }
        return model
    }

    func requireTrainer() throws -> Trainer {
        _ = try requireDataset()
        _ = try requireModel()
        guard let trainer else { throw CommandError("no model yet; build one first: build conv") }
        return trainer
    }

    /// Runs a database write; a failure becomes one warning line and the command goes on.
    func record(_ console: Console, _ write: (RunStore) throws -> Void) {
        guard let store else { return }
        do { try write(store) } catch {
            console.write("warning: not recorded in the run database: \(error)")
            return
        }
        if let runID { mlflowRunChanged(runID) }
    }
}
