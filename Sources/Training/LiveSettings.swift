/// The settings in force, held once and shared by reference: the session's `set` writes them,
/// the trainer reads them at every step and writes the policy's automatic LR drop into them.
/// There is no second copy to fall out of step, so what `show`, checkpoints, `params` and
/// `metrics` report is what the optimizer used.
///
/// Beside them, what the user chose: a drop belongs to the run that made it, so a new run starts
/// from the user's settings (`startNewRun`), not from where the last run's policy left them.
public final class LiveSettings: @unchecked Sendable {
    /// In force in the current run: the user's settings and what the policy changed since.
    public var values: Hyperparameters
    /// The user's settings (`set`, or those of a run taken up by `resume`, `fork` or `restore`).
    public var chosen: Hyperparameters

    public init(_ values: Hyperparameters = Hyperparameters()) {
        self.values = values
        chosen = values
    }

    /// Back to the user's settings for a new run; returns the values in force before, when
    /// they differed (the last run's policy had changed something).
    @discardableResult
    public func startNewRun() -> Hyperparameters? {
        defer { values = chosen }
        return values == chosen ? nil : values
    }
}
