import Training

extension Session {
    /// `set class-weights W1,W2,…` with data loaded: one weight per class, said at once (train
    /// checks again, for data loaded afterwards).
    func checkClassWeights(_ text: String) throws {
        let weights: ClassWeights
        do { weights = try ClassWeights(parsing: text) } catch { throw CommandError("\(error)") }
        // Given weights only: balanced ones are counted on the training split when training starts.
        guard case .given = weights, let dataset else { return }
        do { _ = try weights.resolve(classes: dataset.classCount, labels: [], data: "\(dataset.name)'s") } catch { throw CommandError("\(error)") }
    }
}
