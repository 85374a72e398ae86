/// How far an unfinished epoch has got (after `train N batches`, `step` or a Ctrl-C): the next
/// `train` carries on from here, so stepping through an epoch trains it exactly as one pass.
/// With the epoch's shuffle (a function of seed and epoch) and the step counter (the noise
/// stream's position), this is all a half-trained epoch adds to the state.
public struct EpochProgress: Equatable, Sendable {
    /// Batches trained so far in this epoch.
    public var batches: Int
    /// Images trained so far; the next batch starts at this position of the epoch's order.
    public var images: Int
    /// The sum of those batches' mean losses, in order (the epoch's train_loss is its mean).
    public var lossSum: Double
    /// Images the model got right as it trained on them (the epoch's train_accuracy counts them).
    public var correct: Int
    /// Training time of the calls that stopped inside the epoch, for its epoch_seconds. Not
    /// saved in checkpoints (a time is no part of the state a replay must reproduce), nor
    /// compared: two positions are the same whatever they took.
    public var seconds: Double = 0

    public static func == (a: EpochProgress, b: EpochProgress) -> Bool {
        a.batches == b.batches && a.images == b.images && a.lossSum == b.lossSum && a.correct == b.correct
    }

    public init(batches: Int, images: Int, lossSum: Double, correct: Int = 0) {
        self.batches = batches
        self.images = images
        self.lossSum = lossSum
        self.correct = correct
    }
}
