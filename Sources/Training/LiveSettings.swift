/// The settings in force, held once and shared by reference: the session's `set` writes them,
/// the trainer reads them at every step and writes the policy's automatic LR drop into them.
/// There is no second copy to fall out of step, so what `show`, checkpoints, `params` and
/// `metrics` report is what the optimizer used.
public final class LiveSettings: @unchecked Sendable {
    public var values: Hyperparameters
    public init(_ values: Hyperparameters = Hyperparameters()) { self.values = values }
}
