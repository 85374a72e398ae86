import Datasets
import Foundation
import Training

/// What a saved state's metadata says about where it came from and how far it got, checked
/// like any other input: a damaged or hand-edited file is refused with one line naming the file
/// and the key, never loaded with a counter of -4 or a best epoch beyond the epochs done.
struct SavedCounters {
    var epochsDone: Int
    var stepsDone: Int
    var policy: Policy
    /// The span a cosine or one-cycle schedule was annealing over (nil: none).
    var scheduleSpan: ScheduleSpan?
    /// The run the state was saved from (nil for a file from elsewhere).
    var run: Int64?
    /// The `database_identity.uuid` of the database that run is in (nil: a file from before
    /// checkpoints said so, or from elsewhere). Run ids are per database.
    var database: String?
    /// `Dataset.fingerprint` of the data it was trained on (nil: an older file).
    var dataFingerprint: String?

    /// More epochs or steps than any run could take: a damaged number, not a long run.
    static let maximumEpochs = 1_000_000, maximumSteps = 1_000_000_000_000

    init(_ metadata: [String: String], path: String) throws {
        typealias Key = Session.StateKey
        func refuse(_ key: String, _ text: String, _ expected: String) -> CommandError {
            CommandError("\(path): \(key) = '\(text)' is not \(expected); the file's metadata is damaged, so it was not loaded")
        }
        func whole(_ key: String, in range: ClosedRange<Int>) throws -> Int {
            guard let text = metadata[key] else { return 0 }
            guard let value = Int(text), range.contains(value) else {
                throw refuse(key, text, "a whole number in \(range.lowerBound)…\(range.upperBound)")
            }
            return value
        }
        epochsDone = try whole(Key.epochsDone, in: 0...SavedCounters.maximumEpochs)
        stepsDone = try whole(Key.stepsDone, in: 0...SavedCounters.maximumSteps)
        if stepsDone < epochsDone {
            throw CommandError("\(path): \(Key.stepsDone) = \(stepsDone) is fewer than \(Key.epochsDone) = \(epochsDone) (every epoch takes a step); the file's metadata is damaged, so it was not loaded")
        }
        // Best epoch and last improvement are epochs already done (0: none yet).
        let bestEpoch = try whole(Key.bestEpoch, in: 0...epochsDone)
        let lastImprovement = try whole(Key.lastImprovement, in: 0...epochsDone)
        var bestAccuracy = 0.0
        if let text = metadata[Key.bestAccuracy] {
            guard let value = Double(text), (0...1).contains(value) else { throw refuse(Key.bestAccuracy, text, "an accuracy in 0…1") }
            bestAccuracy = value
        }
        // The best monitored value (a loss may be any finite number); absent in older files,
        // whose best was the accuracy.
        var bestValue: Double?
        if let text = metadata[Key.bestValue] {
            guard let value = Double(text), value.isFinite else { throw refuse(Key.bestValue, text, "a finite number") }
            bestValue = value
        }
        var monitor = Monitor.scoredAccuracy
        if let text = metadata[Key.bestMonitor] {
            guard let value = try? Monitor(parsing: text) else { throw refuse(Key.bestMonitor, text, "a monitor (METRIC [min|max])") }
            monitor = value
        }
        policy = Policy(bestAccuracy: bestAccuracy, bestEpoch: bestEpoch, lastImprovement: lastImprovement, bestValue: bestValue,
                        monitor: monitor)
        if let text = metadata[Key.scheduleSpan] {
            // "FIRST STEPS SCHEDULE…": the schedule's words last.
            let words = text.split(separator: " ", maxSplits: 2).map(String.init)
            guard words.count == 3, let first = Int(words[0]), let steps = Int(words[1]),
                  (0...stepsDone).contains(first), (1...SavedCounters.maximumSteps).contains(steps) else {
                throw refuse(Key.scheduleSpan, text, "a schedule span (first step ≤ steps done, steps ≥ 1, schedule)")
            }
            scheduleSpan = ScheduleSpan(firstStep: first, steps: steps, schedule: words[2])
        }
        if let text = metadata[Key.run] {
            guard let value = Int64(text), value >= 1 else { throw refuse(Key.run, text, "a run id (a whole number ≥ 1)") }
            run = value
        }
        if let text = metadata[Key.database] {
            guard UUID(uuidString: text) != nil else { throw refuse(Key.database, text, "a database identity (a UUID)") }
            database = text.lowercased()
        }
        if let text = metadata[Key.dataFingerprint] {
            guard text.count == 16, text.allSatisfy(\.isHexDigit) else { throw refuse(Key.dataFingerprint, text, "a data fingerprint (16 hex digits)") }
            dataFingerprint = text
        }
    }
}

extension Session.StateKey {
    /// The policy's best monitored value and the monitor it is of (`set monitor`), and the span of a cosine or one-cycle
    /// schedule as "FIRST_STEP STEPS SCHEDULE" (absent: none started).
    static let bestValue = "ollie.best_value", bestMonitor = "ollie.best_monitor", scheduleSpan = "ollie.schedule_span"

    /// The metadata of a trainer's schedule span and best monitored value.
    static func metadata(policy: Policy, span: ScheduleSpan?) -> [String: String] {
        var metadata: [String: String] = [:]
        if let value = policy.bestValue {
            metadata[bestValue] = String(value)
            metadata[bestMonitor] = policy.monitor.text
        }
        if let span { metadata[scheduleSpan] = "\(span.firstStep) \(span.steps) \(span.schedule)" }
        return metadata
    }
}

extension Session {
    /// This database's identity (nil without a database).
    var databaseIdentity: String? {
        if let cachedDatabaseIdentity { return cachedDatabaseIdentity }
        cachedDatabaseIdentity = (try? store?.databaseIdentity()).flatMap { $0.isEmpty ? nil : $0.lowercased() }
        return cachedDatabaseIdentity
    }

    /// The data's fingerprint (it reads every value), kept for the session's own dataset.
    func fingerprint(of data: Dataset) -> String {
        if let cached = cachedFingerprint, cached.data.isSameData(data) { return cached.value }
        let value = data.fingerprint
        // Only the session's dataset is kept with its fingerprint (data a refused `resume` read
        // must not stay in memory); holding it means its buffers cannot be reused by other data.
        if dataset.map(data.isSameData) ?? false { cachedFingerprint = (data, value) }
        return value
    }

    /// The parent a state gives the next run: its saved run and epoch, but only when the file
    /// was written by this database (run 3 of another file is not this file's run 3), and that
    /// run is here. Otherwise no parent, and a line saying where the state came from.
    func lineage(of candidate: Candidate) -> (parent: (run: Int64, epoch: Int)?, note: String?) {
        guard let run = candidate.saved.run, candidate.saved.epochsDone > 0 else { return (nil, nil) }
        let origin = "\(candidate.path) holds run \(run)@\(candidate.saved.epochsDone)"
        guard let database = candidate.saved.database else {
            return (nil, "\(origin) but is older than checkpoints that name their database, so run \(run) here may be another run: no parent is recorded")
        }
        guard database == databaseIdentity else {
            return (nil, "\(origin) of another database (\(StateKey.database) \(database)); no parent is recorded in this one")
        }
        guard (try? store?.run(run)) != nil else {
            return (nil, "\(origin), but this database has no run \(run) (\(StateKey.run)); no parent is recorded")
        }
        return ((run, candidate.saved.epochsDone), nil)
    }
}

extension Dataset {
    /// The same loaded values and labels (shared buffers), not merely equal ones.
    func isSameData(_ other: Dataset) -> Bool {
        train.images.sameStorage(as: other.train.images) && test.images.sameStorage(as: other.test.images)
            && train.labels.sameStorage(as: other.train.labels) && test.labels.sameStorage(as: other.test.labels)
    }
}

extension Array {
    /// Whether two arrays share one buffer (a copy of a `let` array does, until either is written).
    func sameStorage(as other: Array) -> Bool {
        count == other.count && withUnsafeBufferPointer { a in other.withUnsafeBufferPointer { b in a.baseAddress == b.baseAddress } }
    }
}
