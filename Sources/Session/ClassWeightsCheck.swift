import Training

extension Session {
    /// `set class-weights W1,W2,…` with data loaded: one weight per class, said at once (train
    /// checks again, for data loaded afterwards).
    func checkClassWeights(_ text: String) throws {
        let weights: ClassWeights
        do { weights = try ClassWeights(parsing: text) } catch { throw CommandError("\(error)") }
        guard case .given(let given) = weights, let dataset, given.count != dataset.classCount else { return }
        throw CommandError("class-weights: \(given.count) weights for \(dataset.name)'s \(dataset.classCount) classes; give \(dataset.classCount) or use balanced")
    }
}
