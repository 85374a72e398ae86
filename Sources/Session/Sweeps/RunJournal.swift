import Files
import Foundation
import Tracking
import Training

/// What `train` records of a run, step by step, in the order it happens: the run set
/// running, each epoch's state file and best checkpoint, each epoch's record, the end.
/// Normally each step is written at once (`applyRecord`); a sweep's run trained on an MPI
/// rank keeps them in a journal instead, which rank 0 replays through the same
/// `applyRecord`, so its database and checkpoint folder end as if it had trained the run.
enum RunRecordStep: Codable {
    /// `train` began on the run: it is `running` again.
    case started
    /// The state after `epoch` (what `resume` and `fork` read), written before its record;
    /// `keep` then drops older ones, `bestEpoch` being the best so far. `bytes`: the file.
    case epochState(epoch: Int, bestEpoch: Int, bytes: Data?)
    /// The run's best checkpoint, rewritten at a new best.
    case bestCheckpoint(bytes: Data?)
    /// An epoch's metrics, events and setting changes; `testScore`: the test split scored
    /// after a validated `train`, added to its last epoch.
    case epoch(EpochEntry, testScore: Bool)
    /// `train` ended with `status` (a RunStatus); the best checkpoint is the recording rank's file.
    case finished(status: String)
}

/// The journal of the run a rank trains for a sweep round.
final class RunJournal {
    var steps: [RunRecordStep] = []
    /// A file written but not read back: the run cannot be recorded whole.
    var problem: String?

    /// The bytes of a file just written.
    func bytes(of path: String) -> Data? {
        do { return Data(try FileContents.read(path)) } catch {
            problem = problem ?? "\(path) was written but cannot be read back: \(error)"
            return nil
        }
    }
}

/// `EpochRecord` as it travels between ranks: every Double as its bits (NaN and all).
struct EpochEntry: Codable {
    struct Step: Codable { var step: Int; var name: String; var value: UInt64 }
    var epoch: Int
    var metrics: [String: UInt64]
    var events: [[String]]
    var paramChanges: [[String]]
    var bestAccuracy: UInt64?
    var bestEpoch: Int?
    var trainLoss: UInt64?
    var seconds: UInt64?
    var stepMetrics: [Step]

    init(_ r: EpochRecord) {
        epoch = r.epoch
        metrics = r.metrics.mapValues(\.bitPattern)
        events = r.events.map { [$0.kind, $0.detail] }
        paramChanges = r.paramChanges.map { [$0.name, $0.value] }
        bestAccuracy = r.bestAccuracy?.bitPattern
        bestEpoch = r.bestEpoch
        trainLoss = r.trainLoss?.bitPattern
        seconds = r.seconds?.bitPattern
        stepMetrics = r.stepMetrics.map { Step(step: $0.step, name: $0.name, value: $0.value.bitPattern) }
    }

    var record: EpochRecord {
        var r = EpochRecord(epoch: epoch, metrics: metrics.mapValues(Double.init(bitPattern:)),
                            events: events.map { (kind: $0[0], detail: $0[1]) },
                            paramChanges: paramChanges.map { (name: $0[0], value: $0[1]) },
                            bestAccuracy: bestAccuracy.map(Double.init(bitPattern:)), bestEpoch: bestEpoch,
                            trainLoss: trainLoss.map(Double.init(bitPattern:)), seconds: seconds.map(Double.init(bitPattern:)))
        r.stepMetrics = stepMetrics.map { (step: $0.step, name: $0.name, value: Double(bitPattern: $0.value)) }
        return r
    }
}

extension Session {
    /// One step of run `run`'s history: into the sweep round's journal while there is one,
    /// else into the database in order (RunHistoryWriter) and the checkpoint folder.
    func recordRun(_ step: RunRecordStep, run: Int64, _ console: Console) {
        if let journal = rankSweep.journal {
            journal.steps.append(step)
        } else {
            applyRecord(step, run: run, console)
        }
    }

    /// A state file `train` just wrote, into the journal (with its bytes when they travel).
    func journalFile(epoch: Int?, bestEpoch: Int, path: String) {
        guard let journal = rankSweep.journal else { return }
        let bytes = journal.bytes(of: path)
        journal.steps.append(epoch.map { .epochState(epoch: $0, bestEpoch: bestEpoch, bytes: bytes) } ?? .bestCheckpoint(bytes: bytes))
    }

    /// Records one step as `train` does: database writes in order, files where `resume`,
    /// `fork` and `restore best` look for them.
    func applyRecord(_ step: RunRecordStep, run: Int64, _ console: Console) {
        switch step {
        case .started:
            recordInOrder(console, run: run, "the start of train on run \(run)") { try $0.setStatus(run: run, .running) }
        case .epoch(let entry, let testScore):
            let record = entry.record
            let what = testScore ? "the test score of run \(run)'s epoch \(record.epoch)" : "epoch \(record.epoch) of run \(run)"
            recordInOrder(console, run: run, what) { try $0.recordEpoch(run: run, record) }
        case .finished(let raw):
            let status = RunStatus(rawValue: raw) ?? .failed
            let best = bestCheckpointPath(run)
            recordInOrder(console, run: run, "the end of train on run \(run)") { try $0.finishRun(run: run, status: status, checkpoint: best) }
        case .epochState(let epoch, let bestEpoch, let bytes):
            guard let bytes else { return }
            do {
                try SafeFile.write(bytes, to: epochStatePath(run: run, epoch: epoch))
                dropEpochStates(run: run, last: epoch, best: bestEpoch)
            } catch {
                console.write("warning: could not save epoch \(epoch)'s state of run \(run) (resume and fork need it): \(error)")
            }
        case .bestCheckpoint(let bytes):
            guard let bytes else { return }
            do { try SafeFile.write(bytes, to: "\(checkpointDirectory)/run-\(run)-best.safetensors") } catch {
                console.write("warning: could not save the best model of run \(run): \(error)")
            }
        }
    }
}
